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
The package under the real ROS 2 tools: colcon build, ros2 launch, ros2 topic/param/lifecycle.

Needs `colcon` and `ros2` (launch, launch_ros, ros2cli) on PATH and AMENT_PREFIX_PATH set, as a
ROS 2 install or the CI's tool kit gives them; skipped otherwise. One colcon workspace (a
plain, non-symlink install) and one launched graph per scenario, shared by several checks.
"""

import importlib.util
import json
import os
from pathlib import Path
import shutil
import signal
import subprocess
import sys
import time

import pytest

ROOT = Path(__file__).resolve().parents[1]
SAMPLE_BAG = ROOT / 'test' / 'data' / 'sample_bag'
HAVE_TOOLS = (shutil.which('colcon') is not None and shutil.which('ros2') is not None
              and bool(os.environ.get('AMENT_PREFIX_PATH')))

pytestmark = [pytest.mark.ros, pytest.mark.slow,
              pytest.mark.skipif(not HAVE_TOOLS, reason='colcon / ros2 / AMENT_PREFIX_PATH '
                                 'not available (source a ROS 2 install or the tool kit)')]


def _build(ws: Path, symlink: bool) -> subprocess.CompletedProcess:
    (ws / 'src').mkdir(parents=True)
    # A copy of the package sources (what a user clones into src/), without local outputs.
    shutil.copytree(ROOT, ws / 'src' / 'pair_drive_ros', ignore=shutil.ignore_patterns(
        '.git', '.venv', 'build', 'install', 'log', 'runs', 'data', '*.egg-info',
        '__pycache__', '.pytest_cache'))
    cmd = ['colcon', 'build', '--packages-select', 'pair_drive_ros']
    return subprocess.run(cmd + (['--symlink-install'] if symlink else []), cwd=ws,
                          capture_output=True, text=True, timeout=300)


def _env(ws: Path, domain: int) -> dict:
    """Return the environment of `source install/local_setup.bash` for this package, by hand."""
    env = dict(os.environ)
    prefix = ws / 'install' / 'pair_drive_ros'
    site = next((prefix / 'lib').glob('python3*/site-packages'))
    env['AMENT_PREFIX_PATH'] = f'{prefix}{os.pathsep}{env["AMENT_PREFIX_PATH"]}'
    env['PYTHONPATH'] = f'{site}{os.pathsep}{env.get("PYTHONPATH", "")}'.rstrip(os.pathsep)
    env['ROS_DOMAIN_ID'] = str(domain)
    env.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
    env['PYTHONUNBUFFERED'] = '1'
    return env


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
    """Return a colcon workspace with the package built the plain (copying) way."""
    ws = tmp_path_factory.mktemp('ws_plain')
    result = _build(ws, symlink=False)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return ws


@pytest.fixture(scope='module')
def domain():
    return 120 + os.getpid() % 60


def ros2(env: dict, *args: str, timeout: float = 30.0,
         retry_s: float = 0.0) -> subprocess.CompletedProcess:
    """
    Run a ros2 CLI verb; retry for `retry_s` while it fails (graph discovery takes a moment).

    Verbs that look nodes up use the ros2 daemon of the test's domain (stopped at the end).
    """
    deadline = time.monotonic() + retry_s
    while True:
        out = subprocess.run(['ros2', *args], env=env, capture_output=True, text=True,
                             timeout=timeout)
        if out.returncode == 0 or time.monotonic() > deadline:
            return out
        time.sleep(0.5)


@pytest.fixture(scope='module', autouse=True)
def stop_daemons(domain, workspace):
    yield
    for offset in range(3):
        subprocess.run(['ros2', 'daemon', 'stop'], env=_env(workspace, domain + offset),
                       capture_output=True, timeout=30)


class Launch:
    """`ros2 launch` in its own process group; stopped with SIGINT like Ctrl-C."""

    def __init__(self, env: dict, *args: str, log: Path) -> None:
        self.log = log
        self._file = open(log, 'w')
        self.proc = subprocess.Popen(['ros2', 'launch', 'pair_drive_ros', *args], env=env,
                                     stdout=self._file, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def text(self) -> str:
        return self.log.read_text()

    def wait_for(self, needle: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if needle in self.text():
                return True
            if self.proc.poll() is not None:
                return needle in self.text()
            time.sleep(0.2)
        return False

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return self.stop()

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._file.close()
        return self.proc.returncode

    def leftovers(self) -> list[str]:
        """Return processes still alive in the launch's process group (its nodes)."""
        out = subprocess.run(['ps', '-o', 'pid=,args=', '-g', str(self.proc.pid)],
                             capture_output=True, text=True).stdout
        return [line for line in out.splitlines() if line.strip()]


