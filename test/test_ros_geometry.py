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

"""Path, Odometry, Route and stamp conversions against exact answers; QoS profiles."""

import math

import numpy as np
import pytest

pytest.importorskip('nav_msgs.msg')

from builtin_interfaces.msg import Time  # noqa: E402
from nav_msgs.msg import Odometry, Path  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from pair_drive_ros.core import EgoState, Route, Trajectory  # noqa: E402
from pair_drive_ros.ros import (CodecError, ego_state_to_odometry,  # noqa: E402
                                latched_qos, MalformedMessageError, mounts_from_tf,
                                odometry_to_ego_state, path_to_route, path_to_trajectory,
                                quaternion_to_yaw, reliable_qos, route_to_path,
                                seconds_to_stamp, sensor_qos, stamp_to_seconds,
                                trajectory_to_path, transform_to_mount, yaw_to_quaternion)


def header(t_s: float, frame_id: str = 'map') -> Header:
    return Header(stamp=seconds_to_stamp(t_s), frame_id=frame_id)


def test_stamps_exact():
    assert seconds_to_stamp(1.5) == Time(sec=1, nanosec=500_000_000)
    assert seconds_to_stamp(-0.25) == Time(sec=-1, nanosec=750_000_000)
    assert seconds_to_stamp(2.9999999999) == Time(sec=3, nanosec=0)
    assert stamp_to_seconds(Time(sec=100, nanosec=250_000_000)) == 100.25
    assert stamp_to_seconds(4.5) == 4.5
    with pytest.raises(CodecError, match='finite'):
        seconds_to_stamp(float('nan'))
    with pytest.raises(MalformedMessageError, match='nanosec'):
        stamp_to_seconds(Time(sec=1, nanosec=2_000_000_000))


def test_trajectory_to_path_stamps_and_quaternions():
    traj = Trajectory(np.array([[1.0, 0.0, 0.0], [2.0, 0.5, math.pi / 2], [3.0, 1.0, -math.pi]]),
                      dt_s=0.5, frame='map')
    path = trajectory_to_path(traj, header(100.25, 'map'))
    assert path.header.frame_id == 'map' and path.header.stamp == Time(sec=100, nanosec=250000000)
    stamps = [p.header.stamp for p in path.poses]
    assert stamps == [Time(sec=100, nanosec=750_000_000), Time(sec=101, nanosec=250_000_000),
                      Time(sec=101, nanosec=750_000_000)]
    assert all(p.header.frame_id == 'map' for p in path.poses)
    q = path.poses[1].pose.orientation
    assert (q.x, q.y) == (0.0, 0.0)
    assert q.z == pytest.approx(math.sqrt(0.5)) and q.w == pytest.approx(math.sqrt(0.5))
    assert path.poses[2].pose.position.x == 3.0 and path.poses[2].pose.position.y == 1.0


def test_path_round_trip_recovers_dt_t0_frame():
    poses = np.array([[0.5, 0.1, 0.2], [1.0, 0.3, 0.4], [1.5, 0.6, 3.0], [2.0, 1.0, -3.0]])
    traj = Trajectory(poses, dt_s=0.1, frame='ego')
    path = trajectory_to_path(traj, header(7.0, ''))
    assert path.header.frame_id == 'ego'
    back = path_to_trajectory(path)
    assert back.frame == 'ego' and back.dt_s == pytest.approx(0.1, abs=1e-12)
    assert back.t0_s == pytest.approx(7.0, abs=1e-9)
    np.testing.assert_allclose(back.poses, poses, atol=1e-12)
    assert path_to_trajectory(path, frame='ego_vehicle').frame == 'ego_vehicle'


def test_path_without_pose_stamps_falls_back_to_half_second():
    route = route_to_path(Route(np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])), header(3.0))
    traj = path_to_trajectory(route)
    assert traj.dt_s == 0.5 and traj.t0_s == 3.0 and traj.frame == 'map'
    single = trajectory_to_path(Trajectory(np.zeros((1, 3)), dt_s=0.2), header(1.0))
    assert path_to_trajectory(single).dt_s == pytest.approx(0.2)
    assert len(path_to_trajectory(Path(header=header(1.0))).poses) == 0


