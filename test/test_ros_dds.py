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

"""Real rclpy round trip over DDS: an Image and a Path published, received, decoded, compared."""

import numpy as np
import pytest

from conftest import spin_until

pytest.importorskip('rclpy')


@pytest.mark.ros
def test_image_and_path_over_dds(ros_context):
    from nav_msgs.msg import Path
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from pair_drive_ros.core import Trajectory
    from pair_drive_ros.ros import (image_to_numpy, latched_qos, numpy_to_image,
                                    path_to_trajectory, reliable_qos, seconds_to_stamp, sensor_qos,
                                    trajectory_to_path)

    rng = np.random.default_rng(11)
    frame = rng.integers(0, 256, (60, 80, 4), dtype=np.uint8)
    header = Header(stamp=seconds_to_stamp(1234.5), frame_id='ego_vehicle/rgb_front')
    traj = Trajectory(np.cumsum(rng.normal(size=(8, 3)), axis=0), dt_s=0.5, frame='map')

    pub_node = Node('codec_pub', context=ros_context)
    sub_node = Node('codec_sub', context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    try:
        image_pub = pub_node.create_publisher(Image, 'camera/image', reliable_qos(5))
        path_pub = pub_node.create_publisher(Path, 'planned_path', latched_qos())
        images, paths = [], []
        sub_node.create_subscription(Image, 'camera/image', images.append, sensor_qos())
        sub_node.create_subscription(Path, 'planned_path', paths.append, latched_qos())
        image_msg = numpy_to_image(frame, 'bgra8', header)
        path_msg = trajectory_to_path(traj, Header(stamp=header.stamp, frame_id='map'))
        path_pub.publish(path_msg)  # latched: the subscriber gets it whenever it matches
        pub_node.create_timer(0.05, lambda: image_pub.publish(image_msg))
        executor.add_node(pub_node)
        executor.add_node(sub_node)
        assert spin_until(executor, lambda: images and paths, timeout_s=10.0), \
            f'received {len(images)} images, {len(paths)} paths'
    finally:
        executor.shutdown()
        pub_node.destroy_node()
        sub_node.destroy_node()

    got = images[0]
    assert got.header == header and got.encoding == 'bgra8'
    np.testing.assert_array_equal(image_to_numpy(got), frame)
    np.testing.assert_array_equal(image_to_numpy(got, 'rgb8'), frame[:, :, 2::-1])
    assert paths[0].header.stamp == header.stamp
    back = path_to_trajectory(paths[0])
    assert back.frame == 'map' and back.dt_s == pytest.approx(0.5)
    assert back.t0_s == pytest.approx(1234.5)
    np.testing.assert_allclose(back.poses[:, :2], traj.poses[:, :2], atol=1e-12)
    np.testing.assert_allclose(np.cos(back.poses[:, 2] - traj.poses[:, 2]), 1.0, atol=1e-12)
