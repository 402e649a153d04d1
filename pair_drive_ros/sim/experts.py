"""Experts that drive the ego for demonstrations.

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
import numpy as np

from pair_drive_ros.core.route import Route
from pair_drive_ros.core.trajectory import MAP_FRAME, NUM_POSES, POSE_DT_S, Trajectory


def make_idm_ego(old: Any) -> IDMVehicle:
    """Return an IDM/MOBIL vehicle at the state of `old`, keeping its route and speed as target."""
    route = [tuple(r) for r in (getattr(old, 'route', None) or [])] or None
    ego = IDMVehicle(old.road, old.position.copy(), old.heading, old.speed,
                     target_speed=max(float(old.speed), 5.0), route=route)
    return ego


@dataclass(frozen=True)
class SearchConfig:
    """Branch-and-score expert parameters."""

    accelerations: tuple = (-6.0, -3.0, -1.0, 0.0, 1.0, 2.5)   # [m/s^2] candidate profiles
    horizon_s: float = 3.0           # branch rollout length
    branch_dt_s: float = 0.2         # branch simulation step (coarser than 0.1 s: 2x cheaper)
    ttc_margin_s: float = 1.0        # swept-box look-ahead [s of travel]
    margin_weight: float = 4.0       # penalty per margin-violating branch step [m of progress]
    max_lat_accel: float = 2.5       # curvature speed cap [m/s^2]
    max_speed_mps: float | None = None   # default: the ego lane's speed limit


def speed_profile(route: Route, s0: float, v0: float, accel: float, vmax: float,
                  max_lat_accel: float, steps: int, dt: float) -> tuple[np.ndarray, np.ndarray]:
    """Arc lengths (steps,) and speeds (steps,) after each dt of a constant-accel profile.

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
    """Branch-and-score planner over a fixed route (see module docstring)."""

    def __init__(self, route: Route, cfg: SearchConfig = SearchConfig()) -> None:
        self.route = route
        self.cfg = cfg

    def candidates(self, ego: Any) -> list[Trajectory]:
        """Map-frame candidate trajectories (8 poses at 0.5 s), one per acceleration."""
        s0, _ = self.route.project(ego.position)
        vmax = self.cfg.max_speed_mps or float(getattr(ego.lane, 'speed_limit', 10.0) or 10.0)
        out = []
        dt = 0.1
        steps = int(round(NUM_POSES * POSE_DT_S / dt))
        for a in self.cfg.accelerations:
            s, _ = speed_profile(self.route, float(s0), max(float(ego.speed), 0.0), a, vmax,
                                 self.cfg.max_lat_accel, steps, dt)
            poses = self.route.interpolate(s[4::5])
            out.append(Trajectory(poses, POSE_DT_S, MAP_FRAME, 0.0))
        return out

    def plan(self, road: Any, ego: Any, now_s: float) -> Trajectory:
        """Return the best candidate from the current road state (map frame, issued at now_s)."""
        cands = self.candidates(ego)
        idx = road.vehicles.index(ego)
        best, best_score = cands[0], -np.inf
        for cand in cands:
            score = self._score(road, idx, cand, now_s)
            if score > best_score:
                best, best_score = cand, score
        return best

    def _score(self, road: Any, ego_idx: int, cand: Trajectory, now_s: float) -> float:
        cfg = self.cfg
        branch = copy.deepcopy(road)
        ego = branch.vehicles[ego_idx]
        ego.sim_dt_s = cfg.branch_dt_s
        ego.set_trajectory(cand, now_s)
        start = ego.position.copy()
        s_start, _ = self.route.project(start)
        n = int(round(cfg.horizon_s / cfg.branch_dt_s))
        penalty = 0.0
        for j in range(n):
            branch.act()
            branch.step(cfg.branch_dt_s)
            if ego.crashed:
                return -1000.0 + j
            penalty += self._margin_violation(branch, ego)
        s_end, _ = self.route.project(ego.position)
        return float(s_end - s_start) - cfg.margin_weight * penalty

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