def test_path_with_bad_quaternion_names_the_pose():
    path = trajectory_to_path(Trajectory(np.zeros((3, 3))), header(0.0))
    path.poses[2].pose.orientation.w = float('nan')
    with pytest.raises(MalformedMessageError, match=r'poses\[2\].*orientation.w must be finite'):
        path_to_trajectory(path)
    path.poses[2].pose.orientation.w = 0.0
    with pytest.raises(MalformedMessageError, match='quaternion.*non-zero'):
        path_to_trajectory(path)


def test_quaternion_yaw_scale_invariant():
    for yaw in np.linspace(-3.1, 3.1, 13):
        x, y, z, w = yaw_to_quaternion(yaw)
        q = Odometry().pose.pose.orientation
        q.x, q.y, q.z, q.w = 2 * x, 2 * y, 2 * z, 2 * w
        assert quaternion_to_yaw(q) == pytest.approx(yaw, abs=1e-12)


def odometry(t_s, x, y, yaw, vx, vy, yaw_rate):
    ego = EgoState(pose=[x, y, yaw], velocity=[vx, vy], yaw_rate=yaw_rate, stamp_s=t_s)
    return ego_state_to_odometry(ego)


def test_odometry_to_ego_state_exact():
    msg = odometry(12.5, 3.0, -4.0, math.pi / 2, 5.0, 0.25, 0.1)
    assert msg.header.frame_id == 'map' and msg.child_frame_id == 'ego_vehicle'
    ego = odometry_to_ego_state(msg)
    np.testing.assert_allclose(ego.pose, [3.0, -4.0, math.pi / 2], atol=1e-15)
    np.testing.assert_array_equal(ego.velocity, [5.0, 0.25])
    np.testing.assert_array_equal(ego.acceleration, [0.0, 0.0])
    assert ego.yaw_rate == 0.1 and ego.stamp_s == 12.5
    np.testing.assert_allclose(ego.velocity_map, [-0.25, 5.0], atol=1e-12)


def test_odometry_acceleration_from_previous_state():
    prev = odometry_to_ego_state(odometry(1.0, 0, 0, 0.3, 0.0, 0.0, 0.0))
    now = odometry_to_ego_state(odometry(1.5, 0, 0, 0.3, 1.0, 0.0, 0.0), previous=prev)
    np.testing.assert_allclose(now.acceleration, [2.0, 0.0], atol=1e-12)
    # Constant speed 10 m/s turning at 0.2 rad/s: centripetal 2 m/s^2 to the left.
    dt, w = 0.01, 0.2
    prev = odometry_to_ego_state(odometry(0.0, 0, 0, 0.0, 10.0, 0.0, w))
    now = odometry_to_ego_state(odometry(dt, 0, 0, w * dt, 10.0, 0.0, w), previous=prev)
    np.testing.assert_allclose(now.acceleration, [0.0, 2.0], atol=0.02)
    stale = odometry_to_ego_state(odometry(0.0, 0, 0, 0.0, 3.0, 0.0, 0.0), previous=now)
    np.testing.assert_array_equal(stale.acceleration, [0.0, 0.0])


def test_odometry_with_nan_twist_is_typed_error():
    msg = odometry(0.0, 0, 0, 0, 1.0, 0, 0)
    msg.twist.twist.linear.x = float('inf')
    with pytest.raises(MalformedMessageError, match='twist.linear.x must be finite, got inf'):
        odometry_to_ego_state(msg)


def test_route_round_trip_and_yaw():
    route = Route(np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 2.0]]))
    path = route_to_path(route, header(5.0))
    yaws = [quaternion_to_yaw(p.pose.orientation) for p in path.poses]
    np.testing.assert_allclose(yaws, [0.0, math.pi / 2, math.pi / 2], atol=1e-15)
    assert path.header.frame_id == 'map'
    np.testing.assert_array_equal(path_to_route(path).points, route.points)
    with pytest.raises(MalformedMessageError, match='Route needs at least 2'):
        path_to_route(Path(poses=path.poses[:1]))


