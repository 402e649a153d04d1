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
Path tracking for the tracker node: pure pursuit + a PI speed controller (numpy only).

The reference is a time-stamped map-frame path (the planner's Path: pose k at its own stamp).
Steering: pure pursuit on a bicycle model, delta = atan(L * kappa), kappa = 2 sin(alpha) / d to
the look-ahead point d = max(min_lookahead, lookahead_time * v) along the path. Speed: the path's
speed at now + lookahead_time, tracked by a PI controller that outputs throttle, or brake when
the car is too fast.
"""

from dataclasses import dataclass

import numpy as np

from pair_drive_ros.core.se2 import wrap_angle


@dataclass(frozen=True)
class ControlGains:
    """Controller settings (see TrackerParams for the ROS parameter names)."""

    wheelbase_m: float = 2.875
    max_steer_rad: float = 1.22
    min_lookahead_m: float = 3.0
    lookahead_time_s: float = 0.8
    speed_kp: float = 0.4
    speed_ki: float = 0.05
    max_throttle: float = 0.75
    brake_gain: float = 0.3
    integral_limit: float = 5.0


@dataclass
class Command:
    """One control output: steering angle (left positive) and speed targets."""

    steer_rad: float          # front wheel angle, positive to the left
    steer: float              # normalized [-1, 1], positive to the left
    throttle: float           # [0, 1]
    brake: float              # [0, 1]
    target_speed_mps: float
    curvature: float          # [1/m], positive to the left
    acceleration_mps2: float  # requested longitudinal acceleration


def reference_speed(times_s: np.ndarray, points: np.ndarray, t_s: float) -> float:
    """Speed [m/s] of a time-stamped polyline (P, 2) at time `t_s` (piecewise constant)."""
    times = np.asarray(times_s, dtype=np.float64)
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) < 2:
        return 0.0
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    speeds = seg / np.maximum(np.diff(times), 1e-3)
    k = int(np.clip(np.searchsorted(times, t_s, side='right') - 1, 0, len(speeds) - 1))
    return float(speeds[k])


def lookahead_point(pose: np.ndarray, points: np.ndarray, distance_m: float,
                    step_m: float = 0.25, min_ahead_m: float = 0.1) -> np.ndarray | None:
    """
    Return the pure-pursuit target: the first path point at least `distance_m` away.

    The path is densified every `step_m` (so the target moves smoothly along it); only points
    ahead of `pose` (x, y, yaw) by more than `min_ahead_m` along the heading count. Else the
    last point ahead; None if nothing is ahead.
    """
    pts = np.asarray(points, dtype=np.float64)
    if len(pts) == 0:
        return None
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    arc = np.r_[0.0, np.cumsum(seg)]
    if arc[-1] > 1e-6:
        s = np.arange(0.0, arc[-1] + 1e-9, step_m)
        pts = np.stack([np.interp(s, arc, pts[:, 0]), np.interp(s, arc, pts[:, 1])], -1)
    heading = np.array([np.cos(pose[2]), np.sin(pose[2])])
    rel = pts - pose[:2]
    ahead = rel @ heading > min_ahead_m
    far = np.linalg.norm(rel, axis=1) >= distance_m
    idx = np.nonzero(ahead & far)[0]
    if len(idx):
        return pts[idx[0]]
    idx = np.nonzero(ahead)[0]
    return pts[idx[-1]] if len(idx) else None


def pure_pursuit_curvature(pose: np.ndarray, target: np.ndarray) -> float:
    """Curvature [1/m] of the arc from `pose` (x, y, yaw) through `target` (x, y)."""
    d = np.asarray(target, dtype=np.float64) - pose[:2]
    dist = float(np.hypot(*d))
    if dist < 1e-6:
        return 0.0
    alpha = float(wrap_angle(np.arctan2(d[1], d[0]) - pose[2]))
    return 2.0 * np.sin(alpha) / dist


class PathTracker:
    """Stateful controller (the speed integral); `command` is called at the control rate."""

    def __init__(self, gains: ControlGains = ControlGains()) -> None:
        self.gains = gains
        self.integral = 0.0

    def reset(self) -> None:
        """Clear the integral term."""
        self.integral = 0.0

    def stop(self) -> Command:
        """Full brake, wheels straight."""
        self.integral = 0.0
        return Command(0.0, 0.0, 0.0, 1.0, 0.0, 0.0, -6.0)

    def command(self, pose: np.ndarray, speed_mps: float, now_s: float, times_s: np.ndarray,
                points: np.ndarray, dt_s: float) -> Command:
        """
        Control for the car at `pose` (map x, y, yaw) and `speed_mps` following the path.

        times_s: (P,) stamps [s] of the path points (P, 2) in the map frame; the car's current
        pose is prepended so that the first segment starts where the car is.
        """
        g = self.gains
        pose = np.asarray(pose, dtype=np.float64)
        pts = np.vstack([pose[:2], np.asarray(points, dtype=np.float64).reshape(-1, 2)])
        times = np.r_[min(now_s, float(times_s[0]) - 1e-3) if len(times_s) else now_s,
                      np.asarray(times_s, dtype=np.float64)]
        v_ref = reference_speed(times, pts, now_s + g.lookahead_time_s)
        lookahead = max(g.min_lookahead_m, g.lookahead_time_s * max(speed_mps, 0.0))
        target = lookahead_point(pose, pts[1:], lookahead)
        kappa = 0.0 if target is None or v_ref < 0.05 else pure_pursuit_curvature(pose, target)
        steer_rad = float(np.clip(np.arctan(g.wheelbase_m * kappa), -g.max_steer_rad,
                                  g.max_steer_rad))
        err = v_ref - float(speed_mps)
        self.integral = float(np.clip(self.integral + err * dt_s, -g.integral_limit,
                                      g.integral_limit))
        u = g.speed_kp * err + g.speed_ki * self.integral
        throttle = float(np.clip(u, 0.0, g.max_throttle))
        brake = 0.0
        if v_ref < 0.05:
            throttle, brake = 0.0, 1.0 if speed_mps < 0.5 else float(np.clip(
                g.brake_gain * speed_mps, 0.2, 1.0))
            self.integral = 0.0
        elif err < -0.5:
            throttle = 0.0
            brake = float(np.clip(g.brake_gain * (-err - 0.5), 0.0, 1.0))
        return Command(steer_rad=steer_rad, steer=steer_rad / g.max_steer_rad,
                       throttle=throttle, brake=brake, target_speed_mps=v_ref, curvature=kappa,
                       acceleration_mps2=float(np.clip(err / max(g.lookahead_time_s, 0.1),
                                                       -6.0, 3.0)))
