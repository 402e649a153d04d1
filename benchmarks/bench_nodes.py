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
Benchmark: sensor stamp -> planned Path latency of perception_node + planner_node.

Real DDS. A source node publishes an 800x600 bgra8 camera image, a 60,000-point cloud and
odometry at 20 Hz, stamped with the wall clock, and a probe in the same node receives
/planner/trajectory. `--topology` says where the nodes run:

  single    source, perception_node, planner_node and the probe in one process under one
            MultiThreadedExecutor (the source competes with the nodes for the GIL)
  composed  source + probe in one process (as the CARLA bridge or `ros2 bag play` would be);
            perception_node + planner_node composed in a second process (`pair-drive run
            --no-tracker --wall-time`)
  split     source + probe; perception_node; planner_node: three processes, each node started
            by its own entry point (as `ros2 launch` starts them)

Reports latency p50/p95/max (probe receive time - header stamp), dropped frames (sent frames
without a Path), the planner's inference time and stops (from its /diagnostics), CPU time per
frame and resident memory of the node processes (growth = mean of the last 10 % of 1-Hz samples
vs the 10 % after a 5-s warm-up), and the load average. Prints one markdown table row with
--markdown.

Large messages between processes: the Fast DDS of the PyPI wheels has no shared-memory
transport, and its default UDP transport fragments a 1.9 MB image (measured p50 ~25 ms, p95
~50 ms for the image alone). The multi-process topologies therefore run every process with
FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA (Fast DDS >= 2.13: TCP or shared memory for data, UDP for
discovery) unless `--transport default`.

    .venv/bin/python benchmarks/bench_nodes.py --seconds 60 --topology split