def test_codecs_reject_wrong_core_types():
    with pytest.raises(CodecError, match='core.Trajectory'):
        trajectory_to_path(np.zeros((8, 3)), header(0.0))
    with pytest.raises(CodecError, match='core.Route'):
        route_to_path(np.zeros((3, 2)))


def test_qos_profiles():
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, qos_profile_sensor_data
    from rclpy.qos import ReliabilityPolicy

    sensor = sensor_qos()
    assert (sensor.reliability, sensor.durability, sensor.history, sensor.depth) == (
        qos_profile_sensor_data.reliability, qos_profile_sensor_data.durability,
        HistoryPolicy.KEEP_LAST, 5)
    latched = latched_qos()
    assert (latched.reliability, latched.durability, latched.depth) == (
        ReliabilityPolicy.RELIABLE, DurabilityPolicy.TRANSIENT_LOCAL, 1)
    reliable = reliable_qos(3)
    assert (reliable.reliability, reliable.durability, reliable.depth) == (
        ReliabilityPolicy.RELIABLE, DurabilityPolicy.VOLATILE, 3)


def _transform(parent, child, xyz, q):
    from geometry_msgs.msg import TransformStamped

    ts = TransformStamped(header=Header(frame_id=parent), child_frame_id=child)
    t, r = ts.transform.translation, ts.transform.rotation
    t.x, t.y, t.z = xyz
    r.x, r.y, r.z, r.w = q
    return ts


def test_transform_to_mount_exact():
    h = math.sqrt(0.5)
    ts = _transform('ego_vehicle', 'ego_vehicle/lidar', (1.25, -0.5, 2.4), (0.0, 0.0, h, h))
    assert transform_to_mount(ts.transform) == (1.25, -0.5, 2.4, math.pi / 2)
    # Yaw pi; an unnormalised quaternion gives the same yaw; a pure roll gives yaw 0.
    ts = _transform('a', 'b', (0.0, 0.0, 0.0), (0.0, 0.0, 3.0, 0.0))
    assert transform_to_mount(ts.transform) == (0.0, 0.0, 0.0, math.pi)
    ts = _transform('a', 'b', (2.0, 0.0, 2.0), (1.0, 0.0, 0.0, 0.0))
    assert transform_to_mount(ts.transform) == (2.0, 0.0, 2.0, 0.0)
    ts = _transform('a', 'b', (math.nan, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0))
    with pytest.raises(CodecError, match='translation.x'):
        transform_to_mount(ts.transform)
    ts = _transform('a', 'b', (0.0, 0.0, 0.0), (0.0, 0.0, 0.0, 0.0))
    with pytest.raises(CodecError, match='quaternion'):
        transform_to_mount(ts.transform)


def test_mounts_from_tf_picks_the_parent_child_pairs():
    from types import SimpleNamespace

    msg = SimpleNamespace(transforms=[
        _transform('map', 'ego_vehicle', (9.0, 9.0, 0.0), (0.0, 0.0, 0.0, 1.0)),
        _transform('base_link', 'ego_vehicle/lidar', (7.0, 0.0, 0.0), (0.0, 0.0, 0.0, 1.0)),
        _transform('/ego_vehicle', 'ego_vehicle/lidar', (0.5, 0.0, 2.4), (0.0, 0.0, 0.0, 1.0)),
        _transform('ego_vehicle', '/ego_vehicle/rgb_front', (2.0, 0.1, 2.0),
                   (0.0, 0.0, 0.0, -1.0)),
    ])
    children = {'lidar_mount': 'ego_vehicle/lidar', 'camera_mount': 'ego_vehicle/rgb_front'}
    assert mounts_from_tf(msg, 'ego_vehicle', children) == {
        'lidar_mount': (0.5, 0.0, 2.4, 0.0), 'camera_mount': (2.0, 0.1, 2.0, 0.0)}
    assert mounts_from_tf(msg, 'base_link', children) == {'lidar_mount': (7.0, 0.0, 0.0, 0.0)}
    assert mounts_from_tf(SimpleNamespace(transforms=[]), 'ego_vehicle', children) == {}
