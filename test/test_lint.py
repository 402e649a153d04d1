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
    # The pep257 convention plus ament_pep257's default ignore list.
    ignore = 'D100,D101,D102,D103,D104,D105,D106,D107,D203,D212,D404'
    result = subprocess.run([sys.executable, '-m', 'pydocstyle', '--convention=pep257',
                             f'--add-ignore={ignore}', 'pair_drive_ros'],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.linter
def test_ament_flake8():
    main_with_errors = pytest.importorskip('ament_flake8.main').main_with_errors
    rc, errors = main_with_errors(argv=[])
    assert rc == 0, f'{len(errors)} flake8 errors'


@pytest.mark.linter
def test_ament_copyright():
    main = pytest.importorskip('ament_copyright.main').main
    assert main(argv=['.', 'test']) == 0


@pytest.mark.linter
def test_package_xml_is_format3_and_lists_dependencies():
    root = ET.parse(ROOT / 'package.xml').getroot()
    assert root.tag == 'package' and root.get('format') == '3'
    exec_deps = {e.text for e in root.iter('exec_depend')}
    for dep in ('rclpy', 'sensor_msgs', 'nav_msgs', 'geometry_msgs', 'std_msgs',
                'visualization_msgs', 'diagnostic_msgs', 'tf2_ros', 'cv_bridge', 'python3-numpy'):
        assert dep in exec_deps, dep
    test_deps = {e.text for e in root.iter('test_depend')}
    assert {'ament_flake8', 'ament_pep257', 'python3-pytest'} <= test_deps
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


def test_learning_rooms_import_without_ros():
    code = ('import sys\n'
            'for m in ("rclpy", "sensor_msgs", "nav_msgs", "geometry_msgs", "std_msgs"):\n'
            '    sys.modules[m] = None\n'
            'import pair_drive_ros.core, pair_drive_ros.ros\n'
            'import importlib\n'
            'for room in ("perception", "policy", "scoring", "sim", "training"):\n'
            '    try:\n'
            '        importlib.import_module("pair_drive_ros." + room)\n'
            '    except ModuleNotFoundError as exc:\n'
            '        if exc.name != "pair_drive_ros." + room:\n'
            '            raise\n')
    subprocess.run([sys.executable, '-c', code], check=True, cwd=ROOT)


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
