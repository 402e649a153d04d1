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
Start-up and lockstep of the simulator bridge, perception and planner.

They reach their first plan in any start order, in one process (as `pair-drive run --sim`
composes them) and one process per node (as `ros2 launch` starts them), and the lockstep loop
then runs to the end of its episode.

Each node is started only once the one before it is up (its name is in the graph), so every order
really happens. The time bounds are generous: the machine may be loaded, and what is under test
is that a lost first exchange is recovered (the bridge resends it a bounded number of times, then
ticks anyway), not how fast discovery is. One process per node costs ~10-15 s per order (three
interpreters start one after the other), so two of the six orders run here: the bridge first
(it waits for its consumers) and the bridge last (the graph is matched before the first frame).
"""

import itertools
import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip('rclpy')

pytestmark = pytest.mark.ros

ROOT = Path(__file__).resolve().parents[1]
TRIO = ('sim_bridge_node', 'perception_node', 'planner_node')
NAMES = {'sim_bridge_node': 'sim_bridge', 'perception_node': 'perception',
         'planner_node': 'planner'}
MAX_STEPS = 5
FIRST_PLAN_S = 60.0      # start of the first node -> first Path, however loaded the machine
EPISODE_S = 60.0         # first Path -> the end of the MAX_STEPS-step episode
NODE_UP_S = 60.0         # a node process's start -> its name in the graph


def node_parameters(exe: str) -> dict:
    """Return the trio's parameters here: the shipped params file's, plus a short episode."""
    values = {'use_sim_time': True}
    if exe == 'sim_bridge_node':
        values.update(scenarios='highway:11000', max_steps=MAX_STEPS)
    if exe == 'planner_node':
        values.update(planner='constant_velocity')
    return values


def _spin_until(executor, done, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.02)
    return done()


def decoy(node):
    """
    Make `node` look like the graph to the bridge: a LiDAR subscriber and a Path publisher.

    The bridge then sends its first frame before perception and the planner exist: the first
    exchange is lost for certain, and must be recovered.
    """
    from nav_msgs.msg import Path as PathMsg
    from sensor_msgs.msg import PointCloud2

    from pair_drive_ros import ros
    from pair_drive_ros.ros.carla import carla_topics

    lidar = []
    node.create_subscription(PointCloud2, carla_topics()['lidar'], lidar.append,
                             ros.sensor_qos())
    node.create_publisher(PathMsg, '/planner/trajectory', ros.reliable_qos(1))
    return lidar


def run_in_process(ctx, order: tuple, lose_first: bool = False):
    """Start the trio in `order` in one process; return (nodes, first plan [s])."""
    from nav_msgs.msg import Path as PathMsg
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node

    from pair_drive_ros.apps.run import make_nodes

    probe = Node('probe', context=ctx)
    paths = []
    probe.create_subscription(PathMsg, '/planner/trajectory', paths.append, 10)
    lidar = decoy(probe) if lose_first else None
    executor = MultiThreadedExecutor(num_threads=4, context=ctx)
    executor.add_node(probe)
    nodes = {}
    t0 = time.monotonic()
    try:
        for exe in order:
            (node,) = make_nodes((exe,), overrides={exe: node_parameters(exe)}, context=ctx)
            nodes[exe] = node
            executor.add_node(node)
            assert _spin_until(executor, lambda: NAMES[exe] in probe.get_node_names(), 10.0)
            if lose_first and exe == 'sim_bridge_node':
                assert _spin_until(executor, lambda: len(lidar) > 0, 10.0)
        assert _spin_until(executor, lambda: len(paths) > 0, FIRST_PLAN_S), \
            f'no plan within {FIRST_PLAN_S} s'
        first_plan_s = time.monotonic() - t0
        sim = nodes['sim_bridge_node']
        assert _spin_until(executor, lambda: sim.finished, EPISODE_S), \
            f'the episode did not end: {sim.ticks} ticks, {sim.resends_total} resends'
    finally:
        executor.shutdown()
        for node in list(nodes.values()) + [probe]:
            node.destroy_node()
    return nodes, first_plan_s


def check_episode(nodes: dict) -> None:
    """Check that the episode ran to its end, the first exchange resent at most MAX_RESENDS."""
    from pair_drive_ros.nodes.sim_bridge_node import MAX_RESENDS

    sim = nodes['sim_bridge_node']
    (result,) = sim.results
    assert result['steps'] == MAX_STEPS
    assert sim.resends_total <= MAX_RESENDS
    # Every frame after the first exchange is answered in lockstep.
    assert nodes['planner_node'].health.plans >= MAX_STEPS - sim.unanswered_ticks


@pytest.mark.parametrize('order', list(itertools.permutations(TRIO)),
                         ids=lambda o: '-'.join(NAMES[e] for e in o))
def test_one_process_reaches_its_first_plan_in_every_start_order(ros_context, order):
    nodes, first_plan_s = run_in_process(ros_context, order)
    check_episode(nodes)
    sim = nodes['sim_bridge_node']
    print(f'\n{"-".join(NAMES[e] for e in order)}: first plan {first_plan_s:.2f} s, '
          f'{sim.resends_total} resends, {sim.unanswered_ticks} unanswered ticks')


def test_a_lost_first_exchange_is_recovered(ros_context):
    nodes, first_plan_s = run_in_process(ros_context, TRIO, lose_first=True)
    check_episode(nodes)
    sim = nodes['sim_bridge_node']
    assert sim.resends_total + sim.unanswered_ticks >= 1
    print(f'\nfirst frame lost: first plan {first_plan_s:.2f} s, {sim.resends_total} resends, '
          f'{sim.unanswered_ticks} unanswered ticks')


# ---- one process per node ----------------------------------------------------------------------

def node_command(exe: str) -> list[str]:
    """`python -m pair_drive_ros.nodes.<exe>` with the parameters of `node_parameters`."""
    cmd = [sys.executable, '-m', f'pair_drive_ros.nodes.{exe}', '--ros-args']
    params = node_parameters(exe)
    if exe != 'sim_bridge_node':
        params['autostart'] = True   # unmanaged start: no launch file drives the lifecycle here
    for name, value in params.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        cmd += ['-p', f'{name}:={text}']
    return cmd


def node_env(domain_id: int) -> dict:
    """Return the node processes' environment: this source tree, own domain, localhost only."""
    return dict(os.environ, ROS_DOMAIN_ID=str(domain_id),
                ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
                PYTHONPATH=f'{ROOT}{os.pathsep}{os.environ.get("PYTHONPATH", "")}')


