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
numpy <-> ROS 2 message codecs, rosbag2 helpers, QoS profiles and stamp utilities.

Importable without ROS: rclpy and the message packages are imported inside the functions that
build messages or touch DDS. Bad input raises CodecError subclasses naming the field and values.
"""

from pair_drive_ros.ros.bag import (bag_topics, BagWriter, message_class, msgtype_of,
                                    read_bag, recover_bag)
from pair_drive_ros.ros.errors import (BagError, CodecError, MalformedMessageError,
                                       UnsupportedEncodingError)
from pair_drive_ros.ros.geometry import (ego_state_to_odometry, mounts_from_tf,
                                         odometry_to_ego_state, path_to_route, path_to_trajectory,
                                         quaternion_to_yaw, route_to_path, transform_to_mount,
                                         trajectory_to_path, yaw_to_quaternion)
from pair_drive_ros.ros.image import encoding_info, image_to_numpy, image_to_rgb, numpy_to_image
from pair_drive_ros.ros.pointcloud import (numpy_to_pointcloud, pointcloud_to_numpy,
                                           pointcloud_to_xyzi)
from pair_drive_ros.ros.qos import latched_qos, reliable_qos, sensor_qos
from pair_drive_ros.ros.stamps import (make_header, nanoseconds_to_stamp, seconds_to_stamp,
                                       stamp_to_nanoseconds, stamp_to_seconds)

__all__ = [
    'BagError', 'BagWriter', 'CodecError', 'MalformedMessageError', 'UnsupportedEncodingError',
    'bag_topics', 'ego_state_to_odometry', 'encoding_info', 'image_to_numpy', 'image_to_rgb',
    'latched_qos', 'make_header',
    'message_class', 'mounts_from_tf', 'msgtype_of', 'nanoseconds_to_stamp', 'numpy_to_image',
    'numpy_to_pointcloud', 'odometry_to_ego_state', 'path_to_route', 'path_to_trajectory',
    'pointcloud_to_numpy', 'pointcloud_to_xyzi', 'quaternion_to_yaw', 'read_bag',
    'recover_bag', 'reliable_qos', 'route_to_path', 'seconds_to_stamp', 'sensor_qos',
    'stamp_to_nanoseconds',
    'stamp_to_seconds', 'trajectory_to_path', 'transform_to_mount',
    'yaw_to_quaternion',
]
