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
Experts that drive the ego for demonstrations.

- 'idm': highway-env's IDMVehicle (IDM longitudinal + MOBIL lane changes) in the ego's place,
  following the ego's planned route. Clean on highway and merge.
- 'search': branch-and-score. Every 0.5 s, speed profiles along the route centreline are rolled
  out for `horizon_s` on copies of the road (reactive IDM traffic); candidates that collide are
  rejected; the rest are scored by progress minus a time-to-collision margin penalty (the ego box
  swept forward by `ttc_margin_s` of travel must not touch another vehicle). The chosen profile
  becomes an 8 x 0.5 s trajectory tracked by the trajectory-tracking ego.
"""

import copy
from dataclasses import dataclass
from typing import Any

from highway_env import utils as hw_utils
from highway_env.vehicle.behavior import IDMVehicle
from highway_env.vehicle.controller import MDPVehicle
import numpy as np

from pair_drive_ros.core.route import Route
from pair_drive_ros.core.trajectory import MAP_FRAME, NUM_POSES, POSE_DT_S, Trajectory
from pair_drive_ros.sim.tracking import TrackingVehicle


class SpeedIndexMixin:
    """
    The speed-index attributes highway-env's envs read from their controlled vehicle.

    The two-way and u-turn rewards and the TimeToCollision observation read `speed_index` and
    `target_speeds` (MDPVehicle's discrete speeds); the two-way reward reads
    `target_lane_index`. An ego of another class keeps the env's speed grid and reports the
    grid index closest to its actual speed, so such code runs whoever drives.
    """

    target_speeds: np.ndarray = MDPVehicle.DEFAULT_TARGET_SPEEDS

    @property
    def speed_index(self) -> int:
        """Index of the target speed closest to the current speed."""
        return self.speed_to_index(self.speed)

    def index_to_speed(self, index: int) -> float:
        """Speed of a grid index."""
        return float(self.target_speeds[index])

    def speed_to_index(self, speed: float) -> int:
        """Index of the grid speed closest to `speed`."""
        return int(np.argmin(np.abs(np.asarray(self.target_speeds) - speed)))


class IDMEgo(SpeedIndexMixin, IDMVehicle):
    """highway-env's IDM/MOBIL vehicle as the ego (the 'idm' expert)."""


class TrackingEgo(SpeedIndexMixin, TrackingVehicle):
    """The trajectory-tracking ego (planners and the 'search' expert)."""

    @property
    def target_lane_index(self) -> tuple | None:
        """Return the lane it is on: it follows trajectories, not lane targets."""
        return self.lane_index


def _target_speeds(old: Any) -> np.ndarray:
    speeds = getattr(old, 'target_speeds', None)
    return np.asarray(MDPVehicle.DEFAULT_TARGET_SPEEDS if speeds is None else speeds,
                      dtype=np.float64)


def make_idm_ego(old: Any) -> IDMEgo:
    """Return an IDM/MOBIL vehicle at the state of `old`, keeping its route and speed as target."""
    route = [tuple(r) for r in (getattr(old, 'route', None) or [])] or None
    ego = IDMEgo(old.road, old.position.copy(), old.heading, old.speed,
                 target_speed=max(float(old.speed), 5.0), route=route)
    ego.target_speeds = _target_speeds(old)
    return ego


def make_tracking_ego(old: Any, sim_dt_s: float) -> TrackingEgo:
    """Return a trajectory-tracking ego at the state of `old`, keeping its planned route."""
    ego = TrackingEgo.replace(old, sim_dt_s=sim_dt_s)
    # Keep the planned route so that the route chain and the expert see it.
    ego.route = [tuple(r) for r in (getattr(old, 'route', None) or [])] or None
    ego.target_speeds = _target_speeds(old)
    return ego


@dataclass(frozen=True)
class SearchConfig:
    """Branch-and-score expert parameters."""

    # [m/s^2] candidate profiles, most progress first: the first clean one is taken.
    accelerations: tuple = (1.5, 0.5, 0.0, -1.5, -3.5, -6.0)
    horizon_s: float = 5.0           # branch rollout length
    plan_poses: int = 12             # poses (0.5 s apart) of the tracked plan, >= horizon
    branch_dt_s: float = 0.1         # = the simulation step, so a branch replays reality exactly
    ttc_margin_s: float = 1.0        # swept-box look-ahead [s of travel]
    margin_weight: float = 1.0       # penalty per margin-violating branch step [m of progress]
    blocking_penalty: float = 40.0   # ending the rollout inside a conflict zone below...
    commit_speed_mps: float = 2.0    # ...this speed (waiting inside it)
    max_lat_accel: float = 3.5       # curvature speed cap [m/s^2]
    max_speed_mps: float | None = None   # default: the ego lane's speed limit
    conflict_dist_m: float = 3.0     # route points this close to a non-route lane conflict
    stop_margin_m: float = 3.5       # stop line: ego centre this far before a conflict zone


def conflict_mask(route: Route, lanes: list, route_lane_ids: list[str],
                  dist_m: float = 3.0) -> np.ndarray:
    """
    Route points (P,) closer than dist_m to a lane of another road segment.

    Lanes of the route's own segments (any lane index) do not count; what remains are crossing,
    merging and diverging lanes: the intersection box, the roundabout ring entries.
    """
    edges = {tuple(x.rsplit(':', 2)[:2]) for x in route_lane_ids}
    others = [ln.centerline for ln in lanes
              if tuple(ln.lane_id.rsplit(':', 2)[:2]) not in edges]
    if not others:
        return np.zeros(len(route.points), dtype=bool)
    pts = np.concatenate([_densify_polyline(c, 1.0) for c in others])
    mask = np.zeros(len(route.points), dtype=bool)
    for start in range(0, len(route.points), 256):
        q = route.points[start:start + 256]
        d2 = ((q[:, None, :] - pts[None, :, :]) ** 2).sum(-1).min(1)
        mask[start:start + 256] = d2 < dist_m ** 2
    return mask


def _densify_polyline(pts: np.ndarray, step: float) -> np.ndarray:
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]
    s = np.arange(0.0, arc[-1] + 1e-9, step)
    return np.stack([np.interp(s, arc, pts[:, 0]), np.interp(s, arc, pts[:, 1])], -1)


