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
GRPO training of the PaIR RL tree branch (CleanRL-style: read `main` top to bottom).

Per step: sample `scenes_per_step` training scenes; pick each scene's reference (the expert, or
with `il_reference_fraction` IL-A's own plan, then optionally perturbed); grow the tree of the
group codes around it with sampled offsets (pi_old, no grad); score every leaf and the reference
with the PDM scorer on the logged scene (reward = PDMS or EPDMS); turn the rewards into
advantages (`advantage`: against the group mean or against the reference, plus optional
leave-one-out credit to the set's best); run `update_epochs` clipped-ratio GRPO updates with a
KL(pi_theta || pi_old) penalty whose weight adapts to `kl_target`, and an optional hinge that
keeps the deterministic leaves spread. AdamW, warm-up + cosine decay.

The trunk is a frozen copy of an IL checkpoint's trunk (`trunk_source: il_copy`) or the branch's
own, trained from scratch with the auxiliary BEV-semantic and agent losses before GRPO
(`trunk_source: aux`). With `val_split`, the oracle of [IL-A plan, leaves] is measured on a fixed
val subset before the first and after the last step (the step-0 numbers are the untrained tree
of the same init seed).

Under torchrun each rank takes a disjoint share of every step's scenes (scenes_per_step is the
global count; groups are per scene, so the advantages need no communication); the gradients
and the statistics that steer training (KL weight, logs, validation) are averaged over ranks,
and rank 0 alone writes the run folder and the checkpoints.

    pair-drive train rl --config config/rl_grpo.yaml [--set total_steps=300]
    torchrun --nproc_per_node 2 -m pair_drive_ros.cli train rl --config config/rl_grpo.yaml
