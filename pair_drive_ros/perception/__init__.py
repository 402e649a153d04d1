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

"""Sensor data -> model features (LiDAR BEV histogram, camera tensor, route raster, ego status)."""

from pair_drive_ros.core.features import COMMANDS, FEATURE_KEYS, Features, STATUS_DIM
from pair_drive_ros.perception.builder import (bev_cell_centers, bev_cells, driving_command,
                                               FeatureBuilder, FeatureError, lidar_histogram,
                                               route_raster)
from pair_drive_ros.perception.config import (load_perception_config, PerceptionConfig,
                                              PerceptionConfigError)

__all__ = [
    'COMMANDS', 'FEATURE_KEYS', 'FeatureBuilder', 'FeatureError', 'Features', 'PerceptionConfig',
    'PerceptionConfigError', 'STATUS_DIM', 'bev_cell_centers', 'bev_cells', 'driving_command',
    'lidar_histogram', 'load_perception_config', 'route_raster',
]
