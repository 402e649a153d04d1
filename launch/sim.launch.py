"""Embedded simulator behind CARLA bridge topics + perception, planner, tracker (+ RViz).

ros2 launch pair_drive_ros sim.launch.py scenarios:=highway:11000,merge:11000 planner:=pair
"""

from launch import LaunchDescription

from pair_drive_ros.apps.launch_helpers import (launch_arguments, node_actions, rviz_action,
                                                share_file)

ARGUMENTS = {
    'scenarios': ('highway:11000', 'comma-separated scenario:seed list (config/scenarios.yaml)'),
    # None: the planner node's value in config/pair_drive.yaml (the one place to change it).
    'planner': (None, 'planner name (pair_drive_ros.policy.factory)'),
    'tick_mode': ('lockstep', 'lockstep (tick when the planner answered) or rate'),
    'rviz': ('true', 'start RViz2 with config/pair_drive.rviz'),
}

NODES = [
    {'executable': 'sim_bridge_node', 'name': 'sim_bridge',
     'parameters': {'scenarios': '{scenarios}', 'tick_mode': '{tick_mode}'}},
    {'executable': 'perception_node', 'name': 'perception'},
    {'executable': 'planner_node', 'name': 'planner', 'parameters': {'planner': '{planner}'}},
    {'executable': 'tracker_node', 'name': 'tracker'},
]


def generate_launch_description() -> LaunchDescription:
    params = share_file('config', 'pair_drive.yaml')
    return LaunchDescription(launch_arguments(ARGUMENTS, params) + node_actions(NODES, params)
                             + [rviz_action()])