"""

import argparse
from dataclasses import dataclass, field, replace
import logging
from pathlib import Path
import time

import numpy as np
import torch

from pair_drive_ros.core.config import config_to_dict
from pair_drive_ros.perception.config import load_perception_config, PerceptionConfig
from pair_drive_ros.policy.backbone import backbone_inputs
from pair_drive_ros.policy.checkpoint import load_checkpoint, load_state, save_checkpoint
from pair_drive_ros.policy.factory import shipped
from pair_drive_ros.policy.rl_branch import MODEL_NAME, RLBranch, RLBranchConfig, tree_kl
from pair_drive_ros.policy.selector import candidates_per_reference, plan_variants
from pair_drive_ros.policy.tree import resolve_group
from pair_drive_ros.training.common import (add_trainer_arguments, all_reduce_mean, all_reduce_sum,
                                            average_gradients, broadcast_parameters, DistInfo,
                                            export_copy, finish_distributed, gather_concat,
                                            init_distributed, pick_device, rank_seed, run_log,
                                            run_trainer, seed_everything, set_threads, shard_of,
                                            sync_references)
from pair_drive_ros.training.grpo import (adapt_beta, cosine_lr, group_advantages, grpo_loss,
                                          linear_schedule, pick_credit, PickOutcome,
                                          reference_advantages, set_credit)
from pair_drive_ros.training.references import perturb_reference

LOG = logging.getLogger(__name__)
DEFAULT_CONFIG = 'config/rl_grpo.yaml'
ADVANTAGES = ('group', 'reference', 'above_reference', 'above_variants')
TRUNK_SOURCES = ('il_copy', 'aux')


@dataclass(frozen=True)
class RLTrainConfig:
    """GRPO run settings (config/rl_grpo.yaml uses the same names)."""

    exp: str = 'rl_grpo'
    data_root: str = 'data/logs'
    split: str = 'train'
    frame_stride: int = 4          # must match the IL feature cache to share it
    max_scenes: int = 0            # 0: every cached frame of the split
    # More training logs (all their `split` frames), e.g. on-policy rollouts of
    # `pair-drive train rollouts`; the selector and the sequential baseline take the same option.
    extra_data_roots: tuple = ()
    # > 0: train for ceil(budget / scorer calls per step) steps instead of total_steps (a step
    # scores scenes_per_step x (group + reference + expert) candidates).
    scorer_budget: int = 0
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
    augment_jitter_m: float = 0.0  # N(0, jitter) per waypoint on augmented references [m]
    # -- objective (docs/RL_DESIGN.md, "Objective") --
    # 'group': (r - group mean) / std (the paper); 'reference': (r - r_reference) / std, a leaf
    # is credited for beating the plan it grew from; 'above_reference': group-normalised
    # max(r, r_reference), a leaf below the reference is not pushed towards it;
    # 'above_variants': the same floor raised to the best of the reference and its 14 plan
    # variants (selector.plan_variants), the non-RL candidates PaIR deploys beside the leaves:
    # only a leaf that beats all of them stands out.
    advantage: str = 'group'
    # + weight x leave-one-out credit (max(0, r_i - best of the rest of {reference, leaves}))
    # / std: rewards the leaf that raises the best of the set PaIR picks from.
    set_credit_weight: float = 0.0
    # + weight x pick credit / std: with a frozen selector (selector_checkpoint) over the set
    # PaIR deploys ([reference, leaves, 14 plan variants]), the leaf the selector picks is
    # credited r(pick) - r(the pick without it) (grpo.pick_credit): positive where it raises
    # the deployed plan, negative where the selector is fooled by it.
    pick_credit_weight: float = 0.0
    # A frozen selector: training logs what it picks from each sampled set (rl/pick_*, the
    # variants are then scored too) and the validation adds the selected plan's score.
    selector_checkpoint: str = ''
    # Exploration kept: spread_coef x max(0, min_spread_m - mean end-point distance [m] of the
    # deterministic (sigma = 0, as at inference) leaves from the reference).
    spread_coef: float = 0.0
    min_spread_m: float = 0.0
    # -- references --
    # Fraction of scenes whose reference is IL-A's own plan (il_checkpoint, Transfuser only, so
    # IL-B stays unseen), the rest the expert; augmentation applies to both.
    il_reference_fraction: float = 0.0
    il_checkpoint: str = shipped('transfuser')
    # -- trunk --
    # 'il_copy': a frozen copy of init_trunk's trunk (empty init_trunk: random init);
    # 'aux': the branch's own trunk, trained from scratch for trunk_pretrain_steps with the
    # auxiliary BEV-semantic and agent losses on the training split, then frozen.
    trunk_source: str = 'il_copy'
    init_trunk: str = ''           # IL checkpoint whose trunk weights are copied (not shared)
    # An RL checkpoint whose whole branch (trunk and tree) GRPO starts from: fine-tuning, e.g.
    # the shipped tree against the selector trained on its leaves. Replaces init_trunk.
    init_branch: str = ''
    trunk_pretrain_steps: int = 0
    trunk_pretrain_batch: int = 16
    trunk_pretrain_lr: float = 1e-3
    train_trunk: bool = False      # True: GRPO also trains the trunk (end to end, ~10x slower)
    # -- validation: oracle of [IL-A plan, leaves] on a fixed subset, before and after --
    val_split: str = ''            # '' : no validation
    val_frame_stride: int = 8
    val_max_scenes: int = 256
    cache_dir: str = ''            # feature cache ('' : <data_root>/../cache)
    seed: int = 0
    device: str = 'cpu'
    threads: int = 2
    workers: int = 1               # feature-cache build processes
    runs_root: str = 'runs'
    save_every: int = 50
    resume: str = ''               # checkpoint to resume from (model, optimizer, step, beta)
    out: str = ''                  # also copy the final checkpoint here (e.g. models/...)

    def __post_init__(self) -> None:
        if self.advantage not in ADVANTAGES:
            raise ValueError(f'advantage must be one of {ADVANTAGES}, got {self.advantage!r}')
        if self.trunk_source not in TRUNK_SOURCES:
            raise ValueError(f'trunk_source must be one of {TRUNK_SOURCES}, got '
                             f'{self.trunk_source!r}')
        if not 0.0 <= self.il_reference_fraction <= 1.0:
            raise ValueError('il_reference_fraction must be in [0, 1]')
        if self.pick_credit_weight > 0 and not self.selector_checkpoint:
            raise ValueError('pick_credit_weight needs a selector_checkpoint')

    @property
    def scores_variants(self) -> bool:
        """Whether each scene's 14 plan variants are scored with its leaves."""
        return self.advantage == 'above_variants' or bool(self.selector_checkpoint)

    @property
    def codes(self) -> tuple:
        """Return the group's path codes."""
        return resolve_group(self.group)


