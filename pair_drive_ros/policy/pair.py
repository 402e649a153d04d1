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
PaIR-Drive at inference: IL plan -> RL tree around it -> selector picks (paper.md 1).

The three parts are independent modules with separate weights. The IL planner is any
AbstractPlanner-compatible IL planner; its plan is the tree's reference (a detached numpy array,
so no gradient can cross). Candidates are [IL plan, tree leaves ...] and, when the selector was
trained with them (SelectorConfig.plan_variants), the IL plan's whole-trajectory speed x lateral
variants; index 0 is always the IL plan, so the selector can fall back to plain IL. Swapping the
IL planner needs no retraining.
"""

from dataclasses import replace
import logging
from pathlib import Path
import time

import numpy as np
import torch

from pair_drive_ros.core.config import config_from_dict
from pair_drive_ros.core.se2 import inverse_transform_points, transform_points
from pair_drive_ros.core.trajectory import POSE_DT_S, Trajectory
from pair_drive_ros.core.features import Features
from pair_drive_ros.perception.config import (feature_subset, feature_union, PerceptionConfig,
                                              PerceptionConfigError)
from pair_drive_ros.policy.backbone import backbone_inputs
from pair_drive_ros.policy.base import AbstractPlanner, PlannerInput, PlanOutput
from pair_drive_ros.policy.checkpoint import CheckpointError, load_checkpoint, load_state
from pair_drive_ros.policy.il_planner import features_to_batch
from pair_drive_ros.policy.rl_branch import MODEL_NAME as RL_NAME, RLBranch, RLBranchConfig
from pair_drive_ros.policy.selector import (candidates_per_reference, MODEL_NAME as SEL_NAME,
                                            pick_with_margin, reference_alternatives,
                                            Selector, SelectorConfig)

LOG = logging.getLogger(__name__)

# A previous plan older than this is not used for the consistency term (a new episode, a clock
# jump, or dropped frames) [s].
MAX_PREVIOUS_PLAN_AGE_S = 1.0


def load_rl_branch(path: str | Path, device: str = 'cpu') -> RLBranch:
    """RL branch in eval mode from a checkpoint."""
    ckpt = load_checkpoint(path, expect_model=RL_NAME)
    model = RLBranch(config_from_dict(RLBranchConfig, ckpt.get('model_config')))
    load_state(model, ckpt, f'RL checkpoint {path}')
    # The features its trunk was trained on (an IL planner may read others: shared_features).
    model.perception_config = PerceptionConfig.from_dict(ckpt.get('perception_config') or None)
    return model.to(device).eval()


def load_selector(path: str | Path, device: str = 'cpu') -> Selector:
    """Selector in eval mode from a checkpoint."""
    ckpt = load_checkpoint(path, expect_model=SEL_NAME)
    model = Selector(config_from_dict(SelectorConfig, ckpt.get('model_config')))
    load_state(model, ckpt, f'selector checkpoint {path}')
    return model.to(device).eval()


def check_same_features(il_planner: AbstractPlanner, rl_branch: RLBranch) -> None:
    """
    Raise CheckpointError unless the RL trunk reads the IL planner's features.

    Training a selector, and the attribution's shared frames, need one feature set for every
    part: an IL planner and the RL trunk trained on the same features (e.g. both with or both
    without past sweeps).
    """
    perception = getattr(il_planner, 'perception_config', None)
    if perception is None:
        return
    want = backbone_inputs(perception)
    have = rl_branch.cfg.backbone
    if (have.lidar_channels, have.status_dim) != (want['lidar_channels'], want['status_dim']):
        raise CheckpointError(
            f'the RL branch reads {have.lidar_channels} LiDAR channels and {have.status_dim} '
            f'status entries, the IL planner {want["lidar_channels"]} and '
            f'{want["status_dim"]}: train them on the same perception config (history_sweeps, '
            'road_speed)')


def shared_features(il_planner: AbstractPlanner, rl_branch: RLBranch
                    ) -> tuple[PerceptionConfig | None, tuple | None, tuple | None]:
    """
    Return the features built for a frame and where the IL planner's and RL trunk's parts sit.

    (config, il_index, rl_index); an index is None where that part reads the whole features,
    else its (LiDAR channels, status entries) (`perception.config.feature_subset`). Either may
    have been trained on more (past sweeps, road speed): the features are built for the union
    of the two (`perception.config.feature_union`) and each reads its part, so an IL planner
    plugs in whatever the RL branch was trained on. Raises CheckpointError where the two read
    features no frame can give both (other grids or settings).
    """
    il = getattr(il_planner, 'perception_config', None)
    rl = getattr(rl_branch, 'perception_config', None)
    if il is None or rl is None or il == rl:
        check_same_features(il_planner, rl_branch)
        return il, None, None
    try:
        union = feature_union(il, rl)
        il_index = None if union == il else feature_subset(union, il)
        rl_index = None if union == rl else feature_subset(union, rl)
    except PerceptionConfigError as e:
        raise CheckpointError(f'the IL planner cannot plug into this RL branch: {e}') from e
    return union, il_index, rl_index


def rl_features(tensors: dict, index) -> dict:
    """Batched features (features_to_batch) restricted to one part (see shared_features)."""
    if index is None:
        return tensors
    lidar, status = index
    return {**tensors, 'lidar_bev': tensors['lidar_bev'][:, list(lidar)],
            'ego_status': tensors['ego_status'][:, list(status)]}


def selector_batch(cfg: SelectorConfig, built: dict, part: dict) -> dict:
    """
    Return the feature batch a selector (cfg) reads: the RL trunk's part, every part's sweeps.

    A selector without a trunk of its own reads features only for its raster samples along the
    candidates (`raster_past_sweeps`), so it may sample past sweeps that only the IL planner
    reads; the current sweep comes first in every part (perception.config.feature_subset).
    """
    if cfg.context_source == 'own':
        return part
    return {**part, 'lidar_bev': built['lidar_bev']}


def part_of_features(features: Features, index) -> Features:
    """One frame's Features restricted to one part (see shared_features)."""
    if index is None:
        return features
    lidar, status = index
    return replace(features, lidar_bev=features.lidar_bev[list(lidar)],
                   ego_status=np.asarray(features.ego_status)[list(status)])


