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
Embedded simulator behind CARLA bridge topics + perception, planner, tracker (+ RViz).

ros2 launch pair_drive_ros sim.launch.py scenarios:=highway:11000,merge:11000 planner:=pair
The launch ends when the simulator has run its episodes (their metrics are on
/sim_bridge/episode_metrics). Common arguments: namespace, use_sim_time, params_file,
log_level, managed, rviz (`ros2 launch pair_drive_ros sim.launch.py --show-args`).
"""

from pair_drive_ros.apps.launch_helpers import generate

# name: (default, description); None: the params file's value is kept.
ARGUMENTS = {
    'scenarios': (None, 'comma-separated scenario:seed list (config/scenarios.yaml)'),
    'max_steps': (None, "steps per episode (0 = the scenario's own cap)"),
    'planner': (None, 'planner name (pair_drive_ros.policy.factory)'),
    'tick_mode': (None, 'lockstep (tick when the planner answered) or rate'),
}

NODES = [
    {'executable': 'sim_bridge_node', 'name': 'sim_bridge', 'shutdown_on_exit': True,
     'parameters': {'scenarios': '{scenarios}', 'tick_mode': '{tick_mode}',
                    'max_steps': '{max_steps}'}},
    {'executable': 'perception_node', 'name': 'perception', 'lifecycle': True},
    {'executable': 'planner_node', 'name': 'planner', 'lifecycle': True,
     'parameters': {'planner': '{planner}'}},
    {'executable': 'tracker_node', 'name': 'tracker'},
]


def generate_launch_description():
    return generate(ARGUMENTS, NODES)
