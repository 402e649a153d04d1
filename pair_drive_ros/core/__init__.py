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

"""ROS-free, torch-free domain types and math (SI units, radians, seconds)."""

from pair_drive_ros.core.agents import Agents
from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.core.road import Lane, RoadMap
from pair_drive_ros.core.route import Route
from pair_drive_ros.core.scene import AgentTracks, Scene
from pair_drive_ros.core.sensor_frame import SensorFrame
from pair_drive_ros.core.trajectory import EGO_FRAME, MAP_FRAME, NUM_POSES, POSE_DT_S, Trajectory

__all__ = [
    'EGO_FRAME', 'MAP_FRAME', 'NUM_POSES', 'POSE_DT_S',
    'AgentTracks', 'Agents', 'EgoState', 'Lane', 'RoadMap', 'Route', 'Scene', 'SensorFrame',
    'Trajectory',
]
