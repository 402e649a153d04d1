# Copyright 2026 pair_drive_ros maintainers
#
# Licensed under the Apache License, Version 2.0 (the "License");
# you may not use this file except in compliance with the License.
# You may obtain a copy of the License at
#
#     http://www.apache.org/licenses/LICENSE-2.0
#
# Unless required by applicable law or agreed to in writing, software
# distributed under the License is distributed on an "AS IS" BASIS,
# WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
# See the License for the specific language governing permissions and
# limitations under the License.

"""Training helpers shared by every trainer: seeding, devices, run logs, checkpoints, DDP."""

import dataclasses
from datetime import datetime, timezone
import json
import logging
import os
from pathlib import Path
import random
import shutil
import subprocess
import time

import numpy as np
import torch

from pair_drive_ros.core.config import add_config_arguments, config_from_args, config_to_dict
from pair_drive_ros.core.files import atomic_path
from pair_drive_ros.policy.checkpoint import (CHECKPOINT_SCHEMA_VERSION, CheckpointError,
                                              load_checkpoint, load_state, save_checkpoint)

LOG = logging.getLogger(__name__)

__all__ = [
    'CHECKPOINT_SCHEMA_VERSION', 'CheckpointError', 'DistInfo', 'RunLog', 'all_reduce_mean',
    'all_reduce_sum', 'average_gradients', 'broadcast_object', 'broadcast_parameters',
    'finish_distributed',
    'gather_concat', 'git_hash', 'init_distributed', 'load_checkpoint', 'load_state',
    'pick_device', 'rank_seed', 'run_log', 'save_checkpoint', 'seed_everything', 'set_threads',
    'shard_of', 'sync_references',
]


def seed_everything(seed: int) -> None:
    """Seed Python, numpy and torch (CPU and CUDA)."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def pick_device(name: str = 'auto') -> torch.device:
    """'auto' -> cuda if available else cpu; otherwise the named device."""
    if name in ('auto', '', None):
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    return torch.device(name)


def set_threads(num_threads: int) -> None:
    """Limit torch's intra-op threads (the development machines are shared)."""
    if num_threads > 0:
        torch.set_num_threads(int(num_threads))


def git_hash() -> str:
    """Commit hash of the source tree ('unknown' outside git)."""
    try:
        out = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=5, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return 'unknown'


@dataclasses.dataclass
class DistInfo:
    """Distributed-training context (world size 1 when not under torchrun)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1
    owns_group: bool = False       # this trainer created the process group (and destroys it)

    @property
    def is_main(self) -> bool:
        """Whether this process writes logs and checkpoints."""
        return self.rank == 0


def init_distributed(device: torch.device) -> DistInfo:
    """Initialise torch.distributed from torchrun's env when WORLD_SIZE > 1."""
    world = int(os.environ.get('WORLD_SIZE', '1'))
    if world <= 1:
        return DistInfo()
    import torch.distributed as dist
    backend = 'nccl' if device.type == 'cuda' else 'gloo'
    owns = not dist.is_initialized()
    if owns:
        dist.init_process_group(backend=backend)
    local = int(os.environ.get('LOCAL_RANK', '0'))
    if device.type == 'cuda':
        torch.cuda.set_device(local)
    return DistInfo(dist.get_rank(), local, dist.get_world_size(), owns)


def finish_distributed(dist: DistInfo) -> None:
    """Wait for every rank, then destroy the process group if this trainer created it."""
    if dist.world_size <= 1:
        return
    torch.distributed.barrier()
    if dist.owns_group:
        torch.distributed.destroy_process_group()


def rank_seed(seed: int, rank: int) -> int:
    """
    Seed of a rank's own random stream: `seed` on rank 0, an independent stream on the others.

    Rank 0 keeps the plain seed, so a one-process run draws exactly what it drew before.
    """
    if rank == 0:
        return int(seed)
    return int(np.random.SeedSequence((int(seed), int(rank))).generate_state(1)[0])


