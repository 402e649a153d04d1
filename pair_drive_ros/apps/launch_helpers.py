"""Shared pieces of the launch files (imported only by them; needs `launch` and `launch_ros`).

Each launch file keeps its nodes as a literal list of dicts (NODES), so tests can read it with
`ast.literal_eval` where `launch` is not installed; `node_actions` turns it into launch_ros Node
actions. In topic names and parameter values, '{name}' is replaced by the launch argument
`name` (a LaunchConfiguration).
"""

import os
import re

PACKAGE = 'pair_drive_ros'
_FIELD = re.compile(r'\{(\w+)\}')


def share_file(*parts: str) -> str:
    """Return a file of this package: the installed share directory, else the source tree."""
    try:
        from ament_index_python.packages import get_package_share_directory
        return os.path.join(get_package_share_directory(PACKAGE), *parts)
    except Exception:  # noqa: B902  (not installed / no ament index)
        root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        return os.path.join(root, *parts)


def substitute(text):
    """'/carla/{role_name}/lidar' -> ['/carla/', LaunchConfiguration('role_name'), '/lidar']."""
    from launch.substitutions import LaunchConfiguration

    if not isinstance(text, str) or not _FIELD.search(text):
        return text
    out = []
    pos = 0
    for m in _FIELD.finditer(text):
        if m.start() > pos:
            out.append(text[pos:m.start()])
        out.append(LaunchConfiguration(m.group(1)))
        pos = m.end()
    if pos < len(text):
        out.append(text[pos:])
    return out


def node_actions(nodes: list[dict], params_file) -> list:
    """launch_ros Node actions for NODES entries (params file + per-node overrides)."""
    from launch_ros.actions import Node
    from launch_ros.parameter_descriptions import ParameterValue

    actions = []
    for spec in nodes:
        overrides = {k: ParameterValue(substitute(v), value_type=type(v))
                     if isinstance(v, str) and _FIELD.search(v) else v
                     for k, v in spec.get('parameters', {}).items()}
        actions.append(Node(
            package=PACKAGE, executable=spec['executable'], name=spec['name'],
            output='screen', parameters=[params_file, overrides],
            remappings=[(substitute(a), substitute(b)) for a, b in spec.get('remappings', [])]))
    return actions


def config_default(params_file: str, name: str) -> str:
    """Return the default of launch argument `name`: the planner node's value in the file."""
    from pair_drive_ros.nodes.params import yaml_params

    return str(yaml_params(params_file, 'planner').get(name, ''))


def launch_arguments(defaults: dict, params_file: str | None = None) -> list:
    """Declare launch arguments from {name: (default, description)}.

    A None default is read from the params file (see config_default).
    """
    from launch.actions import DeclareLaunchArgument

    actions = []
    for name, (default, desc) in defaults.items():
        value = config_default(params_file, name) if default is None else default
        actions.append(DeclareLaunchArgument(name, default_value=str(value), description=desc))
    return actions


def rviz_action():
    """RViz2 with config/pair_drive.rviz, started when the `rviz` argument is true."""
    from launch.conditions import IfCondition
    from launch.substitutions import LaunchConfiguration
    from launch_ros.actions import Node

    return Node(package='rviz2', executable='rviz2', name='rviz2', output='screen',
                arguments=['-d', share_file('config', 'pair_drive.rviz')],
                parameters=[{'use_sim_time': True}],
                condition=IfCondition(LaunchConfiguration('rviz')))
