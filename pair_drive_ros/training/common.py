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
import tempfile
import time

import numpy as np
import torch

from pair_drive_ros.core.config import config_to_dict
from pair_drive_ros.policy.checkpoint import (CHECKPOINT_SCHEMA_VERSION, CheckpointError,
                                              load_checkpoint, load_state, save_checkpoint)

LOG = logging.getLogger(__name__)

__all__ = [
    'CHECKPOINT_SCHEMA_VERSION', 'CheckpointError', 'DistInfo', 'RunLog', 'git_hash',
    'init_distributed', 'load_checkpoint', 'load_state', 'pick_device', 'save_checkpoint',
    'seed_everything', 'set_threads',
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
    if not dist.is_initialized():
        dist.init_process_group(backend=backend)
    local = int(os.environ.get('LOCAL_RANK', '0'))
    if device.type == 'cuda':
        torch.cuda.set_device(local)
    return DistInfo(dist.get_rank(), local, dist.get_world_size())


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
        self.run_dir.mkdir(parents=True, exist_ok=True)
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


def export_copy(path: str | Path, out: str | Path | None) -> None:
    """
    Copy a finished checkpoint to `out` (the config's export path), if one is set.

    Atomic: the copy is written next to `out` and renamed over it, so a crash never leaves a
    half-written checkpoint where a planner would load it.
    """
    if not out:
        return
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f'.{out.name}.', suffix='.tmp')
    os.close(fd)
    try:
        shutil.copyfile(path, tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
