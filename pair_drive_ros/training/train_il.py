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

"""
IL trainer for both planners: `pair-drive train il --model transfuser|diffusiondrive`.

Reads top to bottom (style R11): main(cfg) seeds, builds the data, the model and the
optimizer, then runs epochs of train_epoch / validate / checkpoint. Checkpoints are plain state
dicts with the resolved configs (policy.checkpoint); `--resume` continues a run, and torchrun
(WORLD_SIZE > 1) trains with DistributedDataParallel.
"""

from dataclasses import dataclass, field, fields, replace
import logging
import math
import os
from pathlib import Path
import shutil
import time
import warnings

import numpy as np
import torch
from torch.utils.data import DataLoader, DistributedSampler

from pair_drive_ros.core.config import config_to_dict
from pair_drive_ros.core.files import atomic_path
from pair_drive_ros.perception.config import PerceptionConfig
from pair_drive_ros.policy.backbone import backbone_inputs
from pair_drive_ros.policy.il_planner import (build_model, compute_loss, IL_MODELS,
                                              inference_fields)
from pair_drive_ros.training.common import (DistInfo, git_hash, init_distributed, load_checkpoint,
                                            load_state, pick_device, RunLog, save_checkpoint,
                                            seed_everything, set_threads)
from pair_drive_ros.training.data import collate, DataConfig, ILDataset, to_device

LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class ILTrainConfig:
    """Everything an IL run depends on (YAML: config/il_<model>.yaml)."""

    model: str = 'transfuser'
    model_config: dict = field(default_factory=dict)   # overrides of the model config class
    perception: PerceptionConfig = field(default_factory=PerceptionConfig)
    data: DataConfig = field(default_factory=DataConfig)
    val_frame_stride: int = 8      # validation frames (every 8th scorable frame of val)
    epochs: int = 6
    batch_size: int = 32
    lr: float = 1e-3               # AdamW, cosine decay after a linear warm-up
    warmup_steps: int = 100
    weight_decay: float = 1e-4
    grad_clip: float = 5.0
    seed: int = 0
    num_threads: int = 1           # torch threads (1: the 2-core machines are shared)
    device: str = 'auto'
    cache_workers: int = 1         # processes building the feature cache
    max_steps: int = 0             # stop after this many optimizer steps (smoke runs); 0: none
    val_max_frames: int = 0        # cap validation frames (smoke runs); 0: all
    # Model-config fields the exported checkpoint plans with, set after training: inference-only
    # settings chosen on val (DiffusionDrive's DDIM steps). Training and its best-checkpoint
    # choice (val ADE) keep model_config's, so the weights do not depend on them.
    export_model_config: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ILRunConfig(ILTrainConfig):
    """
    Settings of `pair-drive train il`: the ILTrainConfig plus where its data and outputs live.

    The ILTrainConfig part is what the checkpoint records; these fields only place the run.
    """

    data_root: str = ''            # scene-log root with train/ and val/ (--data)
    # More training logs (their train/ only), e.g. IL rollouts relabelled by the expert
    # (`pair-drive train rollouts --set driver=il --set expert_relabel=true`: DAgger).
    extra_data_roots: tuple = ()
    # Only these scenario folders of extra_data_roots join (empty: all of them).
    extra_data_scenarios: tuple = ()
    out: str = 'runs/il'           # checkpoint folder (the resolved config is saved there)
    runs_root: str = 'runs'        # TensorBoard run-log root (--runs)
    cache_dir: str = ''            # feature cache ('': <data_root>/../cache)
    export: str = ''               # also write the best checkpoint without optimizer state here
    resume: str = ''               # checkpoint to continue from
    init: str = ''                 # checkpoint whose weights start a new run (fine-tuning)
    progress: bool = True          # progress bars (--no-progress)


IL_FLAGS = ('model', 'out', 'cache_dir', 'export', 'resume', 'init', 'epochs', 'max_steps',
            'seed', 'device')
IL_ALIASES = {'data': 'data_root', 'runs': 'runs_root', 'threads': 'num_threads'}


def train_config(cfg: ILRunConfig) -> ILTrainConfig:
    """Return the ILTrainConfig part of a run config (what checkpoints and run logs record)."""
    return ILTrainConfig(**{f.name: getattr(cfg, f.name) for f in fields(ILTrainConfig)})


