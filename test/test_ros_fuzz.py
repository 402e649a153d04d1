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

"""Fuzz: randomly corrupted Image, PointCloud2, Path and Odometry give typed errors or arrays."""

import copy
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip('sensor_msgs.msg')

from sensor_msgs.msg import PointField  # noqa: E402

from pair_drive_ros.core import EgoState, Trajectory  # noqa: E402
from pair_drive_ros.ros import (CodecError, ego_state_to_odometry,  # noqa: E402
                                image_to_numpy, numpy_to_image, numpy_to_pointcloud,
                                odometry_to_ego_state, path_to_route, path_to_trajectory,
                                pointcloud_to_numpy, pointcloud_to_xyzi, trajectory_to_path)

N_MESSAGES = 1500
ENCODINGS = ['rgb8', 'bgra8', 'mono8', 'mono16', '16UC1', '32FC1', '8UC3']


def random_value(rng, current=None):
    """Return a random replacement: mostly plausible integers near `current`, else wrong kinds."""
    u = rng.random()
    if isinstance(current, bool) and u < 0.6:
        return bool(rng.integers(2))
    if isinstance(current, int) and u < 0.4:
        return max(0, current + int(rng.integers(-8, 9)))
    if u < 0.75:
        return int(rng.integers(0, 64))
    choices = [
        lambda: int(rng.integers(-5, 0)), lambda: int(rng.integers(2 ** 31, 2 ** 33)),
        lambda: float(rng.normal()), lambda: None, lambda: 'x', lambda: True, lambda: [1, 2],
        lambda: np.uint8(3), lambda: float('nan'),
    ]
    return choices[rng.integers(len(choices))]()


def corrupt_data(msg, rng):
    if isinstance(msg, SimpleNamespace):
        return msg  # data already replaced
    data = bytes(msg.data)
    kind = rng.integers(5)
    if kind == 0:
        msg.data = data[:rng.integers(0, len(data) + 1)]
    elif kind == 1:
        msg.data = data + bytes(int(rng.integers(1, 9)))
    elif kind == 2:
        msg.data = bytes(rng.integers(0, 256, len(data), dtype=np.uint8))
    else:
        # Duck-typed messages (rosbags, hand-made) may hold anything in data.
        msg = SimpleNamespace(**{name: copy.copy(getattr(msg, name))
                                 for name in msg.get_fields_and_field_types()})
        msg.data = [b'ab', 'text', None, [300, 1], 3.5, np.zeros((2, 2), np.float32)[:, 0],
                    memoryview(data)][rng.integers(7)]
    return msg


def check(decode, msg):
    try:
        out = decode(msg)
    except CodecError as exc:
        assert str(exc)  # names what was wrong
        return 'error'
    assert isinstance(out, (np.ndarray, EgoState, Trajectory)) or hasattr(out, 'points')
    return 'ok'


def corrupted_images(rng):
    for _ in range(N_MESSAGES):
        encoding = ENCODINGS[rng.integers(len(ENCODINGS))]
        channels = 1 if encoding in ('mono8', 'mono16', '16UC1', '32FC1') else (
            4 if encoding == 'bgra8' else 3)
        dtype = {'mono16': 'u2', '16UC1': 'u2', '32FC1': 'f4'}.get(encoding, 'u1')
        shape = (int(rng.integers(1, 6)), int(rng.integers(1, 6)), channels)
        msg = numpy_to_image(np.zeros(shape, dtype), encoding)
        for _ in range(rng.integers(1, 4)):
            target = rng.integers(6)
            if target == 5:
                msg = corrupt_data(msg, rng)
            else:
                name = ['height', 'width', 'step', 'is_bigendian', 'encoding'][target]
                value = random_value(rng, getattr(msg, name))
                if name == 'encoding' and rng.random() < 0.5:
                    value = ENCODINGS[rng.integers(len(ENCODINGS))] if rng.random() < 0.7 \
                        else 'yuv422'
                setattr(msg, name, value)
        yield msg


def corrupted_clouds(rng):
    base = np.zeros(6, dtype={'names': ['x', 'y', 'z', 'intensity', 'ring'],
                              'formats': ['f4', 'f4', 'f4', 'f4', 'u2'],
                              'offsets': [0, 4, 8, 16, 20], 'itemsize': 24})
    for _ in range(N_MESSAGES):
        msg = numpy_to_pointcloud(base[:rng.integers(0, 7)], 'lidar')
        for _ in range(rng.integers(1, 4)):
            target = rng.integers(8)
            if target == 7:
                msg = corrupt_data(msg, rng)
            elif target == 6 and len(msg.fields):
                pf = msg.fields[rng.integers(len(msg.fields))]
                name = ['name', 'offset', 'datatype', 'count'][rng.integers(4)]
                if isinstance(pf, PointField):
                    setattr(pf, name, random_value(rng, getattr(pf, name)))
            elif target == 5:
                msg.fields = [PointField(name='x', offset=0, datatype=7, count=1), 'junk',
                              None][:rng.integers(1, 4)]
            else:
                name = ['height', 'width', 'point_step', 'row_step', 'is_bigendian'][target]
                setattr(msg, name, random_value(rng, getattr(msg, name)))
        yield msg


def test_fuzz_images_only_typed_errors():
    rng = np.random.default_rng(20261124)
    outcomes = [check(lambda m: image_to_numpy(m, ['passthrough', 'rgb8', 'mono8'][i % 3]), m)
                for i, m in enumerate(corrupted_images(rng))]
    assert len(outcomes) >= 1000
    # The corruptions must exercise both paths, not only one.
    assert outcomes.count('error') > 300 and outcomes.count('ok') > 50


def test_fuzz_pointclouds_only_typed_errors():
    rng = np.random.default_rng(424242)
    outcomes = []
    for i, msg in enumerate(corrupted_clouds(rng)):
        decode = [pointcloud_to_numpy, pointcloud_to_xyzi,
                  lambda m: pointcloud_to_numpy(m, skip_nans=True)][i % 3]
        outcomes.append(check(decode, msg))
    assert len(outcomes) >= 1000
    assert outcomes.count('error') > 300 and outcomes.count('ok') > 50


def test_fuzz_paths_and_odometry_only_typed_errors():
    rng = np.random.default_rng(7)
    outcomes = []
    for _ in range(300):
        path = trajectory_to_path(Trajectory(rng.normal(size=(4, 3)), frame='map'))
        pose = path.poses[rng.integers(4)]
        target = [pose.pose.position, pose.pose.orientation, pose.header.stamp][rng.integers(3)]
        name = rng.choice(['x', 'y', 'z', 'w'] if target is pose.pose.orientation else
                          ['x', 'y'] if target is pose.pose.position else ['sec', 'nanosec'])
        object.__setattr__(target, str(name), random_value(rng))
        outcomes.append(check(path_to_trajectory, path))
        outcomes.append(check(path_to_route, path))
        odom = ego_state_to_odometry(EgoState(pose=rng.normal(size=3)))
        setattr(odom.twist.twist.linear, 'x', random_value(rng))
        outcomes.append(check(odometry_to_ego_state, odom))
    assert outcomes.count('error') > 50 and outcomes.count('ok') > 100
