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
Validation at the graph's boundary (no ROS): stamps, frames, plausibility, sizes, parameters.

Every check raises `guard.Dropped(reason, detail)` for an input the node must not use, so the
callback guard counts it as malformed input under that reason. Limits are physical bounds well
outside what a car does (they reject corrupted or hostile values, not unusual driving).
"""

from dataclasses import dataclass, fields
import math

import numpy as np

from pair_drive_ros.core.route import Route
from pair_drive_ros.runtime.guard import Dropped

NS = 1_000_000_000


@dataclass(frozen=True)
class Limits:
    """Plausibility bounds of inputs and outputs."""

    future_tolerance_s: float = 2.0       # stamps later than the node clock by more: rejected
    max_position_m: float = 1.0e6         # |x|, |y| of a map-frame pose
    max_speed_mps: float = 100.0          # 360 km/h
    max_accel_mps2: float = 50.0          # between consecutive odometry messages (5 g)
    max_yaw_rate_rps: float = 10.0
    max_image_pixels: int = 4096 * 4096
    max_image_bytes: int = 64 * 1024 * 1024
    max_cloud_points: int = 2_000_000
    max_cloud_bytes: int = 128 * 1024 * 1024
    max_route_poses: int = 2_000          # longer routes are resampled to this many poses
    max_plan_extent_m: float = 300.0      # ego-frame distance of any planned pose
    max_plan_step_m: float = 60.0         # between consecutive planned poses (0.5 s apart)


LIMITS = Limits()


def check_stamp(stamp_ns: int, now_ns: int | None = None, limits: Limits = LIMITS) -> int:
    """
    Check a sensor stamp the node may use: non-zero, not far in the future of `now_ns`.

    `now_ns` is the node clock at receipt; 0 or None (sim time before the first /clock) skips
    the future check. A zero stamp is an unset one, except while the clock itself is within
    the tolerance of zero (a simulation or bag that starts at time 0). Out-of-range
    nanoseconds are rejected by the decoder already.
    """
    if stamp_ns < 0:
        raise Dropped('negative_stamp', f'{stamp_ns} ns')
    if stamp_ns == 0 and (now_ns or 0) > limits.future_tolerance_s * NS:
        raise Dropped('zero_stamp', 'header.stamp is unset')
    if now_ns and stamp_ns - now_ns > limits.future_tolerance_s * NS:
        raise Dropped('future_stamp', f'{(stamp_ns - now_ns) / NS:.3f} s ahead of the clock')
    return stamp_ns


def check_frame(frame_id: str, expected: tuple | str, what: str) -> str:
    """`frame_id` is one of `expected` (a name or a tuple of names)."""
    expected = (expected,) if isinstance(expected, str) else tuple(expected)
    if frame_id not in expected:
        raise Dropped('wrong_frame', f'{what} in frame {frame_id!r}, expected '
                      + ' or '.join(repr(e) for e in expected))
    return frame_id


def check_sensor_frame(frame_id: str, what: str) -> str:
    """Check that a sensor message is in a sensor (vehicle-fixed) frame, not a world frame."""
    if not frame_id or frame_id in ('map', 'world', 'odom', 'earth'):
        raise Dropped('wrong_frame', f'{what} in frame {frame_id!r}, expected a sensor frame')
    return frame_id


def check_image_size(height: int, width: int, step: int, data_len: int,
                     limits: Limits = LIMITS) -> None:
    """Image dimensions a decoder can use: non-empty, bounded."""
    if height <= 0 or width <= 0:
        raise Dropped('empty_image', f'{height}x{width}')
    if height * width > limits.max_image_pixels or data_len > limits.max_image_bytes \
            or step > limits.max_image_bytes:
        raise Dropped('oversized_image', f'{height}x{width}, {data_len} bytes')


def check_cloud_size(height: int, width: int, point_step: int, data_len: int,
                     limits: Limits = LIMITS) -> None:
    """Point cloud dimensions a decoder can use: bounded (an empty cloud is a valid scan)."""
    if height * width > limits.max_cloud_points or data_len > limits.max_cloud_bytes \
            or point_step * width > limits.max_cloud_bytes:
        raise Dropped('oversized_cloud', f'{height}x{width} points, {data_len} bytes')


def check_ego(pose: np.ndarray, velocity: np.ndarray, yaw_rate: float,
              limits: Limits = LIMITS) -> None:
    """Position, speed and yaw rate of one odometry message within physical bounds."""
    pose = np.asarray(pose, dtype=np.float64)
    velocity = np.asarray(velocity, dtype=np.float64)
    if not (np.all(np.isfinite(pose)) and np.all(np.isfinite(velocity))
            and math.isfinite(yaw_rate)):
        raise Dropped('non_finite_odometry')
    if np.any(np.abs(pose[:2]) > limits.max_position_m):
        raise Dropped('implausible_position', f'({pose[0]:.3g}, {pose[1]:.3g}) m')
    speed = float(np.hypot(*velocity))
    if speed > limits.max_speed_mps:
        raise Dropped('implausible_speed', f'{speed:.3g} m/s')
    if abs(yaw_rate) > limits.max_yaw_rate_rps:
        raise Dropped('implausible_yaw_rate', f'{yaw_rate:.3g} rad/s')


class AccelerationCheck:
    """
    Reject odometry whose speed changed faster than `max_accel_mps2` since the last accepted.

    A gap of more than `reset_after_s` (or time going backwards: a new episode, a bag loop) or
    `max_rejections` rejections in a row starts over from the current message, so a real jump
    (teleport, reset) is accepted after a moment instead of blocking odometry forever.
    """

    def __init__(self, limits: Limits = LIMITS, reset_after_s: float = 1.0,
                 max_rejections: int = 3) -> None:
        self.limits = limits
        self.reset_after_s = reset_after_s
        self.max_rejections = max_rejections
        self._last: tuple[float, np.ndarray] | None = None
        self._rejections = 0

    def check(self, stamp_s: float, velocity_map: np.ndarray) -> None:
        """Raise Dropped('implausible_acceleration') or remember this message."""
        v = np.asarray(velocity_map, dtype=np.float64)
        last = self._last
        if last is not None and self._rejections < self.max_rejections:
            dt = stamp_s - last[0]
            if 0 < dt <= self.reset_after_s:
                accel = float(np.hypot(*(v - last[1]))) / dt
                if accel > self.limits.max_accel_mps2:
                    self._rejections += 1
                    raise Dropped('implausible_acceleration', f'{accel:.3g} m/s^2')
        self._last = (stamp_s, v)
        self._rejections = 0


def cap_route(route: Route, limits: Limits = LIMITS) -> Route:
    """Check the route is inside the map bounds; resample it by arc length to max poses."""
    pts = route.points
    if np.any(np.abs(pts) > limits.max_position_m):
        raise Dropped('implausible_route', 'route leaves the map bounds')
    n = limits.max_route_poses
    if len(pts) <= n:
        return route
    return Route(route.interpolate(np.linspace(0.0, route.length, n))[:, :2])


def plan_is_plausible(poses_ego: np.ndarray, limits: Limits = LIMITS) -> str:
    """'' if an ego-frame (N, 3) plan is finite and within extent and step bounds, else why."""
    poses = np.asarray(poses_ego, dtype=np.float64)
    if poses.ndim != 2 or poses.shape[0] == 0 or poses.shape[1] < 2:
        return f'plan has shape {poses.shape}'
    if not np.all(np.isfinite(poses)):
        return 'plan has non-finite values'
    extent = float(np.max(np.hypot(poses[:, 0], poses[:, 1])))
    if extent > limits.max_plan_extent_m:
        return f'plan reaches {extent:.3g} m from the ego'
    steps = np.hypot(*np.diff(np.vstack([np.zeros((1, 2)), poses[:, :2]]), axis=0).T)
    if float(steps.max()) > limits.max_plan_step_m:
        return f'plan step of {float(steps.max()):.3g} m'
    return ''


# ---- parameters ----------------------------------------------------------------------------
# (lower bound, upper bound, lower bound inclusive) per parameter name; checked at start-up.
PARAM_RANGES = {
    'sync_slop_s': (0.0, 1.0, False), 'sync_queue': (1, 1000, True),
    'camera_fov_deg': (1.0, 179.0, True),
    'torch_threads': (0, 256, True), 'gil_switch_interval_s': (0.0, 1.0, True),
    'max_input_age_s': (0.0, 60.0, False), 'stop_decel_mps2': (0.1, 15.0, True),
    'diagnostics_period_s': (0.0, 60.0, False), 'watchdog_period_s': (0.0, 10.0, False),
    'pending_frames': (1, 1000, True),
    'rate_hz': (0.0, 1000.0, False), 'wheelbase_m': (0.0, 20.0, False),
    'max_steer_rad': (0.0, 3.2, False), 'min_lookahead_m': (0.0, 100.0, False),
    'lookahead_time_s': (0.0, 10.0, True), 'speed_kp': (0.0, 100.0, True),
    'speed_ki': (0.0, 100.0, True), 'max_throttle': (0.0, 1.0, False),
    'brake_gain': (0.0, 100.0, True), 'path_timeout_s': (0.0, 60.0, False),
    'max_steps': (0, 10 ** 7, True), 'tick_rate_hz': (0.0, 1000.0, False),
    'answer_timeout_s': (0.0, 600.0, False), 'start_time_s': (0.0, 2.0 ** 31 - 1, True),
    'camera_width': (1, 8192, True), 'camera_height': (1, 8192, True),
}
PARAM_CHOICES = {
    'control_type': ('auto', 'carla', 'ackermann', 'twist'),
    'tick_mode': ('lockstep', 'rate'),
}


class ParameterRangeError(ValueError):
    """A node parameter outside its allowed range (one line naming it and the range)."""


def validate_params(params) -> None:
    """
    Range-check a node's parameter dataclass at start-up; ParameterRangeError names the first.

    A zero deceleration or rate would only fail later, at the first stop or timer, when the
    node can no longer act safely; refusing to start is the safe answer.
    """
    for f in fields(params):
        value = getattr(params, f.name)
        if f.name in PARAM_RANGES and not isinstance(value, bool):
            lo, hi, lo_inclusive = PARAM_RANGES[f.name]
            ok = isinstance(value, (int, float)) and math.isfinite(value) and value <= hi \
                and (value >= lo if lo_inclusive else value > lo)
            if not ok:
                low = f'[{lo:g}' if lo_inclusive else f'({lo:g}'
                raise ParameterRangeError(
                    f'parameter {f.name} = {value!r} is out of range {low}, {hi:g}]')
        choices = PARAM_CHOICES.get(f.name)
        if choices and value not in choices:
            raise ParameterRangeError(f'parameter {f.name} = {value!r} must be one of '
                                      + ', '.join(choices))
        if isinstance(value, tuple) and not all(math.isfinite(v) for v in value):
            raise ParameterRangeError(f'parameter {f.name} = {value!r} must be finite')