def kmeans_anchors(trajectories: np.ndarray, k: int, seed: int) -> np.ndarray:
    """(k, 8, 2) K-means centres of the (N, 8, >=2) expert trajectories' xy."""
    from scipy.cluster.vq import kmeans2

    xy = trajectories[..., :2].reshape(len(trajectories), -1).astype(np.float64)
    if len(xy) < k:
        raise ValueError(f'K-means needs at least {k} trajectories, got {len(xy)}')
    with warnings.catch_warnings():
        # Tiny or repetitive sets give empty clusters; those keep their k-means++ seed point.
        warnings.simplefilter('ignore')
        centres, _ = kmeans2(xy, k, minit='++', seed=seed)
    return centres.reshape(k, -1, 2).astype(np.float32)


def model_config_for(cfg: ILTrainConfig) -> dict:
    """
    Return the model-config overrides with the input sizes the perception config fixes.

    The LiDAR channels and the ego-status layout follow the features (history sweeps, road
    speed); an explicit backbone value that disagrees is an error.
    """
    data = dict(cfg.model_config)
    backbone = dict(data.get('backbone') or {})
    for key, value in backbone_inputs(cfg.perception).items():
        given = backbone.get(key)
        if given is not None and (tuple(given) if isinstance(given, list) else given) != value:
            raise ValueError(f'model_config.backbone.{key} = {given!r} does not fit the '
                             f'perception config (needs {value!r})')
        backbone[key] = value
    data['backbone'] = backbone
    return data


def build(cfg: ILTrainConfig, train_set: ILDataset, device: torch.device):
    """Model (anchors set for DiffusionDrive), optimizer, LR schedule."""
    if cfg.model not in IL_MODELS:
        raise ValueError(f'unknown IL model {cfg.model!r}; choose one of {IL_MODELS}')
    model = build_model(cfg.model, model_config_for(cfg))
    if cfg.model == 'diffusiondrive':
        model.set_anchors(kmeans_anchors(train_set.trajectories(), model.cfg.num_modes,
                                         cfg.seed))
    model.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(train_set) / cfg.batch_size)
    total = max(1, cfg.epochs * steps_per_epoch)
    if cfg.max_steps > 0:
        total = min(total, cfg.max_steps)

    def lr_lambda(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / cfg.warmup_steps
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, step / total)))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda)
    return model, optimizer, scheduler


def train_epoch(cfg: ILTrainConfig, model, optimizer, scheduler, loader, device, log: RunLog,
                step: int, progress: bool) -> tuple[int, dict]:
    """One pass over the training data; returns the new global step and mean losses."""
    model.train()
    sums: dict = {}
    count = 0
    t0 = time.monotonic()
    bar = loader
    if progress:
        from tqdm import tqdm
        bar = tqdm(loader, desc='train', unit='batch', leave=False)
    for feats, targets in bar:
        feats, targets = to_device(feats, device), to_device(targets, device)
        out = model(feats)
        losses = compute_loss(cfg.model, model, out, targets)
        optimizer.zero_grad(set_to_none=True)
        losses['loss'].backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        scheduler.step()
        step += 1
        values = {f'il/{k}': float(v.detach()) for k, v in losses.items()}
        for k, v in values.items():
            sums[k] = sums.get(k, 0.0) + v
        count += 1
        if step % 10 == 0:
            values['il/lr'] = scheduler.get_last_lr()[0]
            values['perf/steps_per_s'] = count / max(1e-9, time.monotonic() - t0)
            log.scalars(step, values)
        if progress:
            bar.set_postfix(loss=f'{values["il/loss"]:.3f}')
        if cfg.max_steps > 0 and step >= cfg.max_steps:
            break
    return step, {k: v / max(1, count) for k, v in sums.items()}


@torch.no_grad()
def validate(cfg: ILTrainConfig, model, loader, device) -> dict:
    """Mean validation losses and the plan's ADE / FDE [m] against the expert."""
    module = getattr(model, 'module', model)
    module.eval()
    sums: dict = {}
    n = 0
    for feats, targets in loader:
        feats, targets = to_device(feats, device), to_device(targets, device)
        losses = compute_loss(cfg.model, module, module(feats), targets)
        plan = module.plan(feats)['trajectory']
        err = torch.linalg.norm(plan[..., :2] - targets['trajectory'][..., :2], dim=-1)
        b = err.shape[0]
        vals = {f'val/{k}': float(v) * b for k, v in losses.items()}
        vals['val/ade_m'] = float(err.mean(-1).sum())
        vals['val/fde_m'] = float(err[:, -1].sum())
        for k, v in vals.items():
            sums[k] = sums.get(k, 0.0) + v
        n += b
    return {k: v / max(1, n) for k, v in sums.items()}


