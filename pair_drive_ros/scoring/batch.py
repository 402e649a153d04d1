"""Sub-metrics of a whole `score_scenes` batch in one pass.

The per-scene functions in metrics.py pay a fixed cost of many small numpy calls per scene,
which dominates at small G. Here the candidates of all scenes are concatenated (N rows, scene
`sid` per row): elementwise and row-wise work runs once, only the per-scene lookups (lane grid,
route) loop over scenes, and agents are padded to a common count for NC and TTC. Every value is
computed by the same floating-point expressions as in metrics.py, so the results are identical
(test/test_scoring_batched.py checks it against the per-scene path).
"""

from dataclasses import dataclass

import numpy as np

from pair_drive_ros.scoring.config import Metric, ScorerConfig
from pair_drive_ros.scoring.geometry import (box_corners, boxes_overlap, project_on_polyline,
                                             segment_box_overlap)
from pair_drive_ros.scoring.metrics import (_first_per_pair, _lane_keeping_from,
                                            _relative_angle, _ttc_at_fault,
                                            driving_direction_compliance, EgoGeometry,
                                            extended_comfort)
from pair_drive_ros.scoring.simulation import rear_axle_to_centre, StateIndex


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
    """Lane membership of the ego points (N, T, 6, 2): FL, RL, RR, FR, centre, rear axle.

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


def batch_geometry(states: np.ndarray, batch: Batch, cfg: ScorerConfig) -> EgoGeometry:
    """`metrics.ego_geometry` of every row of the batch (N, T, ...)."""
    veh = cfg.vehicle
    heading = states[..., StateIndex.HEADING]
    centre = rear_axle_to_centre(states, veh)
    corners = box_corners(centre, heading, veh.length_m, veh.width_m)
    rear = states[..., :2]
    points = np.concatenate([corners, centre[..., None, :], rear[..., None, :]], axis=-2)
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
                                radius))
    return out


# candidates per culling chunk in _close_pairs
_CHUNK = 16
# culling margin [m]: agents within reach + this of a chunk's box are tested, so rounding in
# the box test never drops a pair that the exact distance test keeps
_CULL_MARGIN_M = 1e-6


def _close_pairs(points: np.ndarray, batch: Batch, ag: PaddedAgents, agent_xy: np.ndarray,
                 agent_ok: np.ndarray, ego_r: float) -> tuple:
    """(n, k, m, g) where ego circle n at slot k meets agent circle m at slot k.

    points: (N, K, 2) all rows; agent_xy: (Bg, K, M, 2); agent_ok: (Bg, K, M); g is the row's
    index in the group. As `metrics._close_pairs`, but agents are culled against the bounding
    box of a chunk of _CHUNK candidates (sorted along their spread, so the boxes are tight)
    instead of all the scene's candidates: far fewer (candidate, agent) distance tests, the
    same pairs.
    """
    starts, counts = batch.starts[ag.scenes], batch.counts[ag.scenes]
    n_g, k_len = len(starts), points.shape[1]
    g_pad = -(-int(counts.max()) // _CHUNK) * _CHUNK
    # (Bg, G') row of each candidate slot, -1 past a scene's count
    slot = np.arange(g_pad)
    perm = np.where(slot < counts[:, None], slot, -1)
    if g_pad > _CHUNK:
        # sort each scene's candidates by their end point along the scene's mean displacement
        rows = starts[:, None] + np.maximum(perm, 0)
        last, first = points[rows, -1], points[rows, 0]                   # (Bg, G', 2)
        valid = (perm >= 0)[..., None]
        axis = (np.where(valid, last - first, 0.0).sum(axis=1))          # (Bg, 2)
        key = last[..., 0] * axis[:, None, 0] + last[..., 1] * axis[:, None, 1]
        perm = np.take_along_axis(perm, np.argsort(np.where(perm >= 0, key, np.inf), axis=1,
                                                   kind='stable'), axis=1)
    if g_pad == int(counts.min()) and n_g == len(batch.preps) and g_pad <= _CHUNK:
        blocks = points.reshape(n_g, g_pad, k_len, 2)          # already in chunk order
    else:
        # rows past a scene's count are NaN: never within reach, ignored by fmin/fmax
        blocks = points[starts[:, None] + np.maximum(perm, 0)]
        blocks[perm < 0] = np.nan
    n_c = g_pad // _CHUNK
    chunks = blocks.reshape(n_g, n_c, _CHUNK, k_len, 2)
    lo = np.fmin.reduce(chunks, axis=2)                       # (Bg, C, K, 2)
    hi = np.fmax.reduce(chunks, axis=2)
    reach = (ag.radius + ego_r + _CULL_MARGIN_M)[:, None, None, :]   # (Bg, 1, 1, M)
    ax, ay = agent_xy[:, None, ..., 0], agent_xy[:, None, ..., 1]     # (Bg, 1, K, M)
    # x and y spelled out: numpy reduces tiny axes slowly
    inside = ((ax >= lo[..., 0, None] - reach) & (ax <= hi[..., 0, None] + reach)
              & (ay >= lo[..., 1, None] - reach) & (ay <= hi[..., 1, None] + reach)
              & agent_ok[:, None])
    gg, cc, kk, mm = np.nonzero(inside)
    if len(gg) == 0:
        return (np.zeros(0, np.int64),) * 4
    # (Bg, C, K, 2, chunk): each quadruple gathers one contiguous row of candidates
    rows_t = np.ascontiguousarray(chunks.transpose(0, 1, 3, 4, 2))
    dx = rows_t[gg, cc, kk, 0] - agent_xy[gg, kk, mm, 0][:, None]       # (pairs, chunk)
    dy = rows_t[gg, cc, kk, 1] - agent_xy[gg, kk, mm, 1][:, None]
    pp, jj = np.nonzero(dx * dx + dy * dy <= ((ag.radius[gg, mm] + ego_r) ** 2)[:, None])
    gp = gg[pp]
    return starts[gp] + perm[gp, cc[pp] * _CHUNK + jj], kk[pp], mm[pp], gp


def batch_no_at_fault_collision(geo: EgoGeometry, batch: Batch, groups: list,
                                cfg: ScorerConfig) -> np.ndarray:
    """`metrics.no_at_fault_collision` of every row (N,)."""
    n_rows, t_len = geo.heading.shape
    score = np.ones(n_rows)
    veh = cfg.vehicle
    ego_half = np.array([0.5 * veh.length_m, 0.5 * veh.width_m])
    ego_r = np.hypot(*ego_half)
    for ag in groups:
        t_agents = min(t_len, ag.xy.shape[1])
        a_xy = ag.xy[:, :t_agents]
        ni, ti, mi, gi = _close_pairs(geo.centre[:, :t_agents], batch, ag, a_xy,
                                      ag.valid[:, :t_agents], ego_r)
        if len(ni) == 0:
            continue
        hit = boxes_overlap(geo.centre[ni, ti], geo.heading[ni, ti], ego_half, a_xy[gi, ti, mi],
                            ag.heading[gi, ti, mi], ag.half[gi, mi])
        ni, ti, mi, gi = ni[hit], ti[hit], mi[hit], gi[hit]
        if len(ni) == 0:
            continue
        first = _first_per_pair(ni, mi, ti, a_xy.shape[2])
        ni, ti, mi, gi = ni[first], ti[first], mi[first], gi[first]
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


def batch_time_to_collision(geo: EgoGeometry, batch: Batch, groups: list,
                            cfg: ScorerConfig) -> np.ndarray:
    """`metrics.time_to_collision` of every row (N,)."""
    n_rows, t_len = geo.heading.shape
    score = np.ones(n_rows)
    offs = np.asarray(cfg.ttc_future_steps, dtype=int)
    max_off = int(offs.max())
    veh = cfg.vehicle
    ego_half = np.array([0.5 * veh.length_m, 0.5 * veh.width_m])
    ego_r = np.hypot(*ego_half)
    n_s = len(offs)
    for ag in groups:
        t_agents = ag.xy.shape[1]
        t_eval = min(t_len - max_off, t_agents - max_off) if cfg.is_v2 else min(t_len, t_agents)
        if t_eval <= 0:
            continue
        dts = np.array([p.scene.dt_s for p in batch.preps])
        # the projection time step is per scene (scene.dt_s); rows of other groups are unused
        step = (offs[None, :] * dts[:, None])[batch.sid]                  # (N, S)
        head = geo.heading[:, :t_eval]
        direction = np.stack([np.cos(head), np.sin(head)], -1)
        shift = direction * geo.speed[:, :t_eval, None]
        proj = (geo.centre[:, :t_eval, None, :]
                + shift[:, :, None, :] * step[:, None, :, None])         # (N, t, S, 2)
        tt = np.arange(t_eval)[:, None] + offs[None, :]                 # (t, S)
        avail = tt < t_agents
        tt_c = np.minimum(tt, t_agents - 1)
        a_xy = ag.xy[:, tt_c].reshape(len(ag.scenes), t_eval * n_s, -1, 2)
        a_valid = (ag.valid[:, tt_c] & avail[..., None]).reshape(len(ag.scenes),
                                                                 t_eval * n_s, -1)
        ni, ki, mi, gi = _close_pairs(proj.reshape(n_rows, t_eval * n_s, 2), batch, ag, a_xy,
                                      a_valid, ego_r)
        ti, si = ki // n_s, ki % n_s
        moving = geo.speed[ni, ti] >= cfg.ttc_stopped_speed_mps
        ni, ti, si, mi, gi = ni[moving], ti[moving], si[moving], mi[moving], gi[moving]
        if len(ni) == 0:
            continue
        at = tt_c[ti, si]
        hit = boxes_overlap(proj[ni, ti, si], geo.heading[ni, ti], ego_half, ag.xy[gi, at, mi],
                            ag.heading[gi, at, mi], ag.half[gi, mi])
        ni, ti, si, mi, at, gi = ni[hit], ti[hit], si[hit], mi[hit], at[hit], gi[hit]
        if len(ni) == 0:
            continue
        first = _first_per_pair(ni, mi, ti * n_s + si, ag.xy.shape[2])
        ni, ti, mi, at, gi = ni[first], ti[first], mi[first], at[first], gi[first]
        score[ni[_ttc_at_fault(geo, ni, ti, ag.xy[gi, at, mi], cfg)]] = 0.0
    return score


def batch_lane_keeping(geo: EgoGeometry, batch: Batch, cfg: ScorerConfig) -> np.ndarray:
    """`metrics.lane_keeping` of every row (N,)."""
    exceed = np.empty(geo.heading.shape, dtype=bool)
    for prep, s, c in zip(batch.preps, batch.starts, batch.counts):
        exceed[s:s + c] = ~prep.route_grid.within(geo.centre[s:s + c])
    return _lane_keeping_from(exceed, geo.centre_in_intersection, cfg)


def batch_progress_raw(geo: EgoGeometry, batch: Batch) -> np.ndarray:
    """`metrics.ego_progress_raw` of every row (N,)."""
    out = np.empty(len(geo.heading))
    first, last = geo.centre[:, 0], geo.centre[:, -1]
    for prep, s, c in zip(batch.preps, batch.starts, batch.counts):
        start = first[s:s + c]
        if (start == start[0]).all():
            # one start for all candidates (as simulated): project it once. The points' box,
            # hence the searched segments, and every point's result are unchanged.
            p = project_on_polyline(prep.scene.route, np.concatenate([start[:1], last[s:s + c]]))
            out[s:s + c] = np.maximum(p[1:] - p[0], 0.0)
        else:
            p = project_on_polyline(prep.scene.route,
                                    np.stack([start, last[s:s + c]], axis=1)).reshape(-1, 2)
            out[s:s + c] = np.maximum(p[:, 1] - p[:, 0], 0.0)
    return out


def batch_sub_metrics(states: np.ndarray, batch: Batch, cfg: ScorerConfig,
                      prev_states: list | None, comfort_rows: tuple) -> tuple:
    """`scorer.sub_metrics` of every row: (len(Metric), N) table with EP = 0, progress (N,).

    prev_states: per-scene previous-frame states for EC (entries may be None).
    """
    geo = batch_geometry(states, batch, cfg)
    groups = _agent_groups(batch)
    table = np.ones((len(Metric), len(states)))
    table[Metric.NC] = batch_no_at_fault_collision(geo, batch, groups, cfg)
    table[Metric.DAC] = np.where(geo.non_drivable.any(axis=1), 0.0, 1.0)
    table[Metric.DDC] = driving_direction_compliance(geo, cfg)
    table[Metric.TLC] = 1.0  # our maps have no traffic lights
    table[Metric.TTC] = batch_time_to_collision(geo, batch, groups, cfg)
    table[Metric.LK] = batch_lane_keeping(geo, batch, cfg)
    table[Metric.C], table[Metric.HC] = comfort_rows
    if prev_states is not None:
        for prev, s, c in zip(prev_states, batch.starts, batch.counts):
            if prev is not None:
                table[Metric.EC, s:s + c] = extended_comfort(states[s:s + c], prev, cfg)
    table[Metric.EP] = 0.0
    return table, batch_progress_raw(geo, batch)
