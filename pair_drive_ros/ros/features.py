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
Features <-> standard messages: what perception_node publishes and planner_node reads.

Every tensor travels as a 32FC1 Image with its channels stacked vertically ((C*H) x W), so RViz
shows it as a grey image and the planner gets it back bit for bit; the ego state travels as
Odometry (map frame), the route as a Path. All messages of one frame share the sensor stamp.
"""

import numpy as np

from pair_drive_ros.core.features import COMMANDS, Features, STATUS_DIM
from pair_drive_ros.core.route import Route
from pair_drive_ros.ros.errors import CodecError
from pair_drive_ros.ros.geometry import (ego_state_to_odometry, odometry_to_ego_state,
                                         path_to_route, route_to_path)
from pair_drive_ros.ros.image import image_to_numpy, numpy_to_image
from pair_drive_ros.ros.stamps import make_header

# Channel counts of the stacked images (the feature builder's layout). The LiDAR BEV has
# LIDAR_BEV_CHANNELS with the default perception config and one more per past sweep: a reader
# takes its channel count from the image height over the route raster's (one channel, H rows).
LIDAR_BEV_CHANNELS = 2
CAMERA_CHANNELS = 3
ROUTE_CHANNELS = 1
FEATURE_TOPICS = ('lidar_bev', 'camera', 'route_raster', 'ego_status', 'ego')


def stacked_image(tensor: np.ndarray, hdr):
    """(C, H, W) float array -> 32FC1 Image of (C*H) x W."""
    t = np.asarray(tensor, dtype=np.float32)
    if t.ndim != 3:
        raise CodecError(f'expected a (C, H, W) tensor, got shape {t.shape}')
    c, h, w = t.shape
    return numpy_to_image(t.reshape(c * h, w), '32FC1', hdr)


def unstack_image(msg, channels: int) -> np.ndarray:
    """32FC1 Image of (C*H) x W -> (C, H, W) float32 (a copy)."""
    if msg.encoding != '32FC1':
        raise CodecError(f'expected a 32FC1 feature image, got {msg.encoding!r}')
    arr = image_to_numpy(msg)
    if arr.ndim != 2 or arr.shape[0] % channels:
        raise CodecError(f'feature image of shape {arr.shape} does not hold '
                         f'{channels} stacked channels')
    return np.array(arr, dtype=np.float32).reshape(channels, arr.shape[0] // channels,
                                                   arr.shape[1])


def feature_messages(features: Features, stamp, ego_frame: str = 'ego_vehicle',
                     map_frame: str = 'map', with_route: bool = True) -> dict:
    """Messages for one frame, keyed like FEATURE_TOPICS (+ 'route' if known and wanted)."""
    hdr = make_header(stamp, ego_frame)
    msgs = {
        'lidar_bev': stacked_image(features.lidar_bev, hdr),
        'camera': stacked_image(features.camera, hdr),
        'route_raster': stacked_image(features.route_raster, hdr),
        'ego_status': stacked_image(np.asarray(features.ego_status).reshape(1, 1, -1), hdr),
        'ego': ego_state_to_odometry(features.ego, map_frame, ego_frame, stamp=stamp),
    }
    if with_route and features.route is not None:
        msgs['route'] = route_to_path(features.route, make_header(stamp, map_frame))
    return msgs


def features_from_messages(msgs: dict, route: Route | None = None) -> Features:
    """
    Inverse of feature_messages (the route may come from a separate, latest message).

    The LiDAR channel count and the status length are those the sender's perception config
    gives; the planner checks them against its model's.
    """
    status = unstack_image(msgs['ego_status'], 1).reshape(-1)
    if status.shape[0] < STATUS_DIM:
        raise CodecError(f'ego_status must have at least {STATUS_DIM} values, got '
                         f'{status.shape[0]}')
    route_raster = unstack_image(msgs['route_raster'], ROUTE_CHANNELS)
    rows = route_raster.shape[1]
    lidar_rows = msgs['lidar_bev'].height
    if rows == 0 or lidar_rows % rows or lidar_rows < LIDAR_BEV_CHANNELS * rows:
        raise CodecError(f'lidar_bev image of {lidar_rows} rows does not stack whole BEV '
                         f'channels of {rows} rows (at least {LIDAR_BEV_CHANNELS})')
    n = len(COMMANDS)
    ego = odometry_to_ego_state(msgs['ego'], acceleration=status[n + 2:n + 4])
    if 'route' in msgs and msgs['route'] is not None:
        route = path_to_route(msgs['route'])
    return Features(
        lidar_bev=unstack_image(msgs['lidar_bev'], lidar_rows // rows),
        camera=unstack_image(msgs['camera'], CAMERA_CHANNELS),
        route_raster=route_raster,
        ego_status=status, ego=ego, route=route, stamp_s=ego.stamp_s)
