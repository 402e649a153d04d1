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
Sub-metrics of a whole `score_scenes` batch in one pass.

The per-scene functions in metrics.py pay a fixed cost of many small numpy calls per scene,
which dominates at small G. Here the candidates of all scenes are concatenated (N rows, scene
`sid` per row): elementwise and row-wise work runs once, agents are padded to a common count for
NC and TTC, and the searches (lane membership, LK's centreline distance, the NC/TTC box pairs,
EP's route projection) run in the compiled kernels of kernels.py, one call per scene or per
agent group. Every value is computed by the same floating-point expressions as in metrics.py,
so the results are identical (test/test_scoring_batched.py checks it against the per-scene
path).
"""

from dataclasses import dataclass

import numpy as np

from pair_drive_ros.scoring import kernels
from pair_drive_ros.scoring.config import Metric, ScorerConfig
from pair_drive_ros.scoring.geometry import segment_box_overlap
from pair_drive_ros.scoring.metrics import (_lane_keeping_from, _relative_angle, _ttc_at_fault,
                                            driving_direction_compliance, EgoGeometry,
                                            extended_comfort)
from pair_drive_ros.scoring.simulation import StateIndex


@dataclass(frozen=True)
class Batch:
    """How the N concatenated candidates map to the scenes of a batch."""

    preps: list           # B PreparedScene
    starts: np.ndarray    # (B,) first row of each scene
    counts: np.ndarray    # (B,) rows of each scene
    sid: np.ndarray       # (N,) scene of each row

    @classmethod
    def build(cls, preps: list, slices: list) -> 'Batch':
        """Batch of scenes whose rows are the contiguous `slices`, in order."""
        starts = np.array([sl.start for sl in slices], dtype=np.int64)
        counts = np.array([sl.stop - sl.start for sl in slices], dtype=np.int64)
        return cls(list(preps), starts, counts, np.repeat(np.arange(len(preps)), counts))


def _lane_flags(points: np.ndarray, batch: Batch) -> tuple:
    """
    Lane membership of the ego points (N, T, 6, 2): FL, RL, RR, FR, centre, rear axle.

    Each scene's hits go into one (N, T, 6, W) bool table, W = most lanes in a scene + 1 (the
    drivable-area column sits right after each scene's lanes), padded to whole 8-byte words
    and read as uint64: one word holds 8 columns as bytes 0/1, so "any lane of a set" is a
    bitwise and with the set's word (numpy reduces tiny axes slowly). Returns multiple_lanes,
    non_drivable, oncoming, centre_in_intersection, rear_in_intersection (N, T) each.
    """
    n, t_len, k_pts = points.shape[:3]
    words = -(-max(p.lanes.num_columns for p in batch.preps) // 8)
    lane_col = np.zeros((len(batch.preps), 8 * words), dtype=bool)
    route = np.zeros_like(lane_col)
    inter = np.zeros_like(lane_col)
    rows, cols = [], []
    per_row = t_len * k_pts
    for b, prep in enumerate(batch.preps):
        nl = prep.lanes.num_lanes
        lane_col[b, :nl] = True
        route[b, :nl] = prep.route_lane_mask
        inter[b, :nl] = prep.intersection_lane_mask
        start, count = int(batch.starts[b]), int(batch.counts[b])
        # the rear axle is only tested against intersection lanes (TTC): skip it without them
        k_use = k_pts if prep.intersection_lane_mask.any() else k_pts - 1
        pts = points[start:start + count, :, :k_use].reshape(-1, 2)
        f_r, f_c, r, c = prep.lanes.point_hits(pts)
        r = np.concatenate([f_r, r])
        # back to rows of the (N, T, 6) layout
        rows.append(start * per_row + (r // k_use) * k_pts + r % k_use if k_use < k_pts
                    else start * per_row + r)
        cols.extend((f_c, c))
    inside = np.zeros((n * per_row, 8 * words), dtype=bool)
    inside[np.concatenate(rows), np.concatenate(cols)] = True
    code = inside.view(np.uint64).reshape(n, t_len, k_pts, words)
    sel = batch.sid
    lane_w = lane_col.view(np.uint64)[sel][:, None]        # (N, 1, words)
    route_w = route.view(np.uint64)[sel][:, None]
    inter_w = inter.view(np.uint64)[sel][:, None]
    one = np.uint64(1)
    two_or_more = np.zeros((n, t_len), dtype=bool)   # lanes touched by the corners > 1
    words_hit = np.zeros((n, t_len), dtype=np.int64)
    all_four = np.zeros((n, t_len), dtype=bool)
    corner_in = [np.zeros((n, t_len), dtype=bool) for _ in range(4)]
    on_route = np.zeros((n, t_len), dtype=bool)
    c_inter = np.zeros((n, t_len), dtype=bool)
    r_inter = np.zeros((n, t_len), dtype=bool)
    for w in range(words):
        c0, c1, c2, c3, ctr, rear = (code[:, :, k, w] for k in range(6))
        lm = lane_w[..., w]
        touched = (c0 | c1 | c2 | c3) & lm
        two_or_more |= (touched & (touched - one)) != 0    # two bits set in this word
        words_hit += touched != 0
        all_four |= (c0 & c1 & c2 & c3 & lm) != 0
        for k, ck in enumerate((c0, c1, c2, c3)):
            corner_in[k] |= ck != 0
        on_route |= (ctr & route_w[..., w]) != 0
        c_inter |= (ctr & inter_w[..., w]) != 0
        r_inter |= (rear & inter_w[..., w]) != 0
    multiple = (two_or_more | (words_hit > 1)) & ~all_four
    non_drivable = ~(corner_in[0] & corner_in[1] & corner_in[2] & corner_in[3])
    return multiple, non_drivable, ~on_route, c_inter, r_inter


def _lane_flags_compiled(points: np.ndarray, batch: Batch) -> tuple | None:
    """_lane_flags by kernels.lane_flags, scene by scene; None when a scene has no dense grid."""
    if any(p.lanes._dense is None for p in batch.preps):
        return None
    n, t_len, k_pts = points.shape[:3]
    out = np.empty((5, n, t_len), dtype=bool)
    for prep, start, count in zip(batch.preps, batch.starts, batch.counts):
        lanes = prep.lanes
        x0, y0, grid = lanes._dense
        # the rear axle is only tested against intersection lanes (TTC): skip it without them
        k_use = k_pts if prep.intersection_lane_mask.any() else k_pts - 1
        kernels.lane_flags(points[start:start + count], k_use, lanes.num_lanes, lanes.cell_m,
                           x0, y0, grid, lanes.full, *lanes._flat, lanes.normals,
                           lanes.offsets, lanes.piece_lane, prep.route_lane_mask,
                           prep.intersection_lane_mask, out[:, start:start + count])
    return tuple(out)


def batch_geometry(states: np.ndarray, batch: Batch, cfg: ScorerConfig,
                   trig: tuple | None = None) -> EgoGeometry:
    """
    `metrics.ego_geometry` of every row of the batch (N, T, ...).

    trig: (cos, sin) of the states' headings (N, T), when the caller has them.
    """
    veh = cfg.vehicle
    heading = states[..., StateIndex.HEADING]
    if trig is None:
        trig = np.cos(heading), np.sin(heading)
    points = np.empty(heading.shape + (6, 2))
    kernels.ego_points(states, trig[0], trig[1], float(veh.rear_axle_to_center_m),
                       float(0.5 * np.asarray(veh.length_m)),
                       float(0.5 * np.asarray(veh.width_m)), points)
    centre, corners = points[..., 4, :], points[..., :4, :]
    rear = states[..., :2]
    flags = _lane_flags_compiled(points, batch)
    if flags is None:
        flags = _lane_flags(points, batch)
    speed = np.hypot(states[..., StateIndex.VELOCITY_X], states[..., StateIndex.VELOCITY_Y])
    return EgoGeometry(centre, corners, heading, rear, speed, *flags)


@dataclass(frozen=True)
class PaddedAgents:
    """Agents of the scenes of one group (same track length T), padded to M = most agents."""

    scenes: np.ndarray    # (Bg,) scene indices in the batch
    xy: np.ndarray        # (Bg, T, M, 2)
    heading: np.ndarray   # (Bg, T, M)
    half: np.ndarray      # (Bg, M, 2)
    valid: np.ndarray     # (Bg, T, M), False for padding
    first_speed: np.ndarray  # (Bg, M)
    radius: np.ndarray    # (Bg, M)
    cos: np.ndarray       # (Bg, T, M) of heading
    sin: np.ndarray       # (Bg, T, M)


def _agent_groups(batch: Batch) -> list[PaddedAgents]:
    """Scenes with agents grouped by track length, each group padded to one agent count."""
    groups: dict = {}
    for b, prep in enumerate(batch.preps):
        t_a, m = prep.agent_valid.shape
        if m and t_a:
            groups.setdefault(t_a, []).append(b)
    out = []
    for t_a, members in groups.items():
        m_max = max(batch.preps[b].agent_valid.shape[1] for b in members)
        nb = len(members)
        xy = np.zeros((nb, t_a, m_max, 2))
        heading = np.zeros((nb, t_a, m_max))
        half = np.zeros((nb, m_max, 2))
        valid = np.zeros((nb, t_a, m_max), dtype=bool)
        first_speed = np.zeros((nb, m_max))
        for i, b in enumerate(members):
            p = batch.preps[b]
            m = p.agent_valid.shape[1]
            xy[i, :, :m] = p.agent_xy
            heading[i, :, :m] = p.agent_heading
            half[i, :m] = p.agent_half
            valid[i, :, :m] = p.agent_valid
            first_speed[i, :m] = p.agent_first_speed
        radius = np.hypot(half[..., 0], half[..., 1])
        out.append(PaddedAgents(np.array(members), xy, heading, half, valid, first_speed,
                                radius, np.cos(heading), np.sin(heading)))
    return out


def _first_overlaps(geo: EgoGeometry, trig: tuple, batch: Batch, ag: PaddedAgents,
                    t_eval: int, offs: np.ndarray, step: np.ndarray | None,
                    min_speed: float, cfg: ScorerConfig) -> tuple:
    """
    (n, t, s, m, g) of the first box overlap of each (row, agent) pair (kernels.py).

    step: (N, S) projection times [s] (TTC), or None to test the boxes at their own step (NC).
    """
    veh = cfg.vehicle
    ego_half = np.array([0.5 * veh.length_m, 0.5 * veh.width_m])
    ego_r = np.hypot(*ego_half)
    row_group = np.full(len(geo.heading), -1, dtype=np.int64)
    for g, b in enumerate(ag.scenes):
        row_group[batch.starts[b]:batch.starts[b] + batch.counts[b]] = g
    out = np.empty((len(geo.heading) * ag.xy.shape[2], 4), dtype=np.int64)
    count = kernels.first_box_overlaps(
        geo.centre[..., 0], geo.centre[..., 1], trig[0], trig[1], geo.speed, min_speed,
        np.zeros((1, 1)) if step is None else step, offs.astype(np.int64), t_eval,
        step is not None, row_group, ag.xy, ag.cos, ag.sin, ag.half,
        (ag.radius + ego_r) ** 2, ag.valid, float(ego_half[0]), float(ego_half[1]), out)
    ni, ti, si, mi = out[:count].T
    return ni, ti, si, mi, row_group[ni]


def batch_no_at_fault_collision(geo: EgoGeometry, trig: tuple, batch: Batch, groups: list,
                                cfg: ScorerConfig) -> np.ndarray:
    """`metrics.no_at_fault_collision` of every row (N,)."""
    n_rows, t_len = geo.heading.shape
    score = np.ones(n_rows)
    for ag in groups:
        t_agents = min(t_len, ag.xy.shape[1])
        ni, ti, _, mi, gi = _first_overlaps(geo, trig, batch, ag, t_agents,
                                            np.zeros(1, np.int64), None, -np.inf, cfg)
        if len(ni) == 0:
            continue
        a_xy = ag.xy[:, :t_agents]
        ego_stopped = geo.speed[ni, ti] <= cfg.ego_stopped_speed_mps
        track_stopped = ag.first_speed[gi, mi] <= cfg.track_stopped_speed_mps
        behind = _relative_angle(geo.rear[ni, ti], geo.heading[ni, ti],
                                 a_xy[gi, ti, mi]) > np.deg2rad(cfg.behind_angle_deg)
        corners = geo.corners[ni, ti]
        front = segment_box_overlap(corners[:, 0], corners[:, 3], a_xy[gi, ti, mi],
                                    ag.heading[gi, ti, mi], ag.half[gi, mi])
        lateral_area = geo.multiple_lanes[ni, ti] | geo.non_drivable[ni, ti]
        at_fault = ~ego_stopped & (track_stopped | (~behind & (front | lateral_area)))
        score[ni[at_fault]] = 0.0
    return score


def batch_time_to_collision(geo: EgoGeometry, trig: tuple, batch: Batch, groups: list,
                            cfg: ScorerConfig) -> np.ndarray:
    """`metrics.time_to_collision` of every row (N,)."""
    n_rows, t_len = geo.heading.shape
    score = np.ones(n_rows)
    offs = np.asarray(cfg.ttc_future_steps, dtype=int)
    max_off = int(offs.max())
    for ag in groups:
        t_agents = ag.xy.shape[1]
        t_eval = min(t_len - max_off, t_agents - max_off) if cfg.is_v2 else min(t_len, t_agents)
        if t_eval <= 0:
            continue
        dts = np.array([p.scene.dt_s for p in batch.preps])
        # the projection time step is per scene (scene.dt_s); rows of other groups are unused
        step = np.ascontiguousarray((offs[None, :] * dts[:, None])[batch.sid])   # (N, S)
        ni, ti, si, mi, gi = _first_overlaps(geo, trig, batch, ag, t_eval, offs, step,
                                             cfg.ttc_stopped_speed_mps, cfg)
        if len(ni) == 0:
            continue
        at = ti + offs[si]
        score[ni[_ttc_at_fault(geo, ni, ti, ag.xy[gi, at, mi], cfg)]] = 0.0
    return score


def batch_lane_keeping(geo: EgoGeometry, batch: Batch, cfg: ScorerConfig) -> np.ndarray:
    """`metrics.lane_keeping` of every row (N,)."""
    exceed = np.empty(geo.heading.shape, dtype=bool)
    inside = np.empty(geo.heading.size, dtype=bool)
    centre = geo.centre.reshape(-1, 2)
    t_len = geo.heading.shape[1]
    for prep, s, c in zip(batch.preps, batch.starts, batch.counts):
        grid = prep.route_grid
        if grid._dense is None or len(grid.keys) == 0:
            exceed[s:s + c] = ~grid.within(geo.centre[s:s + c])
            continue
        rows = slice(s * t_len, (s + c) * t_len)
        kernels.within_segments(centre[rows], grid.radius, grid.cell, *grid._dense,
                                *grid._flat, grid.a, grid.b, inside[rows])
        exceed[s:s + c] = ~inside[rows].reshape(c, t_len)
    return _lane_keeping_from(exceed, geo.centre_in_intersection, cfg)


# project_on_polyline's default search margin [m]
_PROGRESS_MARGIN_M = 50.0


def batch_progress_raw(geo: EgoGeometry, batch: Batch) -> np.ndarray:
    """`metrics.ego_progress_raw` of every row (N,) (geometry.project_on_polyline as a kernel)."""
    out = np.empty(len(geo.heading))
    first, last = geo.centre[:, 0], geo.centre[:, -1]
    for prep, s, c in zip(batch.preps, batch.starts, batch.counts):
        route = prep.scene.route
        start = first[s:s + c]
        if (start == start[0]).all():
            # one start for all candidates (as simulated): project it once. The points' box,
            # hence the searched segments, and every point's result are unchanged.
            p = kernels.project_on_route(np.concatenate([start[:1], last[s:s + c]]),
                                         route.points, route.arc_length, _PROGRESS_MARGIN_M)
            out[s:s + c] = np.maximum(p[1:] - p[0], 0.0)
        else:
            p = kernels.project_on_route(np.stack([start, last[s:s + c]], axis=1).reshape(-1, 2),
                                         route.points, route.arc_length,
                                         _PROGRESS_MARGIN_M).reshape(-1, 2)
            out[s:s + c] = np.maximum(p[:, 1] - p[:, 0], 0.0)
    return out


def batch_sub_metrics(states: np.ndarray, batch: Batch, cfg: ScorerConfig,
                      prev_states: list | None, comfort_rows: tuple) -> tuple:
    """
    `scorer.sub_metrics` of every row: (len(Metric), N) table with EP = 0, progress (N,).

    prev_states: per-scene previous-frame states for EC (entries may be None).
    """
    heading = states[..., StateIndex.HEADING]
    trig = np.cos(heading), np.sin(heading)
    geo = batch_geometry(states, batch, cfg, trig)
    groups = _agent_groups(batch)
    table = np.ones((len(Metric), len(states)))
    table[Metric.NC] = batch_no_at_fault_collision(geo, trig, batch, groups, cfg)
    table[Metric.DAC] = np.where(geo.non_drivable.any(axis=1), 0.0, 1.0)
    table[Metric.DDC] = driving_direction_compliance(geo, cfg)
    table[Metric.TLC] = 1.0  # our maps have no traffic lights
    table[Metric.TTC] = batch_time_to_collision(geo, trig, batch, groups, cfg)
    table[Metric.LK] = batch_lane_keeping(geo, batch, cfg)
    table[Metric.C], table[Metric.HC] = comfort_rows
    if prev_states is not None:
        for prev, s, c in zip(prev_states, batch.starts, batch.counts):
            if prev is not None:
                table[Metric.EC, s:s + c] = extended_comfort(states[s:s + c], prev, cfg)
    table[Metric.EP] = 0.0
    return table, batch_progress_raw(geo, batch)
