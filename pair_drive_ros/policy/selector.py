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
Candidate selector: a light reward model (the paper's RWM, paper.md 1 and 6.6).

The scene context is either the RL branch's context tokens (context_source 'rl_branch', the
default: no second trunk at inference, the selector is trained on the final RL branch's frozen
context) or the selector's own perception trunk ('own'). Nothing is shared with the IL branch. Each
candidate (8 x 3 ego-frame poses, flattened and normalised) is embedded by an MLP; a transformer
decoder lets the candidate queries attend to each other and to the scene tokens; a head predicts
the PDM sub-scores and the overall PDMS / EPDMS (sigmoid, each in [0, 1]). The executed plan is
the candidate with the best predicted `select_by` score. The IL trajectory is always one of the
candidates, so the selector can fall back to plain IL.

With `raster_features` the candidate embedding also reads the perception rasters *along the
candidate*: the LiDAR BEV (ground / obstacle counts; road-edge barriers and vehicles show in the
obstacle channel) and the route raster, plain and blurred, sampled at the centre and the four
corners of the ego box at each of the 8 poses. Drivable-area and collision verdicts are local
geometric questions that a few pooled scene tokens answer poorly; the samples answer them directly
and cost one grid_sample per frame.
"""

from dataclasses import dataclass, field

import torch
from torch import nn
import torch.nn.functional as F  # noqa: N812

from pair_drive_ros.core.trajectory import POSE_DT_S
from pair_drive_ros.perception.config import PerceptionConfig
from pair_drive_ros.policy.backbone import BackboneConfig, PerceptionTrunk
from pair_drive_ros.policy.tree import step_lengths

MODEL_NAME = 'pair_selector'
# Predicted targets, in order (names of scoring.Metric rows, then the aggregates).
TARGETS = ('NC', 'DAC', 'DDC', 'EP', 'TTC', 'C', 'LK', 'HC', 'pdms', 'epdms')
SELECT_BY = ('pdms', 'epdms', 'composite')
_GRID = PerceptionConfig()
# Raster channels sampled along a candidate: LiDAR ground, LiDAR obstacle, route, route blurred
# over 5 and 11 cells (how far the route is), obstacle dilated by one cell (near misses).
RASTER_CHANNELS = 6
BOX_POINTS = 5      # centre + 4 corners


@dataclass(frozen=True)
class SelectorConfig:
    """Selector sizes and the selection rule."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    context_source: str = 'rl_branch'   # 'rl_branch' (its context tokens) or 'own' (a trunk)
    layers: int = 2
    num_heads: int = 4
    pose_scale_m: float = 20.0
    select_by: str = 'pdms'      # 'pdms', 'epdms' or 'composite' (NC DAC (5 EP + 5 TTC + 2 C)/12)
    # Keep candidate 0 (the IL plan) unless the best beats it by this predicted margin; tuned on
    # the validation split after training (train_selector).
    fallback_margin: float = 0.0
    # Sample the BEV rasters along each candidate (off in checkpoints from before it existed).
    raster_features: bool = False
    # With raster_features, also sample this many past LiDAR sweeps (perception history_sweeps)
    # along each candidate, so the ranking sees where the agents were.
    raster_past_sweeps: int = 0
    # The candidate set this selector was trained on: [IL plan, tree leaves] and, with
    # plan_variants, also the IL plan's whole-trajectory speed x lateral variants.
    plan_variants: bool = False
    # Braking candidates after those: the IL plan braked to a standstill along its own path at
    # each of these decelerations [m/s^2] (empty: none). The speed variants scale a plan that
    # creeps into a junction but cannot stop it short of the crossing traffic.
    stop_decels_mps2: tuple = ()
    # Safety gate (closed loop): a candidate may replace the IL plan only if its predicted
    # safety_metrics are each at least the IL plan's minus this tolerance (negative: no gate).
    safety_tolerance: float = -1.0
    safety_metrics: tuple = ('NC', 'TTC')   # of TARGETS; DAC adds the drivable area
    # Progress gate (closed loop): a candidate may replace the IL plan only if its path over
    # the horizon is at most this many metres longer than the IL plan's (negative: no gate):
    # the selector may move a cautious IL plan sideways or slow it, not speed it up. On val it
    # held PaIR to the IL plan's speed without fewer collisions (docs/RESULTS.md).
    progress_tolerance_m: float = -1.0
    box_length_m: float = 5.0
    box_width_m: float = 2.0
    # The BEV grid of the features (perception.PerceptionConfig): front edge, half width and
    # cell size [m].
    bev_x_max_m: float = _GRID.x_max_m
    bev_y_extent_m: float = _GRID.y_extent_m
    bev_resolution_m: float = _GRID.resolution_m

    def __post_init__(self) -> None:
        if self.context_source not in ('rl_branch', 'own'):
            raise ValueError(f'context_source must be rl_branch or own, got '
                             f'{self.context_source!r}')
        if self.select_by not in SELECT_BY:
            raise ValueError(f'select_by must be one of {SELECT_BY}, got {self.select_by!r}')
        object.__setattr__(self, 'safety_metrics', tuple(self.safety_metrics))   # frozen
        object.__setattr__(self, 'stop_decels_mps2',
                           tuple(float(d) for d in self.stop_decels_mps2))
        if any(not d > 0 for d in self.stop_decels_mps2):
            raise ValueError(f'stop_decels_mps2 must be positive, got '
                             f'{list(self.stop_decels_mps2)!r}')
        unknown = [m for m in self.safety_metrics if m not in TARGETS]
        if unknown or not self.safety_metrics:
            raise ValueError(f'safety_metrics must be names of {TARGETS}, got '
                             f'{list(self.safety_metrics)!r}')