def trunk_perception(cfg: RLTrainConfig) -> PerceptionConfig:
    """
    Return the features the branch reads.

    A trunk copied from an IL checkpoint reads what that IL planner was trained on (e.g. past
    LiDAR sweeps); an own trunk reads the default features.
    """
    if cfg.init_branch:
        return load_perception_config(cfg.init_branch)
    if cfg.trunk_source == 'il_copy' and cfg.init_trunk:
        return load_perception_config(cfg.init_trunk)
    return PerceptionConfig()


def with_input_sizes(cfg: RLTrainConfig, perception: PerceptionConfig) -> RLTrainConfig:
    """Return cfg with the trunk's input sizes (LiDAR channels, status) set by the features."""
    backbone = replace(cfg.model.backbone, **backbone_inputs(perception))
    return replace(cfg, model=replace(cfg.model, backbone=backbone))


def build(cfg: RLTrainConfig, device: torch.device) -> tuple[RLBranch, torch.optim.Optimizer]:
    """
    Build the policy and its AdamW optimizer.

    Eval mode throughout: BatchNorm statistics stay fixed, so pi_old == pi_theta at the first
    update. With init_trunk the trunk starts from a copy of an IL checkpoint's trunk.
    """
    policy = RLBranch(cfg.model)
    if cfg.init_branch:
        ckpt = load_checkpoint(cfg.init_branch, expect_model=MODEL_NAME)
        load_state(policy, ckpt, f'init_branch {cfg.init_branch}')
        LOG.info('RL branch (trunk and tree) initialised from %s', cfg.init_branch)
    elif cfg.trunk_source == 'il_copy' and cfg.init_trunk:
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
    """
    Expert trajectories (B, 8, 3) with a random fraction scaled in speed and shifted sideways.

    Headings follow the shifted path (finite differences), so references stay consistent.
    """
    if cfg.augment_fraction <= 0:
        return expert
    return perturb_reference(expert, rng, cfg.augment_fraction, cfg.augment_speed,
                             cfg.augment_lateral_m, cfg.augment_jitter_m)


def training_reference(expert: torch.Tensor, feats: dict, il_model, cfg: RLTrainConfig,
                       rng: np.random.Generator) -> torch.Tensor:
    """
    Return references (B, 8, 3): IL-A's plan for il_reference_fraction, else the expert.

    Then the augmentation (speed, lateral ramp, jitter) on a random augment_fraction. At
    inference the tree grows around an IL plan, so training around one teaches offsets that fix
    an IL plan's errors rather than an expert's.
    """
    ref = expert
    if il_model is not None and cfg.il_reference_fraction > 0:
        use = torch.as_tensor(rng.random(len(expert)) < cfg.il_reference_fraction,
                              device=expert.device)
        if bool(use.any()):
            with torch.no_grad():
                plans = il_model.plan(feats)['trajectory'].to(expert)
            ref = torch.where(use[:, None, None], plans, expert)
    return augment_reference(ref, cfg, rng)


def advantages_of(cfg: RLTrainConfig, rewards: torch.Tensor, ref_rewards: torch.Tensor,
                  variant_rewards: torch.Tensor | None = None,
                  credit: torch.Tensor | None = None) -> torch.Tensor:
    """
    (S, G) advantages of the configured objective.

    variant_rewards: (S, V) scores of the reference's plan variants, needed by
    'above_variants' only; credit: (S, G) the selector's pick credit (pick_credit_weight).
    """
    if cfg.advantage == 'reference':
        adv = reference_advantages(rewards, ref_rewards)
    elif cfg.advantage in ('above_reference', 'above_variants'):
        # PaIR keeps the reference when no leaf beats it, so a leaf below the reference costs
        # nothing: the group is ranked on max(r, floor), and only leaves above the floor stand
        # out. A group entirely below its floor carries no update. With the variants in the
        # deployed set, a leaf only adds something where it beats the best of them too.
        floor = ref_rewards
        if cfg.advantage == 'above_variants':
            if variant_rewards is None:
                raise ValueError("advantage 'above_variants' needs the variants' rewards")
            floor = torch.maximum(floor, variant_rewards.max(-1).values)
        adv = group_advantages(torch.maximum(rewards, floor[:, None]))
    else:
        adv = group_advantages(rewards)
    if cfg.set_credit_weight > 0:
        std = rewards.std(-1, keepdim=True) if rewards.shape[1] > 1 else 1.0
        adv = adv + cfg.set_credit_weight * set_credit(rewards, ref_rewards) / (std + 1e-6)
    if cfg.pick_credit_weight > 0:
        if credit is None:
            raise ValueError('pick_credit_weight needs the pick credit')
        std = rewards.std(-1, keepdim=True) if rewards.shape[1] > 1 else 1.0
        adv = adv + cfg.pick_credit_weight * credit / (std + 1e-6)
    return adv


