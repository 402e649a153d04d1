"""Launch files and the RViz config, checked without `launch` (AST) and with it where present."""

import ast
import importlib
import importlib.util
from pathlib import Path
import re

import pytest
import yaml

from pair_drive_ros.nodes.params import DEFAULT_CONFIG, NODE_NAMES, node_topics, PARAMS_CLASSES
from pair_drive_ros.nodes.params import params_from_dict, yaml_params

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
    arguments = _literal(tree, 'ARGUMENTS')
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
            assert src in used, f'{path.name}: {exe} does not use {src}'
            assert dst.startswith('/')
        texts = [v for v in params.values() if isinstance(v, str)]
        texts += [t for pair in spec.get('remappings', []) for t in pair]
        for text in texts:
            for name in PLACEHOLDER.findall(text):
                assert name in arguments, f'{path.name}: {{{name}}} is not a launch argument'


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_parameter_files_exist_and_load(path):
    tree = ast.parse(path.read_text())
    files = [[ast.literal_eval(a) for a in call.args] for call in ast.walk(tree)
             if isinstance(call, ast.Call) and getattr(call.func, 'id', None) == 'share_file']
    assert files, 'the launch file passes no parameter file'
    for parts in files:
        target = ROOT.joinpath(*parts)
        assert target.is_file(), target
        if target.suffix == '.yaml':
            for spec in _literal(tree, 'NODES'):
                exe = spec['executable']
                values = yaml_params(target, spec['name'])
                values.update({k: v for k, v in spec.get('parameters', {}).items()
                               if not PLACEHOLDER.search(str(v))})
                params_from_dict(PARAMS_CLASSES[exe], values)


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


def test_planner_launch_default_comes_from_the_params_file():
    from pair_drive_ros.apps.launch_helpers import config_default

    for path in LAUNCH_FILES:
        assert _literal(ast.parse(path.read_text()), 'ARGUMENTS')['planner'][0] is None
    assert config_default(str(DEFAULT_CONFIG), 'planner') == \
        yaml_params(DEFAULT_CONFIG, 'planner')['planner']


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
    assert len(description.entities) >= len(module.NODES)
