"""GRPO training of the PaIR RL tree branch (CleanRL-style: read `main` top to bottom).

Per step: sample `scenes_per_step` training scenes; grow the tree of the group codes around each
scene's expert trajectory with sampled offsets (pi_old, no grad); score every leaf with the PDM
scorer on the logged scene (reward = PDMS or EPDMS); normalise the rewards within each scene's
group; run `update_epochs` clipped-ratio GRPO updates with a KL(pi_theta || pi_old) penalty whose
weight adapts to `kl_target`. AdamW, warm-up + cosine decay. The IL planner is not involved.

    pair-drive train rl --config config/rl_grpo.yaml [--set total_steps=300]
"""

import argparse
from dataclasses import dataclass, field
import logging
from pathlib import Path
import time

import numpy as np
import torch

from pair_drive_ros.core.config import add_config_arguments, config_from_args, config_to_dict
from pair_drive_ros.policy.checkpoint import load_checkpoint, save_checkpoint
from pair_drive_ros.policy.rl_branch import MODEL_NAME, RLBranch, RLBranchConfig, tree_kl
from pair_drive_ros.policy.tree import resolve_group
from pair_drive_ros.training.common import (export_copy, pick_device, RunLog, seed_everything,
                                            set_threads)
from pair_drive_ros.training.grpo import (adapt_beta, cosine_lr, group_advantages, grpo_loss,
                                          linear_schedule)
from pair_drive_ros.training.references import perturb_reference

LOG = logging.getLogger(__name__)
DEFAULT_CONFIG = 'config/rl_grpo.yaml'


@dataclass(frozen=True)
class RLTrainConfig:
    """GRPO run settings (config/rl_grpo.yaml uses the same names)."""

    exp: str = 'rl_grpo'
    data_root: str = 'data/logs'
    split: str = 'train'
    frame_stride: int = 4          # must match the IL feature cache to share it
    max_scenes: int = 0            # 0: every cached frame of the split
    group: str = '15'              # '5', '9', '12', '15', 'all' (tree.GROUPS)
    reward: str = 'pdms'           # 'pdms' or 'epdms'
    scenes_per_step: int = 8
    total_steps: int = 300
    update_epochs: int = 2         # GRPO updates per sampled batch (ratio != 1 after the first)
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 10
    clip_eps: float = 0.2
    kl_beta: float = 0.05          # initial KL weight ("dynamic": adapt_beta towards kl_target)
    kl_target: float = 0.02
    sigma_start: float = 0.6       # offset std on the raw (pre-sigmoid) scale, linear schedule
    sigma_end: float = 0.2
    max_grad_norm: float = 1.0
    model: RLBranchConfig = field(default_factory=RLBranchConfig)
    # Reference augmentation (ours, docs/RL_DESIGN.md): this fraction of the scenes uses the
    # expert scaled along time by U(1 - speed, 1 + speed) and shifted laterally by a ramp up to
    # U(-lateral_m, lateral_m), so the tree also learns to correct imperfect references (at
    # inference the reference is an IL plan). No IL planner is involved.
    augment_fraction: float = 0.0
    augment_speed: float = 0.4
    augment_lateral_m: float = 1.5
    init_trunk: str = ''           # IL checkpoint whose trunk weights are copied (not shared)
    train_trunk: bool = False      # False: the trunk is frozen, context computed once per step
    seed: int = 0
    device: str = 'cpu'
    threads: int = 2
    workers: int = 1               # feature-cache build processes
    runs_root: str = 'runs'
    save_every: int = 50
    resume: str = ''               # checkpoint to resume from (model, optimizer, step, beta)
    out: str = ''                  # also copy the final checkpoint here (e.g. models/...)

    @property
    def codes(self) -> tuple:
        """The group's path codes."""
        return resolve_group(self.group)