def deployed_set(reference: torch.Tensor, leaves: torch.Tensor, variants: torch.Tensor
                 ) -> torch.Tensor:
    """
    Return (S, 1 + G + V, 8, 3): the set PaIR deploys, in its order (PaIRPlanner.candidates).

    variants: the reference's plan variants (plan_variants(reference)).
    """
    return torch.cat([reference[:, None], leaves, variants], 1)


@torch.no_grad()
def selector_pick(selector, candidates: torch.Tensor, g: int, context, feats: dict,
                  set_rewards: torch.Tensor) -> PickOutcome:
    """Return the frozen selector's pick over a deployed set (G leaves), credited to them."""
    eligible, _ = selector.eligible_scores(candidates, context, feats)
    return pick_credit(eligible, set_rewards, slice(1, 1 + g), selector.cfg.fallback_margin)


def calls_per_scene(cfg: RLTrainConfig) -> int:
    """Scored candidates per scene: the reference, its leaves (and variants), the expert."""
    return candidates_per_reference(cfg.group, cfg.scores_variants) + 1


def variant_scalars(rewards: torch.Tensor, ref_rewards: torch.Tensor,
                    variant_rewards: torch.Tensor | None) -> dict:
    """
    Best of the non-RL set (reference + variants) and what the leaves add to it (logged).

    Empty when the variants were not scored.
    """
    if variant_rewards is None:
        return {}
    base = torch.maximum(ref_rewards, variant_rewards.max(-1).values)
    full = torch.maximum(base, rewards.max(-1).values)
    return {'rl/oracle_variants': base.mean().item(),
            'rl/leaf_gain_over_variants': (full - base).mean().item()}


def pick_scalars(pick: PickOutcome | None) -> dict:
    """
    Return what the selector deploys from the sampled set (logged; empty without a selector).

    The pick's reward, the same with the leaves ruled out (the non-RL pick), and how often the
    pick is a leaf.
    """
    if pick is None:
        return {}
    return {'rl/pick_reward': pick.reward.mean().item(),
            'rl/pick_gain_over_no_rl': (pick.reward - pick.reward_without).mean().item(),
            'rl/pick_leaf_frac': pick.picked_leaf.float().mean().item()}


