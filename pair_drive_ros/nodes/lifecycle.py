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
Driving the managed (lifecycle) nodes from Python: `pair-drive run`, `demo` and the tests.

Under `ros2 launch` the launch files drive the transitions (configure, then activate once the
node is inactive) through the nodes' lifecycle services, as a lifecycle manager would; an
in-process launcher calls the transitions directly.
"""


class LifecycleError(RuntimeError):
    """A lifecycle transition failed (e.g. the planner's models did not load)."""


def activate(node) -> None:
    """Configure (when unconfigured) and activate a lifecycle node; raise on a failed step."""
    from rclpy.lifecycle import TransitionCallbackReturn

    state = node._state_machine.current_state[1]
    steps = (('configure', node.trigger_configure), ('activate', node.trigger_activate))
    if state == 'inactive':
        steps = steps[1:]
    for name, trigger in steps:
        result = trigger()
        if result != TransitionCallbackReturn.SUCCESS:
            raise LifecycleError(f'{node.get_name()}: {name} failed ({result.name})')


def deactivate(node) -> None:
    """Deactivate an active lifecycle node (a no-op for other states and plain nodes)."""
    machine = getattr(node, '_state_machine', None)
    if machine is not None and machine.current_state[1] == 'active':
        node.trigger_deactivate()
