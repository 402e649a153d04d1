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
Drive a CARLA ego vehicle: CARLA ROS bridge + ego spawn + waypoints + our nodes (+ RViz).

Mirrors carla_ad_demo.launch.py with carla_ad_agent replaced by perception -> planner -> tracker.
The CARLA packages are included when installed; without them only our nodes start (e.g.
against a bridge launched elsewhere) and the launch says so.
ros2 launch pair_drive_ros carla.launch.py host:=localhost town:=Town01 role_name:=hero
"""

from pair_drive_ros.apps.launch_helpers import generate

# name: (default, description); None: the params file's value is kept.
ARGUMENTS = {
    'host': ('localhost', 'CARLA server host'),
    'port': ('2000', 'CARLA server port'),
    'timeout': ('10', 'CARLA client timeout [s]'),
    'town': ('Town01', 'CARLA map'),
    'role_name': ('ego_vehicle', 'ego vehicle role name'),
    'spawn_point': ('127.4,-195.4,2,0,0,180', 'ego spawn point x,y,z,roll,pitch,yaw'),
    'planner': (None, 'planner name (pair_drive_ros.policy.factory)'),
    'il_checkpoint': (None, "IL checkpoint ('' = shipped default)"),
    'device': (None, 'torch device of the planner'),
}

NODES = [
    {'executable': 'perception_node', 'name': 'perception', 'lifecycle': True,
     'parameters': {'camera_topic': 'carla/{role_name}/rgb_front/image',
                    'lidar_topic': 'carla/{role_name}/lidar',
                    'odometry_topic': 'carla/{role_name}/odometry',
                    'route_topic': 'carla/{role_name}/waypoints',
                    'ego_frame': '{role_name}', 'lidar_frame': '{role_name}/lidar',
                    'camera_frame': '{role_name}/rgb_front',
                    # The features the IL checkpoint was trained on (past sweeps for IL-A
                    # motion); empty: the params file's, the shipped planners' features.
                    'perception_config': '{il_checkpoint}'}},
    {'executable': 'planner_node', 'name': 'planner', 'lifecycle': True,
     'parameters': {'planner': '{planner}', 'il_checkpoint': '{il_checkpoint}',
                    'device': '{device}', 'ego_frame': '{role_name}'}},
    {'executable': 'tracker_node', 'name': 'tracker',
     'parameters': {'role_name': '{role_name}',
                    'odometry_topic': 'carla/{role_name}/odometry'}},
]

# (package, launch file, arguments forwarded from ours)
CARLA_INCLUDES = [
    ('carla_ros_bridge', 'carla_ros_bridge.launch.py',
     ('host', 'port', 'timeout', 'town')),
    ('carla_spawn_objects', 'carla_example_ego_vehicle.launch.py',
     ('role_name', 'spawn_point')),
    ('carla_waypoint_publisher', 'carla_waypoint_publisher.launch.py',
     ('host', 'port', 'timeout', 'role_name')),
]


def _carla_includes() -> list:
    from launch.actions import IncludeLaunchDescription, LogInfo
    from launch.launch_description_sources import PythonLaunchDescriptionSource
    from launch.substitutions import LaunchConfiguration

    actions = []
    for package, launch_file, forwarded in CARLA_INCLUDES:
        try:
            from ament_index_python.packages import get_package_share_directory
            path = f'{get_package_share_directory(package)}/{launch_file}'
        except Exception:  # noqa: B902  (package not installed, or no ament index)
            actions.append(LogInfo(msg=f'{package} is not installed; not launching it '
                                       '(our nodes start anyway)'))
            continue
        args = {name: LaunchConfiguration(name) for name in forwarded}
        if package == 'carla_spawn_objects':
            args['spawn_point_ego_vehicle'] = args.pop('spawn_point')
        if package == 'carla_ros_bridge':
            args['synchronous_mode'] = 'True'
            args['passive'] = 'False'
        actions.append(IncludeLaunchDescription(PythonLaunchDescriptionSource(path),
                                                launch_arguments=args.items()))
    return actions


def generate_launch_description():
    return generate(ARGUMENTS, NODES, before=_carla_includes())
