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
Sequential baseline (IL -> RL): the same GRPO applied directly to an IL planner (A or B).

The IL checkpoint's model name decides which: Transfuser-lite (IL-A, the policy mean is
`model(feats)['trajectory']`) or DiffusionDrive-lite (IL-B, the policy mean is the deployed plan:
`DiffusionDriveModel.denoise`, i.e. plan() with gradients, with the deployed planner's fixed
noise seed, the same DDIM steps and the best-scored mode).
Policy: a Gaussian on the IL plan's kinematic parameters (per-step length [m] and heading
change [rad], (8, 2), from backbone.kinematic_params of the plan):
params ~ N(mean, diag(sigma_step^2, sigma_turn^2)), plan = integrate_kinematics(params), so
every sample is a smooth, kinematically consistent plan; log pi = log N(params; mean, sigma).
Reward,
group normalisation, clipped ratio, KL(pi_theta || pi_old) with the adaptive weight, AdamW +
cosine decay, scenes per step, steps and update epochs are those of train_rl (same budget).
Like the RL branch, the perception trunk is frozen; the IL model's decoder (IL-A: trajectory
head; IL-B: trajectory encoder, time MLP and cascade layers) is what GRPO fine-tunes. The result
is an IL checkpoint (same model name and config), so `pair-drive evaluate --planner transfuser
--il-checkpoint ...` (or `--planner diffusiondrive`) loads it.

Under torchrun each rank takes a disjoint share of every step's scenes. The step's scene choice
and its sampling noise are drawn whole on every rank (one small tensor) and each rank uses its
slice, so N processes see the samples one process would; the gradients and the KL that steers
the adaptive weight are averaged over ranks, and rank 0 alone writes the run folder.

    pair-drive train sequential --config config/rl_sequential.yaml     # IL-A
    pair-drive train sequential --config config/rl_sequential_b.yaml   # IL-B
    torchrun --nproc_per_node 2 -m pair_drive_ros.cli train sequential --config ...
