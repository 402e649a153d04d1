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

"""Raw sensor data of one frame, as the car sees it (no privileged information)."""

from dataclasses import dataclass, field

import numpy as np

from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.core.route import Route

# CARLA ROS bridge default ego sensor mounts (carla_spawn_objects objects.json), ego frame:
# x forward, y left, z up [m], yaw [rad].
DEFAULT_LIDAR_MOUNT = (0.0, 0.0, 2.4, 0.0)
DEFAULT_CAMERA_MOUNT = (2.0, 0.0, 2.0, 0.0)
DEFAULT_CAMERA_FOV_DEG = 90.0


def pinhole_intrinsics(width: int, height: int, fov_deg: float) -> np.ndarray:
    """3x3 camera matrix K of a pinhole camera with this horizontal field of view."""
    f = width / (2.0 * np.tan(np.radians(fov_deg) / 2.0))
    return np.array([[f, 0.0, width / 2.0], [0.0, f, height / 2.0], [0.0, 0.0, 1.0]])


@dataclass
class SensorFrame:
    """
    Sensor inputs of one frame, synchronized to `stamp_s`.

    ego: ego state (odometry) in the map frame. lidar_points: (N, 4) float32 x, y, z [m],
    intensity in the LiDAR frame (x forward, y left, z up). camera_image: (H, W, 3) uint8 RGB from
    the front camera.
    route: the route in the map frame, if known. *_mount: (4,) sensor pose in the ego frame
    (x, y, z [m], yaw [rad]). speed_limit_mps: the speed limit of the ego's lane [m/s], if known
    (a scene log's lane, a parameter, a map).
    """

    stamp_s: float
    ego: EgoState
    lidar_points: np.ndarray | None = None
    camera_image: np.ndarray | None = None
    route: Route | None = None
    lidar_mount: np.ndarray = field(default_factory=lambda: np.array(DEFAULT_LIDAR_MOUNT))
    camera_mount: np.ndarray = field(default_factory=lambda: np.array(DEFAULT_CAMERA_MOUNT))
    camera_fov_deg: float = DEFAULT_CAMERA_FOV_DEG
    speed_limit_mps: float | None = None