"""

import argparse
from datetime import datetime, timezone
import gc
import os
from pathlib import Path
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TOPOLOGIES = ('single', 'composed', 'split')
READY_TIMEOUT_S = 180.0


def rss_mb(pid: int | str = 'self') -> float:
    """Resident set size of a process [MB] (0 if it is gone)."""
    try:
        text = Path(f'/proc/{pid}/status').read_text()
    except OSError:
        return 0.0
    return int(re.search(r'VmRSS:\s+(\d+)', text).group(1)) / 1024.0


def cpu_s(pid: int) -> float:
    """User + system CPU time of a process [s] (0 if it is gone)."""
    try:
        fields = Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def load_average() -> str:
    """Return the 1/5/15-minute load averages."""
    return ' '.join(Path('/proc/loadavg').read_text().split()[:3])


def make_frame(points: int, width: int, height: int):
    """Return a simulator SensorFrame, camera at width x height, `points` LiDAR points."""
    from pair_drive_ros.sim.closed_loop import SimSession
    from pair_drive_ros.sim.sensors import CameraConfig

    session = SimSession('highway', ego_mode='tracking', split='test',
                         camera_cfg=CameraConfig(width=width, height=height))
    session.reset(11000)
    frame = session.sensor_frame()
    rng = np.random.default_rng(0)
    idx = rng.integers(0, len(frame.lidar_points), points)
    pts = frame.lidar_points[idx].copy()
    pts[:, :3] += rng.normal(0.0, 0.02, (points, 3)).astype(np.float32)
    frame.lidar_points = pts
    return frame, session.route


def child_commands(topology: str, planner: str | None) -> list[list[str]]:
    """Command lines of the node processes of a multi-process topology."""
    py = [sys.executable, '-m']
    if topology == 'composed':
        cmd = py + ['pair_drive_ros.cli', 'run', '--no-tracker', '--wall-time']
        return [cmd + (['--planner', planner] if planner else [])]
    params = ['--ros-args', '--params-file', str(ROOT / 'config' / 'pair_drive.yaml'),
              '-p', 'use_sim_time:=false']
    planner_args = ['-p', f'planner:={planner}'] if planner else []
    return [py + ['pair_drive_ros.nodes.perception_node'] + params,
            py + ['pair_drive_ros.nodes.planner_node'] + params + planner_args]


class Source:
    """The sensor source and the Path probe (one node)."""

    def __init__(self, node, frame, route) -> None:
        from nav_msgs.msg import Odometry, Path as PathMsg
        from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
        from sensor_msgs.msg import Image, PointCloud2
        from diagnostic_msgs.msg import DiagnosticArray

        from pair_drive_ros import ros
        from pair_drive_ros.ros.carla import carla_topics
        from pair_drive_ros.ros.carla import sensor_messages

        self.node = node
        topics = carla_topics()
        self.pubs = {'camera': node.create_publisher(Image, topics['camera'], 10),
                     'lidar': node.create_publisher(PointCloud2, topics['lidar'], 10),
                     'odometry': node.create_publisher(Odometry, topics['odometry'], 10)}
        self.route_pub = node.create_publisher(PathMsg, topics['route'], ros.latched_qos())
        hdr = ros.make_header(ros.seconds_to_stamp(0.0), 'map')
        self.route_pub.publish(ros.route_to_path(route, hdr))
        self.msgs = sensor_messages(frame, ros.seconds_to_stamp(0.0))
        self.sent: set[int] = set()
        self.received: dict[int, int] = {}
        self.latency_ms: list[float] = []
        self.diags: list[dict] = []
        self.sending = False
        self.path_sub = node.create_subscription(
            PathMsg, '/planner/trajectory', self._on_path, 10,
            callback_group=MutuallyExclusiveCallbackGroup())
        node.create_subscription(DiagnosticArray, '/diagnostics', self._on_diag, 10,
                                 callback_group=MutuallyExclusiveCallbackGroup())

    def start(self, rate_hz: float) -> None:
        from rclpy.callback_groups import MutuallyExclusiveCallbackGroup

        self.sending = True
        self.node.create_timer(1.0 / rate_hz, self._publish,
                               callback_group=MutuallyExclusiveCallbackGroup())

    def ready(self) -> bool:
        """Every sensor topic has a subscriber, the Path a publisher, the planner reported."""
        return (all(p.get_subscription_count() > 0 for p in self.pubs.values())
                and self.path_sub.get_publisher_count() > 0 and bool(self.diags))

    def _publish(self) -> None:
        from pair_drive_ros import ros

        if not self.sending:
            return
        stamp = self.node.get_clock().now().to_msg()
        for key in ('camera', 'odometry', 'lidar'):
            self.msgs[key].header.stamp = stamp
            self.pubs[key].publish(self.msgs[key])
        self.sent.add(ros.stamp_to_nanoseconds(stamp))

    def _on_path(self, msg) -> None:
        from pair_drive_ros import ros

        now = self.node.get_clock().now().nanoseconds
        t = ros.stamp_to_nanoseconds(msg.header.stamp)
        # Only answers to sent frames: the watchdog's stopping trajectories carry `now`.
        if t in self.sent and t not in self.received:
            self.received[t] = now
            self.latency_ms.append((now - t) * 1e-6)

    def _on_diag(self, msg) -> None:
        for status in msg.status:
            if status.name.endswith(': planner'):
                self.diags.append({kv.key: kv.value for kv in status.values})


def run(seconds: float, rate_hz: float, planner: str | None, points: int, width: int,
        height: int, topology: str = 'single', transport: str = 'auto') -> dict:
    """Run one benchmark; returns the metrics."""
    if transport == 'auto':
        transport = 'default' if topology == 'single' else 'LARGE_DATA'
    if transport != 'default':
        os.environ['FASTDDS_BUILTIN_TRANSPORTS'] = transport  # before any participant exists
    import rclpy
    from rclpy.context import Context
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node

    from pair_drive_ros.apps.run import make_nodes
    from pair_drive_ros.ros.executor import freeze_startup_heap, make_executor

    frame, route = make_frame(points, width, height)
    domain = 100 + os.getpid() % 100
    ctx = Context()
    rclpy.init(context=ctx, domain_id=domain)
    nodes, children, logs = [], [], []
    log_dir = Path(tempfile.mkdtemp(prefix='bench_nodes_'))
    if topology == 'single':
        overrides = {'perception_node': {'use_sim_time': False},
                     'planner_node': {'use_sim_time': False}}
        if planner:
            overrides['planner_node']['planner'] = planner
        nodes = make_nodes(('perception_node', 'planner_node'), overrides=overrides,
                           context=ctx)
    else:
        env = dict(os.environ, ROS_DOMAIN_ID=str(domain), PYTHONUNBUFFERED='1')
        for k, cmd in enumerate(child_commands(topology, planner)):
            logs.append(log_dir / f'node{k}.log')
            with open(logs[-1], 'w') as log:
                children.append(subprocess.Popen(
                    cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT))
    source_node = Node('bench_source', context=ctx)
    source = Source(source_node, frame, route)
    if topology == 'single':
        executor = MultiThreadedExecutor(num_threads=4, context=ctx)
    else:  # a source process of its own (timer + probe): no executor threads beside them
        executor = make_executor('single', context=ctx)
    for node in nodes + [source_node]:
        executor.add_node(node)
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while not source.ready():
            executor.spin_once(timeout_sec=0.05)
            dead = [c for c in children if c.poll() is not None]
            if dead or time.monotonic() > deadline:
                tails = '\n'.join(p.read_text()[-3000:] for p in logs)
                raise RuntimeError(f'nodes not ready (exited: {[c.args for c in dead]}):\n'
                                   f'{tails}')
        if topology == 'single':
            freeze_startup_heap()  # what the node entry points and `pair-drive run` do
        t_end = time.monotonic() + 1.0
        while time.monotonic() < t_end:  # discovery settles
            executor.spin_once(timeout_sec=0.01)
        pids = [c.pid for c in children]
        n_diag0 = len(source.diags)
        source.start(rate_hz)
        t0 = time.monotonic()
        cpu_self0 = time.process_time()
        cpu_nodes0 = sum(cpu_s(p) for p in pids)
        next_rss, rss = t0, []
        while time.monotonic() - t0 < seconds:
            executor.spin_once(timeout_sec=0.01)
            if time.monotonic() >= next_rss:
                rss.append(sum(rss_mb(p) for p in pids) if pids else rss_mb())
                next_rss += 1.0
        source.sending = False
        cpu_self = time.process_time() - cpu_self0
        cpu_nodes = sum(cpu_s(p) for p in pids) - cpu_nodes0
        # Last Paths; shorter than max_input_age_s, so no watchdog stop counts.
        t_end = time.monotonic() + 0.25
        while time.monotonic() < t_end:
            executor.spin_once(timeout_sec=0.01)
        exited = [c.args for c in children if c.poll() is not None]
        if exited:
            raise RuntimeError(f'node processes exited during the run: {exited} (logs in '
                               f'{log_dir})')
    finally:
        for node in nodes + [source_node]:
            node.destroy_node()
        rclpy.try_shutdown(context=ctx)
        for child in children:
            child.terminate()
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
    shutil.rmtree(log_dir, ignore_errors=True)  # kept above when a node failed
    lat = np.asarray(source.latency_ms)
    diags = source.diags[n_diag0:] or source.diags[-1:]
    window_p50 = np.asarray([float(d.get('inference_latency_ms_p50', 'nan')) for d in diags])
    window_p50 = window_p50[np.isfinite(window_p50)]
    last = source.diags[-1] if source.diags else {}
    rss = np.asarray(rss)
    k = max(1, len(rss) // 10)
    start = min(len(rss) - 1, 5)
    warm = rss[start:start + k]
    frames = max(1, len(source.sent))
    res = {
        'topology': topology, 'transport': transport, 'seconds': seconds, 'rate_hz': rate_hz,
        'planner': last.get('model_ids', '?'), 'camera': f'{width}x{height} bgra8',
        'points': points, 'frames_sent': len(source.sent), 'paths': len(source.received),
        'dropped': len(source.sent) - len(source.received),
        'latency_p50_ms': float(np.percentile(lat, 50)) if len(lat) else float('nan'),
        'latency_p95_ms': float(np.percentile(lat, 95)) if len(lat) else float('nan'),
        'latency_max_ms': float(lat.max()) if len(lat) else float('nan'),
        'inference_p50_ms': float(np.median(window_p50)) if len(window_p50) else float('nan'),
        'stops': int(last.get('stops', -1)),
        'planner_dropped': int(last.get('dropped_frames', -1)),
        # single: the one process (source included); otherwise the node processes only.
        'cpu_ms_per_frame': 1e3 * (cpu_self if topology == 'single' else cpu_nodes) / frames,
        'source_cpu_ms_per_frame': (1e3 * cpu_self / frames if topology != 'single'
                                    else float('nan')),
        'rss_start_mb': float(warm.mean()), 'rss_end_mb': float(rss[-k:].mean()),
        'loadavg_end': load_average(),
    }
    res['rss_growth_pct'] = 100.0 * (res['rss_end_mb'] / res['rss_start_mb'] - 1.0)
    every = max(1, len(rss) // 10)
    res['rss_trace_mb'] = ' '.join(f'{v:.0f}' for v in rss[::every])
    return res


def markdown_row(res: dict, command: str, started_utc: str, commit: str, load0: str) -> str:
    """One row of the RESULTS table: command, time, commit, load, the metrics."""
    return (f"| {res['topology']} | `{command}` | {started_utc} | {commit} | {load0} -> "
            f"{res['loadavg_end']} | {res['frames_sent']} / {res['dropped']} | "
            f"{res['latency_p50_ms']:.1f} / {res['latency_p95_ms']:.1f} / "
            f"{res['latency_max_ms']:.1f} | {res['inference_p50_ms']:.1f} | "
            f"{res['cpu_ms_per_frame']:.1f} | {res['rss_start_mb']:.0f} -> "
            f"{res['rss_end_mb']:.0f} ({res['rss_growth_pct']:+.1f} %) |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--seconds', type=float, default=60.0)
    parser.add_argument('--rate', type=float, default=20.0)
    parser.add_argument('--planner', default=None, help='planner (default: config file)')
    parser.add_argument('--points', type=int, default=60_000)
    parser.add_argument('--width', type=int, default=800)
    parser.add_argument('--height', type=int, default=600)
    parser.add_argument('--topology', choices=TOPOLOGIES, default='split',
                        help='where the nodes run (see the module docstring)')
    parser.add_argument('--transport', default='auto',
                        help='FASTDDS_BUILTIN_TRANSPORTS for every process: auto (LARGE_DATA '
                        'for the multi-process topologies), default, LARGE_DATA, UDPv4, ...')
    parser.add_argument('--markdown', action='store_true', help='print a RESULTS table row')
    args = parser.parse_args()
    started = datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    load0 = load_average()
    commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()
    gc.collect()
    res = run(args.seconds, args.rate, args.planner, args.points, args.width, args.height,
              args.topology, args.transport)
    print(f'started: {started}; commit {commit}; load average at start {load0}')
    for key, value in res.items():
        print(f'{key}: {value:.2f}' if isinstance(value, float) else f'{key}: {value}')
    if args.markdown:
        command = ' '.join(['.venv/bin/python benchmarks/bench_nodes.py'] + sys.argv[1:])
        command = command.replace(' --markdown', '')
        print(markdown_row(res, command, started, commit, load0))


if __name__ == '__main__':
    main()
