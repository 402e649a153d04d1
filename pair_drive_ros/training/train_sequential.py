"""Sequential baseline (IL -> RL): the same GRPO applied directly to the IL planner A.

Policy: the IL model's trajectory is the mean; a group of G trajectories is sampled around it
with random-walk xy noise (eps_k ~ N(0, sigma^2 I_2), sample_k = mean_k + sum_{j<=k} eps_j, so
samples stay smooth; yaw is the model's), log pi = sum_k log N(eps_k; 0, sigma^2). Reward,
group normalisation, clipped ratio, KL(pi_theta || pi_old) with the adaptive weight, AdamW +
cosine decay, scenes per step, steps and update epochs are those of train_rl (same budget).
Like the RL branch, the perception trunk is frozen (its outputs are computed once per step); the
IL model's trajectory head is what GRPO fine-tunes. The result is an IL checkpoint (same model
name and config), so `pair-drive evaluate --planner transfuser --il-checkpoint ...` loads it.

    pair-drive train sequential --config config/rl_sequential.yaml
"""

import argparse
from dataclasses import dataclass
import logging
import math
from pathlib import Path
import shutil
import time

import numpy as np
import torch

from pair_drive_ros.policy.checkpoint import save_checkpoint
from pair_drive_ros.policy.configs import config_to_dict
from pair_drive_ros.training.common import pick_device, RunLog, seed_everything, set_threads
from pair_drive_ros.training.grpo import (adapt_beta, cosine_lr, group_advantages, grpo_loss,
                                          linear_schedule)
from pair_drive_ros.training.rl_common import add_config_arguments, config_from_args

LOG = logging.getLogger(__name__)
DEFAULT_CONFIG = 'config/rl_sequential.yaml'


@dataclass(frozen=True)
class SequentialConfig:
    """Sequential GRPO run settings (config/rl_sequential.yaml uses the same names)."""

    exp: str = 'rl_sequential'
    il_checkpoint: str = 'models/transfuser_lite.pt'
    data_root: str = 'data/logs'
    split: str = 'train'
    frame_stride: int = 4
    max_scenes: int = 0
    group_size: int = 15
    reward: str = 'pdms'
    scenes_per_step: int = 8
    total_steps: int = 300
    update_epochs: int = 2
    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 10
    clip_eps: float = 0.2
    kl_beta: float = 0.05
    kl_target: float = 0.02
    sigma_start_m: float = 0.5     # random-walk step std [m], linear schedule
    sigma_end_m: float = 0.2
    max_grad_norm: float = 1.0
    seed: int = 0
    device: str = 'cpu'
    threads: int = 2
    workers: int = 1
    runs_root: str = 'runs'
    out: str = ''


def random_walk_log_prob(samples_xy: torch.Tensor, mean_xy: torch.Tensor, sigma: float
                         ) -> torch.Tensor:
    """Log-density (...,) of xy samples (..., 8, 2) around means under the random-walk noise."""
    delta = samples_xy - mean_xy
    eps = torch.diff(delta, dim=-2, prepend=torch.zeros_like(delta[..., :1, :]))
    lp = -0.5 * (eps / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)
    return lp.sum((-1, -2))


def random_walk_kl(mean_new: torch.Tensor, mean_old: torch.Tensor, sigma: float) -> torch.Tensor:
    """(B,) KL(pi_new || pi_old) of two random-walk Gaussians (same sigma) with means (B, 8, 2)."""
    delta = mean_new - mean_old.detach()
    d = torch.diff(delta, dim=-2, prepend=torch.zeros_like(delta[..., :1, :]))
    return (d ** 2).sum((-1, -2)) / (2 * sigma ** 2)


def sample_group(mean: torch.Tensor, group_size: int, sigma: float,
                 generator: torch.Generator) -> torch.Tensor:
    """(B, G, 8, 3) samples around (B, 8, 3) means (xy random walk, the means' yaw)."""
    b, n = mean.shape[:2]
    eps = torch.randn(b, group_size, n, 2, generator=generator) * sigma
    out = mean[:, None].repeat(1, group_size, 1, 1)
    out[..., :2] = out[..., :2] + eps.cumsum(-2)
    return out