class FeaturePart(AbstractPlanner):
    """
    A planner fed features built for more than it was trained on: it reads its part.

    E.g. IL-B (no past sweeps) in a PaIR whose RL branch reads them, or beside IL-A motion in
    one attribution report: every part plans from the same frame's features.
    """

    def __init__(self, planner: AbstractPlanner, features: PerceptionConfig) -> None:
        own = getattr(planner, 'perception_config', None) or PerceptionConfig()
        try:
            self._index = None if own == features else feature_subset(features, own)
        except PerceptionConfigError as e:
            raise CheckpointError(f'{getattr(planner, "name", "planner")}: {e}') from e
        self.planner = planner
        self.name = getattr(planner, 'name', 'il')
        self.perception_config = features

    def reset(self) -> None:
        """Reset the wrapped planner."""
        self.planner.reset()

    def compute_plans(self, batch: list[PlannerInput]) -> list[PlanOutput]:
        """Plan from the wrapped planner's part of each frame's features."""
        if self._index is not None:
            batch = [replace(b, features=part_of_features(b.features, self._index))
                     for b in batch]
        return self.planner.compute_plans(batch)

    def compute_plan(self, inputs: PlannerInput) -> PlanOutput:
        """Plan for one frame."""
        return self.compute_plans([inputs])[0]