def shard_of(items, dist: DistInfo):
    """
    Return this rank's contiguous share of `items` (an array or a range), shares near equal.

    Contiguous shares, gathered in rank order, give back the original order.
    """
    if dist.world_size <= 1:
        return items
    n = len(items)
    lo = dist.rank * n // dist.world_size
    hi = (dist.rank + 1) * n // dist.world_size
    return items[lo:hi]


def _device_of(dist: DistInfo) -> torch.device:
    backend = torch.distributed.get_backend()
    return torch.device('cuda', dist.local_rank) if backend == 'nccl' else torch.device('cpu')


def all_reduce_sum(values: dict, dist: DistInfo) -> dict:
    """Sum float values over ranks (one collective); world size 1 returns them as given."""
    if dist.world_size <= 1 or not values:
        return values
    keys = list(values)
    buf = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64,
                       device=_device_of(dist))
    torch.distributed.all_reduce(buf)
    return {k: float(v) for k, v in zip(keys, buf.cpu().tolist())}


def all_reduce_mean(values: dict, dist: DistInfo) -> dict:
    """
    Mean of float values over ranks, so every rank logs and decides on the same numbers.

    Ranks hold equal shares, so the mean of their means is the mean over all of them.
    """
    if dist.world_size <= 1:
        return values
    return {k: v / dist.world_size for k, v in all_reduce_sum(values, dist).items()}


def average_gradients(params, dist: DistInfo, weight: float | None = None) -> None:
    """
    All-reduce the gradients of `params` and divide by the world size (or by `weight`'s sum).

    Used instead of DistributedDataParallel where the update does not go through the module's
    forward (the tree's expand, the diffusion decoder) or shares are uneven: DDP only syncs
    gradients of a forward it wrapped. weight: this rank's share of the global batch (rows);
    the gradients are then summed with these weights and divided by their total. A parameter
    without a gradient on one rank counts as zero there.
    """
    if dist.world_size <= 1:
        return
    params = [p for p in params if p.requires_grad]
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    if weight is None:
        torch.distributed.all_reduce(flat)
        flat /= dist.world_size
    else:
        flat *= weight
        total = torch.tensor([float(weight)], dtype=flat.dtype, device=flat.device)
        torch.distributed.all_reduce(flat)
        torch.distributed.all_reduce(total)
        flat /= total.clamp_min(1e-12)
    offset = 0
    for p, g in zip(params, grads):
        n = g.numel()
        p.grad = flat[offset:offset + n].view_as(p).clone()
        offset += n


def broadcast_parameters(module: torch.nn.Module, dist: DistInfo) -> None:
    """Copy rank 0's parameters and buffers to every rank (the same start everywhere)."""
    if dist.world_size <= 1:
        return
    with torch.no_grad():
        for t in list(module.parameters()) + list(module.buffers()):
            torch.distributed.broadcast(t.data, 0)


def broadcast_object(obj, dist: DistInfo):
    """Rank 0's `obj` on every rank (a picklable value: a run folder, a chosen margin)."""
    if dist.world_size <= 1:
        return obj
    box = [obj]
    torch.distributed.broadcast_object_list(box, 0)
    return box[0]


def gather_concat(part, dist: DistInfo, concat):
    """Every rank's `part`, joined in rank order with concat(list of parts), on every rank."""
    if dist.world_size <= 1:
        return part
    parts = [None] * dist.world_size
    torch.distributed.all_gather_object(parts, part)
    return concat(parts)


def sync_references(scenes, dist: DistInfo) -> None:
    """
    Merge the EP normalisers every rank computed into each rank's scene set.

    Ranks score different scenes; rank 0 writes the normaliser cache, so it needs all of them.
    """
    if dist.world_size <= 1:
        return
    for part in getattr(scenes, 'parts', [scenes]):
        refs = getattr(part, '_refs', None)
        if refs is None:
            continue
        merged = [None] * dist.world_size
        torch.distributed.all_gather_object(merged, refs)
        for other in merged:
            refs.update(other)


