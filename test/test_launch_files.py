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

"""Launch files and the RViz config, checked without `launch` (AST) and with it where present."""

import ast
import importlib
import importlib.util
from pathlib import Path
import re

import pytest
import yaml

from pair_drive_ros.apps.launch_helpers import COMMON_ARGUMENTS, node_parameters
from pair_drive_ros.nodes.params import DEFAULT_CONFIG, NODE_NAMES, node_topics, PARAMS_CLASSES
from pair_drive_ros.nodes.params import params_from_dict, ParamsError, resolve, yaml_params

ROOT = Path(__file__).resolve().parents[1]
LAUNCH_FILES = sorted((ROOT / 'launch').glob('*.launch.py'))
PLACEHOLDER = re.compile(r'\{(\w+)\}')


def _literal(tree: ast.Module, name: str):
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, 'id', None) == name
                                                for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError(f'no literal {name} in the launch file')


def _console_scripts() -> dict:
    tree = ast.parse((ROOT / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == 'entry_points':
            scripts = ast.literal_eval(node.value)['console_scripts']
            return dict(tuple(part.strip() for part in s.split('=')) for s in scripts)
    raise AssertionError('setup.py has no entry_points')


def test_there_are_the_three_launch_files():
    assert {f.name for f in LAUNCH_FILES} == {'carla.launch.py', 'bag_replay.launch.py',
                                              'sim.launch.py'}


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_nodes_match_the_package(path):
    tree = ast.parse(path.read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == 'generate_launch_description'
               for n in tree.body)
    nodes = _literal(tree, 'NODES')
    arguments = {**COMMON_ARGUMENTS, **_literal(tree, 'ARGUMENTS')}
    scripts = _console_scripts()
    for spec in nodes:
        exe = spec['executable']
        # The executable is an installed console script whose target exists.
        module, _, func = scripts[exe].partition(':')
        assert callable(getattr(importlib.import_module(module), func))
        assert spec['name'] == NODE_NAMES[exe]
        cls = PARAMS_CLASSES[exe]
        params = spec.get('parameters', {})
        assert set(params) <= {f for f in cls.__dataclass_fields__}, exe
        used = node_topics(exe)
        for src, dst in spec.get('remappings', []):
            assert resolve(src) in used, f'{path.name}: {exe} does not use {src}'
        # Topic parameters stay relative, so that a namespace moves them too.
        for key, value in params.items():
            if key.endswith('_topic'):
                assert not value.startswith('/'), (exe, key)
        texts = [v for v in params.values() if isinstance(v, str)]
        texts += [t for pair in spec.get('remappings', []) for t in pair]
        for text in texts:
            for name in PLACEHOLDER.findall(text):
                assert name in arguments, f'{path.name}: {{{name}}} is not a launch argument'


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_node_parameters_load_with_default_arguments(path):
    tree = ast.parse(path.read_text())
    arguments = {**COMMON_ARGUMENTS, **_literal(tree, 'ARGUMENTS')}
    values = {k: '' if d is None else d for k, (d, _) in arguments.items()}
    for spec in _literal(tree, 'NODES'):
        params = node_parameters(spec, values, str(DEFAULT_CONFIG), '')
        cls = PARAMS_CLASSES[spec['executable']]
        assert set(params) == {f for f in cls.__dataclass_fields__} | {'use_sim_time'}
        assert params['use_sim_time'] is True
        params.pop('use_sim_time')
        # Every value typed as the node declares it (a typed ROS parameter refuses others).
        assert params_from_dict(cls, params) == params_from_dict(cls, {
            k: v for k, v in params.items()})
        for key, value in params.items():
            default = getattr(cls(), key)
            assert type(value) is (list if isinstance(default, tuple) else type(default)), key


def test_launch_arguments_win_over_the_params_file(tmp_path):
    sim = ast.parse((ROOT / 'launch' / 'sim.launch.py').read_text())
    nodes = {spec['name']: spec for spec in _literal(sim, 'NODES')}
    values = {k: '' if d is None else d for k, (d, _) in
              {**COMMON_ARGUMENTS, **_literal(sim, 'ARGUMENTS')}.items()}
    values.update(planner='constant_velocity', tick_mode='rate', max_steps='7',
                  use_sim_time='false', scenarios='merge:11000')
    planner = node_parameters(nodes['planner'], values, str(DEFAULT_CONFIG), '')
    sim_bridge = node_parameters(nodes['sim_bridge'], values, str(DEFAULT_CONFIG), '')
    assert planner['planner'] == 'constant_velocity' and planner['use_sim_time'] is False
    assert (sim_bridge['tick_mode'], sim_bridge['max_steps'], sim_bridge['scenarios']) == (
        'rate', 7, 'merge:11000')
    # An empty argument keeps the file's value; a namespaced section applies in its namespace.
    params_file = tmp_path / 'params.yaml'
    params_file.write_text('/**:\n  ros__parameters:\n    use_sim_time: true\n'
                           'planner:\n  ros__parameters:\n    planner: transfuser\n'
                           '/car1/planner:\n  ros__parameters:\n    max_input_age_s: 0.7\n')
    values['planner'] = ''
    assert node_parameters(nodes['planner'], values, str(params_file), '')['planner'] == \
        'transfuser'
    assert node_parameters(nodes['planner'], values, str(params_file),
                           'car1')['max_input_age_s'] == 0.7
    assert node_parameters(nodes['planner'], values, str(params_file),
                           '')['max_input_age_s'] == 0.3
    values['max_steps'] = 'many'
    with pytest.raises(ParamsError, match='max_steps'):
        node_parameters(nodes['sim_bridge'], values, str(DEFAULT_CONFIG), '')


def test_rviz_config_shows_the_graph_topics():
    cfg = yaml.safe_load((ROOT / 'config' / 'pair_drive.rviz').read_text())
    manager = cfg['Visualization Manager']
    assert manager['Global Options']['Fixed Frame'] == 'map'
    topics = {d['Topic']['Value'] for d in manager['Displays'] if 'Topic' in d}
    known = set().union(*(node_topics(exe) for exe in PARAMS_CLASSES))
    assert topics <= known, topics - known
    for wanted in ('/planner/trajectory', '/planner/il_trajectory', '/planner/candidates',
                   '/carla/ego_vehicle/rgb_front/image', '/carla/ego_vehicle/lidar',
                   '/perception/lidar_bev', '/carla/ego_vehicle/odometry', '/carla/markers'):
        assert wanted in topics
    classes = {d['Class'] for d in manager['Displays']}
    assert {'rviz_default_plugins/Path', 'rviz_default_plugins/MarkerArray',
            'rviz_default_plugins/Image', 'rviz_default_plugins/PointCloud2'} <= classes


def test_launch_arguments_setting_node_parameters_default_to_the_params_file():
    for path in LAUNCH_FILES:
        tree = ast.parse(path.read_text())
        arguments = _literal(tree, 'ARGUMENTS')
        for spec in _literal(tree, 'NODES'):
            for value in spec.get('parameters', {}).values():
                for name in PLACEHOLDER.findall(value):
                    # A placeholder that is the whole value sets a parameter: its default must
                    # not hide the params file's value ('' keeps it).
                    if value == '{' + name + '}' and name != 'role_name':
                        assert arguments[name][0] is None, (path.name, name)


def test_rviz_config_follows_a_namespace_except_global_topics():
    from pair_drive_ros.apps.launch_helpers import namespaced_rviz_config

    text = 'Topic:\n  Value: /planner/trajectory\nTopic:\n  Value: /tf\nFixed Frame: map\n'
    assert namespaced_rviz_config(text, '/car1/') == (
        'Topic:\n  Value: /car1/planner/trajectory\nTopic:\n  Value: /tf\nFixed Frame: map\n')
    assert namespaced_rviz_config(text, '') == text
    shipped = (ROOT / 'config' / 'pair_drive.rviz').read_text()
    moved = namespaced_rviz_config(shipped, 'car1')
    topics = re.findall(r'Topic:\n\s+Value: (\S+)', moved)
    assert topics and all(t.startswith('/car1/') for t in topics)


def test_bag_player_publishes_relative_names_but_global_topics():
    from pair_drive_ros.apps.replay import node_topic

    assert node_topic('/carla/hero/lidar') == 'carla/hero/lidar'
    for topic in ('/clock', '/tf', '/tf_static'):
        assert node_topic(topic) == topic


def test_shipped_file_resolver_finds_every_shipped_folder():
    from pair_drive_ros.core.shipped import shipped_path, ShippedFileError

    for rel in ('config/pair_drive.yaml', 'config/scenarios.yaml', 'config/pair_drive.rviz',
                'config/pair_drive.foxglove.json', 'models', 'launch/sim.launch.py'):
        assert shipped_path(*rel.split('/')).exists(), rel
    with pytest.raises(ShippedFileError, match='no_such.yaml'):
        shipped_path('config', 'no_such.yaml')


def test_foxglove_layout_shows_camera_bev_candidates_and_path():
    import json

    layout = json.loads((ROOT / 'config' / 'pair_drive.foxglove.json').read_text())
    panels = layout['configById']
    images = {p['imageMode']['imageTopic'] for k, p in panels.items() if k.startswith('Image!')}
    assert images == {'/carla/ego_vehicle/rgb_front/image', '/perception/lidar_bev'}
    scene = next(p for k, p in panels.items() if k.startswith('3D!'))
    assert {'/planner/trajectory', '/planner/candidates'} <= set(scene['topics'])
    known = set().union(*(node_topics(exe) for exe in PARAMS_CLASSES))
    assert images | set(scene['topics']) <= known
    text = json.dumps(layout['layout'])
    assert all(k in text for k in panels)  # every panel is placed


def test_default_params_file_is_what_the_nodes_declare():
    for exe, cls in PARAMS_CLASSES.items():
        assert yaml_params(DEFAULT_CONFIG, NODE_NAMES[exe], cls) == cls()


def _launch_available() -> bool:
    # A source checkout has a launch/ folder, which imports as an empty namespace package.
    spec = importlib.util.find_spec('launch')
    if spec is None or spec.origin in (None, 'namespace'):
        return False
    return importlib.util.find_spec('launch_ros') is not None


@pytest.mark.skipif(not _launch_available(), reason='ROS 2 launch / launch_ros not installed')
@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_generate_launch_description(path):
    from launch import LaunchDescription

    spec = importlib.util.spec_from_file_location(path.stem.replace('.', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert isinstance(description, LaunchDescription)
    from launch import LaunchContext
    from launch.actions import DeclareLaunchArgument, ExecuteProcess, OpaqueFunction

    context = LaunchContext()
    for entity in description.entities:
        if isinstance(entity, DeclareLaunchArgument):
            context.launch_configurations[entity.name] = entity.default_value[0].text \
                if entity.default_value else ''
    bag = str(ROOT / 'test' / 'data' / 'sample_bag')
    context.launch_configurations.update(rviz='true', bag=bag)
    (opaque,) = [e for e in description.entities if isinstance(e, OpaqueFunction)]
    actions = opaque.execute(context)
    procs = [a for a in actions if isinstance(a, ExecuteProcess)]
    names = [type(a).__name__ for a in procs]
    assert len(procs) >= len(module.NODES), names
    for proc in procs:
        assert not proc.shell
    from pair_drive_ros.apps.launch_helpers import rviz_available

    if not rviz_available():
        assert any('rviz2 is not installed' in str(getattr(a, 'msg', '')) or
                   'rviz2 is not installed' in ''.join(
                       getattr(s, 'text', '') for s in getattr(a, 'msg', []) or [])
                   for a in actions if type(a).__name__ == 'LogInfo')
