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
GRPO building blocks (paper.md section 2), pure functions on tensors.

J = 1/G sum_i [min(rho_i A_i, clip(rho_i, 1 - eps, 1 + eps) A_i)] - beta KL(pi_theta || pi_old),
rho_i = pi_theta(tau_i) / pi_old(tau_i), A_i = group-normalised reward. We minimise -J.

PaIR deploys the best candidate of [reference, leaves], not the group mean, so two other
advantages exist (docs/RL_DESIGN.md, "Objective"): `reference_advantages` credits a leaf for
beating the reference it grew from, and `set_credit` (leave-one-out) for raising the best score
of the whole candidate set. PaIR deploys what its selector picks, not the set's best:
`pick_credit` credits the leaf the selector picks by how much better (or worse) the deployed
plan is with it than without it.
"""

from dataclasses import dataclass
import math

import torch

from pair_drive_ros.policy.selector import pick_with_margin

RULED_OUT = -2.0  # a pick score below any a guard leaves (-1): the candidate is never picked


def group_advantages(rewards: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """
    Normalise (scenes, group) rewards within each scene's group: (r - mean) / (std + eps).

    A group whose rewards are all equal gets zero advantages (it carries no preference).
    """
    if rewards.ndim != 2:
        raise ValueError(f'rewards must have shape (scenes, group), got {tuple(rewards.shape)}')
    if rewards.shape[1] < 2:
        return torch.zeros_like(rewards)
    mean = rewards.mean(-1, keepdim=True)
    std = rewards.std(-1, keepdim=True)
    return (rewards - mean) / (std + eps)


def reference_advantages(rewards: torch.Tensor, ref_rewards: torch.Tensor,
                         eps: float = 1e-6) -> torch.Tensor:
    """
    (r_i - r_ref) / (std of the group + eps): improve on the reference, not on the group mean.

    rewards: (S, G) leaf rewards; ref_rewards: (S,) the reference plan's reward on each scene.
    A leaf that only matches the reference gets 0. A group without spread gets 0 everywhere:
    with every leaf equal there is nothing to tell the offsets apart.
    """
    if rewards.ndim != 2 or ref_rewards.shape != rewards.shape[:1]:
        raise ValueError(f'rewards (S, G) and ref_rewards (S,) expected, got '
                         f'{tuple(rewards.shape)} and {tuple(ref_rewards.shape)}')
    std = rewards.std(-1, keepdim=True) if rewards.shape[1] > 1 else torch.zeros_like(rewards)
    diff = rewards - ref_rewards[:, None]
    return torch.where(std > eps, diff / (std + eps), torch.zeros_like(diff))


def set_credit(rewards: torch.Tensor, ref_rewards: torch.Tensor) -> torch.Tensor:
    """
    Leave-one-out credit of each leaf to the best of the set {reference} + leaves.

    credit_i = max(set) - max(set without leaf i) = max(0, r_i - max(r_ref, max_{j != i} r_j)):
    only a leaf that is strictly the best of the set earns credit, by its margin. (S, G).
    """
    if rewards.ndim != 2 or ref_rewards.shape != rewards.shape[:1]:
        raise ValueError(f'rewards (S, G) and ref_rewards (S,) expected, got '
                         f'{tuple(rewards.shape)} and {tuple(ref_rewards.shape)}')
    g = rewards.shape[1]
    if g == 1:
        others = ref_rewards[:, None]
    else:
        top = rewards.topk(2, -1).values                      # (S, 2)
        first = rewards.argmax(-1, keepdim=True)
        is_first = torch.zeros_like(rewards, dtype=torch.bool).scatter_(-1, first, True)
        others = torch.where(is_first, top[:, 1:2], top[:, :1])
        others = torch.maximum(others, ref_rewards[:, None])
    return (rewards - others).clamp(min=0.0)


@dataclass
class PickOutcome:
    """The selector's pick over a candidate set and what it credits (tensors, one per scene)."""

    credit: torch.Tensor         # (S, G) r(pick) - r(pick without the picked leaf), else 0
    picked: torch.Tensor         # (S,) index of the pick in the set
    picked_leaf: torch.Tensor    # (S,) bool: the pick is one of the leaves
    reward: torch.Tensor         # (S,) true reward of the pick
    reward_without: torch.Tensor  # (S,) true reward of the pick with every leaf ruled out