def _loaders(cfg: ILTrainConfig, train_set, val_set, dist: DistInfo):
    sampler = (DistributedSampler(train_set, dist.world_size, dist.rank, seed=cfg.seed)
               if dist.world_size > 1 else None)
    gen = torch.Generator().manual_seed(cfg.seed)
    train_loader = DataLoader(train_set, cfg.batch_size, shuffle=sampler is None,
                              sampler=sampler, collate_fn=collate, drop_last=len(train_set)
                              > cfg.batch_size, generator=gen)
    val_loader = DataLoader(val_set, cfg.batch_size, shuffle=False, collate_fn=collate)
    return train_loader, val_loader, sampler


def main(cfg: ILTrainConfig, data_root: str | Path, out_dir: str | Path,
         resume: str | Path | None = None, runs_root: str | Path = 'runs',
         cache_dir: str | Path | None = None, progress: bool = True,
         init: str | Path | None = None, extra_roots: tuple = (),
         extra_scenarios: tuple = ()) -> Path:
    """
    Train one IL model; returns the path of the best checkpoint (out_dir/<model>.pt).

    init: a checkpoint whose weights start the run (fine-tuning, e.g. a shipped model on scene
    logs converted from recordings); its model and perception configs must match cfg's.
    extra_roots: more scene-log roots whose train split joins the training set (only their
    extra_scenarios folders, if given).
    """
    set_threads(cfg.num_threads)
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    dist = init_distributed(device)
    if dist.world_size > 1 and not dist.is_main:
        torch.distributed.barrier()  # rank 0 builds the feature cache first
    train_set = ILDataset(data_root, 'train', cfg.perception, cfg.data, cache_dir,
                          cfg.cache_workers, progress and dist.is_main, extra_roots,
                          tuple(extra_scenarios))
    val_cfg = replace(cfg.data.training_only, frame_stride=cfg.val_frame_stride)
    val_set = ILDataset(data_root, 'val', cfg.perception, val_cfg, cache_dir,
                        cfg.cache_workers, progress and dist.is_main)
    if dist.world_size > 1 and dist.is_main:
        torch.distributed.barrier()
    if cfg.val_max_frames > 0:
        val_set = torch.utils.data.Subset(val_set, range(min(cfg.val_max_frames, len(val_set))))
    model, optimizer, scheduler = build(cfg, train_set, device)
    start_epoch, step, best, train_time = 0, 0, math.inf, 0.0
    if init and not resume:
        ckpt = load_checkpoint(init, expect_model=cfg.model,
                               expect_perception_config=cfg.perception.as_dict())
        load_state(model, ckpt, f'checkpoint {init}')
        LOG.info('fine-tuning from %s', init)
    if resume:
        ckpt = load_checkpoint(resume, expect_model=cfg.model,
                               expect_model_config=config_to_dict(model.cfg),
                               expect_perception_config=cfg.perception.as_dict())
        load_state(model, ckpt, f'checkpoint {resume}')
        if 'optimizer' in ckpt:
            optimizer.load_state_dict(ckpt['optimizer'])
            scheduler.load_state_dict(ckpt['scheduler'])
        start_epoch, step = int(ckpt.get('epoch', 0)), int(ckpt.get('step', 0))
        best = float(ckpt.get('best_val_ade_m', math.inf))
        train_time = float(ckpt.get('train_time_s', 0.0))
        LOG.info('resumed %s at epoch %d, step %d', resume, start_epoch, step)
    if dist.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(
            model, device_ids=[dist.local_rank] if device.type == 'cuda' else None)
    train_loader, val_loader, sampler = _loaders(cfg, train_set, val_set, dist)
    log = RunLog(f'il_{cfg.model}', cfg.seed, cfg, runs_root, enabled=dist.is_main)
    out_dir = Path(out_dir)
    best_path = out_dir / f'{cfg.model}.pt'
    last_path = out_dir / f'{cfg.model}_last.pt'
    LOG.info('training %s: %d train / %d val frames, %d parameters, run dir %s', cfg.model,
             len(train_set), len(val_set), sum(p.numel() for p in model.parameters()),
             log.run_dir)
    for epoch in range(start_epoch, cfg.epochs):
        if sampler is not None:
            sampler.set_epoch(epoch)
        t0 = time.monotonic()
        step, train_stats = train_epoch(cfg, model, optimizer, scheduler, train_loader, device,
                                        log, step, progress and dist.is_main)
        train_time += time.monotonic() - t0
        val_stats = validate(cfg, model, val_loader, device)
        log.scalars(step, {**{f'{k}_epoch': v for k, v in train_stats.items()}, **val_stats,
                           'perf/train_time_s': train_time})
        LOG.info('epoch %d step %d: train loss %.4f, val loss %.4f, val ADE %.2f m, '
                 'FDE %.2f m (%.0f s)', epoch + 1, step, train_stats.get('il/loss', math.nan),
                 val_stats.get('val/loss', math.nan), val_stats.get('val/ade_m', math.nan),
                 val_stats.get('val/fde_m', math.nan), train_time)
        if dist.is_main:
            extra = {'epoch': epoch + 1, 'step': step, 'train_config': config_to_dict(cfg),
                     'git': git_hash(), 'train_time_s': train_time,
                     'train_frames': len(train_set), 'val_metrics': val_stats,
                     'optimizer': optimizer.state_dict(), 'scheduler': scheduler.state_dict()}
            ade = val_stats.get('val/ade_m', math.inf)
            if ade < best or not best_path.exists():
                best = min(best, ade)
            extra['best_val_ade_m'] = best
            module = getattr(model, 'module', model)
            save_checkpoint(last_path, module, model_name=cfg.model,
                            model_config=module.cfg,
                            perception_config=cfg.perception.as_dict(),
                            extra=extra)
            if ade <= best:
                shutil.copyfile(last_path, best_path)
        if cfg.max_steps > 0 and step >= cfg.max_steps:
            break
    log.close()
    if dist.world_size > 1:
        torch.distributed.destroy_process_group()
    return best_path


