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

"""rosbag2 helpers: rclpy messages written to MCAP and sqlite3 bags, read back and decoded."""

import numpy as np
import pytest

pytest.importorskip('rclpy')
pytest.importorskip('rosbags')

from nav_msgs.msg import Odometry, Path  # noqa: E402
from rclpy.serialization import serialize_message  # noqa: E402
from sensor_msgs.msg import Image, PointCloud2  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from pair_drive_ros.core import EgoState, Trajectory  # noqa: E402
from pair_drive_ros.ros import (bag_topics, BagError, BagWriter,  # noqa: E402
                                ego_state_to_odometry, image_to_numpy, numpy_to_image,
                                numpy_to_pointcloud, odometry_to_ego_state, path_to_trajectory,
                                pointcloud_to_numpy, read_bag, seconds_to_stamp,
                                trajectory_to_path)


def sample_messages():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (6, 8, 4), dtype=np.uint8)
    cloud = np.zeros(7, dtype={'names': ['x', 'y', 'z', 'intensity'], 'formats': ['>f4'] * 4,
                               'offsets': [0, 4, 8, 16], 'itemsize': 24})
    for name in cloud.dtype.names:
        cloud[name] = rng.normal(size=7)
    traj = Trajectory(rng.normal(size=(8, 3)), dt_s=0.5, frame='map')
    ego = EgoState(pose=[1.0, 2.0, 0.5], velocity=[3.0, 0.1], yaw_rate=0.05, stamp_s=10.0)
    return image, cloud, traj, ego


def write_sample_bag(path, storage):
    image, cloud, traj, ego = sample_messages()
    with BagWriter(path, storage=storage) as bag:
        for k in range(3):
            t_ns = 10_000_000_000 + k * 50_000_000
            bag.write('/camera', numpy_to_image(image + k, 'bgra8',
                                                Header(stamp=seconds_to_stamp(t_ns * 1e-9))),
                      t_ns)
            bag.write('/odom', ego_state_to_odometry(ego), t_ns + 1)
        bag.write('/lidar', numpy_to_pointcloud(cloud, 'lidar', 10.0), 10_000_000_002)
        bag.write('/route', serialize_message(trajectory_to_path(traj, Header(frame_id='map'))),
                  10_000_000_003, msgtype='nav_msgs/msg/Path', latched=True)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_bag_round_trip_decodes(tmp_path, storage):
    path = tmp_path / 'bag'
    write_sample_bag(path, storage)
    image, cloud, traj, ego = sample_messages()
    assert bag_topics(path) == {'/camera': 'sensor_msgs/msg/Image',
                                '/odom': 'nav_msgs/msg/Odometry',
                                '/lidar': 'sensor_msgs/msg/PointCloud2',
                                '/route': 'nav_msgs/msg/Path'}
    records = list(read_bag(path))
    assert [t for _, t, _ in records] == sorted(t for _, t, _ in records)
    by_topic = {}
    for topic, _, msg in records:
        by_topic.setdefault(topic, []).append(msg)
    assert len(by_topic['/camera']) == 3 and len(by_topic['/odom']) == 3
    for k, msg in enumerate(by_topic['/camera']):
        assert isinstance(msg, Image)
        np.testing.assert_array_equal(image_to_numpy(msg), image + k)
    got = odometry_to_ego_state(by_topic['/odom'][0])
    assert isinstance(by_topic['/odom'][0], Odometry)
    np.testing.assert_allclose(got.pose, ego.pose, atol=1e-15)
    np.testing.assert_array_equal(got.velocity, ego.velocity)
    lidar = by_topic['/lidar'][0]
    assert isinstance(lidar, PointCloud2) and lidar.is_bigendian
    points = pointcloud_to_numpy(lidar)
    for name in cloud.dtype.names:
        np.testing.assert_array_equal(points[name], cloud[name])
    route = by_topic['/route'][0]
    assert isinstance(route, Path)
    np.testing.assert_allclose(path_to_trajectory(route).poses, traj.poses, atol=1e-12)


@pytest.mark.parametrize('storage', ['mcap', 'sqlite3'])
def test_bag_topic_filter_raw_bytes_and_latched_qos(tmp_path, storage):
    from rclpy.serialization import deserialize_message
    from rosbags.interfaces import QosDurability
    from rosbags.rosbag2 import Reader

    path = tmp_path / 'bag'
    write_sample_bag(path, storage)
    raw = list(read_bag(path, topics=['/odom'], raw=True))
    assert len(raw) == 3 and all(isinstance(data, bytes) for _, _, data in raw)
    assert [t for _, t, _ in raw] == [10_000_000_001, 10_050_000_001, 10_100_000_001]
    odom = deserialize_message(raw[0][2], Odometry)
    assert odom.child_frame_id == 'ego_vehicle'
    with Reader(path) as reader:
        durability = {c.topic: c.ext.offered_qos_profiles[0].durability
                      for c in reader.connections}
    assert durability['/route'] == QosDurability.TRANSIENT_LOCAL
    assert durability['/camera'] == QosDurability.VOLATILE


def test_bag_errors_are_typed(tmp_path):
    with pytest.raises(BagError, match='cannot open bag'):
        list(read_bag(tmp_path / 'missing'))
    with pytest.raises(BagError, match='storage must be one of'):
        BagWriter(tmp_path / 'x', storage='rosbag1')
    with BagWriter(tmp_path / 'b') as bag:
        with pytest.raises(BagError, match='needs msgtype'):
            bag.write('/raw', b'\x00\x01', 5)
        bag.write('/odom', Odometry(), 5)
        with pytest.raises(BagError, match="'/odom' was opened with type nav_msgs/msg/Odometry"):
            bag.write('/odom', Image(), 6)
        with pytest.raises(BagError, match='t_ns must be a non-negative int'):
            bag.write('/odom', Odometry(), -1)
    with pytest.raises(BagError, match='cannot create bag'):
        with BagWriter(tmp_path / 'b'):
            pass


def test_codecs_accept_rosbags_messages(tmp_path):
    """Messages deserialized by rosbags (numpy data, plain dataclasses) decode the same way."""
    from rosbags.typesys import get_typestore, Stores

    path = tmp_path / 'bag'
    write_sample_bag(path, 'mcap')
    image, cloud, _, _ = sample_messages()
    store = get_typestore(Stores.ROS2_KILTED)
    decoded = {}
    for topic, _, data in read_bag(path, topics=['/camera', '/lidar'], raw=True):
        msgtype = {'/camera': 'sensor_msgs/msg/Image', '/lidar': 'sensor_msgs/msg/PointCloud2'}
        decoded.setdefault(topic, store.deserialize_cdr(data, msgtype[topic]))
    assert isinstance(decoded['/camera'].data, np.ndarray)
    np.testing.assert_array_equal(image_to_numpy(decoded['/camera'], 'bgra8'), image)
    points = pointcloud_to_numpy(decoded['/lidar'])
    np.testing.assert_array_equal(points['intensity'], cloud['intensity'])
