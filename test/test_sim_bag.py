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

"""export-bag writes CARLA-bridge topics that read back with rclpy types, and as SensorFrames."""

import argparse

import numpy as np
import pytest
import yaml

from pair_drive_ros.sim import export_bag, generate
from pair_drive_ros.sim.bags import CarlaTopics, frames_from_bag, frames_from_log, load_frames
from pair_drive_ros.sim.logs import EpisodeLog
from pair_drive_ros.sim.sensors import CameraConfig, LidarConfig

pytest.importorskip('rclpy')
pytest.importorskip('rosbags')


@pytest.fixture(scope='module')
def episode(tmp_path_factory):
    path = tmp_path_factory.mktemp('ep') / 'merge_s010002.npz'
    generate.record_episode(generate.DEFAULT_SUITE.as_posix(), 'val', 'merge', 10002,
                            str(path), max_steps=12)
    return path


def test_export_reads_back_with_rclpy_types(episode, tmp_path):
    from rclpy.serialization import deserialize_message
    from rosbags.rosbag2 import Reader
    from rosgraph_msgs.msg import Clock
    from nav_msgs.msg import Odometry, Path
    from sensor_msgs.msg import CameraInfo, Image, PointCloud2

    out = tmp_path / 'bag'
    parser = argparse.ArgumentParser()
    export_bag.add_arguments(parser)
    # --frames 2:7 stays text (as YAML 1.1 it would be the base-60 number 127).
    args = parser.parse_args([str(episode), '--out', str(out), '--frames', '2:7', '--set',
                              'width=64', '--height', '48', '--lidar-azimuths', '90'])
    assert export_bag.run(args) == 0
    saved = yaml.safe_load((out / 'config.yaml').read_text())
    assert saved == {'log': str(episode), 'out': str(out), 'frames': '2:7', 'width': 64,
                     'height': 48, 'lidar_azimuths': 90, 'storage': 'mcap',
                     'start_time': export_bag.DEFAULT_START_TIME_S}
    topics = CarlaTopics()
    types = {topics.lidar: PointCloud2, topics.camera: Image, topics.camera_info: CameraInfo,
             topics.odometry: Odometry, topics.route: Path, topics.clock: Clock}
    seen = {}
    with Reader(out) as reader:
        assert {c.topic: c.msgtype for c in reader.connections} == {
            t: f'{cls.__module__.split(".")[0]}/msg/{cls.__name__}' for t, cls in types.items()}
        for conn, t_ns, data in reader.messages():
            msg = deserialize_message(bytes(data), types[conn.topic])
            seen.setdefault(conn.topic, []).append((t_ns, msg))
    assert len(seen[topics.route]) == 1 and len(seen[topics.lidar]) == 5
    log = EpisodeLog.load(episode)
    t0 = 1_767_225_600 * 10 ** 9     # 2026-01-01T00:00:00Z, the default start time
    t_ns, odom = seen[topics.odometry][0]
    assert t_ns == t0 + 200_000_000 and odom.header.frame_id == 'map'
    assert (odom.header.stamp.sec, odom.header.stamp.nanosec) == (1_767_225_600, 200_000_000)
    assert odom.child_frame_id == 'ego_vehicle'
    assert odom.pose.pose.position.x == pytest.approx(log.arrays['ego_pose'][2, 0])
    image = seen[topics.camera][0][1]
    assert (image.encoding, image.width, image.height) == ('bgra8', 64, 48)
    assert image.header.stamp.nanosec == 200_000_000
    info = seen[topics.camera_info][0][1]
    assert info.k[0] == pytest.approx(32.0)  # fov 90: fx = W / 2
    cloud = seen[topics.lidar][0][1]
    assert [f.name for f in cloud.fields] == ['x', 'y', 'z', 'intensity']
    assert cloud.header.frame_id == 'ego_vehicle/lidar'
    assert [c.clock.nanosec for _, c in seen[topics.clock]] == [k * 100_000_000
                                                                for k in range(2, 7)]
    # Header stamps, /clock and log times agree, message for message.
    for topic, items in seen.items():
        for t_ns, msg in items:
            stamp = msg.clock if topic == topics.clock else msg.header.stamp
            assert stamp.sec * 10 ** 9 + stamp.nanosec == t_ns, topic