def run_processes(order: tuple, domain_id: int, log_dir: Path, lose_first: bool = False) -> dict:
    """
    Start the trio as one process per node in `order`; run the episode; return what happened.

    Each process starts once the previous node is in the graph (with `lose_first`, once the
    bridge has sent its first frame to a decoy, see `decoy`). Returns {'first_plan_s',
    'episode_s', 'exits' (return codes of processes that ended on their own, by node),
    'bridge_rc', 'logs'}. The planner and perception are ended with SIGINT afterwards.
    """
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from nav_msgs.msg import Path as PathMsg

    env = node_env(domain_id)
    ctx = Context()
    saved = os.environ.get('ROS_AUTOMATIC_DISCOVERY_RANGE')
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'  # read by rclpy.init
    try:
        rclpy.init(context=ctx, domain_id=domain_id)
    finally:
        if saved is None:
            os.environ.pop('ROS_AUTOMATIC_DISCOVERY_RANGE')
        else:
            os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = saved
    probe = Node('probe', context=ctx)
    paths = []
    probe.create_subscription(PathMsg, '/planner/trajectory', paths.append, 10)
    lidar = decoy(probe) if lose_first else None
    executor = SingleThreadedExecutor(context=ctx)
    executor.add_node(probe)
    procs, logs = {}, {}
    # The processes are ended with SIGINT: a shell that started pytest in the background leaves
    # SIGINT ignored, inherited at exec unless this process handles it (reset to the default).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    out = {'first_plan_s': None, 'episode_s': None, 'exits': {}, 'bridge_rc': None,
           'logs': logs}
    t0 = time.monotonic()
    try:
        for exe in order:
            logs[exe] = log_dir / f'{exe}.log'
            with open(logs[exe], 'w') as log:
                procs[exe] = subprocess.Popen(node_command(exe), stdout=log,
                                              stderr=subprocess.STDOUT, env=env, cwd=ROOT)
            up = _spin_until(executor, lambda: NAMES[exe] in probe.get_node_names()
                             or procs[exe].poll() is not None, NODE_UP_S)
            if not up or procs[exe].poll() is not None:
                break
            if lose_first and exe == 'sim_bridge_node':
                _spin_until(executor, lambda: len(lidar) > 0, NODE_UP_S)
        if len(procs) == len(order):
            if _spin_until(executor, lambda: len(paths) > 0 or any(
                    p.poll() is not None for p in procs.values()), FIRST_PLAN_S) and paths:
                out['first_plan_s'] = time.monotonic() - t0
                t1 = time.monotonic()
                bridge = procs['sim_bridge_node']
                # The bridge process ends by itself at the end of its episode.
                _spin_until(executor, lambda: bridge.poll() is not None or any(
                    p.poll() is not None for e, p in procs.items() if e != 'sim_bridge_node'),
                    EPISODE_S)
                if bridge.poll() is not None:
                    out['episode_s'] = time.monotonic() - t1
                    out['bridge_rc'] = bridge.returncode
        out['exits'] = {e: p.returncode for e, p in procs.items()
                        if p.poll() is not None and e != 'sim_bridge_node'}
        if out['bridge_rc'] is None and procs.get('sim_bridge_node') is not None \
                and procs['sim_bridge_node'].poll() is not None:
            out['exits']['sim_bridge_node'] = procs['sim_bridge_node'].returncode
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGINT)
        for e, p in procs.items():
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            out.setdefault('stopped', {})[e] = p.returncode
        executor.shutdown()
        probe.destroy_node()
        rclpy.try_shutdown(context=ctx)
        signal.signal(signal.SIGINT, previous)
    return out