# ---- colcon ----------------------------------------------------------------------------------
def test_plain_install_has_the_shipped_files_and_executables(workspace):
    share = workspace / 'install' / 'pair_drive_ros' / 'share' / 'pair_drive_ros'
    for rel in ('config/pair_drive.yaml', 'config/scenarios.yaml', 'config/pair_drive.rviz',
                'config/pair_drive.foxglove.json', 'models/pair_selector.pt',
                'launch/sim.launch.py', 'package.xml'):
        assert (share / rel).is_file() and not (share / rel).is_symlink(), rel
    lib = workspace / 'install' / 'pair_drive_ros' / 'lib' / 'pair_drive_ros'
    for exe in ('perception_node', 'planner_node', 'tracker_node', 'sim_bridge_node',
                'bag_player', 'pair-drive'):
        assert os.access(lib / exe, os.X_OK), exe


def test_installed_package_resolves_shipped_files_from_share(workspace, domain):
    env = _env(workspace, domain)
    code = ('from pair_drive_ros.core.shipped import shipped_path\n'
            'from pair_drive_ros.nodes.params import DEFAULT_CONFIG\n'
            'from pair_drive_ros.policy.factory import models_dir\n'
            'import pair_drive_ros\n'
            'print(pair_drive_ros.__file__)\n'
            'print(shipped_path("config", "scenarios.yaml"))\n'
            'print(DEFAULT_CONFIG)\n'
            'print(models_dir())\n')
    out = subprocess.run([sys.executable, '-c', code], env=env,
                         capture_output=True, text=True, timeout=60, cwd=workspace)
    assert out.returncode == 0, out.stderr
    module, suite, params, models = out.stdout.split()
    install = str(workspace / 'install' / 'pair_drive_ros')
    assert module.startswith(install)  # the installed copy, not the source tree
    share = f'{install}/share/pair_drive_ros'
    assert suite == f'{share}/config/scenarios.yaml'
    assert params == f'{share}/config/pair_drive.yaml'
    assert models == f'{share}/models'