def head_mean(model, trunk_out: dict) -> torch.Tensor:
    """Compute the IL trajectory (B, 8, 3) from cached trunk outputs (Transfuser head)."""
    cfg = model.cfg
    raw = model.trajectory_head(trunk_out['traj_query']).view(-1, cfg.num_poses, 3)
    return torch.cat([raw[..., :2] * cfg.xy_scale_m, torch.tanh(raw[..., 2:]) * math.pi], -1)


def main(cfg: SequentialConfig, scenes=None) -> Path:
    """Fine-tune IL planner A with GRPO; return the final IL checkpoint path."""
    from tqdm import tqdm

    from pair_drive_ros.policy.il_planner import load_il_model
    from pair_drive_ros.training.rl_data import load_scene_set

    # -- setup --------------------------------------------------------------------------------
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    device = pick_device(cfg.device)
    model, il_ckpt = load_il_model(cfg.il_checkpoint, str(device), expect_model='transfuser')
    model.eval()
    model.trunk.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    if scenes is None:
        scenes = load_scene_set(cfg.data_root, cfg.split, cfg.frame_stride, cfg.max_scenes,
                                cfg.seed, cfg.workers)
    log = RunLog(cfg.exp, cfg.seed, cfg, cfg.runs_root)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    beta = cfg.kl_beta

    for step in tqdm(range(cfg.total_steps), desc='sequential grpo', unit='step'):
        t0 = time.perf_counter()
        lr = cosine_lr(step, cfg.total_steps, cfg.lr, cfg.warmup_steps)
        for group in optimizer.param_groups:
            group['lr'] = lr
        sigma = linear_schedule(step, cfg.total_steps, cfg.sigma_start_m, cfg.sigma_end_m)

        # -- rollout --------------------------------------------------------------------------
        js = rng.choice(len(scenes), cfg.scenes_per_step, replace=False)
        feats, _ = scenes.batch(js, device)
        with torch.no_grad():
            trunk_out = model.trunk(feats)
            old_mean = head_mean(model, trunk_out)
            samples = sample_group(old_mean.cpu(), cfg.group_size, sigma, gen).to(device)
            old_lp = random_walk_log_prob(samples[..., :2], old_mean[:, None, :, :2], sigma)
        scores = scenes.score(js, samples.cpu().numpy())
        rewards = torch.as_tensor(scores.reward(cfg.reward), dtype=torch.float32, device=device)
        advantages = group_advantages(rewards)

        # -- GRPO update ------------------------------------------------------------------------
        for _ in range(cfg.update_epochs):
            mean = head_mean(model, trunk_out)
            lp = random_walk_log_prob(samples[..., :2], mean[:, None, :, :2], sigma)
            kl = random_walk_kl(mean[..., :2], old_mean[..., :2], sigma)
            loss, stats = grpo_loss(lp, old_lp, advantages, kl, cfg.clip_eps, beta)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
        beta = adapt_beta(beta, stats.kl, cfg.kl_target)
        values = stats.as_dict('seq/')
        values.update({'seq/reward_mean': rewards.mean().item(),
                       'seq/reward_best': rewards.max(-1).values.mean().item(),
                       'seq/beta': beta, 'seq/sigma_m': sigma, 'seq/lr': lr,
                       'perf/steps_per_s': 1.0 / (time.perf_counter() - t0)})
        log.scalars(step, values)

    path = save_checkpoint(log.run_dir / 'transfuser_seq_grpo.pt', model,
                           model_name='transfuser', model_config=model.cfg,
                           perception_config=il_ckpt.get('perception_config') or None,
                           extra={'train_config': config_to_dict(cfg),
                                  'train_seconds': log.elapsed_s,
                                  'init_checkpoint': cfg.il_checkpoint})
    scenes.save_references()
    log.close()
    if cfg.out:
        Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, cfg.out)
    LOG.info('sequential GRPO checkpoint %s (%.0f s)', path, log.elapsed_s)
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI flags of `pair-drive train sequential`."""
    add_config_arguments(parser, DEFAULT_CONFIG)


def run(args: argparse.Namespace) -> int:
    """Entry point of `pair-drive train sequential`."""
    main(config_from_args(SequentialConfig, args))
    return 0