"""

import argparse
from dataclasses import dataclass
import logging
import math
from pathlib import Path
import time

import numpy as np
import torch

from pair_drive_ros.core.config import config_to_dict
from pair_drive_ros.policy.backbone import integrate_kinematics, kinematic_params
from pair_drive_ros.policy.checkpoint import save_checkpoint
from pair_drive_ros.policy.factory import shipped
from pair_drive_ros.training.common import (add_trainer_arguments, all_reduce_mean, all_reduce_sum,
                                            average_gradients, export_copy, finish_distributed,
                                            init_distributed, pick_device, run_log, run_trainer,
                                            seed_everything, set_threads, shard_of,
                                            sync_references)
from pair_drive_ros.training.grpo import (adapt_beta, cosine_lr, group_advantages, grpo_loss,
                                          linear_schedule)

LOG = logging.getLogger(__name__)
DEFAULT_CONFIG = 'config/rl_sequential.yaml'


@dataclass(frozen=True)
class SequentialConfig:
    """Sequential GRPO run settings (config/rl_sequential.yaml uses the same names)."""

    exp: str = 'rl_sequential'
    il_checkpoint: str = shipped('transfuser')
    data_root: str = 'data/logs'
    split: str = 'train'
    frame_stride: int = 4
    max_scenes: int = 0
    # The RL branch's and the selector's data options, so an equal-data run is one config:
    # more training logs (e.g. the on-policy rollouts the selector was trained with).
    extra_data_roots: tuple = ()
    # > 0: ceil(budget / (scenes_per_step x group_size)) steps instead of total_steps, e.g. the
    # scorer calls of the RL branch plus the selector (`pair-drive report attribution` lists them).
    scorer_budget: int = 0
    # Checkpoints whose trainings' scorer calls, summed, are the budget (e.g. the RL branch and
    # the final selector: the PaIR row's budget); non-empty overrides scorer_budget.
    scorer_budget_of: tuple = ()
    cache_dir: str = ''            # feature cache ('' : <data_root>/../cache)
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
    sigma_start: float = 1.0       # linear schedule of a multiplier on (sigma_step, sigma_turn)
    sigma_end: float = 0.4
    sigma_step_m: float = 0.6      # per-step length std [m] at multiplier 1
    sigma_turn_rad: float = 0.06   # per-step heading-change std [rad] at multiplier 1
    max_grad_norm: float = 1.0
    seed: int = 0
    device: str = 'cpu'
    threads: int = 2
    workers: int = 1
    runs_root: str = 'runs'
    out: str = ''
    noise_seed: int = 0            # IL-B only: DiffusionDrivePlanner's fixed per-call noise seed


def kinematic_mean(model, feats: dict) -> torch.Tensor:
    """
    Return the IL plan as per-step (length [m], heading change [rad]) (B, 8, 2), differentiable.

    Uses only the model's output trajectory and backbone.kinematic_params, so it does not depend
    on how the IL head parameterises that trajectory.
    """
    return plan_kinematics(model(feats)['trajectory'])


def plan_kinematics(traj: torch.Tensor) -> torch.Tensor:
    """(B, 8, 2) per-step (length, heading change) of plans (B, 8, 3)."""
    step, turn = kinematic_params(traj[..., :2])
    return torch.stack([step, turn], -1)


def diffusion_plan(model, enc: dict, noise_seed: int) -> torch.Tensor:
    """
    Return the deployed IL-B plan (B, 8, 3), differentiable w.r.t. the decoder.

    A fresh generator per call, seeded like DiffusionDrivePlanner._plan, so the noise (and with
    it the plan) is the deployed one; enc: the (frozen) trunk's outputs.
    """
    gen = torch.Generator().manual_seed(noise_seed)
    return model.denoise(enc, gen)['trajectory']


def policy_mean_fn(model, feats: dict, noise_seed: int = 0):
    """
    Callable () -> (B, 8, 2) policy mean of this step's scenes (the IL plan, kinematic).

    IL-A: kinematic_mean. IL-B: the frozen trunk runs once here (no grad); each call reruns
    only the diffusion decoder (same noise, so the same plan until the weights change).
    """
    if getattr(model, 'model_name', None) == 'diffusiondrive':
        with torch.no_grad():
            enc = model.trunk(feats)
        return lambda: plan_kinematics(diffusion_plan(model, enc, noise_seed))
    return lambda: kinematic_mean(model, feats)


def to_trajectory(params: torch.Tensor) -> torch.Tensor:
    """Poses (..., 8, 3) from (..., 8, 2) step lengths and heading changes (steps >= 0)."""
    return integrate_kinematics(params[..., 0].clamp_min(0.0), params[..., 1])


def gaussian_log_prob(sample: torch.Tensor, mean: torch.Tensor, sigma) -> torch.Tensor:
    """
    Log-density (...,) of samples (..., 8, 2) under N(mean, diag(sigma^2)).

    sigma: a float or a (2,) tensor (per last-axis dimension).
    """
    sigma = torch.as_tensor(sigma, dtype=sample.dtype)
    lp = -0.5 * ((sample - mean) / sigma) ** 2 - torch.log(sigma) - 0.5 * math.log(2 * math.pi)
    return lp.sum((-1, -2))


def gaussian_kl(mean_new: torch.Tensor, mean_old: torch.Tensor, sigma) -> torch.Tensor:
    """(B,) KL(pi_new || pi_old) of two Gaussians with the same sigma, means (B, 8, 2)."""
    sigma = torch.as_tensor(sigma, dtype=mean_new.dtype)
    return (((mean_new - mean_old.detach()) / sigma) ** 2).sum((-1, -2)) / 2


def main(cfg: SequentialConfig, scenes=None) -> Path:
    """Fine-tune an IL planner (A or B) with GRPO; return the final IL checkpoint path."""
    from tqdm import tqdm

    from pair_drive_ros.perception.config import load_perception_config
    from pair_drive_ros.policy.il_planner import load_il_model
    from pair_drive_ros.training.rl_data import (budget_of, load_training_scenes,
                                                 steps_for_budget)

    # -- setup --------------------------------------------------------------------------------
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    device = pick_device(cfg.device)
    dist = init_distributed(device)
    if cfg.scenes_per_step % dist.world_size:
        raise ValueError(f'scenes_per_step ({cfg.scenes_per_step}) must be a multiple of the '
                         f'number of processes ({dist.world_size})')
    model, il_ckpt = load_il_model(cfg.il_checkpoint, str(device))   # the same file everywhere
    name = il_ckpt['model']
    model.eval()
    model.trunk.requires_grad_(False)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    budget = budget_of(cfg.scorer_budget_of) if cfg.scorer_budget_of else cfg.scorer_budget
    if scenes is None:
        scenes = load_training_scenes(cfg.data_root, cfg.extra_data_roots, cfg.split,
                                      cfg.frame_stride, cfg.max_scenes, cfg.seed, cfg.workers,
                                      cfg.cache_dir or None,
                                      load_perception_config(cfg.il_checkpoint))
    total_steps = steps_for_budget(budget, cfg.scenes_per_step * cfg.group_size,
                                   cfg.total_steps)
    scorer_calls = 0
    log = run_log(cfg.exp, cfg.seed, cfg, cfg.runs_root, dist)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    beta = cfg.kl_beta

    for step in tqdm(range(total_steps), desc='sequential grpo', unit='step',
                     disable=not dist.is_main):
        t0 = time.perf_counter()
        lr = cosine_lr(step, total_steps, cfg.lr, cfg.warmup_steps)
        for group in optimizer.param_groups:
            group['lr'] = lr
        sigma = linear_schedule(step, total_steps, cfg.sigma_start, cfg.sigma_end)

        # -- rollout --------------------------------------------------------------------------
        every = rng.choice(len(scenes), cfg.scenes_per_step, replace=False)
        mine = shard_of(np.arange(len(every)), dist)     # this rank's rows of the step
        js = every[mine]
        feats, _ = scenes.batch(js, device)
        policy_mean = policy_mean_fn(model, feats, cfg.noise_seed)
        sig = sigma * torch.tensor([cfg.sigma_step_m, cfg.sigma_turn_rad], device=device)
        with torch.no_grad():
            old_mean = policy_mean()
            noise = torch.randn((len(every), cfg.group_size) + old_mean.shape[1:],
                                generator=gen)[mine]
            raw = old_mean[:, None] + sig * noise.to(device)
            old_lp = gaussian_log_prob(raw, old_mean[:, None], sig)
            samples = to_trajectory(raw)
        scores = scenes.score(js, samples.cpu().numpy())
        scorer_calls += samples.shape[0] * samples.shape[1]
        rewards = torch.as_tensor(scores.reward(cfg.reward), dtype=torch.float32, device=device)
        advantages = group_advantages(rewards)

        # -- GRPO update ------------------------------------------------------------------------
        for _ in range(cfg.update_epochs):
            mean = policy_mean()
            lp = gaussian_log_prob(raw, mean[:, None], sig)
            kl = gaussian_kl(mean, old_mean, sig)
            loss, stats = grpo_loss(lp, old_lp, advantages, kl, cfg.clip_eps, beta)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            average_gradients(params, dist)
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
        # Every rank adapts beta on the same (all-reduced) KL.
        values = all_reduce_mean({**stats.as_dict('seq/'),
                                  'seq/reward_mean': rewards.mean().item(),
                                  'seq/reward_best': rewards.max(-1).values.mean().item()}, dist)
        beta = adapt_beta(beta, values['seq/kl'], cfg.kl_target)
        values.update({'seq/beta': beta, 'seq/sigma': sigma, 'seq/lr': lr,
                       'perf/steps_per_s': 1.0 / (time.perf_counter() - t0)})
        log.scalars(step, values)

    scorer_calls = int(all_reduce_sum({'calls': scorer_calls}, dist)['calls'])
    path = log.run_dir / f'{name}_seq_grpo.pt'
    sync_references(scenes, dist)
    if dist.is_main:
        save_checkpoint(path, model, model_name=name, model_config=model.cfg,
                        perception_config=il_ckpt.get('perception_config') or None,
                        extra={'train_config': config_to_dict(cfg),
                               'train_seconds': log.elapsed_s, 'scorer_calls': scorer_calls,
                               'world_size': dist.world_size,
                               'init_checkpoint': cfg.il_checkpoint})
        scenes.save_references()
        export_copy(path, cfg.out)
        LOG.info('sequential GRPO checkpoint %s (%.0f s)', path, log.elapsed_s)
    log.close()
    finish_distributed(dist)
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI flags of `pair-drive train sequential`."""
    add_trainer_arguments(parser, DEFAULT_CONFIG)


def run(args: argparse.Namespace) -> int:
    """Entry point of `pair-drive train sequential`."""
    return run_trainer(args, SequentialConfig, main)