class PaIRPlanner(AbstractPlanner):
    """IL planner + RL tree branch + selector (or an oracle scorer, for upper bounds)."""

    name = 'pair'

    def __init__(self, il_planner: AbstractPlanner, rl_branch: RLBranch,
                 selector: Selector | None, codes='15', device: str = 'cpu',
                 consistency_weight: float = 0.0, variants: bool | None = None) -> None:
        """
        Compose the three parts.

        consistency_weight: predicted-score penalty per metre of mean distance to the plan
        executed at the previous frame (closed loop; 0 disables it). Replanning picks from
        fresh candidates each frame, and switching between them makes the driven path jerky.
        variants: add the IL plan's speed x lateral variants to the candidates (None: as the
        selector was trained, SelectorConfig.plan_variants; without a selector, no).
        """
        self._features, il_index, self._rl_index = shared_features(il_planner, rl_branch)
        # An IL planner trained on fewer features than are built reads its part of them.
        self.il_planner = (il_planner if il_index is None
                           else FeaturePart(il_planner, self._features))
        self.consistency_weight = float(consistency_weight)
        self._previous = None     # (stamp [s], (8, 2) map-frame xy) of the last executed plan
        self.device = torch.device(device)
        self.rl_branch = rl_branch.to(self.device).eval()
        self.selector = None if selector is None else selector.to(self.device).eval()
        self.codes = codes
        self.il_name = getattr(il_planner, 'name', 'il')
        if variants is None:
            variants = selector is not None and selector.cfg.plan_variants
        self.variants = bool(variants)

    @property
    def stop_decels(self) -> tuple:
        """Decelerations of the braking candidates (SelectorConfig.stop_decels_mps2)."""
        return () if self.selector is None else self.selector.cfg.stop_decels_mps2

    @property
    def perception_config(self):
        """Return the features built for a frame (the IL planner and the trunk read a part)."""
        return self._features

    @classmethod
    def from_checkpoints(cls, il_checkpoint=None, rl_checkpoint=None, selector_checkpoint=None,
                         device: str = 'cpu', il_name: str = 'transfuser', codes='15',
                         consistency_weight: float = 0.0,
                         safety_tolerance: float | None = None,
                         safety_metrics: list | None = None,
                         fallback_margin: float | None = None,
                         select_by: str | None = None,
                         progress_tolerance_m: float | None = None,
                         stop_decels_mps2: list | None = None) -> 'PaIRPlanner':
        """
        Build from checkpoints (None: the shipped ones in models/).

        il_checkpoint: a Transfuser or DiffusionDrive checkpoint (its own model name decides).
        safety_tolerance: replaces the selector checkpoint's guard tolerance (SelectorConfig;
        negative: off); safety_metrics: the predicted sub-scores it checks (e.g. NC, TTC, DAC);
        fallback_margin: the predicted margin a candidate must beat the IL plan by; select_by:
        the predicted score it ranks by (selector.SELECT_BY); progress_tolerance_m: how much
        longer than the IL plan's a replacing candidate's path may be (negative: any);
        stop_decels_mps2: braking candidates added to the set (SelectorConfig); None keeps the
        checkpoint's.
        """
        from pair_drive_ros.policy.factory import default_checkpoint
        from pair_drive_ros.policy.il_planner import load_il_planner

        il_path = il_checkpoint if il_checkpoint is not None else default_checkpoint(il_name)
        rl_path = rl_checkpoint or default_checkpoint('rl_branch')
        sel_path = selector_checkpoint or default_checkpoint('selector')
        for label, path in (('IL', il_path), ('RL', rl_path), ('selector', sel_path)):
            if not Path(path).is_file():
                raise CheckpointError(f'PaIR {label} checkpoint {path} does not exist')
        il = load_il_planner(il_path, device=device)
        selector = load_selector(sel_path, device)
        settings = {'safety_tolerance': (safety_tolerance, float),
                    'safety_metrics': (safety_metrics, tuple),
                    'fallback_margin': (fallback_margin, float), 'select_by': (select_by, str),
                    'progress_tolerance_m': (progress_tolerance_m, float),
                    'stop_decels_mps2': (stop_decels_mps2, tuple)}
        selector.cfg = replace(selector.cfg, **{key: cast(value) for key, (value, cast)
                                                in settings.items() if value is not None})
        return cls(il, load_rl_branch(rl_path, device), selector,
                   codes=codes, device=device, consistency_weight=consistency_weight)

    def reset(self) -> None:
        """Forget per-episode state: the IL planner's and the previous plan."""
        self.il_planner.reset()
        self._previous = None

    def previous_plan_distance(self, features, candidates: np.ndarray) -> np.ndarray | None:
        """
        (K,) mean xy distance [m] of ego-frame candidates to the previous plan, or None.

        The previous plan is compared at the same absolute times (its poses are interpolated
        at this frame's pose times, within its horizon).
        """
        if self._previous is None or features.ego is None:
            return None
        stamp, prev_map = self._previous
        age = features.stamp_s - stamp
        if not 0.0 < age <= MAX_PREVIOUS_PLAN_AGE_S:
            return None
        n = candidates.shape[1]
        times = age + POSE_DT_S * np.arange(1, n + 1)           # on the previous plan's clock
        prev_times = POSE_DT_S * np.arange(1, n + 1)
        keep = times <= prev_times[-1]
        if not keep.any():
            return None
        prev_xy = np.stack([np.interp(times[keep], prev_times, prev_map[:, i])
                            for i in (0, 1)], -1)
        prev_ego = inverse_transform_points(features.ego.pose, prev_xy)
        return np.linalg.norm(candidates[:, keep, :2] - prev_ego, axis=-1).mean(-1)

    def candidates_per_frame(self) -> int:
        """K: the IL plan, the tree's leaves and (with variants) the plan variants."""
        return candidates_per_reference(self.codes, self.variants, len(self.stop_decels))

    @torch.no_grad()
    def candidates(self, batch: dict, il_poses: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """
        Return the candidate set (B, K, 8, 3) and the RL context tokens (B, N, d).

        Candidate 0 is the IL plan (B, 8, 3), then the G tree leaves around it, then (with
        variants) the plan's NUM_PLAN_VARIANTS speed x lateral variants, then its braking
        candidates (stop_decels).
        """
        ref = torch.as_tensor(il_poses, dtype=torch.float32, device=self.device)
        context = self.rl_branch.encode(batch)
        tree = self.rl_branch.expand(context, ref, self.codes)
        parts = [ref[:, None], tree.paths,
                 *reference_alternatives(ref, self.variants, self.stop_decels)]
        return torch.cat(parts, 1), context

    @torch.inference_mode()
    def compute_plans(self, batch: list[PlannerInput]) -> list[PlanOutput]:
        """Plan for several frames: IL in one batch, then tree and selector in one batch."""
        if not batch:
            return []
        t0 = time.perf_counter()
        il_plans = self.il_planner.compute_plans(batch)
        t1 = time.perf_counter()
        built = features_to_batch([b.features for b in batch], self.device)
        tensors = rl_features(built, self._rl_index)
        il_poses = np.stack([p.trajectory.poses for p in il_plans]).astype(np.float32)
        cands, context = self.candidates(tensors, il_poses)
        t2 = time.perf_counter()
        if self.selector is None:
            best = torch.zeros(len(batch), dtype=torch.long)
            scores = torch.zeros(cands.shape[:2])
            scores[:, 0] = 1.0
        else:
            best, scores = self.selector.select(cands, context, selector_batch(
                self.selector.cfg, built, tensors))
            if self.consistency_weight > 0 and len(batch) == 1:
                best = self._consistent_pick(batch[0].features, cands, scores, best)
        t3 = time.perf_counter()
        cands_np = cands.cpu().numpy().astype(np.float64)
        scores_np = scores.cpu().numpy().astype(np.float64)
        best_np = best.cpu().numpy()
        n = len(batch)
        timing = {'il_ms': (t1 - t0) * 1e3 / n, 'tree_ms': (t2 - t1) * 1e3 / n,
                  'selector_ms': (t3 - t2) * 1e3 / n}
        out = []
        for i, plan in enumerate(il_plans):
            k = int(best_np[i])
            out.append(PlanOutput(Trajectory(cands_np[i, k], POSE_DT_S), candidates=cands_np[i],
                                  candidate_scores=scores_np[i], il_trajectory=plan.trajectory,
                                  info={'model': 'pair', 'il': self.il_name, 'selected': k,
                                        'fallback_to_il': k == 0, **timing}))
        if self.consistency_weight > 0 and len(batch) == 1 and batch[0].features.ego is not None:
            self._previous = (batch[0].features.stamp_s, transform_points(
                batch[0].features.ego.pose, cands_np[0, int(best_np[0]), :, :2]))
        return out

    def _consistent_pick(self, features, cands: torch.Tensor, scores: torch.Tensor,
                         best: torch.Tensor) -> torch.Tensor:
        """Re-pick one frame's candidate with the previous-plan distance penalty."""
        dist = self.previous_plan_distance(features, cands[0].cpu().numpy())
        if dist is None:
            return best
        adjusted = scores - self.consistency_weight * torch.as_tensor(
            dist, dtype=scores.dtype, device=scores.device)[None]
        return pick_with_margin(adjusted, self.selector.cfg.fallback_margin)

    def compute_plan(self, inputs: PlannerInput) -> PlanOutput:
        """Plan for one frame."""
        return self.compute_plans([inputs])[0]


class OracleBestOfN(AbstractPlanner):
    """
    UPPER BOUND, not a deployable planner: best-of-N by the TRUE score.

    A PaIR planner's candidates are scored by the privileged PDM scorer on the logged scene and
    the best one is executed.
    """

    name = 'oracle_best_of_n'
    requires_scene = True

    def __init__(self, pair: PaIRPlanner, metric: str = 'pdms', scorer_cfg=None,
                 score_fn=None) -> None:
        self.pair = pair
        self.metric = metric
        self.scorer_cfg = scorer_cfg
        # score_fn(batch, candidates (B, K, 8, 3)) -> (B, K) true scores; lets an evaluation
        # reuse its prepared scenes. Default: score_scenes on the inputs' scenes.
        self.score_fn = score_fn

    def compute_plans(self, batch: list[PlannerInput]) -> list[PlanOutput]:
        """Score every candidate with the true scorer and keep the best."""
        from pair_drive_ros.scoring import score_scenes, ScorerConfig

        if any(b.scene is None for b in batch):
            raise ValueError('the oracle needs the logged scene (requires_scene)')
        plans = self.pair.compute_plans(batch)
        cands = np.stack([p.candidates for p in plans])
        if self.score_fn is not None:
            trues = self.score_fn(batch, cands)
        else:
            tables = score_scenes([b.scene for b in batch], cands,
                                  self.scorer_cfg or ScorerConfig())
            trues = [getattr(t, self.metric) for t in tables]
        out = []
        for plan, true in zip(plans, trues):
            k = int(np.argmax(true))
            out.append(PlanOutput(Trajectory(plan.candidates[k], POSE_DT_S), plan.candidates,
                                  true, plan.il_trajectory,
                                  {**plan.info, 'model': self.name, 'selected': k}))
        return out

    def compute_plan(self, inputs: PlannerInput) -> PlanOutput:
        """Plan for one frame."""
        return self.compute_plans([inputs])[0]
