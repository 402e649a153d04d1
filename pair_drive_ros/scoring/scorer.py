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

"""PDMS / EPDMS scoring of candidate trajectories: simulate -> sub-metrics -> aggregate."""

from dataclasses import dataclass
import logging
from typing import Sequence

import numpy as np

from pair_drive_ros.core.scene import Scene
from pair_drive_ros.core.se2 import poses_to_global
from pair_drive_ros.core.trajectory import MAP_FRAME, NUM_POSES, POSE_DT_S, Trajectory
from pair_drive_ros.scoring import comfort, metrics
from pair_drive_ros.scoring.batch import Batch, batch_sub_metrics
from pair_drive_ros.scoring.config import (EPDMS_MULTIPLIERS, HUMAN_FILTER_METRICS, Metric,
                                           PDMS_MULTIPLIERS, ScorerConfig)
from pair_drive_ros.scoring.metrics import prepare_scene, PreparedScene
from pair_drive_ros.scoring.simulation import simulate

LOGGER = logging.getLogger(__name__)


@dataclass
class ScoreTable:
    """
    Scores of G candidates in one scene.

    table: (len(Metric), G) sub-metrics (rows indexed by Metric), before the human filter.
    pdms, epdms: (G,). progress_m: (G,) raw route progress [m]. reference_progress_m: EP's
    normaliser (the privileged planner's masked progress). ec_used: whether EC had a previous
    frame (else its weight was dropped). human_filtered: (len(Metric),) bool, true for the
    metrics on which the expert scored 0 and whose candidate values were set to 1 for EPDMS
    (see human_filter_mask). states: (G, 41, S) simulated rear-axle states, map frame (feed
    them to the next frame's EC).
    """

    table: np.ndarray
    pdms: np.ndarray
    epdms: np.ndarray
    progress_m: np.ndarray
    reference_progress_m: float
    ec_used: bool
    human_filtered: np.ndarray
    states: np.ndarray

    def __getitem__(self, metric: Metric) -> np.ndarray:
        """Row of one sub-metric, (G,)."""
        return self.table[int(metric)]

    def __len__(self) -> int:
        return self.table.shape[1]


def as_candidate_array(candidates) -> np.ndarray:
    """Candidates as (G, 8, 3) ego-frame poses from an array or a list of Trajectory."""
    if isinstance(candidates, Trajectory):
        candidates = [candidates]
    is_list = isinstance(candidates, (list, tuple)) and len(candidates) > 0
    if is_list and isinstance(candidates[0], Trajectory):
        for traj in candidates:
            if traj.frame == MAP_FRAME:
                raise ValueError('candidate trajectories must be in the ego frame')
            if abs(traj.dt_s - POSE_DT_S) > 1e-9 or len(traj) != NUM_POSES:
                raise ValueError(f'candidate trajectories must have {NUM_POSES} poses at '
                                 f'{POSE_DT_S} s, got {len(traj)} at {traj.dt_s} s')
        candidates = np.stack([traj.poses for traj in candidates])
    arr = np.asarray(candidates, dtype=np.float64)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != (NUM_POSES, 3) or len(arr) == 0:
        raise ValueError(f'candidates must have shape (G >= 1, {NUM_POSES}, 3), '
                         f'got {arr.shape}')
    if not np.all(np.isfinite(arr)):
        raise ValueError('candidates contain non-finite values')
    return arr


def simulate_candidates(prep: PreparedScene, candidates: np.ndarray,
                        cfg: ScorerConfig) -> np.ndarray:
    """Simulate ego-frame candidates (G, 8, 3) of one scene: (G, 41, S) states."""
    poses_map = poses_to_global(prep.scene.ego.pose, candidates)
    return simulate(poses_map, prep.start_state, cfg.vehicle, cfg.sim, POSE_DT_S)


