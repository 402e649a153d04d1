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
Shared pieces of the launch files (imported only by them; needs `launch` and `launch_ros`).

Each launch file keeps its arguments (ARGUMENTS) and nodes (NODES) as literal dicts, so tests
can read them with `ast.literal_eval` where `launch` is not installed; `graph_actions` turns
them into actions once the arguments are known (an OpaqueFunction). In topic names and
parameter values, '{name}' is replaced by the value of launch argument `name`.

Parameters: each node gets ONE parameter dict, built from its section of `params_file`
(wildcards `/**`, `/**/<node>`, `<node>`, `<namespace>/<node>` merged), then the launch
arguments that set its parameters, then `use_sim_time`; every value typed as the node declares
it. (Passing the params file and an override dict side by side does not work: launch_ros
writes the dict under `/**`, and rclpy lets the file's node section win over `/**`.)
An argument left empty ('') keeps the params file's value.
"""

from pathlib import Path
import re
import shutil

from pair_drive_ros.core.shipped import shipped_path

PACKAGE = 'pair_drive_ros'
_FIELD = re.compile(r'\{(\w+)\}')

# Arguments every launch file has (a file may override a default in its own ARGUMENTS).
COMMON_ARGUMENTS = {
    'namespace': ('', 'namespace of every node: moves the whole graph (topics, node names)'),
    'use_sim_time': ('true', 'nodes use /clock (simulator, CARLA, bag playback)'),
    'params_file': ('', "ROS params file ('' = the installed config/pair_drive.yaml)"),
    'log_level': ('info', 'log level of our nodes: debug, info, warn, error, fatal'),
    'managed': ('true', 'true: the launch file drives perception and planner through '
                        'configure and activate; false: they activate themselves'),
    'rviz': ('false', 'start RViz2 with config/pair_drive.rviz (skipped when not installed)'),
}


def share_file(*parts: str) -> str:
    """Return a shipped file: the installed share directory, else the source tree."""
    return str(shipped_path(*parts))


def substitute(text, values: dict):
    """'carla/{role_name}/lidar' -> 'carla/hero/lidar' with values {'role_name': 'hero'}."""
    if not isinstance(text, str):
        return text
    return _FIELD.sub(lambda m: str(values[m.group(1)]), text)


def all_arguments(arguments: dict) -> dict:
    """COMMON_ARGUMENTS updated by a launch file's own ARGUMENTS."""
    return {**COMMON_ARGUMENTS, **arguments}


def launch_arguments(arguments: dict) -> list:
    """
    Return DeclareLaunchArgument actions for {name: (default, description)} (+ common ones).

    A None default declares '' (the params file's value is kept).
    """
    from launch.actions import DeclareLaunchArgument

    return [DeclareLaunchArgument(name, default_value='' if default is None else str(default),
                                  description=desc)
            for name, (default, desc) in all_arguments(arguments).items()]


def node_parameters(spec: dict, values: dict, params_file: str, namespace: str) -> dict:
    """Return the typed parameters of one NODES entry (params file, launch arguments, sim time)."""
    from pair_drive_ros.nodes.params import (coerce_value, PARAMS_CLASSES, typed_values,
                                             yaml_params)

    exe = spec['executable']
    merged = yaml_params(params_file, spec['name'], namespace=namespace)
    merged.pop('use_sim_time', None)
    for key, template in spec.get('parameters', {}).items():
        value = substitute(template, values)
        if value != '':
            merged[key] = value
    out = typed_values(PARAMS_CLASSES[exe], merged)
    out['use_sim_time'] = coerce_value(values['use_sim_time'], False, 'use_sim_time')
    return out


def is_true(text: str) -> bool:
    """Return a launch argument as a bool (true/false, 1/0, yes/no, on/off)."""
    from pair_drive_ros.nodes.params import coerce_value

    return coerce_value(text, False, 'launch argument')


def graph_actions(context, arguments: dict, nodes: list[dict], extra=None) -> list:
    """
    Return the node actions of a launch file, with every launch argument resolved.

    extra(values) may return more actions (e.g. the bag player).
    """
    from launch.actions import LogInfo

    values = {name: context.launch_configurations.get(name, '')
              for name in all_arguments(arguments)}
    params_file = values['params_file'] or share_file('config', 'pair_drive.yaml')
    namespace = values['namespace'].strip('/')
    actions = [LogInfo(msg=f'pair_drive_ros: params {params_file}, namespace '
                           f'/{namespace}, use_sim_time {values["use_sim_time"]}')]
    for spec in nodes:
        actions += node_action(spec, values, params_file, namespace)
    if extra is not None:
        actions += extra(values)
    actions += rviz_actions(values)
    return actions


def node_action(spec: dict, values: dict, params_file: str, namespace: str) -> list:
    """Return the Node (or LifecycleNode + configure/activate events) of one NODES entry."""
    from launch.actions import EmitEvent, RegisterEventHandler, Shutdown
    from launch_ros.actions import LifecycleNode, Node

    params = node_parameters(spec, values, params_file, namespace)
    managed = spec.get('lifecycle', False) and is_true(values['managed'])
    if spec.get('lifecycle', False):
        params['autostart'] = not managed
    kwargs = dict(
        package=PACKAGE, executable=spec['executable'], name=spec['name'],
        namespace=namespace, output='screen', parameters=[params],
        remappings=[(substitute(a, values), substitute(b, values))
                    for a, b in spec.get('remappings', [])],
        ros_arguments=['--log-level', values['log_level'] or 'info'])
    if spec.get('shutdown_on_exit', False):
        kwargs['on_exit'] = Shutdown(reason=f'{spec["name"]} finished')
    if not managed:
        return [Node(**kwargs)]
    import lifecycle_msgs.msg
    from launch_ros.event_handlers import OnStateTransition
    from launch_ros.events.lifecycle import ChangeState
    from launch.events import matches_action

    node = LifecycleNode(**kwargs)
    transition = lifecycle_msgs.msg.Transition

    def change(transition_id: int) -> EmitEvent:
        return EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                           transition_id=transition_id))

    # As a lifecycle manager: configure at start, activate once configured.
    return [
        node,
        RegisterEventHandler(OnStateTransition(
            target_lifecycle_node=node, goal_state='inactive',
            entities=[change(transition.TRANSITION_ACTIVATE)])),
        change(transition.TRANSITION_CONFIGURE),
    ]


