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
Sub-metrics: each maps simulated states and a prepared scene to one value per candidate.

States are (N, T, S) rear-axle map-frame arrays from `simulation.simulate`. Nothing here keeps
state between calls; a `PreparedScene` only caches scene geometry.
"""

from dataclasses import dataclass

import numpy as np

from pair_drive_ros.core.scene import Scene
from pair_drive_ros.scoring import comfort
from pair_drive_ros.scoring.config import ScorerConfig
from pair_drive_ros.scoring.geometry import (box_corners, boxes_overlap, LaneIndex,
                                             project_on_polyline, segment_box_overlap,
                                             SegmentGrid)
from pair_drive_ros.scoring.simulation import (initial_state, NUM_STATE, rear_axle_to_centre,
                                               StateIndex)


@dataclass(frozen=True)
class PreparedScene:
    """
    A scene with the geometry the scorer reuses across calls (cache it per scene).

    agent_*: map-frame agent tracks (T, M) after NAVSIM's log-replay filtering; first_speed and
    first_heading come from each agent's first valid step (NAVSIM's unique_objects).
    """

    scene: Scene
    lanes: LaneIndex
    route_lane_mask: np.ndarray        # (L,) lane is on the route
    intersection_lane_mask: np.ndarray  # (L,) lane lies in an intersection
    agent_xy: np.ndarray               # (T, M, 2)
    agent_heading: np.ndarray          # (T, M)
    agent_half: np.ndarray             # (M, 2) half length, half width
    agent_valid: np.ndarray            # (T, M)
    agent_first_speed: np.ndarray      # (M,)
    start_state: np.ndarray            # (NUM_STATE,)
    history_states: np.ndarray | None  # (H', NUM_STATE) rows prepended for HC
    route_grid: SegmentGrid            # route centreline, for LK's distance test


def prepare_scene(scene: Scene, cfg: ScorerConfig) -> PreparedScene:
    """Build the per-scene geometry cache."""
    lanes = LaneIndex.build(scene.road)
    route_ids = set(scene.route_lane_ids)
    route_mask = np.array([ln.lane_id in route_ids for ln in scene.road.lanes], dtype=bool)
    inter_mask = np.array([bool(ln.in_intersection) for ln in scene.road.lanes], dtype=bool)
    tracks = scene.agents
    valid = tracks.valid.copy()
    xy = tracks.poses[..., :2]
    heading = tracks.poses[..., 2]
    half = 0.5 * tracks.sizes
    veh = cfg.vehicle
    if cfg.is_v2 and len(tracks.ids) and len(valid):
        # v2 log replay drops agents whose box overlaps the ego box at step 0 from every step
        ego_half = np.array([0.5 * veh.length_m, 0.5 * veh.width_m])
        overlap0 = boxes_overlap(scene.ego.pose[:2], scene.ego.pose[2], ego_half, xy[0],
                                 heading[0], half) & valid[0]
        valid[:, overlap0] = False
    first = np.argmax(tracks.valid, axis=0) if len(tracks.valid) else np.zeros(0, int)
    m_idx = np.arange(len(tracks.ids))
    if len(tracks.velocities):
        first_speed = np.hypot(*tracks.velocities[first, m_idx].T)
    else:
        first_speed = np.zeros(len(tracks.ids))
    start = initial_state(scene.ego, veh)
    return PreparedScene(scene, lanes, route_mask, inter_mask, xy, heading, half, valid,
                         first_speed, start, history_states(scene, cfg),
                         SegmentGrid(scene.route.points, cfg.lk_deviation_m))


def history_states(scene: Scene, cfg: ScorerConfig) -> np.ndarray | None:
    """
    Past ego states for HC, in NAVSIM's layout; None when there is too little history.

    NAVSIM takes the logged states on a 0.1 s grid and drops the last two (t = -0.1 s, 0 s), so
    the 0.2 s gap to the first simulated state is treated as 0.1 s. It builds them with
    ego_status_to_ego_state, which sets no steering, yaw rate or yaw acceleration: those
    columns are 0 here too (they enter HC through a_x moved to the box centre, a_x + r w^2 +
    r dw/dt, so HC sees the rear-axle a_x on history rows). Our logs store poses only:
    velocity and acceleration are estimated by finite differences of the rear axle's
    positions, and the two oldest rows, where those are one-sided, are dropped too.
    """
    hist = np.asarray(scene.ego_history, dtype=np.float64).reshape(-1, 3)
    if len(hist) < 6:
        return None
    dt = scene.dt_s
    veh = cfg.vehicle
    r = veh.rear_axle_to_center_m
    heading = np.unwrap(hist[:, 2])
    rear = np.stack([hist[:, 0] - r * np.cos(heading), hist[:, 1] - r * np.sin(heading)], -1)
    vel = np.gradient(rear, dt, axis=0)
    acc = np.gradient(vel, dt, axis=0)
    c, s = np.cos(heading), np.sin(heading)
    out = np.zeros((len(hist), NUM_STATE))
    out[:, StateIndex.X] = rear[:, 0]
    out[:, StateIndex.Y] = rear[:, 1]
    out[:, StateIndex.HEADING] = hist[:, 2]
    out[:, StateIndex.VELOCITY_X] = vel[:, 0] * c + vel[:, 1] * s
    out[:, StateIndex.VELOCITY_Y] = -vel[:, 0] * s + vel[:, 1] * c
    out[:, StateIndex.ACCELERATION_X] = acc[:, 0] * c + acc[:, 1] * s
    out[:, StateIndex.ACCELERATION_Y] = -acc[:, 0] * s + acc[:, 1] * c
    return out[2:-2]


@dataclass(frozen=True)
class EgoGeometry:
    """Per-state ego geometry (N, T, ...) derived from simulated states."""

    centre: np.ndarray        # (N, T, 2)
    corners: np.ndarray       # (N, T, 4, 2) FL, RL, RR, FR
    heading: np.ndarray       # (N, T)
    rear: np.ndarray          # (N, T, 2)
    speed: np.ndarray         # (N, T)
    multiple_lanes: np.ndarray   # (N, T)
    non_drivable: np.ndarray     # (N, T)
    oncoming: np.ndarray         # (N, T) centre in no on-route lane
    centre_in_intersection: np.ndarray  # (N, T)
    rear_in_intersection: np.ndarray    # (N, T)


def ego_geometry(states: np.ndarray, prep: PreparedScene, cfg: ScorerConfig) -> EgoGeometry:
    """Ego boxes and the NAVSIM ego areas for every state."""
    veh = cfg.vehicle
    heading = states[..., StateIndex.HEADING]
    centre = rear_axle_to_centre(states, veh)
    corners = box_corners(centre, heading, veh.length_m, veh.width_m)
    rear = states[..., :2]
    has_inter = bool(prep.intersection_lane_mask.any())
    # the rear axle is only tested against intersection lanes (TTC); skip it when there are none
    parts = [corners, centre[..., None, :]] + ([rear[..., None, :]] if has_inter else [])
    both = prep.lanes.points_in_lanes(np.concatenate(parts, axis=-2))  # (N, T, 5|6, L + 1)
    inside = both[..., :-1]                              # lanes only
    # reductions over the 4 corners spelled out: numpy reduces tiny axes slowly
    c0, c1, c2, c3 = (inside[..., k, :] for k in range(4))
    lanes_touched = (c0 | c1 | c2 | c3).sum(axis=-1)
    all_four = c0 & c1 & c2 & c3
    multiple = (lanes_touched > 1) & ~all_four.any(axis=-1)
    # drivable: any lane or an extra drivable area (junctions) when the map has them
    in_any = both[..., :4, :].any(axis=-1)
    non_drivable = ~(in_any[..., 0] & in_any[..., 1] & in_any[..., 2] & in_any[..., 3])
    oncoming = ~inside[..., 4, :][..., prep.route_lane_mask].any(axis=-1)
    c_inter = inside[..., 4, :][..., prep.intersection_lane_mask].any(axis=-1)
    r_inter = (inside[..., 5, :][..., prep.intersection_lane_mask].any(axis=-1) if has_inter
               else np.zeros_like(c_inter))
    speed = np.hypot(states[..., StateIndex.VELOCITY_X], states[..., StateIndex.VELOCITY_Y])
    return EgoGeometry(centre, corners, heading, rear, speed, multiple, non_drivable, oncoming,
                       c_inter, r_inter)


def _relative_angle(ego_xy: np.ndarray, ego_heading: np.ndarray, agent_xy: np.ndarray):
    """
    Angle between the ego heading and the direction to the agent (nuPlan's).

    The arccos argument is clipped to [-1, 1] (NAVSIM does not clip, giving NaN for exactly
    aligned agents). NaN remains for coincident points.
    """
    v = agent_xy - ego_xy
    norm = np.hypot(v[..., 0], v[..., 1])
    with np.errstate(divide='ignore', invalid='ignore'):
        dot = (np.cos(ego_heading) * v[..., 0] + np.sin(ego_heading) * v[..., 1]) / norm
    return np.arccos(np.clip(dot, -1.0, 1.0))


def _first_per_pair(n: np.ndarray, m: np.ndarray, order: np.ndarray, num_m: int) -> np.ndarray:
    """Return the indices of the earliest (by `order`) entry of each (n, m) pair."""
    key = n.astype(np.int64) * num_m + m
    idx = np.lexsort((order, key))
    _, first = np.unique(key[idx], return_index=True)
    return idx[first]


def _agent_radius(prep: PreparedScene) -> np.ndarray:
    return np.hypot(prep.agent_half[:, 0], prep.agent_half[:, 1])


def _close_pairs(points: np.ndarray, agent_xy: np.ndarray, agent_ok: np.ndarray,
                 agent_r: np.ndarray, ego_r: float) -> tuple:
    """
    (n, k, m) indices where ego circle n at slot k meets agent circle m at slot k.

    points: (N, K, 2) ego centres; agent_xy: (K, M, 2); agent_ok: (K, M). Agents outside the
    bounding box of all candidates at a slot are culled before the (N, pairs) distance test.
    """
    lo = points.min(axis=0)                                     # (K, 2)
    hi = points.max(axis=0)
    reach = (agent_r + ego_r)[None, :, None]                    # (1, M, 1)
    inside = np.all((agent_xy >= lo[:, None] - reach) & (agent_xy <= hi[:, None] + reach),
                    axis=-1) & agent_ok
    kk, mm = np.nonzero(inside)
    if len(kk) == 0:
        return (np.zeros(0, np.int64),) * 3
    dx = points[:, kk, 0] - agent_xy[kk, mm, 0]
    dy = points[:, kk, 1] - agent_xy[kk, mm, 1]
    nn, pp = np.nonzero(dx * dx + dy * dy <= ((agent_r[mm] + ego_r) ** 2)[None])
    return nn, kk[pp], mm[pp]


def no_at_fault_collision(states: np.ndarray, geo: EgoGeometry, prep: PreparedScene,
                          cfg: ScorerConfig) -> np.ndarray:
    """
    NC (N,): 0 when some agent's first collision with the ego is at fault.

    After a not-at-fault collision NAVSIM ignores that agent for the rest of the horizon. All
    our agents are vehicles (AGENT_TYPES), so an at-fault collision scores 0, never 0.5.
    """
    n_cand, t_len = geo.heading.shape
    score = np.ones(n_cand)
    t_agents = min(t_len, prep.agent_xy.shape[0])
    if prep.agent_xy.shape[1] == 0 or t_agents == 0:
        return score
    veh = cfg.vehicle
    ego_half = np.array([0.5 * veh.length_m, 0.5 * veh.width_m])
    ego_r = np.hypot(*ego_half)
    a_xy = prep.agent_xy[:t_agents]
    ni, ti, mi = _close_pairs(geo.centre[:, :t_agents], a_xy, prep.agent_valid[:t_agents],
                              _agent_radius(prep), ego_r)
    if len(ni) == 0:
        return score
    hit = boxes_overlap(geo.centre[ni, ti], geo.heading[ni, ti], ego_half, a_xy[ti, mi],
                        prep.agent_heading[ti, mi], prep.agent_half[mi])
    ni, ti, mi = ni[hit], ti[hit], mi[hit]
    if len(ni) == 0:
        return score
    first = _first_per_pair(ni, mi, ti, a_xy.shape[1])
    ni, ti, mi = ni[first], ti[first], mi[first]
    ego_stopped = geo.speed[ni, ti] <= cfg.ego_stopped_speed_mps
    track_stopped = prep.agent_first_speed[mi] <= cfg.track_stopped_speed_mps
    behind = _relative_angle(geo.rear[ni, ti], geo.heading[ni, ti],
                             a_xy[ti, mi]) > np.deg2rad(cfg.behind_angle_deg)
    corners = geo.corners[ni, ti]
    front = segment_box_overlap(corners[:, 0], corners[:, 3], a_xy[ti, mi],
                                prep.agent_heading[ti, mi], prep.agent_half[mi])
    lateral_area = geo.multiple_lanes[ni, ti] | geo.non_drivable[ni, ti]
    at_fault = ~ego_stopped & (track_stopped | (~behind & (front | lateral_area)))
    score[ni[at_fault]] = 0.0
    return score


def drivable_area_compliance(geo: EgoGeometry) -> np.ndarray:
    """DAC (N,): 0 if some corner is outside every lane at some step."""
    return np.where(geo.non_drivable.any(axis=1), 0.0, 1.0)


def driving_direction_compliance(geo: EgoGeometry, cfg: ScorerConfig) -> np.ndarray:
    """DDC (N,): max distance driven off-route over a rolling k-10..k window."""
    step = np.zeros(geo.heading.shape)
    step[:, 1:] = np.linalg.norm(np.diff(geo.centre, axis=1), axis=-1)
    mask = geo.oncoming.copy()
    if cfg.is_v2:
        mask &= ~geo.centre_in_intersection
    step[~mask] = 0.0
    csum = np.concatenate([np.zeros((len(step), 1)), np.cumsum(step, axis=1)], axis=1)
    h = cfg.ddc_horizon_steps
    t = np.arange(step.shape[1])
    window = csum[:, t + 1] - csum[:, np.maximum(t - h, 0)]
    worst = window.max(axis=1)
    return np.where(worst < cfg.ddc_compliance_m, 1.0,
                    np.where(worst < cfg.ddc_violation_m, 0.5, 0.0))


def ego_progress_raw(geo: EgoGeometry, prep: PreparedScene) -> np.ndarray:
    """Raw progress (N,) [m] of the box centre along the route centreline, clamped at 0."""
    s = project_on_polyline(prep.scene.route, np.stack([geo.centre[:, 0], geo.centre[:, -1]],
                                                       axis=1))
    s = s.reshape(-1, 2)
    return np.maximum(s[:, 1] - s[:, 0], 0.0)


def time_to_collision(geo: EgoGeometry, prep: PreparedScene, cfg: ScorerConfig) -> np.ndarray:
    """
    TTC (N,): the ego box projected at constant velocity hits an agent ahead.

    Order matters as in NAVSIM: for each (candidate, agent) only the first hit in (step,
    projection) order counts; a hit on an agent that is not ahead puts it on an ignore list.
    """
    n_cand, t_len = geo.heading.shape
    score = np.ones(n_cand)
    t_agents = prep.agent_xy.shape[0]
    if prep.agent_xy.shape[1] == 0 or t_agents == 0:
        return score
    offs = np.asarray(cfg.ttc_future_steps, dtype=int)
    max_off = int(offs.max())
    if cfg.is_v2:
        t_eval = min(t_len - max_off, t_agents - max_off)
    else:
        t_eval = min(t_len, t_agents)
    if t_eval <= 0:
        return score
    veh = cfg.vehicle
    ego_half = np.array([0.5 * veh.length_m, 0.5 * veh.width_m])
    ego_r = np.hypot(*ego_half)
    dt = prep.scene.dt_s
    direction = np.stack([np.cos(geo.heading), np.sin(geo.heading)], -1)[:, :t_eval]
    shift = direction * geo.speed[:, :t_eval, None]                   # (N, t, 2) per second
    proj = (geo.centre[:, :t_eval, None, :]
            + shift[:, :, None, :] * (offs * dt)[None, None, :, None])  # (N, t, S, 2)
    tt = np.arange(t_eval)[:, None] + offs[None, :]                 # (t, S)
    avail = tt < t_agents
    tt_c = np.minimum(tt, t_agents - 1)
    n_s = len(offs)
    a_xy = prep.agent_xy[tt_c].reshape(t_eval * n_s, -1, 2)          # (t S, M, 2)
    a_valid = (prep.agent_valid[tt_c] & avail[..., None]).reshape(t_eval * n_s, -1)
    ni, ki, mi = _close_pairs(proj.reshape(n_cand, t_eval * n_s, 2), a_xy, a_valid,
                              _agent_radius(prep), ego_r)
    ti, si = ki // n_s, ki % n_s
    moving = geo.speed[ni, ti] >= cfg.ttc_stopped_speed_mps
    ni, ti, si, mi = ni[moving], ti[moving], si[moving], mi[moving]
    if len(ni) == 0:
        return score
    at = tt_c[ti, si]
    hit = boxes_overlap(proj[ni, ti, si], geo.heading[ni, ti], ego_half, prep.agent_xy[at, mi],
                        prep.agent_heading[at, mi], prep.agent_half[mi])
    ni, ti, si, mi, at = ni[hit], ti[hit], si[hit], mi[hit], at[hit]
    if len(ni) == 0:
        return score
    first = _first_per_pair(ni, mi, ti * len(offs) + si, prep.agent_xy.shape[1])
    ni, ti, mi, at = ni[first], ti[first], mi[first], at[first]
    score[ni[_ttc_at_fault(geo, ni, ti, prep.agent_xy[at, mi], cfg)]] = 0.0
    return score


def _ttc_at_fault(geo: EgoGeometry, ni: np.ndarray, ti: np.ndarray, agent_xy: np.ndarray,
                  cfg: ScorerConfig) -> np.ndarray:
    """
    Which projected overlaps (candidate ni, step ti, agent at agent_xy) count against TTC.

    The agent is ahead, or not behind while the ego is across lanes, off the drivable area or
    in an intersection.
    """
    angle = _relative_angle(geo.rear[ni, ti], geo.heading[ni, ti], agent_xy)
    ahead = angle < np.deg2rad(cfg.ahead_angle_deg)
    behind = angle > np.deg2rad(cfg.behind_angle_deg)
    area = (geo.multiple_lanes[ni, ti] | geo.non_drivable[ni, ti]
            | geo.rear_in_intersection[ni, ti])
    return ahead | (area & ~behind)


def lane_keeping(geo: EgoGeometry, prep: PreparedScene, cfg: ScorerConfig) -> np.ndarray:
    """
    LK (N,): 0 after lk_window_steps consecutive (non-intersection) steps off the centreline.

    Intersection steps are skipped without resetting the count, as in NAVSIM.
    """
    return _lane_keeping_from(~prep.route_grid.within(geo.centre), geo.centre_in_intersection,
                              cfg)


def _lane_keeping_from(exceed: np.ndarray, skip: np.ndarray, cfg: ScorerConfig) -> np.ndarray:
    """LK (N,) from per-step off-centreline (N, T) and intersection (N, T) flags."""
    inc = (exceed & ~skip).astype(np.int64)
    reset = ~exceed & ~skip
    csum = np.cumsum(inc, axis=1)
    base = np.where(reset, csum, 0)
    base = np.maximum.accumulate(base, axis=1)
    count = csum - base
    return np.where((count >= cfg.lk_window_steps).any(axis=1), 0.0, 1.0)


def comfort_c(states: np.ndarray, cfg: ScorerConfig) -> np.ndarray:
    """C (N,) as in navsim v1.1."""
    return comfort.comfort_v1(states, cfg.sim.dt_s).astype(np.float64)


def history_comfort(states: np.ndarray, prep: PreparedScene, cfg: ScorerConfig) -> np.ndarray:
    """HC (N,): v2 comfort over the logged history followed by the simulated states."""
    if prep.history_states is None:
        return np.ones(len(states))
    hist = np.broadcast_to(prep.history_states, (len(states),) + prep.history_states.shape)
    full = np.concatenate([hist, states], axis=1)
    return comfort.comfort_v2(full, cfg.sim.dt_s,
                              cfg.vehicle.rear_axle_to_center_m).astype(np.float64)


def extended_comfort(states: np.ndarray, prev_states: np.ndarray,
                     cfg: ScorerConfig) -> np.ndarray:
    """EC (N,) against the previous frame's simulated states (T, S) or (N, T, S)."""
    off = cfg.ec_frame_offset_steps
    t_len = states.shape[1]
    prev = np.asarray(prev_states, dtype=np.float64)
    if prev.ndim == 2:
        prev = np.broadcast_to(prev, (len(states),) + prev.shape)
    if prev.shape[1:] != states.shape[1:] or prev.shape[0] != len(states):
        raise ValueError(f'prev_states must have shape (T, S) or (N, T, S) matching the '
                         f'candidates {states.shape}, got {prev.shape}')
    ok = comfort.extended_comfort(states[:, :t_len - off], prev[:, off:], cfg.sim.dt_s,
                                  cfg.ec_thresholds)
    return ok.astype(np.float64)
