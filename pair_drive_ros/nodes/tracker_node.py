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
tracker_node: the planner's Path + Odometry -> vehicle control at `rate_hz`.

Pure pursuit + PI speed control (runtime/path_tracker.py). Output type, by what is importable
(or the `control_type` parameter): carla_msgs/CarlaEgoVehicleControl on
carla/<role>/vehicle_control_cmd, else ackermann_msgs/AckermannDrive on
carla/<role>/ackermann_cmd, else geometry_msgs/Twist on carla/<role>/twist (for
carla_twist_to_control); the names are relative, so they follow the node's namespace. A missing
or stale path (wall time > `path_timeout_s`) brakes. The gains and `path_timeout_s` may be set
while the node runs (`ros2 param set /tracker speed_kp 0.5`).
Inputs are validated and callbacks guarded (counted per topic in /diagnostics, never raised).
"""

from dataclasses import fields
import importlib
import time

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from pair_drive_ros import ros
from pair_drive_ros.core.trajectory import MAP_FRAME
from pair_drive_ros.nodes.guarding import NodeGuard
from pair_drive_ros.nodes.params import read_params, TrackerParams
from pair_drive_ros.ros.carla import carla_topics
from pair_drive_ros.ros.executor import spin_node_process
from pair_drive_ros.runtime import safety, validate
from pair_drive_ros.runtime.guard import Dropped
from pair_drive_ros.runtime.path_tracker import Command, ControlGains, PathTracker

THROTTLE_S = 2.0
CONTROL_TYPES = (('carla', 'carla_msgs.msg', 'CarlaEgoVehicleControl', 'control'),
                 ('ackermann', 'ackermann_msgs.msg', 'AckermannDrive', 'ackermann'),
                 ('twist', 'geometry_msgs.msg', 'Twist', 'twist'))


def pick_control_type(wanted: str = 'auto') -> tuple[str, type, str]:
    """(kind, message class, carla_topics key) for `wanted`, or the first importable one."""
    for kind, module, cls_name, topic_key in CONTROL_TYPES:
        if wanted not in ('auto', kind):
            continue
        try:
            return kind, getattr(importlib.import_module(module), cls_name), topic_key
        except (ImportError, AttributeError):
            if wanted == kind:
                raise ImportError(f'control_type {kind!r} needs {module}.{cls_name}')
    raise ValueError(f'control_type must be auto, carla, ackermann or twist, got {wanted!r}')


def control_message(kind: str, msg_type: type, cmd: Command, stamp):
    """Fill a control message of `kind` from a Command."""
    if kind == 'carla':
        # CARLA steers positive to the right (left-handed world); ours is positive to the left.
        return msg_type(header=ros.make_header(stamp, ''), throttle=float(cmd.throttle),
                        steer=float(np.clip(-cmd.steer, -1.0, 1.0)), brake=float(cmd.brake),
                        hand_brake=False, reverse=False, gear=1, manual_gear_shift=False)
    if kind == 'ackermann':
        return msg_type(steering_angle=float(cmd.steer_rad), speed=float(cmd.target_speed_mps),
                        acceleration=float(cmd.acceleration_mps2))
    msg = msg_type()
    msg.linear.x = float(cmd.target_speed_mps)
    msg.angular.z = float(cmd.target_speed_mps * cmd.curvature)
    return msg


def gains_of(p: TrackerParams) -> ControlGains:
    """Return the control gains of the tracker parameters."""
    # Every gain that is a parameter, by its one name; the rest keep ControlGains' defaults.
    return ControlGains(**{f.name: getattr(p, f.name) for f in fields(ControlGains)
                           if hasattr(p, f.name)})


class TrackerNode(Node):
    """Follow the latest planned path."""

    def __init__(self, **kwargs) -> None:
        super().__init__('tracker', **kwargs)
        from nav_msgs.msg import Odometry, Path

        self.params = p = read_params(self, TrackerParams, on_change=self._on_params)
        validate.validate_params(p)
        self.guard = NodeGuard(self, status=self._status)
        guard = self.guard.monitor
        self.kind, self._msg_type, topic_key = pick_control_type(p.control_type)
        topic = carla_topics(p.role_name, relative=True)[topic_key]
        self._pub = self.create_publisher(self._msg_type, topic, ros.reliable_qos(1))
        self._tracker = PathTracker(gains_of(p))
        self._path = None            # (times (N,), points (N, 2)) map frame
        self._path_wall = None
        self._odom = None
        self.commands = 0
        self.create_subscription(Path, p.path_topic, guard.guard('path', self._path_callback),
                                 ros.reliable_qos(1))
        self.create_subscription(Odometry, p.odometry_topic,
                                 guard.guard('odometry', self._odometry_callback),
                                 ros.sensor_qos())
        # Wall-clock timer: control must keep coming (braking) even if /clock stops.
        self.create_timer(1.0 / p.rate_hz, self._control_guarded,
                          clock=Clock(clock_type=ClockType.STEADY_TIME))
        self.get_logger().info(f'publishing {self._msg_type.__name__} ({self.kind}) on {topic} '
                               f'at {p.rate_hz:g} Hz')

    def _status(self) -> tuple[int, str, dict]:
        fresh = self._path is not None and \
            time.monotonic() - self._path_wall <= self.params.path_timeout_s
        level = safety.OK if fresh else safety.WARN
        return level, 'tracking' if fresh else 'braking: no fresh path', {
            'commands': str(self.commands), 'control_type': self.kind}

    def _on_params(self, old: TrackerParams, new: TrackerParams) -> None:
        # Gains and timeouts apply from the next control tick; the speed integral is kept.
        self._tracker.gains = gains_of(new)

    def _path_callback(self, msg) -> None:
        validate.check_frame(msg.header.frame_id, (MAP_FRAME, ''), 'Path')
        traj = ros.path_to_trajectory(msg)
        poses, times = traj.poses, traj.times_s
        if len(poses) == 0 or not np.all(np.isfinite(poses)) or not np.all(np.isfinite(times)):
            raise Dropped('empty_or_non_finite_path')
        if np.any(np.abs(poses[:, :2]) > validate.LIMITS.max_position_m):
            raise Dropped('implausible_path', 'poses outside the map bounds')
        self._path = (times, poses[:, :2])
        self._path_wall = time.monotonic()

    def _odometry_callback(self, msg) -> None:
        validate.check_frame(msg.header.frame_id, MAP_FRAME, 'odometry')
        ego = ros.odometry_to_ego_state(msg)
        validate.check_ego(ego.pose, ego.velocity, ego.yaw_rate)
        self._odom = ego

    def _control_guarded(self) -> None:
        try:
            self._control_callback()
        except Exception as err:  # noqa: B902  control must keep coming: brake instead
            self.guard.monitor.errors += 1
            self.get_logger().error(f'control failed ({type(err).__name__}: {err}); braking',
                                    throttle_duration_sec=THROTTLE_S)
            try:
                self._pub.publish(control_message(self.kind, self._msg_type,
                                                  self._tracker.stop(),
                                                  ros.seconds_to_stamp(self._odom.stamp_s)))
            except Exception:  # noqa: B902  nothing more to do than log (above)
                pass

    def _control_callback(self) -> None:
        p = self.params
        ego = self._odom
        if ego is None:
            return
        fresh = self._path is not None and time.monotonic() - self._path_wall <= p.path_timeout_s
        if not fresh:
            cmd = self._tracker.stop()
        else:
            times, points = self._path
            cmd = self._tracker.command(ego.pose, ego.speed, ego.stamp_s, times, points,
                                        1.0 / p.rate_hz)
        self._pub.publish(control_message(self.kind, self._msg_type, cmd,
                                          ros.seconds_to_stamp(ego.stamp_s)))
        self.commands += 1


def main(args=None) -> None:
    spin_node_process(TrackerNode, args)


if __name__ == '__main__':
    main()
