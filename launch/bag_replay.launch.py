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
Drive perception, planner and tracker from a recorded bag, with /clock from the bag.

ros2 launch pair_drive_ros bag_replay.launch.py bag:=/path/to/bag rate:=1.0 loop:=false
player:=auto plays with `ros2 bag play --clock` where rosbag2 is installed, else with this
package's bag_player executable (`ros2 run pair_drive_ros bag_player BAG`, no rosbag2 needed).
The launch ends when the bag has been played (unless loop:=true).
"""

from pair_drive_ros.apps.launch_helpers import generate

# name: (default, description); None: the params file's value is kept.
ARGUMENTS = {
    'bag': ('', 'rosbag2 directory to play'),
    'rate': ('1.0', 'playback rate'),
    'loop': ('false', 'restart the bag at its end'),
    'player': ('auto', 'auto (ros2 bag if installed), ros2 (ros2 bag play --clock) or '
                       'pair_drive (the bag_player executable)'),
    'planner': (None, 'planner name (pair_drive_ros.policy.factory)'),
}

NODES = [
    {'executable': 'perception_node', 'name': 'perception', 'lifecycle': True},
    {'executable': 'planner_node', 'name': 'planner', 'lifecycle': True,
     'parameters': {'planner': '{planner}'}},
    {'executable': 'tracker_node', 'name': 'tracker'},
]


def rosbag2_available() -> bool:
    import importlib.util

    return importlib.util.find_spec('ros2bag') is not None


def _remaps(bag: str, values: dict) -> list:
    # ros2 bag play publishes the recorded (absolute) names: move them under the namespace.
    from pair_drive_ros import ros
    from pair_drive_ros.apps.launch_helpers import GLOBAL_TOPICS

    namespace = values['namespace'].strip('/')
    topics = [t for t in ros.bag_topics(bag) if t not in GLOBAL_TOPICS] if namespace else []
    return ['--remap', *[f'{t}:=/{namespace}{t}' for t in topics]] if topics else []


def _player(values: dict) -> list:
    from launch.actions import ExecuteProcess, LogInfo, Shutdown
    from launch_ros.actions import Node

    from pair_drive_ros.apps.launch_helpers import is_true

    bag, rate, loop = values['bag'], values['rate'], is_true(values['loop'])
    if not bag:
        return [LogInfo(msg='bag:= is empty: the nodes wait for a bag played elsewhere')]
    player = values['player']
    if player == 'auto':
        player = 'ros2' if rosbag2_available() else 'pair_drive'
    done = Shutdown(reason='bag played')
    if player == 'ros2':
        return [ExecuteProcess(cmd=['ros2', 'bag', 'play', bag, '--clock', '--rate', rate]
                               + (['--loop'] if loop else []) + _remaps(bag, values),
                               output='screen', on_exit=done)]
    if player != 'pair_drive':
        raise ValueError(f'player must be auto, ros2 or pair_drive, got {player!r}')
    return [Node(package='pair_drive_ros', executable='bag_player', output='screen',
                 namespace=values['namespace'].strip('/'),
                 arguments=[bag, '--rate', rate] + (['--loop'] if loop else []), on_exit=done)]


def generate_launch_description():
    return generate(ARGUMENTS, NODES, extra=_player)
