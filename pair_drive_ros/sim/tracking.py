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
The trajectory-tracking ego: pure pursuit + speed control inverted for highway-env's bicycle.

highway-env's ego is a kinematic bicycle with effective length L = 5 m:
heading_rate = v * sin(beta) / (L / 2), beta = atan(tan(steering) / 2). Pure pursuit gives the
curvature kappa = 2 sin(alpha) / d to a look-ahead point; inverting the model gives
beta = asin(kappa * L / 2) and steering = atan(2 tan(beta)). Longitudinally, a P controller on
the reference speed plus an along-track position term. The controller runs at every simulation
step (10 Hz) and follows a core.Trajectory (8 poses x 0.5 s, ego or map frame); a new plan can be
set at any step (receding horizon).
"""

from dataclasses import dataclass

from highway_env.vehicle.kinematics import Vehicle
import numpy as np

from pair_drive_ros.core.trajectory import MAP_FRAME, Trajectory
from pair_drive_ros.runtime.path_tracker import lookahead_point, pure_pursuit_curvature

WHEELBASE_M = 5.0  # highway-env Vehicle.LENGTH, the model's effective length
MAX_STEER_RAD = np.pi / 4
ACC_LIMITS = (-6.0, 4.0)


@dataclass(frozen=True)
class TrackerConfig:
    """Gains of the tracking controller."""

    k_speed: float = 1.5         # [1/s] on the reference speed error
    k_along: float = 0.5         # [1/s^2] on the along-track position error
    min_lookahead_m: float = 4.0
    lookahead_s: float = 0.6     # look-ahead distance = max(min, lookahead_s * speed)


@dataclass
class Plan:
    """
    A time-stamped map-frame reference: times (N+1,), points (N+1, 2), first = issue pose.

    knot_speeds (N+1,): speed at each knot, central differences inside, chosen at the ends so
    that the mean speed over the first and last segments matches the positions.
    """

    times: np.ndarray
    points: np.ndarray
    knot_speeds: np.ndarray = None

    def __post_init__(self) -> None:
        if self.knot_speeds is None:
            seg = np.linalg.norm(np.diff(self.points, axis=0), axis=1)
            dts = np.maximum(np.diff(self.times), 1e-6)
            v_seg = seg / dts
            v = np.empty(len(self.times))
            v[1:-1] = (seg[:-1] + seg[1:]) / (dts[:-1] + dts[1:])
            v[-1] = v_seg[-1] if len(v_seg) else 0.0
            if len(v) > 2:
                v[0] = max(0.0, 2.0 * v_seg[0] - v[1])
            else:
                v[0] = v_seg[0] if len(v_seg) else 0.0
            self.knot_speeds = v


def plan_from_trajectory(traj: Trajectory, ego_pose: np.ndarray, now_s: float) -> Plan:
    """
    Turn a trajectory issued at `now_s` from `ego_pose` (map frame) into a tracking plan.

    An ego-frame trajectory is expressed in the map frame with `ego_pose`; its pose k is at
    now_s + (k + 1) dt. A map-frame trajectory keeps its own t0_s if it is non-zero.
    """
    pose = np.asarray(ego_pose, dtype=np.float64)
    mtraj = traj.to_map(pose)
    t0 = now_s if (traj.frame != MAP_FRAME or traj.t0_s == 0.0) else traj.t0_s
    times = t0 + traj.dt_s * np.arange(len(traj) + 1)
    points = np.vstack([pose[:2], mtraj.xy])
    return Plan(times, points)


def track_control(position: np.ndarray, heading: float, speed: float, t: float, plan: Plan,
                  cfg: TrackerConfig = TrackerConfig()) -> tuple[float, float]:
    """Return acceleration [m/s^2] and steering [rad] following `plan`; the state is at time t."""
    tt, pts = plan.times, plan.points
    v_knot = plan.knot_speeds
    v_ref = float(np.interp(t, tt, v_knot))
    # Feed-forward: the reference's own acceleration (hard braking is followed, not lagged).
    k = int(np.clip(np.searchsorted(tt, t, side='right') - 1, 0, len(tt) - 2))
    a_ff = float((v_knot[k + 1] - v_knot[k]) / max(tt[k + 1] - tt[k], 1e-6)) \
        if t < tt[-1] else 0.0
    p_ref = np.array([np.interp(t, tt, pts[:, 0]), np.interp(t, tt, pts[:, 1])])
    fwd = np.array([np.cos(heading), np.sin(heading)])
    acc = a_ff + cfg.k_speed * (v_ref - speed) + cfg.k_along * float((p_ref - position) @ fwd)
    acc = float(np.clip(acc, *ACC_LIMITS))
    # The same pure pursuit as the tracker node (runtime.path_tracker), with this ego's
    # look-ahead settings, inverted for highway-env's bicycle model below.
    pose = np.array([position[0], position[1], heading], dtype=np.float64)
    lookahead = max(cfg.min_lookahead_m, cfg.lookahead_s * speed)
    target = lookahead_point(pose, pts, lookahead, step_m=0.5, min_ahead_m=0.5)
    if target is None:
        return acc, 0.0
    kappa = pure_pursuit_curvature(pose, target)
    beta = np.arcsin(np.clip(kappa * WHEELBASE_M / 2.0, -0.99, 0.99))
    steer = float(np.arctan(2.0 * np.tan(beta)))
    return acc, float(np.clip(steer, -MAX_STEER_RAD, MAX_STEER_RAD))


class TrackingVehicle(Vehicle):
    """
    highway-env ego that follows a time-stamped map-frame plan.

    Road.act() calls act() with no argument at every simulation step, so the controller runs at
    the simulation rate. Without a plan it holds its speed and steers straight.
    """

    def __init__(self, road, position, heading: float = 0.0, speed: float = 0.0,
                 cfg: TrackerConfig = TrackerConfig(), sim_dt_s: float = 0.1) -> None:
        super().__init__(road, np.asarray(position, dtype=np.float64), heading, speed)
        self.tracker_cfg = cfg
        self.sim_dt_s = sim_dt_s
        self.sim_t = 0.0
        self.plan: Plan | None = None

    @classmethod
    def replace(cls, vehicle, sim_dt_s: float = 0.1, cfg: TrackerConfig = TrackerConfig()
                ) -> 'TrackingVehicle':
        """Return a tracking vehicle at the state of `vehicle` (not yet on the road)."""
        return cls(vehicle.road, vehicle.position.copy(), vehicle.heading, vehicle.speed,
                   cfg=cfg, sim_dt_s=sim_dt_s)

    def pose(self) -> np.ndarray:
        """(3,) x, y, heading in the map frame."""
        return np.array([self.position[0], self.position[1], self.heading])

    def set_trajectory(self, traj: Trajectory, now_s: float | None = None) -> None:
        """Follow `traj` (ego frame relative to the current pose, or map frame) from now on."""
        if now_s is not None:
            self.sim_t = float(now_s)
        self.plan = plan_from_trajectory(traj, self.pose(), self.sim_t)

    def predict_trajectory_constant_speed(self, times: np.ndarray
                                          ) -> tuple[list[np.ndarray], list[float]]:
        """
        Constant speed and steering arcs, in closed form.

        highway-env's default deep-copies the vehicle, road included, and steps the copy: about
        6 ms per call, called for every vehicle pair by the intersection's right-of-way rules.
        """
        steer = float((self.action or {}).get('steering', 0.0))
        beta = np.arctan(0.5 * np.tan(steer))
        rate = self.speed * np.sin(beta) / (WHEELBASE_M / 2.0)
        times = np.asarray(times, dtype=np.float64)
        headings = self.heading + rate * times
        course = headings + beta
        if abs(rate) < 1e-6:
            ang = self.heading + beta
            xs = self.position[0] + self.speed * times * np.cos(ang)
            ys = self.position[1] + self.speed * times * np.sin(ang)
        else:
            r = self.speed / rate
            c0 = self.heading + beta
            xs = self.position[0] + r * (np.sin(course) - np.sin(c0))
            ys = self.position[1] - r * (np.cos(course) - np.cos(c0))
        return [np.array([x, y]) for x, y in zip(xs, ys)], [float(h) for h in headings]

    def act(self, action: dict | None = None) -> None:
        if action is not None:
            super().act(action)
            return
        if self.plan is None:
            acc, steer = 0.0, 0.0
        else:
            # The state is at sim_t: compare it with the reference at sim_t (comparing with
            # sim_t + dt biases the along-track term by v dt and the speed by ~0.8 m/s).
            acc, steer = track_control(self.position, self.heading, self.speed, self.sim_t,
                                       self.plan, self.tracker_cfg)
        self.action = {'acceleration': acc, 'steering': steer}
        self.sim_t += self.sim_dt_s