def test_symlink_install_builds_and_links_the_sources(tmp_path):
    result = _build(tmp_path, symlink=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    share = tmp_path / 'install' / 'pair_drive_ros' / 'share' / 'pair_drive_ros'
    cfg = share / 'config' / 'pair_drive.yaml'
    assert cfg.is_symlink()
    assert cfg.resolve() == (tmp_path / 'src' / 'pair_drive_ros' / 'config'
                             / 'pair_drive.yaml').resolve()


# ---- ros2 launch sim.launch.py in a namespace, with ros2cli against the running graph ---------
@pytest.fixture(scope='module')
def sim_graph(workspace, domain, tmp_path_factory):
    """
    Run sim.launch.py under namespace car1: six rate-ticked episodes of 20 s.

    Long enough for the CLI checks on a loaded machine; the graph ends by itself.
    """
    env = _env(workspace, domain)
    log = tmp_path_factory.mktemp('sim_launch') / 'launch.log'
    launch = Launch(env, 'sim.launch.py', 'namespace:=car1', 'planner:=constant_velocity',
                    'tick_mode:=rate', 'max_steps:=200',
                    'scenarios:=highway:11000,highway:11001,highway:11002,highway:11003,'
                    'highway:11004,highway:11005',
                    'log_level:=info', 'rviz:=true', log=log)
    # Listening from the start: the metrics come at the end of the episode.
    metrics = subprocess.Popen(['ros2', 'topic', 'echo', '--once', '--no-daemon',
                                '/car1/sim_bridge/episode_metrics', 'std_msgs/msg/String',
                                '--field', 'data'], env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    assert launch.wait_for('episode 1/6', 60.0), launch.text()[-4000:]
    yield env, launch, metrics
    launch.stop()
    if metrics.poll() is None:
        metrics.kill()


def test_sim_launch_namespaced_graph_publishes_a_path(sim_graph):
    env, launch, _ = sim_graph
    out = ros2(env, 'topic', 'echo', '--once', '/car1/planner/trajectory',
               'nav_msgs/msg/Path', '--field', 'header.frame_id', timeout=30)
    assert out.returncode == 0 and out.stdout.split()[0] == 'map', out.stderr
    # The namespace moved the whole graph; /clock, /tf and /tf_static stay global.
    wanted = {'/car1/carla/ego_vehicle/lidar', '/car1/perception/lidar_bev',
              '/car1/planner/trajectory', '/car1/sim_bridge/episode_metrics', '/clock', '/tf',
              '/tf_static'}
    deadline = time.monotonic() + 30.0
    while True:
        # Without the daemon: its cache can still hold endpoints of an earlier test's graph in
        # this domain. Discovery of every endpoint takes a moment on a loaded machine.
        topics = ros2(env, 'topic', 'list', '--no-daemon').stdout.split()
        outside = [t for t in topics if t.startswith(('/carla/', '/planner/', '/perception/'))]
        if (wanted <= set(topics) and not outside) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert wanted <= set(topics), wanted - set(topics)
    assert not outside, outside


def test_lifecycle_nodes_were_driven_to_active(sim_graph):
    env, _, _ = sim_graph
    for node in ('/car1/planner', '/car1/perception'):
        out = ros2(env, 'service', 'call', f'{node}/get_state', 'lifecycle_msgs/srv/GetState',
                   retry_s=10)
        assert "label='active'" in out.stdout, (node, out.stdout, out.stderr)


def test_launch_arguments_reach_the_nodes(sim_graph):
    env, _, _ = sim_graph
    for node, name, value in (('/car1/planner', 'planner', 'constant_velocity'),
                              ('/car1/sim_bridge', 'tick_mode', 'rate'),
                              ('/car1/sim_bridge', 'max_steps', '200'),
                              ('/car1/planner', 'use_sim_time', 'True')):
        out = ros2(env, 'param', 'get', node, name, retry_s=10)
        assert out.returncode == 0 and out.stdout.split()[-1] == value, (node, name, out)


def test_param_dump_describe_and_refused_values(sim_graph):
    env, _, _ = sim_graph
    dump = ros2(env, 'param', 'dump', '/car1/planner', retry_s=10)
    assert dump.returncode == 0, dump.stderr
    import yaml
    params = yaml.safe_load(dump.stdout)['/car1/planner']['ros__parameters']
    assert params['planner'] == 'constant_velocity' and params['max_input_age_s'] == 0.3
    desc = ros2(env, 'param', 'describe', '/car1/planner', 'max_input_age_s', retry_s=10)
    assert 'Type: double' in desc.stdout and 'Min value: 0.01' in desc.stdout, desc.stdout
    ok = ros2(env, 'param', 'set', '/car1/planner', 'max_input_age_s', '0.5', retry_s=10)
    assert 'Set parameter successful' in ok.stdout, ok.stdout + ok.stderr
    now = ros2(env, 'param', 'get', '/car1/planner', 'max_input_age_s', retry_s=10)
    assert now.stdout.split()[-1:] == ['0.5'], now.stdout + now.stderr
    for name, value, why in (('max_input_age_s', "'not a number'", 'type'),
                             ('max_input_age_s', '100.0', 'range'),
                             ('planner', 'pair', 'read only')):
        bad = ros2(env, 'param', 'set', '/car1/planner', name, value, timeout=60, retry_s=10)
        assert 'Setting parameter failed' in bad.stdout + bad.stderr, (why, bad.stdout)
    now = ros2(env, 'param', 'get', '/car1/planner', 'max_input_age_s', retry_s=10)
    assert now.stdout.split()[-1:] == ['0.5'], now.stdout + now.stderr


def test_rviz_missing_is_not_fatal_and_episode_ends_the_launch(sim_graph):
    env, launch, metrics = sim_graph
    out, err = metrics.communicate(timeout=60)
    assert metrics.returncode == 0, err
    m = json.loads(out.strip().splitlines()[0])
    # Rate ticks (not lockstep): the exact drive depends on timing; it drove, and it ended at
    # the step cap or by the scenario's own end (e.g. constant velocity into a slower car).
    assert m['scenario'] == 'highway' and m['seed'] == 11000 and 20 <= m['steps'] <= 200
    assert m['progress_m'] > 30.0 and {'collision', 'off_road', 'route_completion'} <= set(m)
    # The simulator's exit (on_exit=Shutdown) ends the launch; nothing is left running.
    assert launch.wait(160) == 0, launch.text()[-3000:]
    text = launch.text()
    assert 'episode highway:11005 done' in text and 'all episodes done' in text
    if shutil.which('rviz2') is None:
        assert 'rviz2 is not installed; going on without it' in text
    assert 'Traceback' not in text, text[-3000:]
    assert launch.leftovers() == []


# ---- bag_replay.launch.py --------------------------------------------------------------------
@pytest.mark.skipif(not (SAMPLE_BAG / 'metadata.yaml').is_file(), reason='no sample bag')
def test_bag_replay_launch_plans_on_the_sample_bag_and_ends(workspace, domain, tmp_path):
    # In a namespace: the player moves the recorded topics under it, so the chain still drives.
    env = _env(workspace, domain + 1)
    echo = subprocess.Popen(['ros2', 'topic', 'echo', '--once', '--no-daemon',
                             '/car2/planner/trajectory', 'nav_msgs/msg/Path', '--field',
                             'header.frame_id'], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    launch = Launch(env, 'bag_replay.launch.py', f'bag:={SAMPLE_BAG}', 'namespace:=car2',
                    'player:=pair_drive', 'planner:=constant_velocity',
                    log=tmp_path / 'launch.log')
    try:
        rc = launch.wait(90)
        out, err = echo.communicate(timeout=30)
    finally:
        launch.stop()
        if echo.poll() is None:
            echo.kill()
    text = launch.text()
    assert rc == 0, text[-3000:]
    assert out.split()[0] == 'map', err
    assert 'bag played' in text or 'process has finished cleanly' in text
    assert launch.leftovers() == []


# ---- carla.launch.py without CARLA -----------------------------------------------------------
def test_carla_launch_fails_soft_and_tracker_drives_the_role(workspace, domain, tmp_path):
    env = _env(workspace, domain + 2)
    launch = Launch(env, 'carla.launch.py', 'role_name:=hero', 'planner:=constant_velocity',
                    log=tmp_path / 'launch.log')
    pub = None
    try:
        assert launch.wait_for('publishing', 60.0), launch.text()[-3000:]
        text = launch.text()
        assert 'carla_ros_bridge is not installed' in text
        role = ros2(env, 'param', 'get', '/tracker', 'role_name', retry_s=10)
        assert role.stdout.split()[-1] == 'hero', role
        topic = ros2(env, 'param', 'get', '/perception', 'lidar_topic', retry_s=10)
        assert topic.stdout.split()[-1] == 'carla/hero/lidar', topic
        # The tracker commands once it has odometry (brakes: no path yet).
        pub = subprocess.Popen(['ros2', 'topic', 'pub', '-r', '10', '/carla/hero/odometry',
                                'nav_msgs/msg/Odometry', '{header: {frame_id: map}}'],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
        if importlib.util.find_spec('carla_msgs') is not None:
            cmd = ros2(env, 'topic', 'echo', '--once', '--no-daemon',
                       '/carla/hero/vehicle_control_cmd',
                       'carla_msgs/msg/CarlaEgoVehicleControl', '--field', 'brake', timeout=30)
            assert cmd.returncode == 0, cmd.stderr
            assert float(cmd.stdout.split()[0]) == 1.0  # no path yet: full brake
    finally:
        if pub is not None:
            os.killpg(pub.pid, signal.SIGINT)
            pub.wait(timeout=10)
        rc = launch.stop()
    assert rc == 0, launch.text()[-3000:]
    assert launch.leftovers() == []