# The bridge first, its first frame lost (sent before perception and the planner exist), and
# the bridge last.
PROCESS_ORDERS = [(('sim_bridge_node', 'perception_node', 'planner_node'), True),
                  (('planner_node', 'perception_node', 'sim_bridge_node'), False)]


@pytest.mark.parametrize('order, lose_first', PROCESS_ORDERS,
                         ids=['-'.join(NAMES[e] for e in o) + ('-first-lost' if lost else '')
                              for o, lost in PROCESS_ORDERS])
def test_one_process_per_node_reaches_its_first_plan(order, lose_first, tmp_path):
    from conftest import _DOMAIN_IDS

    out = run_processes(order, next(_DOMAIN_IDS) % 230, tmp_path, lose_first)
    logs = {e: p.read_text()[-3000:] for e, p in out['logs'].items()}
    assert out['exits'] == {}, f'a node process ended: {out["exits"]}\n{logs}'
    assert out['first_plan_s'] is not None, f'no plan within {FIRST_PLAN_S} s\n{logs}'
    assert out['bridge_rc'] == 0, f'the episode did not end cleanly\n{logs}'
    assert f'in {MAX_STEPS} steps' in logs['sim_bridge_node']
    assert 'Traceback' not in ''.join(logs.values())
    if lose_first:
        assert 'resending the frame' in logs['sim_bridge_node'] \
            or 'ticking anyway' in logs['sim_bridge_node']
    # Ended with Ctrl-C: one line, exit 130.
    assert out['stopped']['planner_node'] == 130 and out['stopped']['perception_node'] == 130
    print(f'\n{"-".join(NAMES[e] for e in order)}: first plan {out["first_plan_s"]:.1f} s '
          f'after the first start, episode {out["episode_s"]:.1f} s')