def check_export_model_config(model: str, overrides: dict) -> None:
    """Refuse export_model_config keys that change what the model learnt, not how it plans."""
    allowed = inference_fields(model)
    wrong = sorted(set(overrides) - set(allowed))
    if wrong:
        raise ValueError(f'export_model_config may only set inference fields of {model} '
                         f'({", ".join(allowed) or "none"}), not {", ".join(wrong)}')


def export_checkpoint(src: str | Path, dst: str | Path,
                      model_config: dict | None = None) -> Path:
    """
    Copy a checkpoint without the optimizer state (the small file shipped in models/).

    `model_config`: inference-only fields written into the copy's model config (and recorded
    as 'export_model_config'), checked by building the model from the result.
    """
    ckpt = load_checkpoint(src)
    for key in ('optimizer', 'scheduler'):
        ckpt.pop(key, None)
    if model_config:
        check_export_model_config(ckpt['model'], model_config)
        ckpt['model_config'] = {**ckpt['model_config'], **model_config}
        ckpt['export_model_config'] = dict(model_config)
        build_model(ckpt['model'], ckpt['model_config'])  # a bad value fails here, not at load
    dst = Path(dst)
    # Atomic: a crash never leaves a half-written checkpoint where a planner would load it.
    with atomic_path(dst) as tmp:
        torch.save(ckpt, tmp)
    return dst


def add_arguments(parser) -> None:
    """Arguments of `pair-drive train il`: the ILRunConfig fields (config/il_<model>.yaml)."""
    from pair_drive_ros.core.config import add_config_arguments

    add_config_arguments(parser, None, IL_FLAGS, aliases=IL_ALIASES,
                         switches={'no-progress': 'progress=false'})
    parser.add_argument('--force', action='store_true',
                        help='overwrite an existing --export file and write into a non-empty '
                        '--out folder')


def run(args) -> int:
    """Entry point of `pair-drive train il`."""
    from pair_drive_ros.core.config import config_from_args, config_text, save_config
    from pair_drive_ros.training.common import refuse_overwrite

    cfg = config_from_args(ILRunConfig, args)
    if cfg.model not in IL_MODELS:
        raise ValueError(f'--model must be one of {IL_MODELS}, got {cfg.model!r}')
    if not cfg.data_root:
        raise ValueError('--data (the scene-log root) is required')
    force = getattr(args, 'force', False)
    refuse_overwrite(cfg.export, force, 'export checkpoint')
    check_export_model_config(cfg.model, cfg.export_model_config)
    if not cfg.resume:
        refuse_overwrite(cfg.out, force, 'checkpoint folder')
    LOG.info('pair-drive train il config:\n%s', config_text(cfg))
    if int(os.environ.get('RANK', '0')) == 0:   # torchrun: one copy, from the main process
        save_config(cfg, cfg.out)
    best = main(train_config(cfg), cfg.data_root, cfg.out, cfg.resume or None, cfg.runs_root,
                cfg.cache_dir or None, progress=cfg.progress, init=cfg.init or None,
                extra_roots=tuple(cfg.extra_data_roots),
                extra_scenarios=tuple(cfg.extra_data_scenarios))
    if cfg.export and best.exists():
        export_checkpoint(best, cfg.export, cfg.export_model_config)
        LOG.info('exported %s -> %s', best, cfg.export)
    return 0