def test_export_start_time_shifts_every_stamp(episode, tmp_path):
    from pair_drive_ros.ros.bag import read_bag

    log = EpisodeLog.load(episode)
    lidar, camera = LidarConfig(horizontal_samples=30), CameraConfig(width=16, height=8)
    export_bag.export_episode(log, tmp_path / 'a', range(0, 2), lidar, camera,
                              start_time_s=1_800_000_000.25)
    got = [(topic, t_ns) for topic, t_ns, _ in read_bag(tmp_path / 'a')]
    assert got[0] == (CarlaTopics().route, 1_800_000_000_250_000_000)
    assert got[-1][1] == 1_800_000_000_350_000_000
    for bad in (-1.0, 2.0 ** 31):
        with pytest.raises(ValueError, match='1970|int32'):
            export_bag.export_episode(log, tmp_path / f'b{bad}', range(0, 1), lidar, camera,
                                      start_time_s=bad)


def test_bag_and_log_give_the_same_frames(episode, tmp_path):
    lidar, camera = LidarConfig(horizontal_samples=60), CameraConfig(width=40, height=30)
    log = EpisodeLog.load(episode)
    out = tmp_path / 'bag'
    export_bag.export_episode(log, out, range(0, 4), lidar, camera)
    from_bag = list(frames_from_bag(out))
    from_log = list(frames_from_log(log, lidar, camera, range(0, 4)))
    assert len(from_bag) == 4
    for a, b in zip(from_bag, from_log):
        assert a.stamp_s - export_bag.DEFAULT_START_TIME_S == pytest.approx(b.stamp_s, abs=1e-6)
        np.testing.assert_allclose(a.ego.pose, b.ego.pose)
        np.testing.assert_array_equal(a.lidar_points, b.lidar_points)
        np.testing.assert_array_equal(a.camera_image, b.camera_image)
        assert a.camera_fov_deg == pytest.approx(90.0)
    assert len(list(load_frames(out))) == 4
    with pytest.raises(ValueError, match='a:b'):
        export_bag.parse_frames('1-3', 10)
    assert export_bag.parse_frames('5:', 8) == range(5, 8)


def test_shipped_sample_bag_loads():
    from pathlib import Path

    bag = Path(__file__).parent / 'data' / 'sample_bag'
    size = sum(f.stat().st_size for f in bag.iterdir())
    assert size <= 20 * 1024 * 1024
    frames = list(frames_from_bag(bag))
    assert len(frames) == 50
    assert frames[0].route is not None and frames[0].route.length > 50.0
    stamps = np.array([f.stamp_s for f in frames])
    np.testing.assert_allclose(np.diff(stamps), 0.1, atol=1e-6)
    assert all(f.lidar_points.shape[1] == 4 and f.camera_image.shape == (128, 256, 3)
               for f in frames)


def test_shipped_sample_bag_has_real_times_that_agree():
    from datetime import datetime, timezone
    from pathlib import Path

    from pair_drive_ros.ros.bag import read_bag
    from pair_drive_ros.ros.stamps import stamp_to_nanoseconds

    bag = Path(__file__).parent / 'data' / 'sample_bag'
    n = 0
    for topic, t_ns, msg in read_bag(bag):
        stamp = stamp_to_nanoseconds(msg.clock if topic == '/clock' else msg.header.stamp)
        assert stamp == t_ns, topic
        assert datetime.fromtimestamp(t_ns * 1e-9, timezone.utc).year == 2026
        n += 1
    assert n == 251
