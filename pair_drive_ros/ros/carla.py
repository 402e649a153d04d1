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
The CARLA ROS bridge interface: its topic names and its sensor messages of one SensorFrame.

One source for both the embedded simulator bridge (which publishes what the CARLA bridge
publishes) and the bag exporter (which records it), so a recording and a live run carry the
same messages. Message packages are imported inside the functions (importable without ROS).
"""

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pair_drive_ros.core.sensor_frame import pinhole_intrinsics, SensorFrame
from pair_drive_ros.ros.geometry import ego_state_to_odometry
from pair_drive_ros.ros.image import numpy_to_image
from pair_drive_ros.ros.pointcloud import numpy_to_pointcloud
from pair_drive_ros.ros.stamps import make_header

DEFAULT_ROLE_NAME = 'ego_vehicle'


@dataclass(frozen=True)
class CarlaTopics:
    """CARLA ROS bridge topic names of one ego vehicle (defaults: role name 'ego_vehicle')."""

    camera: str = '/carla/ego_vehicle/rgb_front/image'
    camera_info: str = '/carla/ego_vehicle/rgb_front/camera_info'
    lidar: str = '/carla/ego_vehicle/lidar'
    odometry: str = '/carla/ego_vehicle/odometry'
    route: str = '/carla/ego_vehicle/waypoints'
    speedometer: str = '/carla/ego_vehicle/speedometer'
    control: str = '/carla/ego_vehicle/vehicle_control_cmd'
    ackermann: str = '/carla/ego_vehicle/ackermann_cmd'
    twist: str = '/carla/ego_vehicle/twist'
    markers: str = '/carla/markers'
    clock: str = '/clock'

    @classmethod
    def for_role(cls, role_name: str = DEFAULT_ROLE_NAME) -> 'CarlaTopics':
        """Topic names of the ego vehicle spawned with this role name."""
        base = f'/carla/{role_name}'
        return cls(camera=f'{base}/rgb_front/image', camera_info=f'{base}/rgb_front/camera_info',
                   lidar=f'{base}/lidar', odometry=f'{base}/odometry', route=f'{base}/waypoints',
                   speedometer=f'{base}/speedometer', control=f'{base}/vehicle_control_cmd',
                   ackermann=f'{base}/ackermann_cmd', twist=f'{base}/twist')


def carla_topics(role_name: str = DEFAULT_ROLE_NAME, relative: bool = False) -> dict:
    """
    CARLA ROS bridge topic names of one ego vehicle, by key (the CarlaTopics fields).

    relative: without the leading '/' (except /clock), as nodes use them so that a namespace
    moves the whole graph; in the root namespace both resolve to the bridge's names.
    """
    names = asdict(CarlaTopics.for_role(role_name))
    if relative:
        names = {k: v if k == 'clock' else v.lstrip('/') for k, v in names.items()}
    return names


def camera_info(intrinsics: np.ndarray, width: int, height: int, header: Any) -> Any:
    """sensor_msgs/CameraInfo of a pinhole camera with intrinsics K (3, 3), no distortion."""
    from sensor_msgs.msg import CameraInfo

    k = np.asarray(intrinsics, dtype=np.float64).reshape(3, 3)
    info = CameraInfo(header=header, height=int(height), width=int(width),
                      distortion_model='plumb_bob')
    info.d = [0.0] * 5
    info.k = [float(v) for v in k.reshape(-1)]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [float(v) for v in np.c_[k, np.zeros(3)].reshape(-1)]
    return info


def sensor_messages(frame: SensorFrame, stamp: Any, role_name: str = DEFAULT_ROLE_NAME) -> dict:
    """
    CARLA-bridge messages of one SensorFrame, keyed as the CarlaTopics fields.

    camera: bgra8 Image (frame <role>/rgb_front), camera_info, lidar: PointCloud2 (frame
    <role>/lidar), odometry (map -> <role>), speedometer (Float32). All stamped `stamp`; the
    camera intrinsics follow from the image size and the frame's field of view.
    """
    from std_msgs.msg import Float32

    img = frame.camera_image
    bgra = np.empty(img.shape[:2] + (4,), dtype=np.uint8)
    bgra[..., :3] = img[..., ::-1]
    bgra[..., 3] = 255
    cam_hdr = make_header(stamp, f'{role_name}/rgb_front')
    height, width = img.shape[:2]
    k = pinhole_intrinsics(width, height, frame.camera_fov_deg)
    return {
        'camera': numpy_to_image(bgra, 'bgra8', cam_hdr),
        'camera_info': camera_info(k, width, height, cam_hdr),
        'lidar': numpy_to_pointcloud(frame.lidar_points, f'{role_name}/lidar', stamp),
        'odometry': ego_state_to_odometry(frame.ego, 'map', role_name, stamp=stamp),
        'speedometer': Float32(data=float(frame.ego.speed)),
    }
