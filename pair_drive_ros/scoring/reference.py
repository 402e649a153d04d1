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
Privileged reference planner (PDM-Closed style), EP's progress normaliser, baselines.

The planner follows the route centreline with IDM at several target speeds and lateral offsets;
every proposal is simulated and scored by the same scorer and the best is kept. It is
privileged: the IDM sees the logged future of the other agents, not a forecast.
"""

from dataclasses import dataclass

import numpy as np

from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.core.se2 import poses_to_local
from pair_drive_ros.core.trajectory import NUM_POSES, POSE_DT_S, Trajectory
from pair_drive_ros.scoring.config import Metric, ScorerConfig
from pair_drive_ros.scoring.geometry import project_on_polyline
from pair_drive_ros.scoring.metrics import prepare_scene, PreparedScene


@dataclass(frozen=True)
class ReferencePlannerConfig:
    """PDM-Closed's proposal grid and IDM parameters (tuplan_garage defaults)."""

    speed_fractions: tuple = (0.2, 0.4, 0.6, 0.8, 1.0)  # of the route lane's speed limit
    lateral_offsets_m: tuple = (-1.0, 0.0, 1.0)
    blend_time_s: float = 2.0       # time to reach the lateral offset from the ego's offset
    accel_max_mps2: float = 1.5     # IDM a
    decel_max_mps2: float = 3.0     # IDM b
    headway_s: float = 1.5          # IDM T
    min_gap_m: float = 1.0          # IDM s0
    exponent: float = 4.0           # IDM delta
    corridor_margin_m: float = 0.5  # agents within ego half width + their half width + margin
    dt_s: float = 0.1


REFERENCE_PLANNER = ReferencePlannerConfig()


def _prep(scene, cfg: ScorerConfig) -> PreparedScene:
    return scene if isinstance(scene, PreparedScene) else prepare_scene(scene, cfg)


def _speed_limit(prep: PreparedScene) -> float:
    lanes = [ln for ln in prep.scene.road.lanes if ln.lane_id in set(prep.scene.route_lane_ids)]
    lanes = lanes or prep.scene.road.lanes
    if not lanes:
        return max(prep.scene.ego.speed, 10.0)
    ego_xy = prep.scene.ego.pose[:2]
    dist = [np.min(np.linalg.norm(ln.centerline - ego_xy, axis=1)) for ln in lanes]
    return float(lanes[int(np.argmin(dist))].speed_limit_mps)


def idm_proposals(scene, cfg: ScorerConfig = ScorerConfig(),
                  planner: ReferencePlannerConfig = REFERENCE_PLANNER) -> np.ndarray:
    """PDM-Closed-style proposals (P, 8, 3) in the ego frame (box centre)."""
    prep = _prep(scene, cfg)
    sc = prep.scene
    route = sc.route
    s0, lat0 = route.project(sc.ego.pose[:2])
    s0, lat0 = float(s0), float(lat0)
    v_max = _speed_limit(prep)
    targets = np.array([f * v_max for f in planner.speed_fractions])
    offsets = np.array(planner.lateral_offsets_m)
    tgt = np.repeat(targets, len(offsets))
    off = np.tile(offsets, len(targets))
    n_p = len(tgt)
    dt = planner.dt_s
    n_steps = int(round(NUM_POSES * POSE_DT_S / dt))
    # agents along the route, (T, M)
    t_agents = prep.agent_xy.shape[0]
    m = prep.agent_xy.shape[1]
    if m and t_agents:
        a_s, a_lat = project_on_polyline(route, prep.agent_xy, with_lateral=True)
        a_s = a_s.reshape(prep.agent_xy.shape[:2])
        a_lat = a_lat.reshape(prep.agent_xy.shape[:2])
        hdg = route.interpolate(a_s)[..., 2]
        vel = sc.agents.velocities
        a_v = vel[..., 0] * np.cos(hdg) + vel[..., 1] * np.sin(hdg)
    half_len = 0.5 * cfg.vehicle.length_m
    half_w = 0.5 * cfg.vehicle.width_m
    s = np.full(n_p, s0)
    v = np.full(n_p, max(sc.ego.speed, 0.0))
    s_hist = np.zeros((n_p, n_steps))
    for k in range(n_steps):
        gap = np.full(n_p, np.inf)
        v_lead = np.zeros(n_p)
        if m and t_agents:
            tk = min(k, t_agents - 1)
            lat_now = _blend(off, lat0, k * dt, planner.blend_time_s)
            d_lat = np.abs(a_lat[tk][None] - lat_now[:, None])
            in_lane = d_lat < half_w + prep.agent_half[None, :, 1] + planner.corridor_margin_m
            in_lane &= prep.agent_valid[tk][None]
            g = a_s[tk][None] - s[:, None] - half_len - prep.agent_half[None, :, 0]
            ahead = in_lane & (a_s[tk][None] > s[:, None])
            g = np.where(ahead, g, np.inf)
            j = np.argmin(g, axis=1)
            gap = g[np.arange(n_p), j]
            v_lead = np.where(np.isfinite(gap), a_v[tk][j], 0.0)
        acc = _idm(v, tgt, gap, v - v_lead, planner)
        v_new = np.maximum(v + acc * dt, 0.0)
        s = s + 0.5 * (v + v_new) * dt
        v = v_new
        s_hist[:, k] = s
    times = np.arange(1, NUM_POSES + 1) * POSE_DT_S
    idx = np.round(times / dt).astype(int) - 1
    s_pose = s_hist[:, idx]
    lat_pose = _blend(off[:, None], lat0, times[None], planner.blend_time_s)
    base = route.interpolate(s_pose)
    # heading follows the path including the lateral blend
    dlat = np.gradient(lat_pose, axis=1)
    ds = np.maximum(np.gradient(s_pose, axis=1), 1e-3)
    heading = base[..., 2] + np.arctan2(dlat, ds)
    xy = base[..., :2] + lat_pose[..., None] * np.stack([-np.sin(base[..., 2]),
                                                         np.cos(base[..., 2])], -1)
    poses_map = np.concatenate([xy, heading[..., None]], -1)
    return poses_to_local(sc.ego.pose, poses_map)