def build(cfg: RLTrainConfig, device: torch.device) -> tuple[RLBranch, torch.optim.Optimizer]:
    """Build the policy and its AdamW optimizer.

    Eval mode throughout: BatchNorm statistics stay fixed, so pi_old == pi_theta at the first
    update. With init_trunk the trunk starts from a copy of an IL checkpoint's trunk.
    """
    policy = RLBranch(cfg.model)
    if cfg.init_trunk:
        ckpt = load_checkpoint(cfg.init_trunk)
        n = policy.init_trunk_from(ckpt['state_dict'])
        LOG.info('RL trunk initialised from a copy of %s (%d tensors)', cfg.init_trunk, n)
    policy.trunk.requires_grad_(cfg.train_trunk)
    policy = policy.to(device).eval()
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    return policy, optimizer


def augment_reference(expert: torch.Tensor, cfg: RLTrainConfig, rng: np.random.Generator
                      ) -> torch.Tensor:
    """Expert trajectories (B, 8, 3) with a random fraction scaled in speed and shifted sideways.

    Headings follow the shifted path (finite differences), so references stay consistent.
    """
    if cfg.augment_fraction <= 0:
        return expert
    return perturb_reference(expert, rng, cfg.augment_fraction, cfg.augment_speed,
                             cfg.augment_lateral_m)


def context_of(policy: RLBranch, feats: dict, train_trunk: bool):
    """Context tokens; None when the trunk is trained (then every pass re-encodes)."""
    if train_trunk:
        return None
    with torch.no_grad():
        return policy.encode(feats)


def grow(policy: RLBranch, feats: dict, context, reference: torch.Tensor, codes, sigma: float,
         z=None, generator=None):
    """Grow the tree from cached context (frozen trunk) or from the features (trained trunk)."""
    if context is None:
        return policy(feats, reference, codes, sigma=sigma, z=z, generator=generator)
    return policy.expand(context, reference, codes, sigma=sigma, z=z, generator=generator)


def sample_group(policy: RLBranch, feats: dict, context, reference: torch.Tensor, codes,
                 sigma: float, generator: torch.Generator):
    """pi_old's tree around the reference with sampled offsets (no gradient)."""
    with torch.no_grad():
        return grow(policy, feats, context, reference, codes, sigma, generator=generator)


def update(policy: RLBranch, optimizer, feats: dict, context, reference: torch.Tensor, codes,
           old, advantages: torch.Tensor, sigma: float, beta: float, cfg) -> dict:
    """`update_epochs` GRPO steps on one batch; the last step's stats."""
    stats = None
    for _ in range(cfg.update_epochs):
        new = grow(policy, feats, context, reference, codes, sigma, z=old.z)
        kl = tree_kl(new, old, sigma)
        loss, stats = grpo_loss(new.log_prob, old.log_prob, advantages, kl, cfg.clip_eps, beta)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in policy.parameters() if p.requires_grad]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
    out = stats.as_dict()
    out['rl/loss'] = float(loss.detach())
    out['rl/grad_norm'] = float(grad_norm)
    return out


def save(path: Path, policy: RLBranch, optimizer, step: int, beta: float,
         cfg: RLTrainConfig, extra: dict | None = None) -> Path:
    """Checkpoint with everything `resume` needs (optimizer None: a small inference copy)."""
    state = {} if optimizer is None else {'optimizer': optimizer.state_dict()}
    return save_checkpoint(path, policy, model_name=MODEL_NAME, model_config=cfg.model,
                           extra={'step': step, 'beta': beta, 'train_config': config_to_dict(cfg),
                                  **state, **(extra or {})})