def pick_credit(eligible: torch.Tensor, set_rewards: torch.Tensor, leaves: slice,
                margin: float) -> PickOutcome:
    """
    Leave-one-out credit of each leaf to the plan a selector deploys.

    eligible: (S, K) the scores the selector picks from (Selector.eligible_scores: -1 where a
    guard rules a candidate out); set_rewards: (S, K) the true rewards of the same candidates;
    leaves: where the G leaves sit in the set (candidate 0 is the reference). The pick is
    `pick_with_margin(eligible, margin)`; without leaf i only the picked leaf changes the pick,
    so credit_i = r(pick) - r(pick among the rest) for the picked leaf and 0 for the others. It
    is negative where the selector prefers a leaf that scores worse than its next choice: the
    tree learns to offer leaves the selector ranks right, not only good ones. The rest are
    scored as they were (the selector attends over the whole set; re-scoring each subset would
    cost a selector pass per leaf).
    """
    if eligible.shape != set_rewards.shape or eligible.ndim != 2:
        raise ValueError(f'eligible and set_rewards must both be (S, K), got '
                         f'{tuple(eligible.shape)} and {tuple(set_rewards.shape)}')

    def reward_of_pick(scores: torch.Tensor) -> torch.Tensor:
        return set_rewards.gather(-1, pick_with_margin(scores, margin)[:, None])[:, 0]

    picked = pick_with_margin(eligible, margin)
    reward = set_rewards.gather(-1, picked[:, None])[:, 0]
    alternative = reward_of_pick(eligible.scatter(-1, picked[:, None], RULED_OUT))
    no_leaves = eligible.clone()
    no_leaves[:, leaves] = RULED_OUT
    reward_without = reward_of_pick(no_leaves)
    g = len(range(*leaves.indices(eligible.shape[1])))
    credit = torch.zeros(eligible.shape[0], g, dtype=set_rewards.dtype,
                         device=set_rewards.device)
    leaf = picked - leaves.start
    is_leaf = (leaf >= 0) & (leaf < g)
    rows = torch.nonzero(is_leaf)[:, 0]
    credit[rows, leaf[rows]] = (reward - alternative)[rows]
    return PickOutcome(credit, picked, is_leaf, reward, reward_without)


@dataclass
class GrpoStats:
    """Diagnostics of one GRPO loss evaluation (floats)."""

    policy_loss: float
    kl: float
    clip_frac: float
    ratio_mean: float
    approx_kl: float

    def as_dict(self, prefix: str = 'rl/') -> dict:
        """Scalars with a TensorBoard prefix."""
        return {f'{prefix}{k}': v for k, v in self.__dict__.items()}


def grpo_loss(log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor,
              kl: torch.Tensor | float = 0.0, clip_eps: float = 0.2, beta: float = 0.0,
              max_log_ratio: float = 20.0) -> tuple[torch.Tensor, GrpoStats]:
    """
    Clipped-ratio GRPO loss (to minimise) over (scenes, group) samples.

    log_prob: log pi_theta (with grad); old_log_prob: log pi_old (no grad); advantages: (S, G);
    kl: per-scene KL(pi_theta || pi_old) (S,) or a scalar. The log ratio is clamped at
    +-max_log_ratio only to keep exp finite; the clip does the real limiting.
    """
    log_ratio = (log_prob - old_log_prob.detach()).clamp(-max_log_ratio, max_log_ratio)
    ratio = log_ratio.exp()
    adv = advantages.detach()
    unclipped = ratio * adv
    clipped = ratio.clamp(1.0 - clip_eps, 1.0 + clip_eps) * adv
    policy_loss = -torch.minimum(unclipped, clipped).mean()
    kl_mean = kl.mean() if torch.is_tensor(kl) else torch.tensor(float(kl))
    loss = policy_loss + beta * kl_mean
    with torch.no_grad():
        clip_frac = ((ratio - 1.0).abs() > clip_eps).float().mean().item()
        # Schulman's k3 estimator of KL(pi_old || pi_theta) from the samples (diagnostic).
        approx_kl = ((ratio - 1.0) - log_ratio).mean().item()
    return loss, GrpoStats(policy_loss.item(), float(kl_mean.detach()), clip_frac,
                           ratio.mean().item(), approx_kl)


def adapt_beta(beta: float, kl: float, target: float, factor: float = 1.5,
               beta_min: float = 1e-4, beta_max: float = 10.0) -> float:
    """
    Update the "dynamic" KL weight with PPO's adaptive rule.

    Double above factor x target, halve below target / factor, clamp to [beta_min, beta_max].
    """
    if target <= 0:
        return beta
    if kl > factor * target:
        beta *= 2.0
    elif kl < target / factor:
        beta /= 2.0
    return float(min(max(beta, beta_min), beta_max))


def cosine_lr(step: int, total_steps: int, lr: float, warmup_steps: int = 0,
              min_ratio: float = 0.05) -> float:
    """Learning rate with linear warm-up then cosine decay to min_ratio * lr."""
    if warmup_steps > 0 and step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, max(0.0, (step - warmup_steps) / span))
    return lr * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def linear_schedule(step: int, total_steps: int, start: float, end: float) -> float:
    """Linear interpolation from start to end over total_steps (the offset sigma schedule)."""
    frac = min(1.0, max(0.0, step / max(1, total_steps - 1)))
    return start + (end - start) * frac
