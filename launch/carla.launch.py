"""Drive a CARLA ego vehicle: CARLA ROS bridge + ego spawn + waypoints + our nodes (+ RViz).

Mirrors carla_ad_demo.launch.py with carla_ad_agent replaced by perception -> planner -> tracker.
The CARLA packages are included by package share when installed (else only our nodes start,
e.g. against a bridge launched elsewhere).
ros2 launch pair_drive_ros carla.launch.py host:=localhost town:=Town01 planner:=pair
"""

from launch import LaunchDescription
from launch.actions import IncludeLaunchDescription, LogInfo
from launch.launch_description_sources import PythonLaunchDescriptionSource
from launch.substitutions import LaunchConfiguration

from pair_drive_ros.apps.launch_helpers import (launch_arguments, node_actions, rviz_action,
                                                share_file)

ARGUMENTS = {
    'host': ('localhost', 'CARLA server host'),
    'port': ('2000', 'CARLA server port'),
    'timeout': ('10', 'CARLA client timeout [s]'),
    'town': ('Town01', 'CARLA map'),
    'role_name': ('ego_vehicle', 'ego vehicle role name'),
    'spawn_point': ('127.4,-195.4,2,0,0,180', 'ego spawn point x,y,z,roll,pitch,yaw'),
    # None: the planner node's value in config/pair_drive.yaml (the one place to change it).
    'planner': (None, 'planner name (pair_drive_ros.policy.factory)'),
    'il_checkpoint': ('', 'IL checkpoint ("" = shipped default)'),
    'device': ('cpu', 'torch device of the planner'),
    'rviz': ('false', 'start RViz2 with config/pair_drive.rviz'),
}

NODES = [
    {'executable': 'perception_node', 'name': 'perception',
     'remappings': [('/carla/ego_vehicle/rgb_front/image', '/carla/{role_name}/rgb_front/image'),
                    ('/carla/ego_vehicle/lidar', '/carla/{role_name}/lidar'),
                    ('/carla/ego_vehicle/odometry', '/carla/{role_name}/odometry'),
                    ('/carla/ego_vehicle/waypoints', '/carla/{role_name}/waypoints')]},
    {'executable': 'planner_node', 'name': 'planner',
     'parameters': {'planner': '{planner}', 'il_checkpoint': '{il_checkpoint}',
                    'device': '{device}'}},
    {'executable': 'tracker_node', 'name': 'tracker',
     'parameters': {'role_name': '{role_name}'},
     'remappings': [('/carla/ego_vehicle/odometry', '/carla/{role_name}/odometry')]},
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
    actions = []
    for package, launch_file, forwarded in CARLA_INCLUDES:
        try:
            from ament_index_python.packages import get_package_share_directory
            path = f'{get_package_share_directory(package)}/{launch_file}'
        except Exception:  # noqa: B902  (package not installed)
            actions.append(LogInfo(msg=f'{package} is not installed; not launching it'))
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


def generate_launch_description() -> LaunchDescription:
    params = share_file('config', 'pair_drive.yaml')
    return LaunchDescription(launch_arguments(ARGUMENTS, params) + _carla_includes()
                             + node_actions(NODES, params) + [rviz_action()])
