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

"""nav_msgs Path/Odometry <-> core Trajectory, Route and EgoState."""

import logging
import math
from typing import Any, Optional

import numpy as np

from pair_drive_ros.core import EgoState, MAP_FRAME, POSE_DT_S, Route, Trajectory
from pair_drive_ros.ros._fields import field, str_field
from pair_drive_ros.ros.errors import CodecError, MalformedMessageError
from pair_drive_ros.ros.stamps import (nanoseconds_to_stamp, seconds_to_nanoseconds,
                                       seconds_to_stamp, stamp_to_nanoseconds, stamp_to_seconds)

logger = logging.getLogger(__name__)

# Relative spread of pose-stamp intervals still read as one fixed dt.
_DT_TOLERANCE = 1e-3


def yaw_to_quaternion(yaw_rad: float) -> tuple[float, float, float, float]:
    """Return the (x, y, z, w) quaternion of a rotation by `yaw_rad` about z."""
    half = 0.5 * float(yaw_rad)
    return 0.0, 0.0, math.sin(half), math.cos(half)


def quaternion_to_yaw(q: Any, kind: str = 'orientation') -> float:
    """Return the yaw [rad] of a geometry_msgs/Quaternion (need not be normalised)."""
    x, y, z, w = (_number(q, c, kind) for c in 'xyzw')
    norm2 = x * x + y * y + z * z + w * w
    if not (math.isfinite(norm2) and norm2 > 1e-12):
        raise MalformedMessageError(
            f'{kind} quaternion (x={x}, y={y}, z={z}, w={w}) is not finite and non-zero')
    # Scale-invariant form, so an unnormalised quaternion gives the same yaw.
    return math.atan2(2.0 * (w * z + x * y), w * w + x * x - y * y - z * z)


def transform_to_mount(transform: Any) -> tuple[float, float, float, float]:
    """
    Return a geometry_msgs/Transform as a sensor mount (x, y, z [m], yaw [rad]).

    Roll and pitch are dropped: the sensor models mount sensors level (yaw only).
    """
    translation = field(transform, 'translation', 'Transform')
    rotation = field(transform, 'rotation', 'Transform')
    return (*(_number(translation, c, 'Transform.translation') for c in 'xyz'),
            quaternion_to_yaw(rotation, 'Transform.rotation'))


def mounts_from_tf(msg: Any, parent: str, children: dict[str, str]) -> dict[str, tuple]:
    """
    Return the mounts of the transforms `parent -> child` in a tf2_msgs/TFMessage.

    `children` maps a key (e.g. 'lidar_mount') to its child frame; the result maps the keys
    whose transform is in `msg` to (x, y, z, yaw). Frame names compare without a leading '/'.
    Other transforms are ignored; the last of repeated ones wins.
    """
    def bare(name: str) -> str:
        return name.lstrip('/')

    wanted = {bare(child): key for key, child in children.items()}
    out = {}
    for ts in field(msg, 'transforms', 'TFMessage'):
        header = field(ts, 'header', 'TransformStamped')
        if bare(str_field(header, 'frame_id', 'TransformStamped.header')) != bare(parent):
            continue
        key = wanted.get(bare(str_field(ts, 'child_frame_id', 'TransformStamped')))
        if key is not None:
            out[key] = transform_to_mount(field(ts, 'transform', 'TransformStamped'))
    return out


def _number(msg: Any, name: str, kind: str) -> float:
    value = field(msg, name, kind)
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise MalformedMessageError(f'{kind}.{name} must be a number, got {value!r}') from None
    if not math.isfinite(value):
        raise MalformedMessageError(f'{kind}.{name} must be finite, got {value}')
    return value


def _pose_xyyaw(pose: Any, kind: str) -> tuple[float, float, float]:
    position = field(pose, 'position', kind)
    orientation = field(pose, 'orientation', kind)
    return (_number(position, 'x', f'{kind}.position'), _number(position, 'y', f'{kind}.position'),
            quaternion_to_yaw(orientation, f'{kind}.orientation'))


def _header(header: Optional[Any], frame_id: str) -> Any:
    from std_msgs.msg import Header

    out = Header()
    if header is not None:
        out.stamp = nanoseconds_to_stamp(stamp_to_nanoseconds(field(header, 'stamp', 'Header')))
        out.frame_id = str_field(header, 'frame_id', 'Header') or frame_id
    else:
        out.frame_id = frame_id
    return out


