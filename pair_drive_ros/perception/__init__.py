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