def sub_metrics(states: np.ndarray, prep: PreparedScene, cfg: ScorerConfig,
                prev_states: np.ndarray | None = None,
                comfort_rows: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """
    All sub-metrics except EP: (len(Metric), G) table with EP = 0, and raw progress (G,).

    comfort_rows: precomputed (C, HC) rows, (G,) each (score_scenes batches them).
    """
    geo = metrics.ego_geometry(states, prep, cfg)
    table = np.ones((len(Metric), len(states)))
    table[Metric.NC] = metrics.no_at_fault_collision(states, geo, prep, cfg)
    table[Metric.DAC] = metrics.drivable_area_compliance(geo)
    table[Metric.DDC] = metrics.driving_direction_compliance(geo, cfg)
    table[Metric.TLC] = 1.0  # our maps have no traffic lights
    table[Metric.TTC] = metrics.time_to_collision(geo, prep, cfg)
    table[Metric.LK] = metrics.lane_keeping(geo, prep, cfg)
    if comfort_rows is None:
        comfort_rows = (metrics.comfort_c(states, cfg),
                        metrics.history_comfort(states, prep, cfg))
    table[Metric.C], table[Metric.HC] = comfort_rows
    if prev_states is not None:
        table[Metric.EC] = metrics.extended_comfort(states, prev_states, cfg)
    table[Metric.EP] = 0.0
    return table, metrics.ego_progress_raw(geo, prep)


def multiplier(table: np.ndarray, cfg: ScorerConfig) -> np.ndarray:
    """Product of the multiplier metrics of the configured NAVSIM version, (G,)."""
    rows = EPDMS_MULTIPLIERS if cfg.is_v2 else PDMS_MULTIPLIERS
    return np.prod(table[list(rows)], axis=0)


def ego_progress(progress_m: np.ndarray, mult: np.ndarray, reference_m,
                 cfg: ScorerConfig) -> np.ndarray:
    """
    EP (G,) from raw progress, the candidates' multipliers and the normaliser.

    v1: masked / max(reference, masked), 1 (0 if the multiplier is 0) when that max <= 5 m.
    v2: clip(raw / max(reference, masked), 0, 1), 1 when that max <= 5 m.
    """
    masked = progress_m * mult
    norm = np.maximum(reference_m, masked)
    big = norm > cfg.progress_threshold_m
    safe = np.where(big, norm, 1.0)
    if cfg.is_v2:
        return np.where(big, np.clip(progress_m / safe, 0.0, 1.0), 1.0)
    return np.where(big, masked / safe, np.where(mult == 0.0, 0.0, 1.0))


def aggregate_pdms(table: np.ndarray, cfg: ScorerConfig) -> np.ndarray:
    """PDMS = NC * DAC * (5 EP + 5 TTC + 2 C) / 12."""
    w = np.array([cfg.pdms_ep_weight, cfg.pdms_ttc_weight, cfg.pdms_c_weight])
    rows = table[[Metric.EP, Metric.TTC, Metric.C]]
    return table[Metric.NC] * table[Metric.DAC] * (w @ rows) / w.sum()


def aggregate_epdms(table: np.ndarray, cfg: ScorerConfig, ec_used: bool,
                    filtered: np.ndarray | None = None) -> np.ndarray:
    """
    EPDMS = prod f(NC, DAC, DDC, TLC) * (5 f(EP) + 5 f(TTC) + 2 f(LK) + 2 f(HC) + 2 EC) / 16.

    filtered: (len(Metric),) bool, the rows the human filter sets to 1 (human_filter_mask);
    f(m) is 1 for those, else the candidate's m. EC's weight is dropped when there was no
    previous frame.
    """
    rows = table
    if filtered is not None:
        filtered = np.asarray(filtered, dtype=bool)
        if filtered.shape != (len(Metric),):
            raise ValueError(f'filtered must have shape ({len(Metric)},), got {filtered.shape}')
        rows = table.copy()
        rows[filtered] = 1.0
    w = np.array([cfg.epdms_ep_weight, cfg.epdms_ttc_weight, cfg.epdms_lk_weight,
                  cfg.epdms_hc_weight, cfg.epdms_ec_weight if ec_used else 0.0])
    weighted = rows[[Metric.EP, Metric.TTC, Metric.LK, Metric.HC, Metric.EC]]
    return np.prod(rows[list(EPDMS_MULTIPLIERS)], axis=0) * (w @ weighted) / w.sum()


def human_filter_mask(human: np.ndarray, human_progress_m: float,
                      cfg: ScorerConfig) -> np.ndarray:
    """
    (len(Metric),) bool: the metrics on which the logged human scores 0.

    NAVSIM (navsim/evaluate/pdm_score.py, fixed in navsim commit 359c7f7) scores the human
    trajectory and sets every metric column on which it scores 0 to 1 for the agent, the
    multipliers and the weighted metrics alike, then recomputes the score. The human is scored
    as NAVSIM scores it: alone, so EP is normalised by its own masked progress (in v2 it is
    then always 1), and without a history, so HC is 1. EC is never filtered (NAVSIM adds it
    after the filter).

    human: (len(Metric),) the human's sub-metrics as `sub_metrics` returns them (EP and HC
    are recomputed here); human_progress_m: its raw route progress [m].
    """
    human = np.array(human, dtype=np.float64)
    mult = multiplier(human[:, None], cfg)
    human[Metric.EP] = ego_progress(np.array([human_progress_m]), mult, 0.0, cfg)[0]
    human[Metric.HC] = 1.0
    mask = np.zeros(len(Metric), dtype=bool)
    rows = list(HUMAN_FILTER_METRICS)
    mask[rows] = human[rows] == 0.0
    return mask


def _batched_comfort(states_all: np.ndarray, preps: list, slices: list,
                     cfg: ScorerConfig) -> tuple[np.ndarray, np.ndarray]:
    """
    C and HC for every simulated candidate of the batch, in as few filter calls as possible.

    HC is batched over the scenes whose histories have the same length.
    """
    c_all = metrics.comfort_c(states_all, cfg)
    hc_all = np.ones(len(states_all))
    groups: dict = {}
    for prep, sl in zip(preps, slices):
        if prep.history_states is not None:
            groups.setdefault(len(prep.history_states), []).append((prep, sl))
    for h_len, members in groups.items():
        idx = np.concatenate([np.arange(sl.start, sl.stop) for _, sl in members])
        # history rows then simulated rows, written into one buffer (no gathered copy when
        # the group is the whole batch)
        full = np.empty((len(idx), h_len + states_all.shape[1], states_all.shape[2]))
        row = 0
        for p, sl in members:
            full[row:row + sl.stop - sl.start, :h_len] = p.history_states
            row += sl.stop - sl.start
        whole = len(idx) == len(states_all)   # idx is then 0..N-1 in order
        full[:, h_len:] = states_all if whole else states_all[idx]
        hc_all[idx] = comfort.comfort_v2(full, cfg.sim.dt_s, cfg.vehicle.rear_axle_to_center_m)
    return c_all, hc_all


def _usable_expert(scene: Scene) -> bool:
    """Whether the scene's expert is an ego-frame 8 x 0.5 s trajectory (else no human filter)."""
    exp = scene.expert
    if exp is None:
        return False
    ok = (exp.frame != MAP_FRAME and abs(exp.dt_s - POSE_DT_S) < 1e-9
          and exp.poses.shape == (NUM_POSES, 3))
    if not ok:
        LOGGER.warning('scene %s: expert trajectory is not 8 ego-frame poses at 0.5 s; '
                       'human filter skipped', scene.token)
    return ok


def _as_prepared(scene, cfg: ScorerConfig) -> PreparedScene:
    if isinstance(scene, PreparedScene):
        return scene
    if not isinstance(scene, Scene):
        raise TypeError(f'scene must be a Scene or PreparedScene, got {type(scene).__name__}')
    return prepare_scene(scene, cfg)


def _finish(prep: PreparedScene, table: np.ndarray, progress: np.ndarray, states: np.ndarray,
            reference, human: tuple | None, ec_used: bool, cfg: ScorerConfig) -> ScoreTable:
    """Build the ScoreTable of one scene; human: the expert's (sub-metrics, progress)."""
    if reference is None:
        from pair_drive_ros.scoring.reference import reference_progress
        reference = reference_progress(prep, cfg)
    table[Metric.EP] = ego_progress(progress, multiplier(table, cfg), float(reference), cfg)
    filtered = np.zeros(len(Metric), dtype=bool)
    if human is not None and cfg.human_filter:
        filtered = human_filter_mask(human[0], human[1], cfg)
    return ScoreTable(table, aggregate_pdms(table, cfg),
                      aggregate_epdms(table, cfg, ec_used, filtered), progress,
                      float(reference), ec_used, filtered, states)


def score_candidates(scene, candidates, cfg: ScorerConfig = ScorerConfig(), reference=None,
                     prev_states: np.ndarray | None = None) -> ScoreTable:
    """
    Score candidate trajectories of one scene.

    scene: Scene or PreparedScene (prepare_scene caches the geometry). candidates: (G, 8, 3)
    ego-frame box-centre poses or a list of ego-frame Trajectory. reference: EP's normaliser
    [m] (reference_progress; computed when None). prev_states: the previous frame's simulated
    states (41, S) for EC (its weight is dropped when None).
    """
    return score_scenes([scene], as_candidate_array(candidates)[None], cfg,
                        None if reference is None else [reference],
                        None if prev_states is None else [prev_states])[0]


def score_scenes(scenes: Sequence, candidates: np.ndarray, cfg: ScorerConfig = ScorerConfig(),
                 references: Sequence | None = None,
                 prev_states: Sequence | None = None) -> list[ScoreTable]:
    """
    Score B scenes x G candidates (B, G, 8, 3) at once; the simulation runs as one batch.

    references, prev_states: optional per-scene sequences (entries may be None).
    """
    cands = np.asarray(candidates, dtype=np.float64)
    if (cands.ndim != 4 or cands.shape[2:] != (NUM_POSES, 3) or len(cands) != len(scenes)
            or cands.shape[1] == 0 or len(scenes) == 0):
        raise ValueError(f'candidates must have shape (B={len(scenes)} >= 1, G >= 1, '
                         f'{NUM_POSES}, 3), got {cands.shape}')
    if prev_states is not None and len(prev_states) != len(scenes):
        raise ValueError(f'prev_states must have one entry per scene ({len(scenes)}), '
                         f'got {len(prev_states)}')
    if references is not None and len(references) != len(scenes):
        raise ValueError(f'references must have one entry per scene ({len(scenes)}), '
                         f'got {len(references)}')
    if not np.all(np.isfinite(cands)):
        raise ValueError('candidates contain non-finite values')
    preps = [_as_prepared(s, cfg) for s in scenes]
    n_b, n_g = cands.shape[:2]
    # One simulation batch: every scene's candidates plus its expert (for the human filter).
    with_expert = [cfg.human_filter and _usable_expert(p.scene) for p in preps]
    poses, starts, slices = [], [], []
    for b, prep in enumerate(preps):
        block = cands[b]
        if with_expert[b]:
            block = np.concatenate([block, prep.scene.expert.poses[None]], axis=0)
        start = len(poses) and sum(len(p) for p in poses)
        poses.append(poses_to_global(prep.scene.ego.pose, block))
        starts.append(np.broadcast_to(prep.start_state, (len(block), prep.start_state.size)))
        slices.append(slice(start, start + len(block)))
    states_all = simulate(np.concatenate(poses), np.concatenate(starts), cfg.vehicle, cfg.sim,
                          POSE_DT_S)
    c_all, hc_all = _batched_comfort(states_all, preps, slices, cfg)
    table_all, progress_all = batch_sub_metrics(states_all, Batch.build(preps, slices), cfg,
                                                prev_states, (c_all, hc_all))
    out = []
    for b, prep in enumerate(preps):
        states = states_all[slices[b]]
        table, progress = table_all[:, slices[b]], progress_all[slices[b]]
        human = None
        if with_expert[b]:
            human = table[:, n_g], float(progress[n_g])
            table, progress, states = table[:, :n_g], progress[:n_g], states[:n_g]
        ref = None if references is None else references[b]
        prev = None if prev_states is None else prev_states[b]
        out.append(_finish(prep, table.copy(), progress, states, ref, human, prev is not None,
                           cfg))
    return out
