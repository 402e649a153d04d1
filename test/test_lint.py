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

"""Lint and packaging checks (marked `linter`)."""

import ast
from pathlib import Path
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

ROOT = Path(__file__).resolve().parents[1]
CODE_DIRS = ['pair_drive_ros', 'test', 'benchmarks', 'launch']


@pytest.mark.linter
def test_flake8():
    dirs = [d for d in CODE_DIRS if (ROOT / d).is_dir()]
    result = subprocess.run([sys.executable, '-m', 'flake8', *dirs, 'setup.py'], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.linter
def test_pep257():
    # ament_pep257's "ament" convention: every pydocstyle check except this list.
    ignore = 'D100,D101,D102,D103,D104,D105,D106,D107,D203,D212,D404'
    result = subprocess.run([sys.executable, '-m', 'pydocstyle', f'--ignore={ignore}',
                             *[d for d in CODE_DIRS if (ROOT / d).is_dir()], 'setup.py'],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def _ament(tool: str, call: str) -> subprocess.CompletedProcess:
    # In a fresh interpreter: flake8 forks worker processes, and a fork of this test process
    # (with the DDS threads of earlier graph tests) can crash.
    pytest.importorskip(f'{tool}.main')
    return subprocess.run([sys.executable, '-c', f'import sys; import {tool}.main as m; '
                           f'sys.exit(m.{call})'], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.linter
def test_ament_flake8():
    # As the ament_python package template's test/test_flake8.py calls it.
    result = _ament('ament_flake8', 'main_with_errors(argv=[])[0]')
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.linter
def test_ament_pep257():
    # As the ament_python package template's test/test_pep257.py calls it.
    result = _ament('ament_pep257', "main(argv=['.', 'test'])")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


@pytest.mark.linter
def test_ament_copyright():
    # ament_copyright is not on PyPI: it runs where a ROS install provides it.
    main = pytest.importorskip('ament_copyright.main').main
    assert main(argv=['.', 'test']) == 0


APACHE_HEADER = [
    '# Copyright 2026 pair_drive_ros maintainers',
    '#',
    '# Licensed under the Apache License, Version 2.0 (the "License");',
]


@pytest.mark.linter
def test_every_source_file_carries_the_license_header():
    # What ament_copyright checks, for machines without it: a copyright line and the Apache-2.0
    # notice at the top of every Python file, and the LICENSE it names.
    assert 'Apache License' in (ROOT / 'LICENSE').read_text()
    files = [f for d in CODE_DIRS if (ROOT / d).is_dir() for f in (ROOT / d).rglob('*.py')]
    files.append(ROOT / 'setup.py')
    missing = [str(f.relative_to(ROOT)) for f in files
               if f.read_text().splitlines()[:3] != APACHE_HEADER]
    assert not missing, missing


@pytest.mark.linter
def test_package_xml_is_format3_and_lists_dependencies():
    root = ET.parse(ROOT / 'package.xml').getroot()
    assert root.tag == 'package' and root.get('format') == '3'
    exec_deps = {e.text for e in root.iter('exec_depend')}
    for dep in ('rclpy', 'sensor_msgs', 'nav_msgs', 'geometry_msgs', 'std_msgs',
                'visualization_msgs', 'diagnostic_msgs', 'tf2_msgs', 'lifecycle_msgs',
                'rcl_interfaces', 'ament_index_python', 'launch_ros', 'python3-numpy'):
        assert dep in exec_deps, dep
    # Optional at run time (found when installed), so not a hard dependency.
    assert not exec_deps & {'carla_msgs', 'rviz2', 'ros2bag', 'cv_bridge'}
    # Perception reads /tf_static with a plain subscription: no tf2_ros import.
    assert 'tf2_ros' not in exec_deps
    test_deps = {e.text for e in root.iter('test_depend')}
    assert {'ament_flake8', 'ament_pep257', 'python3-pytest', 'cv_bridge'} <= test_deps
    assert root.find('export/build_type').text == 'ament_python'


def _setup_call_keywords() -> dict:
    tree = ast.parse((ROOT / 'setup.py').read_text())
    call = next(n for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, 'id', '') == 'setup')
    return {k.arg: k.value for k in call.keywords}


def test_versions_agree():
    root = ET.parse(ROOT / 'package.xml').getroot()
    xml_version = root.find('version').text
    setup_version = ast.literal_eval(_setup_call_keywords()['version'])
    import pair_drive_ros
    assert xml_version == setup_version == pair_drive_ros.__version__


def test_console_scripts_point_at_callables():
    import importlib
    scripts = ast.literal_eval(_setup_call_keywords()['entry_points'])['console_scripts']
    assert any(s.startswith('pair-drive =') for s in scripts)
    for spec in scripts:
        name, target = (p.strip() for p in spec.split('='))
        module, func = target.split(':')
        assert callable(getattr(importlib.import_module(module), func)), name


def test_setup_cfg_installs_scripts_for_ros2_run():
    text = (ROOT / 'setup.cfg').read_text()
    assert 'script_dir=$base/lib/pair_drive_ros' in text
    assert 'install_scripts=$base/lib/pair_drive_ros' in text
    assert (ROOT / 'resource' / 'pair_drive_ros').exists()


# Rooms below `nodes` and `apps` must import where ROS is absent (the learning code runs on
# machines with no ROS at all); `ros` imports rclpy and messages only inside its functions.
ROS_FREE_ROOMS = ('core', 'ros', 'runtime', 'perception', 'policy', 'scoring', 'sim', 'training',
                  'evaluation')
# What each room may import of the package: imports flow downwards only.
ALLOWED_IMPORTS = {
    'core': set(),
    'ros': {'core'},
    'runtime': {'core'},
    'perception': {'core'},
    'sim': {'core', 'ros', 'runtime'},
    'scoring': {'core', 'sim'},
    'policy': {'core', 'perception', 'runtime', 'scoring', 'sim'},
    'training': {'core', 'perception', 'policy', 'scoring', 'sim', 'ros', 'runtime'},
    'evaluation': {'core', 'perception', 'policy', 'scoring', 'sim', 'training', 'ros',
                   'runtime'},
    'nodes': {'core', 'ros', 'runtime', 'perception', 'policy', 'sim'},
    'apps': {'core', 'ros', 'runtime', 'nodes', 'sim', 'policy', 'perception'},
    'cli': {'*'},
}
ROS_MODULES = ('rclpy', 'sensor_msgs', 'nav_msgs', 'geometry_msgs', 'std_msgs',
               'visualization_msgs', 'diagnostic_msgs', 'rosgraph_msgs', 'builtin_interfaces',
               'tf2_msgs', 'tf2_ros', 'lifecycle_msgs', 'rcl_interfaces', 'carla_msgs',
               'ackermann_msgs', 'launch', 'launch_ros', 'ament_index_python', 'cv_bridge')


def _package_modules(rooms) -> list[str]:
    pkg = ROOT / 'pair_drive_ros'
    out = []
    for room in rooms:
        for path in sorted((pkg / room).rglob('*.py')):
            rel = path.relative_to(ROOT).with_suffix('')
            parts = rel.parts[:-1] if rel.name == '__init__' else rel.parts
            out.append('.'.join(parts))
    return out


def test_every_module_of_the_ros_free_rooms_imports_without_ros():
    modules = _package_modules(ROS_FREE_ROOMS)
    assert len(modules) > 60  # the walk finds the modules (not only the package __init__s)
    code = ('import sys, importlib\n'
            f'for m in {ROS_MODULES!r}:\n'
            '    sys.modules[m] = None\n'
            f'for m in {modules!r}:\n'
            '    importlib.import_module(m)\n')
    result = subprocess.run([sys.executable, '-c', code], cwd=ROOT, capture_output=True,
                            text=True)
    assert result.returncode == 0, result.stderr[-3000:]


def _imported_rooms(path: Path) -> set[str]:
    rooms = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module]
            if node.module == 'pair_drive_ros':
                names = [f'pair_drive_ros.{a.name}' for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            parts = name.split('.')
            if parts[0] == 'pair_drive_ros' and len(parts) > 1:
                rooms.add(parts[1])
    return rooms


def test_rooms_import_downwards_only():
    pkg = ROOT / 'pair_drive_ros'
    rooms = {p.name for p in pkg.iterdir() if (p / '__init__.py').exists()}
    assert rooms | {'cli'} == set(ALLOWED_IMPORTS), 'a new room needs its place in the layering'
    for path in pkg.rglob('*.py'):
        rel = path.relative_to(pkg).parts
        room = rel[0] if len(rel) > 1 else path.stem
        allowed = ALLOWED_IMPORTS.get(room, set())
        if '*' in allowed:
            continue
        upward = _imported_rooms(path) - allowed - {room}
        assert not upward, f'{path.relative_to(ROOT)} imports {sorted(upward)}'


def test_core_imports_nothing_of_the_package_but_core():
    for path in (ROOT / 'pair_drive_ros' / 'core').glob('*.py'):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            module = node.module if isinstance(node, ast.ImportFrom) else None
            if module and module.startswith('pair_drive_ros'):
                assert node.module.startswith('pair_drive_ros.core'), f'{path.name}: {node.module}'
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert alias.name.split('.')[0] not in ('torch', 'rclpy'), path.name
