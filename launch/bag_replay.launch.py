"""Drive perception, planner and tracker from a recorded bag (`ros2 bag play --clock`).

ros2 launch pair_drive_ros bag_replay.launch.py bag:=/path/to/bag rate:=1.0 loop:=false
Without rosbag2, `pair-drive replay BAG` plays the bag the same way (player:=pair_drive).
"""

from launch import LaunchDescription
from launch.actions import ExecuteProcess
from launch.conditions import IfCondition, UnlessCondition
from launch.substitutions import LaunchConfiguration, PythonExpression

from pair_drive_ros.apps.launch_helpers import (launch_arguments, node_actions, rviz_action,
                                                share_file)

ARGUMENTS = {
    'bag': ('', 'rosbag2 directory to play'),
    'rate': ('1.0', 'playback rate'),
    'loop': ('false', 'restart the bag at its end'),
    'player': ('ros2', 'ros2 (ros2 bag play --clock) or pair_drive (pair-drive replay)'),
    # None: the planner node's value in config/pair_drive.yaml (the one place to change it).
    'planner': (None, 'planner name (pair_drive_ros.policy.factory)'),
    'rviz': ('true', 'start RViz2 with config/pair_drive.rviz'),
}

NODES = [
    {'executable': 'perception_node', 'name': 'perception'},
    {'executable': 'planner_node', 'name': 'planner', 'parameters': {'planner': '{planner}'}},
    {'executable': 'tracker_node', 'name': 'tracker'},
]


def generate_launch_description() -> LaunchDescription:
    params = share_file('config', 'pair_drive.yaml')
    bag, rate, loop = (LaunchConfiguration(n) for n in ('bag', 'rate', 'loop'))
    native = PythonExpression(["'", LaunchConfiguration('player'), "' == 'ros2'"])
    loop_flag = PythonExpression(["'--loop' if '", loop, "'.lower() == 'true' else ''"])
    players = [
        ExecuteProcess(cmd=['ros2', 'bag', 'play', bag, '--clock', '--rate', rate, loop_flag],
                       output='screen', shell=True, condition=IfCondition(native)),
        ExecuteProcess(cmd=['pair-drive', 'replay', bag, '--rate', rate, loop_flag],
                       output='screen', shell=True, condition=UnlessCondition(native)),
    ]
    return LaunchDescription(launch_arguments(ARGUMENTS, params) + node_actions(NODES, params)
                             + players + [rviz_action()])
