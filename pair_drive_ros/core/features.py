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

"""The model features of one frame: the contract between perception, the planners and the nodes."""

from dataclasses import dataclass

import numpy as np

from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.core.route import Route

# Driving command, derived from the route (NAVSIM order).
COMMANDS = ('left', 'straight', 'right', 'unknown')
# Ego status vector: driving command one-hot (4), velocity xy (2), acceleration xy (2); the
# optional entries of perception.PerceptionConfig follow (status_layout).
STATUS_DIM = len(COMMANDS) + 2 + 2
BASE_STATUS = tuple(f'command_{c}' for c in COMMANDS) + ('vx', 'vy', 'ax', 'ay')
# Optional road-speed entries: speed limit [m/s] (0 unknown), limit known (0/1), curve speed
# [m/s].
ROAD_STATUS = ('speed_limit_mps', 'speed_limit_known', 'curve_speed_mps')
# Status entries in m/s (models scale them like the ego speed).
SPEED_STATUS = ('vx', 'vy', 'speed_limit_mps', 'curve_speed_mps')
# Keys of the batched feature tensors (collate, models): the array fields of Features.
FEATURE_KEYS = ('lidar_bev', 'camera', 'route_raster', 'ego_status')


def status_layout(road_speed: bool = False, history_sweeps: int = 0) -> tuple[str, ...]:
    """
    Names of the ego-status entries, in order.

    The base entries, then the road-speed entries if enabled, then one flag per past LiDAR sweep
    (1: the sweep's BEV channel holds data, 0: it was missing and is all zeros).
    """
    out = BASE_STATUS + (ROAD_STATUS if road_speed else ())
    return out + tuple(f'sweep_{j}_valid' for j in range(1, history_sweeps + 1))


@dataclass
class Features:
    """
    Model inputs of one frame, all in the ego frame at `stamp_s`.

    lidar_bev: (C, H, W) float32 LiDAR BEV histogram (below / above the split height, then one
    channel per past sweep). camera: (3, Hc, Wc) float32 normalized image.
    route_raster: (1, H, W) float32 route raster on the BEV grid. ego_status: (status_dim,)
    float32 (STATUS_DIM with the default perception config; see status_layout).
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