def run_log(exp: str, seed: int, config, root, dist: DistInfo) -> 'RunLog':
    """Open a RunLog that rank 0 alone writes, whose run folder every rank knows."""
    log = RunLog(exp, seed, config, root, enabled=dist.is_main)
    log.run_dir = Path(broadcast_object(str(log.run_dir), dist))
    return log


def new_run_dir(path: Path) -> Path:
    """
    Create and return `path`, or `path_2`, `path_3`, ... where it exists.

    Two runs of one experiment and seed started in the same second (e.g. two processes) would
    otherwise write into one folder; mkdir without exist_ok makes the claim atomic.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    candidate, k = path, 1
    while True:
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            k += 1
            candidate = path.with_name(f'{path.name}_{k}')


class RunLog:
    """
    runs/{exp}__{seed}__{utc}/: config.json (resolved config + git hash), TensorBoard, CSV.

    Scalars carry a prefix ('il/', 'perf/') on one global step. Only the main process writes.
    """

    def __init__(self, exp: str, seed: int, config, root: str | Path = 'runs',
                 enabled: bool = True) -> None:
        stamp = datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')
        self.run_dir = Path(root) / f'{exp}__{seed}__{stamp}'
        self.enabled = enabled
        self._writer = None
        self._t0 = time.monotonic()
        if not enabled:
            return
        self.run_dir = new_run_dir(self.run_dir)
        cfg = config_to_dict(config) if dataclasses.is_dataclass(config) else dict(config)
        (self.run_dir / 'config.json').write_text(json.dumps(
            {'config': cfg, 'git': git_hash(), 'torch': torch.__version__,
             'started_utc': stamp}, indent=2, default=str))
        try:
            from torch.utils.tensorboard import SummaryWriter
            self._writer = SummaryWriter(str(self.run_dir))
        except ImportError:  # tensorboard is optional; the CSV log is always written
            LOG.warning('tensorboard not installed: scalars go to scalars.csv only')
        self._csv = (self.run_dir / 'scalars.csv').open('a')

    def scalars(self, step: int, values: dict) -> None:
        """Log scalar values at a global step."""
        if not self.enabled:
            return
        for key, value in values.items():
            value = float(value)
            if self._writer is not None:
                self._writer.add_scalar(key, value, step)
            self._csv.write(f'{step},{key},{value:.6g}\n')
        self._csv.flush()

    @property
    def elapsed_s(self) -> float:
        """Seconds since the run started."""
        return time.monotonic() - self._t0

    def close(self) -> None:
        """Flush and close the writers."""
        if not self.enabled:
            return
        if self._writer is not None:
            self._writer.close()
        self._csv.close()


class OutputExistsError(ValueError):
    """An output would overwrite what a user recorded or trained (pass --force to allow it)."""


def refuse_overwrite(path: str | Path | None, force: bool = False, what: str = 'output') -> None:
    """Raise OutputExistsError if `path` is a file or a non-empty folder, unless `force`."""
    if not path or force:
        return
    p = Path(path)
    if p.is_file() or (p.is_dir() and any(p.iterdir())):
        raise OutputExistsError(f'{what} {p} exists; choose another path or pass --force')


def add_trainer_arguments(parser, default_config: str) -> None:
    """Add the flags of a `pair-drive train <name>` trainer: --config, --set, --force."""
    add_config_arguments(parser, default_config)
    parser.add_argument('--force', action='store_true',
                        help="replace the config's existing export file (out)")


def run_trainer(args, config_cls, main) -> int:
    """Resolve the trainer's config from args and run main(cfg); exit status 0."""
    cfg = config_from_args(config_cls, args)
    # Checked before training: a run must not end by overwriting a model without asking.
    refuse_overwrite(cfg.out, getattr(args, 'force', False), 'export checkpoint')
    main(cfg)
    return 0


def export_copy(path: str | Path, out: str | Path | None) -> None:
    """
    Copy a finished checkpoint to `out` (the config's export path), if one is set.

    Atomic: the copy is written next to `out` and renamed over it, so a crash never leaves a
    half-written checkpoint where a planner would load it.
    """
    if not out:
        return
    with atomic_path(out) as tmp:
        shutil.copyfile(path, tmp)