def speed_profile(route: Route, s0: float, v0: float, accel: float, vmax: float,
                  max_lat_accel: float, steps: int, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """
    Arc lengths (steps,) and speeds (steps,) after each dt of a constant-accel profile.

    The speed is capped by vmax and by sqrt(max_lat_accel / curvature) along the route.
    """
    h = route.headings
    seg = np.diff(route.arc_length)
    curv = np.abs(np.r_[0.0, np.diff(np.unwrap(h)) / np.maximum(seg[1:], 1e-3), 0.0])
    mid = np.r_[route.arc_length[0], 0.5 * (route.arc_length[1:-1] + route.arc_length[2:]),
                route.arc_length[-1]] if len(h) > 1 else route.arc_length[:2]
    s_arr = np.empty(steps)
    v_arr = np.empty(steps)
    s, v = s0, v0
    for k in range(steps):
        # Look ahead one braking distance for the curvature cap.
        ahead = (mid >= s) & (mid <= s + max(5.0, v * 2.0))
        kmax = float(curv[:len(mid)][ahead].max()) if ahead.any() else 0.0
        vcap = min(vmax, np.sqrt(max_lat_accel / kmax) if kmax > 1e-4 else vmax)
        v_new = float(np.clip(v + accel * dt, 0.0, max(vcap, 0.0)))
        if v_new > v and v > vcap:
            v_new = v
        s += 0.5 * (v + v_new) * dt
        v = v_new
        s_arr[k], v_arr[k] = s, v
    return s_arr, v_arr


class SearchExpert:
    """
    Branch-and-score planner over a fixed route (see module docstring).

    conflict: (P,) bool per route point, True inside conflict zones (see conflict_mask). A
    'stop at the line' candidate is added while the ego is before the next zone, and a rollout
    that ends inside a zone slower than `commit_speed_mps` is penalized (waiting belongs before
    the line).
    """

    def __init__(self, route: Route, cfg: SearchConfig = SearchConfig(),
                 conflict: np.ndarray | None = None) -> None:
        self.route = route
        self.cfg = cfg
        self.conflict = (np.zeros(len(route.points), bool) if conflict is None
                         else np.asarray(conflict, bool))

    def in_conflict(self, s: float) -> bool:
        """Whether the ego box around route arc length s overlaps a conflict zone."""
        arc = self.route.arc_length
        near = (arc >= s - 2.5) & (arc <= s + 2.5)
        return bool(self.conflict[near].any())

    def stop_line(self, s0: float) -> float | None:
        """Arc length where to stop before the next conflict zone ahead of s0 (None if none)."""
        arc = self.route.arc_length
        ahead = np.nonzero(self.conflict & (arc > s0))[0]
        if not len(ahead):
            return None
        first = ahead[0]
        if first > 0 and self.conflict[first - 1]:
            return None  # already inside the zone
        return float(arc[first]) - self.cfg.stop_margin_m

    def candidates(self, ego: Any) -> list[Trajectory]:
        """Map-frame candidate trajectories (8 poses at 0.5 s)."""
        s0, _ = self.route.project(ego.position)
        s0 = float(s0)
        v0 = max(float(ego.speed), 0.0)
        vmax = self.cfg.max_speed_mps or float(getattr(ego.lane, 'speed_limit', 10.0) or 10.0)
        out = []
        dt = 0.1
        steps = int(round(max(NUM_POSES, self.cfg.plan_poses) * POSE_DT_S / dt))
        for a in self.cfg.accelerations:
            s, _ = speed_profile(self.route, s0, v0, a, vmax, self.cfg.max_lat_accel, steps, dt)
            out.append(self._traj(s))
        line = self.stop_line(s0)
        if line is not None and line > s0 + 0.5:
            decel = v0 * v0 / (2.0 * (line - s0))
            if decel <= 7.0:
                t = dt * np.arange(1, steps + 1)
                v = np.maximum(v0 - decel * t, 0.0)
                s = np.minimum(s0 + np.cumsum(v) * dt, line)
                out.append(self._traj(s))
        # Drop duplicates (e.g. every braking profile when already stopped), then most progress
        # first: `plan` takes the first clean candidate.
        unique = []
        for tr in out:
            if not any(np.allclose(tr.poses, u.poses, atol=0.05) for u in unique):
                unique.append(tr)
        unique.sort(key=lambda tr: -float(self.route.project(tr.poses[-1, :2])[0]))
        return unique

    def _traj(self, s: np.ndarray) -> Trajectory:
        poses = self.route.interpolate(s[4::5])
        return Trajectory(poses, POSE_DT_S, MAP_FRAME, 0.0)

    def plan(self, road: Any, ego: Any, now_s: float) -> Trajectory:
        """Return the best candidate from the current road state (map frame, issued at now_s)."""
        cands = self.candidates(ego)
        idx = road.vehicles.index(ego)
        best, best_score = cands[0], -np.inf
        for cand in cands:
            score, clean = self._score(road, idx, cand, now_s)
            if clean:
                return cand   # no collision, margin or blocking issue: the most progress wins
            if score > best_score:
                best, best_score = cand, score
        return best

    def _score(self, road: Any, ego_idx: int, cand: Trajectory, now_s: float
               ) -> tuple[float, bool]:
        cfg = self.cfg
        branch = copy.deepcopy(road)
        ego = branch.vehicles[ego_idx]
        ego.sim_dt_s = cfg.branch_dt_s
        ego.set_trajectory(cand, now_s)
        s_start, _ = self.route.project(ego.position)
        n = int(round(cfg.horizon_s / cfg.branch_dt_s))
        penalty = 0.0
        for j in range(n):
            branch.act()
            branch.step(cfg.branch_dt_s)
            if ego.crashed:
                return -1000.0 + j, False
            penalty += self._margin_violation(branch, ego)
        s_end, _ = self.route.project(ego.position)
        score = float(s_end - s_start) - cfg.margin_weight * penalty
        blocking = ego.speed < cfg.commit_speed_mps and self.in_conflict(float(s_end))
        if blocking:
            score -= cfg.blocking_penalty
        return score, penalty == 0.0 and not blocking

    def _margin_violation(self, road: Any, ego: Any) -> float:
        reach = ego.speed * self.cfg.ttc_margin_s
        length = ego.LENGTH + reach
        fwd = np.array([np.cos(ego.heading), np.sin(ego.heading)])
        centre = ego.position + fwd * reach * 0.5
        box = (centre, length, ego.WIDTH * 1.2, ego.heading)
        for v in road.vehicles:
            if v is ego or np.linalg.norm(v.position - centre) > length + v.LENGTH:
                continue
            if hw_utils.rotated_rectangles_intersect(box, (v.position, v.LENGTH, v.WIDTH,
                                                           v.heading)):
                return 1.0
        return 0.0
