"""The model features of one frame: the contract between perception, the planners and the nodes."""

from dataclasses import dataclass

import numpy as np

from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.core.route import Route

# Driving command, derived from the route (NAVSIM order).
COMMANDS = ('left', 'straight', 'right', 'unknown')
# Ego status vector: driving command one-hot (4), velocity xy (2), acceleration xy (2).
STATUS_DIM = len(COMMANDS) + 2 + 2
# Keys of the batched feature tensors (collate, models): the array fields of Features.
FEATURE_KEYS = ('lidar_bev', 'camera', 'route_raster', 'ego_status')


@dataclass
class Features:
    """Model inputs of one frame, all in the ego frame at `stamp_s`.

    lidar_bev: (C, H, W) float32 LiDAR BEV histogram. camera: (3, Hc, Wc) float32 normalized image.
    route_raster: (1, H, W) float32 route raster on the BEV grid. ego_status: (STATUS_DIM,)
    float32.
    ego: the ego state in the map frame (pose used to express plans in the map frame).
    route: the route in the map frame, if known. stamp_s: the sensor stamp [s] these features
    share.
    """

    lidar_bev: np.ndarray
    camera: np.ndarray
    route_raster: np.ndarray
    ego_status: np.ndarray
    ego: EgoState
    route: Route | None = None
    stamp_s: float = 0.0