def _pose_stamped(x: float, y: float, yaw: float, frame_id: str, t_ns: int) -> Any:
    from geometry_msgs.msg import PoseStamped

    ps = PoseStamped()
    ps.header.frame_id = frame_id
    ps.header.stamp = nanoseconds_to_stamp(t_ns)
    ps.pose.position.x = float(x)
    ps.pose.position.y = float(y)
    qx, qy, qz, qw = yaw_to_quaternion(yaw)
    ps.pose.orientation.x, ps.pose.orientation.y = qx, qy
    ps.pose.orientation.z, ps.pose.orientation.w = qz, qw
    return ps


def trajectory_to_path(traj: Trajectory, header: Optional[Any] = None) -> Any:
    """
    Encode a Trajectory as a nav_msgs/Path.

    `header.stamp` is the input stamp t0 and pose k is stamped t0 + (k + 1) * dt (core's
    convention). The frame is `header.frame_id`, or `traj.frame` when that is empty or no header
    is given (then t0 is `traj.t0_s`).
    """
    from nav_msgs.msg import Path

    if not isinstance(traj, Trajectory):
        raise CodecError(f'trajectory_to_path needs a core.Trajectory, got {type(traj).__name__}')
    path = Path()
    path.header = _header(header, traj.frame)
    if header is None:
        path.header.stamp = seconds_to_stamp(traj.t0_s)
    t0_ns = stamp_to_nanoseconds(path.header.stamp)
    frame_id = path.header.frame_id
    path.poses = [
        _pose_stamped(x, y, yaw, frame_id, t0_ns + seconds_to_nanoseconds((k + 1) * traj.dt_s))
        for k, (x, y, yaw) in enumerate(traj.poses.tolist())]
    return path


def path_to_trajectory(path: Any, frame: Optional[str] = None) -> Trajectory:
    """
    Decode a nav_msgs/Path into a Trajectory.

    dt comes from the pose stamps when they are increasing at a fixed step (pose k at
    t0 + (k + 1) dt; t0 = first pose stamp - dt), else from the header stamp and a single pose,
    else falls back to 0.5 s with t0 = header stamp. `frame` defaults to `header.frame_id`.
    """
    header = field(path, 'header', 'Path')
    t0_ns = stamp_to_nanoseconds(field(header, 'stamp', 'Path.header'))
    frame = str_field(header, 'frame_id', 'Path.header') if frame is None else frame
    poses = list(field(path, 'poses', 'Path'))
    xyyaw = np.array([_pose_xyyaw(field(ps, 'pose', f'Path.poses[{k}]'), f'Path.poses[{k}].pose')
                      for k, ps in enumerate(poses)], dtype=np.float64).reshape(-1, 3)
    stamps = np.array([stamp_to_nanoseconds(field(field(ps, 'header', f'Path.poses[{k}]'),
                                                  'stamp', f'Path.poses[{k}].header'))
                       for k, ps in enumerate(poses)], dtype=np.int64)
    dt_ns = _fixed_step(stamps, t0_ns)
    if dt_ns is None:
        if len(poses) > 1 and np.any(stamps != 0):
            logger.warning('Path pose stamps are not at a fixed step (%s); using dt %.2f s',
                           (stamps[:3] - t0_ns).tolist(), POSE_DT_S)
        dt_s, t0_s = POSE_DT_S, t0_ns * 1e-9
    else:
        dt_s = dt_ns * 1e-9
        t0_s = (int(stamps[0]) - dt_ns) * 1e-9 if len(stamps) > 1 else t0_ns * 1e-9
    try:
        return Trajectory(xyyaw, dt_s=dt_s, frame=frame, t0_s=t0_s)
    except ValueError as exc:
        raise MalformedMessageError(f'Path does not make a Trajectory: {exc}') from None


def _fixed_step(stamps: np.ndarray, t0_ns: int) -> Optional[int]:
    if len(stamps) == 1:
        step = int(stamps[0]) - t0_ns
        return step if step > 0 else None
    if len(stamps) < 2:
        return None
    steps = np.diff(stamps)
    step = int(np.median(steps))
    if step <= 0 or np.any(np.abs(steps - step) > _DT_TOLERANCE * step):
        return None
    return step


def route_to_path(route: Route, header: Optional[Any] = None, frame_id: str = MAP_FRAME) -> Any:
    """Encode a Route as a nav_msgs/Path: one pose per point, yaw along the next segment."""
    from nav_msgs.msg import Path

    if not isinstance(route, Route):
        raise CodecError(f'route_to_path needs a core.Route, got {type(route).__name__}')
    path = Path()
    path.header = _header(header, frame_id)
    yaw = np.r_[route.headings, route.headings[-1]]
    t_ns = stamp_to_nanoseconds(path.header.stamp)
    path.poses = [_pose_stamped(x, y, a, path.header.frame_id, t_ns)
                  for (x, y), a in zip(route.points.tolist(), yaw.tolist())]
    return path


