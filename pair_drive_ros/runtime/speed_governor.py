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
The speed the road allows, enforced on a plan (numpy only; no ROS graph needed).

Like Autoware's velocity smoother or Nav2's speed filter and collision monitor, this sits
between the planner and the tracker: it keeps the plan's path and re-times it so that the speed
never exceeds
- the speed limit (times `limit_factor`), where one is known,
- the curve speed sqrt(lateral_accel / |curvature|) of the route at the same distance ahead,
- with `keep_gap`, what stops (or follows) behind the first obstacle in the plan's corridor:
  the LiDAR cells above the split height within `corridor_half_width_m` of the path, reached
  at the lead's own speed (estimated from the previous plan's obstacles) `standstill_gap_m +
  headway_s x |lead speed|` before it; with `lane_half_width_m` and `min_lead_speed_mps`,
  what stands in the ego's own lane (that close to the route) counts only as a lead that
  moves, as in adaptive cruise control, while what lies beside it (a road-edge barrier, a
  vehicle in another lane) counts wherever the plan heads into it,
and so that it brakes into a slower stretch at no more than `decel_mps2`. A plan that already
respects all of them is returned unchanged; the governor only ever slows a plan down, except
with `beside_lane_action: keep_lane`, where a plan that heads into something beside the lane
is replaced by the route's lane at the plan's speeds (`lane_keeping`; off by default).
"""

from dataclasses import dataclass, fields, replace

import numpy as np

from pair_drive_ros.core.config import config_from_dict
from pair_drive_ros.core.route import Route
from pair_drive_ros.core.se2 import inverse_transform_points, transform_points
from pair_drive_ros.core.trajectory import EGO_FRAME, MAP_FRAME, Trajectory

BESIDE_LANE_ACTIONS = ('stop', 'keep_lane')
STEP_M = 1.0        # resolution of the allowed-speed profile along the path
TIME_STEP_S = 0.02  # integration step of the re-timing


@dataclass(frozen=True)
class SpeedGovernorConfig:
    """Settings of the speed governor (ROS parameters `speed_governor.*` on the planner node)."""

    enabled: bool = False
    lateral_accel_mps2: float = 4.0  # curve speed = sqrt(lateral_accel / |route curvature|)
    decel_mps2: float = 2.0          # braking into a slower stretch ahead
    limit_factor: float = 1.0        # allowed speed = limit_factor x the speed limit
    chord_m: float = 5.0             # route curvature over chords this long
    keep_gap: bool = False           # follow / stop behind obstacles in the plan's corridor
    corridor_half_width_m: float = 1.5  # obstacle cells this close to the path block it
    # Cells this close to the route's centreline are the ego's lane (0: no lane, all cells are
    # in it). A barrier at the road's edge lies half a lane width or more from it.
    lane_half_width_m: float = 0.0
    standstill_gap_m: float = 5.0    # from the ego's centre to the obstacle, at a standstill
    headway_s: float = 1.0           # extra gap per m/s of the lead's speed
    max_lead_speed_mps: float = 40.0  # estimates beyond +- this are discarded (a new lead)
    # > 0: in the lane only a lead measured moving at least this fast along the path counts
    # (adaptive cruise: stationary returns in the lane are left to the planner)
    min_lead_speed_mps: float = 0.0
    # False: what lies beside the lane never counts (only the lane's lead: pure adaptive cruise)
    beside_lane: bool = True
    # What the governor does where the plan heads into something beside the lane: 'stop' short
    # of it, or 'keep_lane': drive the route's lane instead, at the plan's speeds (the offset
    # from the lane fading out over the plan), following the lane's lead only.
    beside_lane_action: str = 'stop'

    @classmethod
    def adaptive_cruise(cls, **overrides) -> 'SpeedGovernorConfig':
        """
        Return the governor with adaptive cruise: it follows a moving lead in the lane only.

        The planner node's default (chosen on val, docs/RESULTS.md "Keeping the gap").
        """
        return cls(**({'enabled': True, 'keep_gap': True, 'lane_half_width_m': 1.5,
                       'min_lead_speed_mps': 1.0, 'beside_lane': False} | overrides))

    @classmethod
    def from_dict(cls, values: dict) -> 'SpeedGovernorConfig':
        """Return the config of a saved dict, ignoring keys it does not know (older, newer)."""
        known = {f.name for f in fields(cls)}
        return config_from_dict(cls, {k: v for k, v in (values or {}).items() if k in known})

    def describe(self) -> str:
        """
        Return a short name of what the governor does, for result tables.

        'off', 'limits' (speed limit and curve speed only), 'adaptive cruise' (the lane's moving
        lead only), 'gap, lane apart' (the lane's lead and what lies beside the lane) or 'gap'
        (every obstacle cell in the plan's corridor).
        """
        if not self.enabled:
            return 'off'
        if not self.keep_gap:
            return 'limits'
        if self.lane_half_width_m > 0:
            if not self.beside_lane:
                return 'adaptive cruise'
            return 'gap, lane apart' + (', keeps the lane'
                                        if self.beside_lane_action == 'keep_lane' else '')
        return 'gap'

    def __post_init__(self) -> None:
        if self.beside_lane_action not in BESIDE_LANE_ACTIONS:
            raise ValueError(f'speed governor: beside_lane_action must be one of '
                             f'{BESIDE_LANE_ACTIONS}, got {self.beside_lane_action!r}')
        for name in ('lateral_accel_mps2', 'decel_mps2', 'limit_factor', 'chord_m',
                     'corridor_half_width_m', 'standstill_gap_m', 'max_lead_speed_mps'):
            value = float(getattr(self, name))
            if not (np.isfinite(value) and value > 0):
                raise ValueError(f'speed governor: {name} must be positive, got {value}')
        for name in ('headway_s', 'lane_half_width_m', 'min_lead_speed_mps'):
            value = float(getattr(self, name))
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f'speed governor: {name} must be >= 0, got {value}')


@dataclass(frozen=True)
class Obstacle:
    """The first obstacle in the plan's corridor: distance along the path [m], its speed."""

    distance_m: float
    speed_mps: float = 0.0   # along the path; negative: coming towards the ego
    measured: bool = False   # the speed was estimated (else 0.0: seen for the first time)
    beside: bool = False     # it lies beside the ego's lane (else in it, or no lane is known)


def corridor_hit(path_xy: np.ndarray, points: np.ndarray, half_width_m: float) -> float | None:
    """
    Return the distance [m] along a path to the first point within `half_width_m` of it.

    path_xy: (P, 2) ego frame, starting at the ego; points: (N, 2) ego frame. None when no
    point lies in the corridor.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    path = np.asarray(path_xy, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0 or len(path) < 2:
        return None
    if np.linalg.norm(np.diff(path, axis=0), axis=1).sum() < 1e-6:
        return None
    corridor = Route(path)
    s, lateral = corridor.project(pts)
    inside = (np.abs(lateral) <= half_width_m) & (s > 0.0) & (s < corridor.length - 1e-6)
    return float(s[inside].min()) if inside.any() else None


def allowed_speed(route: Route | None, s0_m: float, length_m: float,
                  speed_limit_mps: float | None, cfg: SpeedGovernorConfig,
                  obstacle: Obstacle | None = None) -> tuple[np.ndarray, np.ndarray]:
    """
    Return the highest speed [m/s] allowed at distances 0..length_m ahead of route arc s0.

    The distances are every STEP_M. The cap is the speed limit (if known and positive), the
    route's curve speed and, with an obstacle, the lead's speed (>= 0) from its gap before it
    onwards; then each point also allows no more than what brakes down to every later cap at
    decel_mps2: v(s)^2 = min over s' >= s of (cap(s')^2 + 2 decel (s' - s)). Returns
    (distances, speeds); the speeds are inf where nothing bounds them.
    """
    d = np.arange(0.0, max(float(length_m), 0.0) + STEP_M, STEP_M)
    cap = np.full(len(d), np.inf)
    limit = np.nan if speed_limit_mps is None else float(speed_limit_mps)
    if np.isfinite(limit) and limit > 0:
        cap[:] = cfg.limit_factor * limit
    if route is not None:
        kappa = route.curvature(s0_m + d, cfg.chord_m)
        # Past the route's end there is no road ahead to bound the speed.
        kappa = np.where(s0_m + d <= route.length, kappa, 0.0)
        with np.errstate(divide='ignore'):
            cap = np.minimum(cap, np.sqrt(cfg.lateral_accel_mps2 / kappa))
    if obstacle is not None:
        lead = float(obstacle.speed_mps)
        gap = cfg.standstill_gap_m + cfg.headway_s * abs(lead)
        behind = d >= obstacle.distance_m - gap   # all of it when the gap is already closed
        cap[behind] = np.minimum(cap[behind], max(lead, 0.0))
    reach = cap ** 2 + 2.0 * cfg.decel_mps2 * d
    allowed2 = np.minimum.accumulate(reach[::-1])[::-1] - 2.0 * cfg.decel_mps2 * d
    return d, np.sqrt(np.maximum(allowed2, 0.0))


def govern(traj: Trajectory, ego_pose: np.ndarray, route: Route | None,
           speed_limit_mps: float | None, cfg: SpeedGovernorConfig,
           obstacle: Obstacle | None = None) -> Trajectory:
    """
    Re-time `traj` (ego frame at `ego_pose`, or map frame) so its speed stays allowed.

    The path is kept; along it the plan's own speed profile is followed wherever it is below the
    allowed speed (`allowed_speed`, with route arc lengths measured from the ego's projection
    and advancing with the plan's path). Returns `traj` itself when nothing needs slowing.
    """
    if not cfg.enabled or (route is None and speed_limit_mps is None and obstacle is None):
        return traj
    ego_pose = np.asarray(ego_pose, dtype=np.float64)
    local = traj.to_ego(ego_pose) if traj.frame == MAP_FRAME else traj
    pts = np.vstack([np.zeros(2), local.xy])
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    arc = np.r_[0.0, np.cumsum(seg)]
    plan_speed = seg / local.dt_s
    s0 = 0.0 if route is None else float(route.project(ego_pose[:2][None])[0][0])
    d, allowed = allowed_speed(route, s0, arc[-1], speed_limit_mps, cfg, obstacle)
    if np.all(plan_speed <= np.interp(arc[:-1], d, allowed) + 1e-6) \
            and np.all(plan_speed <= np.interp(arc[1:], d, allowed) + 1e-6):
        return traj
    # Integrate ds/dt = min(plan speed at s, allowed speed at s) along the plan's path, never
    # ahead of where the plan itself is at that time (so a plan that waits still waits).
    t_end = local.dt_s * len(local)
    steps = int(np.ceil(t_end / TIME_STEP_S))
    dt = t_end / steps
    times = dt * np.arange(1, steps + 1)
    plan_s = np.interp(times, local.dt_s * np.arange(len(local) + 1), arc)
    s = np.empty(steps)
    pos = 0.0
    for i in range(steps):
        k = min(max(int(np.searchsorted(arc, pos, side='right')) - 1, 0), len(plan_speed) - 1)
        v = min(plan_speed[k], float(np.interp(pos, d, allowed)))
        pos = min(pos + v * dt, plan_s[i])
        s[i] = pos
    s_poses = np.interp(local.dt_s * np.arange(1, len(local) + 1), times, s)
    keep = np.r_[True, seg > 1e-9]
    yaw = np.unwrap(np.r_[0.0, local.poses[:, 2]])[keep]
    arc_k, pts_k = arc[keep], pts[keep]
    poses = np.stack([np.interp(s_poses, arc_k, pts_k[:, 0]),
                      np.interp(s_poses, arc_k, pts_k[:, 1]),
                      np.interp(s_poses, arc_k, yaw)], -1)
    if traj.frame == MAP_FRAME:
        return Trajectory(poses, local.dt_s, EGO_FRAME, local.t0_s).to_map(ego_pose)
    return Trajectory(poses, local.dt_s, traj.frame, local.t0_s)


def lane_keeping(local: Trajectory, ego_pose: np.ndarray, route: Route) -> Trajectory:
    """
    Return the route's lane driven at the plan's speeds (ego frame, as `local`).

    Pose i lies as far along the route from the ego's projection as the plan's pose i lies
    along the plan's path; the ego's offset from the route fades out linearly over the plan,
    so the path starts where the ego is.
    """
    ego_pose = np.asarray(ego_pose, dtype=np.float64)
    pts = np.vstack([np.zeros(2), local.xy])
    arc = np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))
    s0, lateral0 = route.project(ego_pose[:2][None])
    poses = route.interpolate(s0[0] + arc)
    fade = lateral0[0] * (1.0 - np.arange(1, len(arc) + 1) / len(arc))
    normal = np.stack([-np.sin(poses[:, 2]), np.cos(poses[:, 2])], -1)
    poses[:, :2] += fade[:, None] * normal
    lane = Trajectory(poses, local.dt_s, MAP_FRAME, local.t0_s)
    return lane.to_ego(ego_pose)


class SpeedGovernor:
    """
    The governor for one stream of plans (an episode, a node).

    It remembers the previous plan's obstacle cells in the map frame to tell the lead's speed.
    """

    def __init__(self, cfg: SpeedGovernorConfig) -> None:
        self.cfg = cfg
        self._previous: tuple[float, np.ndarray] | None = None  # stamp [s], map-frame cells

    def reset(self) -> None:
        """Forget the previous obstacles (a new episode, a time jump)."""
        self._previous = None

    def obstacle(self, traj: Trajectory, ego_pose: np.ndarray, stamp_s: float,
                 obstacles_xy: np.ndarray | None, route: Route | None = None
                 ) -> Obstacle | None:
        """
        Return the first obstacle in the corridor of `traj` (ego frame), with its speed.

        route: the map-frame route. With `lane_half_width_m` > 0 the cells that close to it are
        the ego's lane, and there only a lead moving at least `min_lead_speed_mps` counts; the
        cells beyond it (a road-edge barrier, a vehicle in another lane) count wherever the
        plan's corridor reaches them, unless `beside_lane` is false. Without a lane every cell
        is treated as in it.
        """
        cells = self._observe(ego_pose, stamp_s, obstacles_xy, route)
        return None if cells is None else self._obstacle_on(traj, cells)

    def _observe(self, ego_pose: np.ndarray, stamp_s: float, obstacles_xy: np.ndarray | None,
                 route: Route | None) -> tuple | None:
        """
        Return this plan's cells: (ego-frame cells, their in-lane mask, the previous cells).

        The previous cells are (seconds since, ego-frame cells, in-lane mask) or None; the
        cells are remembered for the next plan. None without cells.
        """
        if obstacles_xy is None:
            return None
        pts = np.asarray(obstacles_xy, dtype=np.float64).reshape(-1, 2)
        ego_pose = np.asarray(ego_pose, dtype=np.float64)
        pts_map = transform_points(ego_pose, pts)
        previous = self._previous
        self._previous = (float(stamp_s), pts_map)
        then = None
        if previous is not None and stamp_s > previous[0]:
            then = (stamp_s - previous[0], inverse_transform_points(ego_pose, previous[1]),
                    self._in_lane(route, previous[1]))
        return pts, self._in_lane(route, pts_map), then

    def _obstacle_on(self, traj: Trajectory, cells: tuple, beside_lane: bool | None = None
                     ) -> Obstacle | None:
        """
        Return the first obstacle of `cells` (see _observe) in the corridor of `traj`.

        beside_lane: whether the cells beside the lane count (None: the config's).
        """
        cfg = self.cfg
        pts, in_lane, then = cells
        path = np.vstack([np.zeros(2), traj.xy])
        lead = self._first(path, pts[in_lane], then)
        if lead is not None and cfg.min_lead_speed_mps > 0 \
                and not (lead.measured and lead.speed_mps >= cfg.min_lead_speed_mps):
            lead = None
        beside_lane = cfg.beside_lane if beside_lane is None else beside_lane
        aside = self._first(path, pts[~in_lane], then, in_lane=False) if beside_lane else None
        if aside is not None:
            aside = replace(aside, beside=True)
        hits = [h for h in (lead, aside) if h is not None]
        return min(hits, key=lambda h: h.distance_m) if hits else None

    def _in_lane(self, route: Route | None, pts_map: np.ndarray) -> np.ndarray:
        """Mask of the map-frame cells in the ego's lane (all of them when it is unknown)."""
        if self.cfg.lane_half_width_m <= 0 or route is None or len(pts_map) == 0:
            return np.ones(len(pts_map), dtype=bool)
        _, lateral = route.project(pts_map)
        return np.abs(lateral) <= self.cfg.lane_half_width_m

    def _first(self, path: np.ndarray, pts: np.ndarray, then,
               in_lane: bool = True) -> Obstacle | None:
        """
        Return the first of `pts` (ego frame) in the path's corridor, with its speed.

        then: (seconds since, ego-frame cells, their in-lane mask) of the previous plan, or
        None; the speed compares the first hit with the first of the previous cells on the
        same side of the lane boundary (`in_lane`).
        """
        cfg = self.cfg
        hit = corridor_hit(path, pts, cfg.corridor_half_width_m)
        if hit is None:
            return None
        if then is None:
            return Obstacle(hit)
        dt, before_xy, before_in_lane = then
        before = corridor_hit(path, before_xy[before_in_lane == in_lane],
                              cfg.corridor_half_width_m)
        if before is None or abs(hit - before) / dt > cfg.max_lead_speed_mps:
            return Obstacle(hit)
        return Obstacle(hit, (hit - before) / dt, measured=True)

    def __call__(self, traj: Trajectory, ego_pose: np.ndarray, stamp_s: float,
                 route: Route | None, speed_limit_mps: float | None,
                 obstacles_xy: np.ndarray | None = None) -> Trajectory:
        """`govern` with the obstacle of `obstacles_xy` ((N, 2) ego-frame cells) if keep_gap."""
        if not self.cfg.enabled:
            return traj
        obstacle = None
        if self.cfg.keep_gap:
            ego_pose = np.asarray(ego_pose, dtype=np.float64)
            local = traj.to_ego(ego_pose) if traj.frame == MAP_FRAME else traj
            cells = self._observe(ego_pose, stamp_s, obstacles_xy, route)
            obstacle = None if cells is None else self._obstacle_on(local, cells)
            if obstacle is not None and obstacle.beside and route is not None \
                    and self.cfg.beside_lane_action == 'keep_lane':
                # The plan heads out of the lane into something: keep the lane instead, and
                # there follow the lane's lead only (what lies beside the lane stays beside the
                # path: the lane's cells are those within lane_half_width_m of it).
                local = lane_keeping(local, ego_pose, route)
                traj = local.to_map(ego_pose) if traj.frame == MAP_FRAME else local
                obstacle = self._obstacle_on(local, cells, beside_lane=False)
        return govern(traj, ego_pose, route, speed_limit_mps, self.cfg, obstacle)