def leaf_spread(paths: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """(B,) mean end-point distance [m] of leaves (B, G, 8, 3) from the reference (B, 8, 3)."""
    return (paths[:, :, -1, :2] - reference[:, None, -1, :2]).norm(dim=-1).mean(-1)


def pretrain_trunk(policy: RLBranch, scenes, cfg: RLTrainConfig, device: torch.device,
                   log, dist: DistInfo = DistInfo()) -> None:
    """
    Train the branch's own trunk from scratch with the auxiliary BEV and agent losses.

    The same perception targets the IL planners learn from (policy.losses), none of the
    trajectory loss: the trunk learns the scene, not a planner's plan. Under torchrun every
    rank draws its own batch (a stream per rank) and the gradients are averaged.
    """
    from pair_drive_ros.policy.losses import agent_loss, bev_semantic_loss

    trunk = policy.trunk
    trunk.requires_grad_(True)
    trunk.train()
    opt = torch.optim.AdamW(trunk.parameters(), lr=cfg.trunk_pretrain_lr,
                            weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(rank_seed(cfg.seed + 7, dist.rank))
    n = len(scenes)
    for step in range(cfg.trunk_pretrain_steps):
        js = rng.choice(n, min(cfg.trunk_pretrain_batch, n), replace=False)
        feats, _ = scenes.batch(js, device)
        out = trunk(feats)
        sem = torch.as_tensor(scenes.arrays_of(js, 'bev_semantics'), device=device)
        states = torch.as_tensor(scenes.arrays_of(js, 'agent_states'), dtype=torch.float32,
                                 device=device)
        mask = torch.as_tensor(scenes.arrays_of(js, 'agent_mask'), device=device)
        cls, box = agent_loss(out['agent_states'], out['agent_logits'], states, mask)
        bev = bev_semantic_loss(out['bev_semantics'], sem)
        loss = bev + cls + box
        opt.zero_grad(set_to_none=True)
        loss.backward()
        average_gradients(trunk.parameters(), dist)
        opt.step()
        log.scalars(step, all_reduce_mean({
            'trunk/loss': loss.item(), 'trunk/bev': bev.item(), 'trunk/agent_cls': cls.item(),
            'trunk/agent_box': box.item()}, dist))
    trunk.eval()
    # Gradients were averaged, the BatchNorm statistics were not: rank 0's go to every rank.
    broadcast_parameters(trunk, dist)
    trunk.requires_grad_(cfg.train_trunk)


@torch.no_grad()
def validate(policy: RLBranch, scenes, il_model, codes, batch_size: int = 32,
             dist: DistInfo = DistInfo(), selector=None) -> dict:
    """
    Oracle of [IL-A plan, deterministic leaves] and the leaves' scores on scenes (x 100).

    What PaIR can reach from the tree: the best of the IL plan and its leaves by the true PDMS;
    also the IL plan's own score, the mean and best leaf, the leaves' spread [m], and the
    oracles of the non-RL set (IL plan + 14 plan variants) and of the full deployed set (IL
    plan + leaves + variants): their difference is what the leaves add beside the variants. Under
    torchrun each rank scores a contiguous share of the scenes; the per-scene values are
    gathered in order, so every rank reports the numbers of one process. With a selector, also
    the score of the plan it picks from the deployed set and from the non-RL set (IL plan +
    variants, the leaves left out): what PaIR deploys with and without the tree.
    """
    il, oracle, leaf_mean, leaf_best, spread = [], [], [], [], []
    variants, full, selected, selected_no_rl = [], [], [], []
    mine = shard_of(np.arange(len(scenes)), dist)
    device = next(policy.parameters()).device   # the models' device (a GPU in training)
    for start in range(0, len(mine), batch_size):
        js = [int(j) for j in mine[start:start + batch_size]]
        feats, _ = scenes.batch(js, device)
        ref = il_model.plan(feats)['trajectory'].float()
        context = policy.encode(feats)
        tree = policy.expand(context, ref, codes)
        g = tree.paths.shape[1]
        variants_of_ref = plan_variants(ref)
        cands = deployed_set(ref, tree.paths, variants_of_ref)
        pdms = scenes.score(js, cands.cpu().numpy()).pdms
        il.append(pdms[:, 0])
        oracle.append(pdms[:, :1 + g].max(1))
        leaf_mean.append(pdms[:, 1:1 + g].mean(1))
        leaf_best.append(pdms[:, 1:1 + g].max(1))
        variants.append(np.maximum(pdms[:, 0], pdms[:, 1 + g:].max(1)))
        full.append(pdms.max(1))
        spread.append(leaf_spread(tree.paths, ref).cpu().numpy())
        if selector is not None:
            best, _ = selector.select(cands, context, feats)
            selected.append(pdms[np.arange(len(js)), best.cpu().numpy()])
            no_rl = torch.cat([ref[:, None], variants_of_ref], 1)
            best, _ = selector.select(no_rl, context, feats)
            keep = np.r_[0, 1 + g:pdms.shape[1]]
            selected_no_rl.append(pdms[:, keep][np.arange(len(js)), best.cpu().numpy()])

    def mean(parts: list, scale: float = 100.0) -> float:
        local = np.concatenate(parts) if parts else np.zeros(0)
        return float(scale * gather_concat(local, dist, np.concatenate).mean())
    out = {'val/il_pdms': mean(il), 'val/oracle_pdms': mean(oracle),
           'val/leaf_mean_pdms': mean(leaf_mean), 'val/leaf_best_pdms': mean(leaf_best),
           'val/spread_m': mean(spread, 1.0), 'val/oracle_variants_pdms': mean(variants),
           'val/oracle_full_pdms': mean(full)}
    if selector is not None:
        out.update({'val/selected_pdms': mean(selected),
                    'val/selected_no_rl_pdms': mean(selected_no_rl)})
    return out


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
           old, advantages: torch.Tensor, sigma: float, beta: float, cfg,
           dist: DistInfo = DistInfo()) -> dict:
    """
    `update_epochs` GRPO steps on one batch; the last step's stats (this rank's share).

    Under torchrun the gradients are averaged over ranks before clipping: each rank's loss is
    the mean over an equal share of the scenes, so the average is the loss of the whole step.
    """
    stats = None
    spread = None
    for _ in range(cfg.update_epochs):
        new = grow(policy, feats, context, reference, codes, sigma, z=old.z)
        kl = tree_kl(new, old, sigma)
        loss, stats = grpo_loss(new.log_prob, old.log_prob, advantages, kl, cfg.clip_eps, beta)
        if cfg.spread_coef > 0:
            # The leaves as deployed (z = mean) depend on the offset means, so the hinge moves
            # the means apart only where the tree has collapsed onto the reference.
            det = grow(policy, feats, context, reference, codes, 0.0)
            spread = leaf_spread(det.paths, reference).mean()
            loss = loss + cfg.spread_coef * torch.relu(cfg.min_spread_m - spread)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for p in policy.parameters() if p.requires_grad]
        average_gradients(params, dist)
        grad_norm = torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
    out = stats.as_dict()
    out['rl/loss'] = float(loss.detach())
    out['rl/grad_norm'] = float(grad_norm)
    if spread is not None:
        out['rl/spread_mean_m'] = float(spread.detach())
    return out