def path_to_route(path: Any) -> Route:
    """Decode a nav_msgs/Path (e.g. CARLA's waypoints) into a Route of its x, y positions."""
    poses = list(field(path, 'poses', 'Path'))
    xy = []
    for k, ps in enumerate(poses):
        position = field(field(ps, 'pose', f'Path.poses[{k}]'), 'position',
                         f'Path.poses[{k}].pose')
        kind = f'Path.poses[{k}].pose.position'
        xy.append((_number(position, 'x', kind), _number(position, 'y', kind)))
    try:
        return Route(np.array(xy, dtype=np.float64).reshape(-1, 2))
    except ValueError as exc:
        raise MalformedMessageError(f'Path does not make a Route: {exc}') from None


def odometry_to_ego_state(msg: Any, previous: Optional[EgoState] = None,
                          acceleration: Optional[Any] = None) -> EgoState:
    """
    Decode a nav_msgs/Odometry into an EgoState.

    The pose is read in `header.frame_id` (map) and the twist in the child (vehicle) frame, as
    the CARLA bridge publishes it. Acceleration is unknown from one message: zeros, unless
    `previous` (an earlier state) is given; then it is the finite difference of the map-frame
    velocities, rotated into the current vehicle frame (so it includes the centripetal term).
    A known `acceleration` (vehicle frame, e.g. from the ego-status features) is used as given.
    """
    pose = field(field(msg, 'pose', 'Odometry'), 'pose', 'Odometry.pose')
    x, y, yaw = _pose_xyyaw(pose, 'Odometry.pose.pose')
    twist = field(field(msg, 'twist', 'Odometry'), 'twist', 'Odometry.twist')
    linear = field(twist, 'linear', 'Odometry.twist.twist')
    angular = field(twist, 'angular', 'Odometry.twist.twist')
    vx = _number(linear, 'x', 'Odometry.twist.twist.linear')
    vy = _number(linear, 'y', 'Odometry.twist.twist.linear')
    yaw_rate = _number(angular, 'z', 'Odometry.twist.twist.angular')
    stamp_s = stamp_to_seconds(field(field(msg, 'header', 'Odometry'), 'stamp', 'Odometry.header'))
    accel = np.zeros(2)
    if acceleration is not None:
        accel = np.asarray(acceleration, dtype=np.float64)
    elif previous is not None:
        dt = stamp_s - previous.stamp_s
        if dt > 0:
            c, s = math.cos(yaw), math.sin(yaw)
            v_map = np.array([vx * c - vy * s, vx * s + vy * c])
            a_map = (v_map - previous.velocity_map) / dt
            accel = np.array([a_map[0] * c + a_map[1] * s, -a_map[0] * s + a_map[1] * c])
        else:
            logger.debug('odometry stamp %.9f not after previous %.9f; acceleration 0',
                         stamp_s, previous.stamp_s)
    try:
        return EgoState(pose=np.array([x, y, yaw]), velocity=np.array([vx, vy]),
                        acceleration=accel, yaw_rate=yaw_rate, stamp_s=stamp_s)
    except ValueError as exc:  # e.g. an acceleration overflowing from absurd velocities
        raise MalformedMessageError(f'Odometry does not make an EgoState: {exc}') from None


def ego_state_to_odometry(ego: EgoState, frame_id: str = MAP_FRAME,
                          child_frame_id: str = 'ego_vehicle', stamp: Optional[Any] = None) -> Any:
    """
    Encode an EgoState as a nav_msgs/Odometry (pose in `frame_id`, twist in the child frame).

    The header stamp is `stamp` (a builtin_interfaces/Time) if given, else the state's own.
    """
    from nav_msgs.msg import Odometry

    if not isinstance(ego, EgoState):
        raise CodecError(f'ego_state_to_odometry needs a core.EgoState, got {type(ego).__name__}')
    msg = Odometry()
    msg.header.frame_id = frame_id
    msg.header.stamp = seconds_to_stamp(ego.stamp_s) if stamp is None else stamp
    msg.child_frame_id = child_frame_id
    msg.pose.pose.position.x = float(ego.pose[0])
    msg.pose.pose.position.y = float(ego.pose[1])
    qx, qy, qz, qw = yaw_to_quaternion(ego.pose[2])
    o = msg.pose.pose.orientation
    o.x, o.y, o.z, o.w = qx, qy, qz, qw
    msg.twist.twist.linear.x = float(ego.velocity[0])
    msg.twist.twist.linear.y = float(ego.velocity[1])
    msg.twist.twist.angular.z = float(ego.yaw_rate)
    return msg
