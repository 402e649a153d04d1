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