def main(cfg: RLTrainConfig, scenes=None) -> Path:
    """Train; return the final checkpoint path (scenes: a SceneSet, default: cfg's split)."""
    from tqdm import tqdm

    from pair_drive_ros.training.rl_data import load_scene_set

    # -- setup: seed, device, data, model, optimizer, run folder ------------------------------
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    device = pick_device(cfg.device)
    codes = cfg.codes
    if scenes is None:
        scenes = load_scene_set(cfg.data_root, cfg.split, cfg.frame_stride, cfg.max_scenes,
                                cfg.seed, cfg.workers)
    policy, optimizer = build(cfg, device)
    start, beta = 0, cfg.kl_beta
    if cfg.resume:
        ckpt = load_checkpoint(cfg.resume, expect_model=MODEL_NAME)
        policy.load_state_dict(ckpt['state_dict'])
        optimizer.load_state_dict(ckpt['optimizer'])
        start, beta = int(ckpt['step']), float(ckpt['beta'])
        LOG.info('resumed %s at step %d', cfg.resume, start)
    log = RunLog(cfg.exp, cfg.seed, cfg, cfg.runs_root)
    rng = np.random.default_rng(cfg.seed + start)
    gen = torch.Generator(device=device).manual_seed(cfg.seed + start)
    LOG.info('GRPO: %d scenes, group %s (G=%d), %d steps, run %s', len(scenes), cfg.group,
             len(codes), cfg.total_steps, log.run_dir)

    bar = tqdm(range(start, cfg.total_steps), desc='grpo', unit='step', initial=start,
               total=cfg.total_steps)
    for step in bar:
        t0 = time.perf_counter()
        lr = cosine_lr(step, cfg.total_steps, cfg.lr, cfg.warmup_steps)
        for group in optimizer.param_groups:
            group['lr'] = lr
        sigma = linear_schedule(step, cfg.total_steps, cfg.sigma_start, cfg.sigma_end)

        # -- rollout: sample the group around the expert, score it ---------------------------
        js = rng.choice(len(scenes), cfg.scenes_per_step, replace=False)
        feats, expert = scenes.batch(js, device)
        reference = augment_reference(expert, cfg, rng)
        context = context_of(policy, feats, cfg.train_trunk)
        old = sample_group(policy, feats, context, reference, codes, sigma, gen)
        t1 = time.perf_counter()
        cands = torch.cat([old.paths, expert[:, None]], 1).cpu().numpy()
        scores = scenes.score(js, cands)
        t2 = time.perf_counter()
        reward_all = scores.reward(cfg.reward)
        rewards = torch.as_tensor(reward_all[:, :-1], dtype=torch.float32, device=device)
        advantages = group_advantages(rewards)

        # -- GRPO update --------------------------------------------------------------------
        stats = update(policy, optimizer, feats, context, reference, codes, old, advantages,
                       sigma, beta, cfg)
        beta = adapt_beta(beta, stats['rl/kl'], cfg.kl_target)

        # -- logging and checkpoints ----------------------------------------------------------
        best = rewards.max(-1).values.mean().item()
        stats.update({'rl/reward_mean': rewards.mean().item(), 'rl/reward_best': best,
                      'rl/reward_expert': float(reward_all[:, -1].mean()),
                      'rl/reward_std': rewards.std(-1).mean().item(), 'rl/beta': beta,
                      'rl/sigma': sigma, 'rl/lr': lr,
                      'perf/steps_per_s': 1.0 / (time.perf_counter() - t0),
                      'perf/sample_s': t1 - t0, 'perf/score_s': t2 - t1})
        log.scalars(step, stats)
        bar.set_postfix(r=f'{stats["rl/reward_mean"]:.3f}', best=f'{best:.3f}',
                        kl=f'{stats["rl/kl"]:.3f}', clip=f'{stats["rl/clip_frac"]:.2f}')
        if (step + 1) % cfg.save_every == 0:
            save(log.run_dir / 'checkpoint.pt', policy, optimizer, step + 1, beta, cfg)
            scenes.save_references()

    info = {'train_seconds': log.elapsed_s, 'num_scenes': len(scenes)}
    save(log.run_dir / 'checkpoint.pt', policy, optimizer, cfg.total_steps, beta, cfg, info)
    final = save(log.run_dir / 'rl_branch.pt', policy, None, cfg.total_steps, beta, cfg, info)
    scenes.save_references()
    log.close()
    export_copy(final, cfg.out)
    LOG.info('RL branch saved to %s (%.0f s)', final, log.elapsed_s)
    return final


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI flags of `pair-drive train rl`."""
    add_config_arguments(parser, DEFAULT_CONFIG)


def run(args: argparse.Namespace) -> int:
    """Entry point of `pair-drive train rl`."""
    main(config_from_args(RLTrainConfig, args))
    return 0