def save(path: Path, policy: RLBranch, optimizer, step: int, beta: float,
         cfg: RLTrainConfig, extra: dict | None = None,
         perception: PerceptionConfig | None = None) -> Path:
    """Checkpoint with everything `resume` needs (optimizer None: a small inference copy)."""
    state = {} if optimizer is None else {'optimizer': optimizer.state_dict()}
    return save_checkpoint(path, policy, model_name=MODEL_NAME, model_config=cfg.model,
                           perception_config=perception,
                           extra={'step': step, 'beta': beta, 'train_config': config_to_dict(cfg),
                                  **state, **(extra or {})})


def main(cfg: RLTrainConfig, scenes=None, val_scenes=None) -> Path:
    """Train; return the final checkpoint path (scenes: a SceneSet, default: cfg's split)."""
    from tqdm import tqdm

    from pair_drive_ros.training.rl_data import (load_scene_set, load_training_scenes,
                                                 steps_for_budget)

    # -- setup: seed, device, data, model, optimizer, run folder ------------------------------
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    device = pick_device(cfg.device)
    dist = init_distributed(device)
    if cfg.scenes_per_step % dist.world_size:
        raise ValueError(f'scenes_per_step ({cfg.scenes_per_step}) must be a multiple of the '
                         f'number of processes ({dist.world_size})')
    codes = cfg.codes
    perception = trunk_perception(cfg)
    cfg = with_input_sizes(cfg, perception)
    if scenes is None:
        scenes = load_training_scenes(cfg.data_root, cfg.extra_data_roots, cfg.split,
                                      cfg.frame_stride, cfg.max_scenes, cfg.seed, cfg.workers,
                                      cfg.cache_dir or None, perception)
    total_steps = steps_for_budget(cfg.scorer_budget,
                                   cfg.scenes_per_step * calls_per_scene(cfg), cfg.total_steps)
    if val_scenes is None and cfg.val_split:
        # Seed 0, not cfg.seed: every run is validated on the same subset.
        val_scenes = load_scene_set(cfg.data_root, cfg.val_split, cfg.val_frame_stride,
                                    cfg.val_max_scenes, 0, cfg.workers,
                                    cache_dir=cfg.cache_dir or None, perception_cfg=perception)
    # Built first, right after seeding: init seed s gives the same tree as the attribution's
    # untrained control of seed s (policy.rl_branch.untrained_tree).
    torch.manual_seed(cfg.seed)
    policy, optimizer = build(cfg, device)
    broadcast_parameters(policy, dist)
    il_model = None
    if cfg.il_reference_fraction > 0 or val_scenes is not None:
        from pair_drive_ros.policy.il_planner import load_il_model
        # Transfuser only: IL-B never supplies a reference, so its PaIR results stay blind.
        il_model, _ = load_il_model(cfg.il_checkpoint, str(device), expect_model='transfuser')
        if load_perception_config(cfg.il_checkpoint) != perception:
            raise ValueError(f'il_checkpoint {cfg.il_checkpoint} reads other features than the '
                             'RL trunk (perception configs differ); its plans are computed on '
                             "the trunk's features, so use the IL checkpoint the trunk came from")
    selector = None
    if cfg.selector_checkpoint:
        from pair_drive_ros.policy.pair import load_selector
        # Frozen: the reward model of pick_credit and the validation's selected plan.
        selector = load_selector(cfg.selector_checkpoint, str(device))
        selector.requires_grad_(False)
    start, beta = 0, cfg.kl_beta
    if cfg.resume:
        ckpt = load_checkpoint(cfg.resume, expect_model=MODEL_NAME)
        policy.load_state_dict(ckpt['state_dict'])
        optimizer.load_state_dict(ckpt['optimizer'])
        start, beta = int(ckpt['step']), float(ckpt['beta'])
        LOG.info('resumed %s at step %d', cfg.resume, start)
    log = run_log(cfg.exp, cfg.seed, cfg, cfg.runs_root, dist)
    if cfg.trunk_source == 'aux' and start == 0 and cfg.trunk_pretrain_steps > 0:
        pretrain_trunk(policy, scenes, cfg, device, log, dist)
    val = {}
    if val_scenes is not None:
        val['start'] = validate(policy, val_scenes, il_model, codes, dist=dist,
                                selector=selector)
        log.scalars(start, val['start'])
        LOG.info('val before GRPO: %s', val['start'])
    # Scene choice: one stream all ranks share, so their shares of a step are disjoint. The
    # references' perturbations and the offsets: a stream per rank (rank 0's is the one-process
    # stream, which also chooses the scenes there).
    rng = np.random.default_rng(rank_seed(cfg.seed + start, dist.rank))
    scene_rng = rng if dist.world_size == 1 else np.random.default_rng(cfg.seed + start)
    gen = torch.Generator(device=device).manual_seed(rank_seed(cfg.seed + start, dist.rank))
    LOG.info('GRPO: %d scenes, group %s (G=%d), %d steps, run %s', len(scenes), cfg.group,
             len(codes), total_steps, log.run_dir)

    scorer_calls = 0     # this run's scored candidates (leaves, reference, expert)
    bar = tqdm(range(start, total_steps), desc='grpo', unit='step', initial=start,
               total=total_steps, disable=not dist.is_main)
    for step in bar:
        t0 = time.perf_counter()
        lr = cosine_lr(step, total_steps, cfg.lr, cfg.warmup_steps)
        for group in optimizer.param_groups:
            group['lr'] = lr
        sigma = linear_schedule(step, total_steps, cfg.sigma_start, cfg.sigma_end)

        # -- rollout: sample the group around the reference, score it and the reference -------
        js = shard_of(scene_rng.choice(len(scenes), cfg.scenes_per_step, replace=False), dist)
        feats, expert = scenes.batch(js, device)
        reference = training_reference(expert, feats, il_model, cfg, rng)
        context = context_of(policy, feats, cfg.train_trunk)
        old = sample_group(policy, feats, context, reference, codes, sigma, gen)
        t1 = time.perf_counter()
        parts = [old.paths, reference[:, None], expert[:, None]]
        variants = plan_variants(reference) if cfg.scores_variants else None
        if variants is not None:
            parts.append(variants)
        cands = torch.cat(parts, 1).cpu().numpy()
        scores = scenes.score(js, cands)
        scorer_calls += cands.shape[0] * cands.shape[1]
        t2 = time.perf_counter()
        reward_all = torch.as_tensor(scores.reward(cfg.reward), dtype=torch.float32,
                                     device=device)
        g = len(codes)
        rewards, ref_rewards = reward_all[:, :g], reward_all[:, g]
        variant_rewards = reward_all[:, g + 2:] if cfg.scores_variants else None
        pick = None
        if selector is not None:
            set_rewards = torch.cat([ref_rewards[:, None], rewards, variant_rewards], 1)
            pick = selector_pick(selector, deployed_set(reference, old.paths, variants), g,
                                 context if context is not None else policy.encode(feats),
                                 feats, set_rewards)
        advantages = advantages_of(cfg, rewards, ref_rewards, variant_rewards,
                                   None if pick is None else pick.credit)

        # -- GRPO update --------------------------------------------------------------------
        stats = update(policy, optimizer, feats, context, reference, codes, old, advantages,
                       sigma, beta, cfg, dist)
        stats = all_reduce_mean(stats, dist)       # every rank adapts beta on the same KL
        beta = adapt_beta(beta, stats['rl/kl'], cfg.kl_target)

        # -- logging and checkpoints ----------------------------------------------------------
        best = rewards.max(-1).values.mean().item()
        oracle = torch.maximum(rewards.max(-1).values, ref_rewards)
        means = all_reduce_mean({
            'rl/reward_mean': rewards.mean().item(), 'rl/reward_best': best,
            'rl/reward_expert': float(reward_all[:, g + 1].mean()),
            'rl/reward_ref': ref_rewards.mean().item(), 'rl/oracle': oracle.mean().item(),
            'rl/oracle_gain': (oracle - ref_rewards).mean().item(),
            'rl/spread_m': leaf_spread(old.paths, reference).mean().item(),
            'rl/adv_abs': advantages.abs().mean().item(),
            'rl/reward_std': rewards.std(-1).mean().item(),
            **variant_scalars(rewards, ref_rewards, variant_rewards),
            **pick_scalars(pick)}, dist)
        best = means['rl/reward_best']
        stats.update({**means, 'rl/beta': beta, 'rl/sigma': sigma, 'rl/lr': lr,
                      'perf/steps_per_s': 1.0 / (time.perf_counter() - t0),
                      'perf/sample_s': t1 - t0, 'perf/score_s': t2 - t1})
        log.scalars(step, stats)
        bar.set_postfix(r=f'{stats["rl/reward_mean"]:.3f}', best=f'{best:.3f}',
                        kl=f'{stats["rl/kl"]:.3f}', clip=f'{stats["rl/clip_frac"]:.2f}')
        if (step + 1) % cfg.save_every == 0:
            sync_references(scenes, dist)
            if dist.is_main:
                save(log.run_dir / 'checkpoint.pt', policy, optimizer, step + 1, beta, cfg,
                     perception=perception)
                scenes.save_references()

    if val_scenes is not None:
        val['end'] = validate(policy, val_scenes, il_model, codes, dist=dist, selector=selector)
        log.scalars(total_steps, val['end'])
        LOG.info('val after GRPO: %s', val['end'])
    scorer_calls = int(all_reduce_sum({'calls': scorer_calls}, dist)['calls'])
    info = {'train_seconds': log.elapsed_s, 'num_scenes': len(scenes), 'val': val,
            'scorer_calls': scorer_calls, 'world_size': dist.world_size}
    final = log.run_dir / 'rl_branch.pt'
    sync_references(scenes, dist)
    if dist.is_main:
        save(log.run_dir / 'checkpoint.pt', policy, optimizer, total_steps, beta, cfg, info,
             perception)
        save(final, policy, None, total_steps, beta, cfg, info, perception)
        scenes.save_references()
        export_copy(final, cfg.out)
        LOG.info('RL branch saved to %s (%.0f s)', final, log.elapsed_s)
    log.close()
    finish_distributed(dist)
    return final


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI flags of `pair-drive train rl`."""
    add_trainer_arguments(parser, DEFAULT_CONFIG)


def run(args: argparse.Namespace) -> int:
    """Entry point of `pair-drive train rl`."""
    return run_trainer(args, RLTrainConfig, main)