def rviz_available() -> bool:
    """Tell whether rviz2 can be started (an installed package or an executable on PATH)."""
    try:
        from ament_index_python.packages import get_package_prefix
        get_package_prefix('rviz2')
        return True
    except Exception:  # noqa: B902  (PackageNotFoundError, or no ament index at all)
        return shutil.which('rviz2') is not None


def rviz_actions(values: dict) -> list:
    """
    Return RViz2 with config/pair_drive.rviz when `rviz` is true and rviz2 is installed.

    Never fatal: without rviz2 the launch logs why and goes on.
    """
    from launch.actions import LogInfo
    from launch_ros.actions import Node

    if not is_true(values.get('rviz', 'false')):
        return []
    if not rviz_available():
        return [LogInfo(msg='rviz:=true but rviz2 is not installed; going on without it')]
    namespace = values['namespace'].strip('/')
    config = share_file('config', 'pair_drive.rviz')
    if namespace:
        config = write_namespaced_rviz_config(config, namespace)
    return [Node(package='rviz2', executable='rviz2', name='rviz2', output='screen',
                 namespace=namespace, arguments=['-d', str(config)],
                 parameters=[{'use_sim_time': is_true(values['use_sim_time'])}])]


# Topics that stay global under a namespace, as in every ROS 2 graph.
GLOBAL_TOPICS = ('/clock', '/tf', '/tf_static', '/diagnostics', '/rosout', '/parameter_events')


def namespaced_rviz_config(text: str, namespace: str) -> str:
    """
    Return an RViz config with every display topic moved under `namespace`.

    RViz configs hold absolute topic names, so a namespaced graph needs its own copy; the global
    topics (/tf, /clock, ...) stay where they are.
    """
    namespace = namespace.strip('/')
    if not namespace:
        return text
    lines = text.split('\n')
    for i in range(1, len(lines)):
        value = lines[i].strip()
        if lines[i - 1].strip() == 'Topic:' and value.startswith('Value: /'):
            topic = value[len('Value: '):]
            if topic not in GLOBAL_TOPICS:
                lines[i] = lines[i].replace(f'Value: {topic}', f'Value: /{namespace}{topic}')
    return '\n'.join(lines)


def write_namespaced_rviz_config(config: str | Path, namespace: str) -> Path:
    """Write the namespaced copy of an RViz config to a temporary file (RViz reads it by path)."""
    import tempfile

    text = namespaced_rviz_config(Path(config).read_text(), namespace)
    handle = tempfile.NamedTemporaryFile('w', prefix=f'pair_drive_{namespace.strip("/")}_',
                                         suffix='.rviz', delete=False)
    with handle:
        handle.write(text)
    return Path(handle.name)


def generate(arguments: dict, nodes: list[dict], extra=None, before=()):
    """Return a launch file's description: arguments, `before` actions, then the graph."""
    from launch import LaunchDescription
    from launch.actions import OpaqueFunction

    return LaunchDescription(
        launch_arguments(arguments) + list(before)
        + [OpaqueFunction(function=lambda context: graph_actions(context, arguments, nodes,
                                                                 extra))])