class Selector(nn.Module):
    """Scene features + K candidates -> (B, K, len(TARGETS)) predicted scores in [0, 1]."""

    model_name = MODEL_NAME

    def __init__(self, cfg: SelectorConfig = SelectorConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.trunk = PerceptionTrunk(cfg.backbone) if cfg.context_source == 'own' else None
        d = cfg.backbone.d_model
        in_dim = 8 * 4 + (8 * BOX_POINTS * (RASTER_CHANNELS + cfg.raster_past_sweeps)
                          if cfg.raster_features else 0)
        self.candidate_embed = nn.Sequential(nn.Linear(in_dim, 2 * d), nn.ReLU(),
                                             nn.Linear(2 * d, d))
        layer = nn.TransformerDecoderLayer(d, cfg.num_heads, 4 * d, 0.0, batch_first=True,
                                           norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, cfg.layers)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.ReLU(),
                                  nn.Linear(d, len(TARGETS)))

    def encode_candidates(self, candidates: torch.Tensor, batch: dict | None = None
                          ) -> torch.Tensor:
        """
        (B, K, d) embeddings of (B, K, 8, 3) ego-frame candidates.

        batch: the feature tensors ('lidar_bev', 'route_raster'), needed with raster_features.
        """
        xy = candidates[..., :2] / self.cfg.pose_scale_m
        yaw = candidates[..., 2:]
        x = torch.cat([xy, torch.cos(yaw), torch.sin(yaw)], -1).flatten(-2)
        if self.cfg.raster_features:
            if batch is None:
                raise ValueError('this selector samples the BEV rasters: pass the feature batch')
            x = torch.cat([x, raster_samples(candidates, batch['lidar_bev'],
                                             batch['route_raster'], self.cfg)], -1)
        return self.candidate_embed(x)

    def forward(self, candidates: torch.Tensor, context: torch.Tensor | None = None,
                batch: dict | None = None) -> torch.Tensor:
        """
        Logits (B, K, len(TARGETS)) of candidates (B, K, 8, 3); sigmoid gives the scores.

        context: (B, N, d) RL-branch context tokens (context_source 'rl_branch'); batch: the
        feature batch (context_source 'own', or raster_features).
        """
        if self.trunk is not None:
            if batch is None:
                raise ValueError('this selector has its own trunk: pass the feature batch')
            out = self.trunk(batch)
            context = torch.cat([out['memory'], out['agent_queries']], 1)
        elif context is None:
            raise ValueError('this selector reads the RL branch context: pass context')
        q = self.encode_candidates(candidates.detach(), batch)
        return self.head(self.decoder(q, context.detach()))

    def selection_score(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, K) score the selector maximises."""
        p = torch.sigmoid(logits)
        if self.cfg.select_by == 'composite':
            i = {name: k for k, name in enumerate(TARGETS)}
            return p[..., i['NC']] * p[..., i['DAC']] * (
                5 * p[..., i['EP']] + 5 * p[..., i['TTC']] + 2 * p[..., i['C']]) / 12.0
        return p[..., TARGETS.index(self.cfg.select_by)]

    @torch.no_grad()
    def select(self, candidates: torch.Tensor, context: torch.Tensor | None = None,
               batch: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(best index (B,), selection scores (B, K)); index 0 (IL) wins ties within margin."""
        pick_from, score = self.eligible_scores(candidates, context, batch)
        return pick_with_margin(pick_from, self.cfg.fallback_margin), score

    @torch.no_grad()
    def eligible_scores(self, candidates: torch.Tensor, context: torch.Tensor | None = None,
                        batch: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """
        (scores the pick maximises (B, K), selection scores (B, K)).

        The first are the selection scores with -1 where a guard (safety_tolerance,
        progress_tolerance_m) rules a candidate out; `select` picks from them with the margin.
        """
        logits = self.forward(candidates, context, batch)
        score = self.selection_score(logits)
        pick_from = score
        if self.cfg.safety_tolerance >= 0:
            p = torch.sigmoid(logits)
            safe = torch.ones_like(score, dtype=torch.bool)
            for name in self.cfg.safety_metrics:
                q = p[..., TARGETS.index(name)]
                safe &= q >= q[:, :1] - self.cfg.safety_tolerance
            pick_from = torch.where(safe, score, torch.full_like(score, -1.0))
        if self.cfg.progress_tolerance_m >= 0:
            length = path_length(candidates)
            ok = length <= length[:, :1] + self.cfg.progress_tolerance_m
            pick_from = torch.where(ok, pick_from, torch.full_like(score, -1.0))
        return pick_from, score


def path_length(candidates: torch.Tensor) -> torch.Tensor:
    """(B, K) length [m] of (B, K, T, 3) ego-frame paths, from the ego (the origin)."""
    return step_lengths(candidates).sum(-1)


def candidates_per_reference(group: str, plan_variants: bool, stops: int = 0) -> int:
    """
    Return K per reference plan.

    K counts the plan, its tree leaves, (optionally) its variants and its `stops` braking
    candidates.
    """
    from pair_drive_ros.policy.tree import resolve_group

    return 1 + len(resolve_group(group)) + (NUM_PLAN_VARIANTS if plan_variants else 0) + stops


def raster_samples(candidates: torch.Tensor, lidar_bev: torch.Tensor,
                   route_raster: torch.Tensor, cfg: SelectorConfig) -> torch.Tensor:
    """
    (B, K, 8 * BOX_POINTS * (RASTER_CHANNELS + past)) raster values along (B, K, 8, 3) poses.

    lidar_bev (B, 2 + past sweeps, H, W) and route_raster (B, 1, H, W) on the perception BEV
    grid (row 0 the front edge, column 0 the left edge). Points outside the grid read 0. The
    first cfg.raster_past_sweeps past sweeps are sampled after the current ones.
    """
    lidar = lidar_bev[:, :2].float()     # the current sweep; past sweeps follow it
    route = route_raster.float()
    past = lidar_bev[:, 2:2 + cfg.raster_past_sweeps].float()
    if past.shape[1] != cfg.raster_past_sweeps:
        raise ValueError(f'raster_past_sweeps {cfg.raster_past_sweeps}: the features hold '
                         f'{past.shape[1]} past sweeps')
    maps = torch.cat([lidar, route, F.avg_pool2d(route, 5, 1, 2, count_include_pad=False),
                      F.avg_pool2d(route, 11, 1, 5, count_include_pad=False),
                      F.max_pool2d(lidar[:, 1:2], 3, 1, 1), past], 1)
    b, k, n = candidates.shape[:3]
    half_l, half_w = cfg.box_length_m / 2, cfg.box_width_m / 2
    local = candidates.new_tensor([[0.0, 0.0], [half_l, half_w], [half_l, -half_w],
                                   [-half_l, half_w], [-half_l, -half_w]])
    cos = torch.cos(candidates[..., 2:3])
    sin = torch.sin(candidates[..., 2:3])
    px = candidates[..., 0:1] + cos * local[:, 0] - sin * local[:, 1]     # (B, K, 8, P)
    py = candidates[..., 1:2] + sin * local[:, 0] + cos * local[:, 1]
    height, width = maps.shape[-2:]
    # grid_sample (align_corners=False): -1 / +1 are the outer edges of the first / last cell.
    gx = (cfg.bev_y_extent_m - py) / (cfg.bev_resolution_m * width) * 2 - 1
    gy = (cfg.bev_x_max_m - px) / (cfg.bev_resolution_m * height) * 2 - 1
    grid = torch.stack([gx, gy], -1).reshape(b, k * n * BOX_POINTS, 1, 2)
    values = F.grid_sample(maps, grid, mode='bilinear', padding_mode='zeros',
                           align_corners=False)                            # (B, C, K*8*P, 1)
    values = values.reshape(b, maps.shape[1], k, n * BOX_POINTS).permute(0, 2, 3, 1)
    return values.reshape(b, k, -1)


# Whole-trajectory variants of a plan: xy scaled by a speed factor, then shifted along the ego y
# axis by a lateral offset ramping up over the horizon (the identity pair is the plan itself).
VARIANT_SPEEDS = (0.8, 0.9, 1.0, 1.1, 1.2)
VARIANT_LATERAL_M = (-1.0, 0.0, 1.0)
NUM_PLAN_VARIANTS = len(VARIANT_SPEEDS) * len(VARIANT_LATERAL_M) - 1    # without the identity


def plan_variants(plans: torch.Tensor, keep_identity: bool = False) -> torch.Tensor:
    """
    (B, V, 8, 3) speed x lateral variants of (B, 8, 3) ego-frame plans (headings kept).

    V = 15 with keep_identity, else 14 (the unchanged plan left out). The tree moves one
    waypoint per level and translates the tail, so it cannot stretch or bend a whole plan; these
    fixed variants can (a plan too fast for a curve, or offset from the lane centre).
    """
    ramp = torch.linspace(1.0 / plans.shape[1], 1.0, plans.shape[1], dtype=plans.dtype,
                          device=plans.device)
    out = []
    for speed in VARIANT_SPEEDS:
        for lateral in VARIANT_LATERAL_M:
            if not keep_identity and speed == 1.0 and lateral == 0.0:
                continue
            v = plans.clone()
            v[..., :2] = v[..., :2] * speed
            v[..., 1] = v[..., 1] + lateral * ramp
            out.append(v)
    return torch.stack(out, 1)


def stop_candidates(plans: torch.Tensor, decels_mps2: tuple) -> torch.Tensor:
    """
    (B, S, T, 3): (B, T, 3) ego-frame plans braked to a standstill along their own paths.

    One candidate per deceleration [m/s^2], from the plan's speed over its first step (what the
    tracker starts from), at the plan's pose times; the heading follows the path.
    """
    t = plans.shape[1]
    xy = F.pad(plans[..., :2], (0, 0, 1, 0))             # (B, T + 1, 2) from the ego (origin)
    yaw = F.pad(plans[..., 2], (1, 0))
    seg = step_lengths(plans)                            # (B, T)
    arc = F.pad(seg.cumsum(-1), (1, 0))                  # (B, T + 1) length along the path
    v0 = seg[:, :1] / POSE_DT_S
    times = POSE_DT_S * torch.arange(1, t + 1, dtype=plans.dtype, device=plans.device)
    out = []
    for decel in decels_mps2:
        tc = torch.minimum(times[None], v0 / decel)
        dist = torch.minimum(v0 * tc - 0.5 * decel * tc ** 2, arc[:, -1:])
        end = torch.searchsorted(arc.contiguous(), dist.contiguous(), right=True).clamp(1, t)
        s0, s1 = arc.gather(1, end - 1), arc.gather(1, end)
        w = ((dist - s0) / (s1 - s0).clamp_min(1e-6)).clamp(0.0, 1.0)
        p0 = xy.gather(1, (end - 1)[..., None].expand(-1, -1, 2))
        p1 = xy.gather(1, end[..., None].expand(-1, -1, 2))
        y0, y1 = yaw.gather(1, end - 1), yaw.gather(1, end)
        out.append(torch.cat([p0 + w[..., None] * (p1 - p0), (y0 + w * (y1 - y0))[..., None]],
                             -1))
    return torch.stack(out, 1)


def reference_alternatives(plans: torch.Tensor, variants: bool, stop_decels_mps2: tuple
                           ) -> list:
    """
    Return the non-tree candidates around (B, 8, 3) reference plans, in the set's order.

    With `variants` their NUM_PLAN_VARIANTS speed x lateral variants, then their braking
    candidates (stop_candidates); a list of (B, V, 8, 3) blocks, empty without either.
    """
    parts = [plan_variants(plans)] if variants else []
    if stop_decels_mps2:
        parts.append(stop_candidates(plans, stop_decels_mps2))
    return parts


def pick_with_margin(score: torch.Tensor, margin: float) -> torch.Tensor:
    """Argmax over (B, K) scores, but candidate 0 unless the best beats it by `margin`."""
    best = score.argmax(-1)
    gain = score.gather(-1, best[:, None])[:, 0] - score[:, 0]
    return torch.where(gain > margin, best, torch.zeros_like(best))


def selector_loss(logits: torch.Tensor, targets: torch.Tensor, rank_weight: float = 1.0,
                  rank_temperature: float = 0.05, select_index: int = TARGETS.index('pdms')
                  ) -> dict:
    """
    BCE on every target (soft labels in [0, 1]) + listwise ranking cross-entropy.

    The ranking term pushes the softmax over candidates of the `select_index` logit towards
    softmax(true score / rank_temperature): choosing the best matters more than calibration.
    """
    bce = F.binary_cross_entropy_with_logits(logits, targets)
    pred = logits[..., select_index]
    target = torch.softmax(targets[..., select_index] / rank_temperature, -1)
    rank = -(target * torch.log_softmax(pred, -1)).sum(-1).mean()
    return {'loss': bce + rank_weight * rank, 'bce': bce, 'rank': rank}