def _blend(target, lat0: float, t, blend_s: float):
    w = np.clip(1.0 - np.asarray(t) / blend_s, 0.0, 1.0)
    return target + (lat0 - target) * w


def _idm(v, v_target, gap, dv, p: ReferencePlannerConfig) -> np.ndarray:
    v_target = np.maximum(v_target, 0.1)
    free = 1.0 - (v / v_target) ** p.exponent
    s_star = p.min_gap_m + np.maximum(0.0, v * p.headway_s
                                      + v * dv / (2.0 * np.sqrt(p.accel_max_mps2
                                                                * p.decel_max_mps2)))
    with np.errstate(divide='ignore', invalid='ignore'):
        inter = np.where(np.isfinite(gap), (s_star / np.maximum(gap, 0.1)) ** 2, 0.0)
    return p.accel_max_mps2 * (free - inter)


def _plan(prep: PreparedScene, cfg: ScorerConfig, planner: ReferencePlannerConfig):
    from pair_drive_ros.scoring.scorer import (aggregate_pdms, ego_progress, multiplier,
                                               simulate_candidates, sub_metrics)
    props = idm_proposals(prep, cfg, planner)
    states = simulate_candidates(prep, props, cfg)
    table, progress = sub_metrics(states, prep, cfg)
    mult = multiplier(table, cfg)
    # PDM-Closed normalises progress by the best proposal (no external reference)
    table[Metric.EP] = ego_progress(progress, mult, float(np.max(progress * mult)), cfg)
    score = aggregate_pdms(table, cfg)
    best = int(np.argmax(score))
    return props[best], float(progress[best] * mult[best])


def reference_plan(scene, cfg: ScorerConfig = ScorerConfig(),
                   planner: ReferencePlannerConfig = REFERENCE_PLANNER) -> Trajectory:
    """Best PDM-Closed-style proposal as an ego-frame Trajectory (8 poses at 0.5 s)."""
    poses, _ = _plan(_prep(scene, cfg), cfg, planner)
    return Trajectory(poses, POSE_DT_S)


def reference_progress(scene, cfg: ScorerConfig = ScorerConfig(),
                       planner: ReferencePlannerConfig = REFERENCE_PLANNER) -> float:
    """
    Return the progress normaliser [m] used by EP.

    It is the reference plan's route progress times its own multipliers (NC DAC in v1,
    NC DAC DDC TLC in v2). Cache it per scene and pass it as `reference`.
    """
    _, progress = _plan(_prep(scene, cfg), cfg, planner)
    return progress


def constant_velocity_trajectory(ego: EgoState) -> Trajectory:
    """Baseline: keep the current speed along the current heading (NAVSIM's CV agent)."""
    speed = float(np.hypot(*ego.velocity))
    t = np.arange(1, NUM_POSES + 1) * POSE_DT_S
    poses = np.stack([speed * t, np.zeros_like(t), np.zeros_like(t)], -1)
    return Trajectory(poses, POSE_DT_S)
