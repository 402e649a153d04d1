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
Soak: `pair-drive run` with the simulator bridge, looping episodes, for N minutes.

Starts `pair-drive run --sim SCENARIOS` (perception, planner, tracker and the simulator bridge in
one process, lockstep) with the shipped params file plus `loop: true` for the bridge, on its own
DDS domain, localhost discovery. Every `--sample-s` seconds it records the process's resident
memory (VmRSS) and, from /diagnostics and ~/episode_metrics received by a probe in this process,
the planner's plans and stops and the episodes finished. At the end the run is stopped with
SIGINT (expected: exit 130).

Reports start and end RSS, the least-squares RSS slope per minute over the samples after the
first minute (start-up allocations excluded) and over the second half, plans, stops and
episodes; writes every sample and the summary as JSON and prints a table.

    nice .venv/bin/python benchmarks/bench_soak.py --minutes 10 --out soak.json
"""

import argparse
from datetime import datetime, timezone
import json
import os
from pathlib import Path
import re
import signal
import subprocess
import sys
import tempfile
import time

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pair_drive_ros.nodes.params import DEFAULT_CONFIG  # noqa: E402  (after the path)


def rss_mb(pid: int) -> float:
    """Resident memory of process `pid` [MiB] (nan once it has ended)."""
    try:
        text = Path(f'/proc/{pid}/status').read_text()
    except OSError:
        return float('nan')
    return int(re.search(r'VmRSS:\s+(\d+)', text).group(1)) / 1024.0


def slope_per_min(t_s: np.ndarray, y: np.ndarray) -> float:
    """Least-squares slope of y over t, per minute (nan with fewer than 3 points)."""
    ok = np.isfinite(y)
    if ok.sum() < 3:
        return float('nan')
    return float(np.polyfit(t_s[ok] / 60.0, y[ok], 1)[0])


def write_params(path: Path, planner: str | None) -> None:
    """Return the shipped params file with the bridge looping its scenarios."""
    data = yaml.safe_load(DEFAULT_CONFIG.read_text())
    data['sim_bridge']['ros__parameters']['loop'] = True
    if planner:
        data['planner']['ros__parameters']['planner'] = planner
    path.write_text(yaml.safe_dump(data, sort_keys=False))


class Probe:
    """Collects the planner's and the bridge's /diagnostics and the finished episodes."""

    def __init__(self, domain_id: int) -> None:
        import rclpy
        from rclpy.context import Context
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.node import Node
        from diagnostic_msgs.msg import DiagnosticArray
        from std_msgs.msg import String

        from pair_drive_ros.nodes.sim_bridge_node import _metrics_qos

        self.ctx = Context()
        rclpy.init(context=self.ctx, domain_id=domain_id)
        self.node = Node('soak_probe', context=self.ctx)
        self.planner: dict = {}
        self.bridge: dict = {}
        self.episodes: list[dict] = []
        self.node.create_subscription(DiagnosticArray, '/diagnostics', self._diag, 50)
        self.node.create_subscription(String, '/sim_bridge/episode_metrics', self._episode,
                                      _metrics_qos())
        self.executor = SingleThreadedExecutor(context=self.ctx)
        self.executor.add_node(self.node)

    def _diag(self, msg) -> None:
        for s in msg.status:
            values = {kv.key: kv.value for kv in s.values}
            if s.name.startswith('planner'):
                self.planner = values
            elif s.name.startswith('sim_bridge'):
                self.bridge = values

    def _episode(self, msg) -> None:
        self.episodes.append(json.loads(msg.data))

    def spin(self, seconds: float) -> None:
        """Deliver what arrives for `seconds`."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.executor.spin_once(timeout_sec=min(0.1, max(0.0, end - time.monotonic())))

    def close(self) -> None:
        """Destroy the probe and shut its context down."""
        import rclpy

        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.ctx)


def _int(values: dict, key: str) -> int:
    try:
        return int(values.get(key, 0))
    except ValueError:
        return 0


def run(minutes: float, scenarios: str, planner: str | None, sample_s: float,
        domain_id: int) -> dict:
    """Run the soak; return {'samples': [...], 'summary': {...}}."""
    env = dict(os.environ, ROS_DOMAIN_ID=str(domain_id),
               ROS_AUTOMATIC_DISCOVERY_RANGE='LOCALHOST',
               PYTHONPATH=f'{ROOT}{os.pathsep}{os.environ.get("PYTHONPATH", "")}')
    os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'  # the probe too
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        params = Path(tmp) / 'params.yaml'
        write_params(params, planner)
        log_path = Path(tmp) / 'run.log'
        probe = Probe(domain_id)
        with open(log_path, 'w') as log:
            proc = subprocess.Popen([sys.executable, '-m', 'pair_drive_ros.cli', 'run',
                                     '--params', str(params), '--sim', scenarios],
                                    stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT)
        t0 = time.monotonic()
        try:
            while time.monotonic() - t0 < minutes * 60.0 and proc.poll() is None:
                samples.append({
                    't_s': round(time.monotonic() - t0, 2), 'rss_mb': round(rss_mb(proc.pid), 1),
                    'plans': _int(probe.planner, 'plans'), 'stops': _int(probe.planner, 'stops'),
                    'bad_inputs': _int(probe.planner, 'bad_inputs'),
                    'ticks': _int(probe.bridge, 'ticks'), 'episodes': len(probe.episodes)})
                probe.spin(sample_s)
            exited_early = proc.poll()
            proc.send_signal(signal.SIGINT)
            try:
                rc = proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
                rc = proc.wait()
        finally:
            if proc.poll() is None:
                proc.kill()
            probe.close()
        log_tail = log_path.read_text()[-2000:]
    t = np.array([s['t_s'] for s in samples])
    rss = np.array([s['rss_mb'] for s in samples])
    after = t >= 60.0
    half = t >= t[-1] / 2 if len(t) else after
    last = samples[-1] if samples else {}
    collisions = sum(bool(e.get('collision')) for e in probe.episodes)
    summary = {
        'minutes': minutes, 'scenarios': scenarios, 'planner': planner or 'params file',
        'samples': len(samples), 'rss_start_mb': float(rss[after][0]) if after.any() else None,
        'rss_first_mb': float(rss[0]) if len(rss) else None,
        'rss_end_mb': float(rss[-1]) if len(rss) else None,
        'rss_max_mb': float(np.nanmax(rss)) if len(rss) else None,
        'slope_mb_per_min': slope_per_min(t[after], rss[after]),
        'slope_second_half_mb_per_min': slope_per_min(t[half], rss[half]),
        'plans': last.get('plans'), 'stops': last.get('stops'),
        'bad_inputs': last.get('bad_inputs'), 'ticks': last.get('ticks'),
        'episodes': len(probe.episodes), 'collisions': collisions,
        'exited_early': exited_early, 'exit_code': rc, 'log_tail': log_tail,
    }
    return {'samples': samples, 'summary': summary}


def table(res: dict) -> str:
    """Format the samples (one row a minute) and the summary as text."""
    rows = ['   t [s]   RSS [MiB]    plans  stops  ticks  episodes']
    next_t = 0.0
    for s in res['samples']:
        if s['t_s'] >= next_t:
            rows.append(f"{s['t_s']:8.0f} {s['rss_mb']:11.1f} {s['plans']:8d} {s['stops']:6d} "
                        f"{s['ticks']:6d} {s['episodes']:9d}")
            next_t += 60.0
    m = res['summary']
    rows.append(f"RSS {m['rss_start_mb']} MiB at 1 min -> {m['rss_end_mb']} MiB at the end "
                f"(max {m['rss_max_mb']}); slope {m['slope_mb_per_min']:+.2f} MiB/min after "
                f"the first minute, {m['slope_second_half_mb_per_min']:+.2f} MiB/min over the "
                'second half')
    rows.append(f"plans {m['plans']}, stops {m['stops']}, planner bad inputs "
                f"{m['bad_inputs']}, ticks {m['ticks']}, episodes {m['episodes']} "
                f"({m['collisions']} with a collision), exit code {m['exit_code']}")
    return '\n'.join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    ap.add_argument('--minutes', type=float, default=10.0)
    ap.add_argument('--scenarios', default='highway:11000,merge:11000,roundabout:11000',
                    help="the bridge's episodes, looped (default: %(default)s)")
    ap.add_argument('--planner', default=None,
                    help="planner name (default: the params file's, 'pair')")
    ap.add_argument('--sample-s', type=float, default=10.0)
    ap.add_argument('--domain-id', type=int, default=200 + os.getpid() % 30)
    ap.add_argument('--out', default='', help='JSON file for the samples and the summary')
    args = ap.parse_args()
    # A job started in the background by a non-interactive shell has SIGINT ignored, and
    # children inherit that: `pair-drive run` would never see the Ctrl-C that ends the soak.
    # A handler here (reset to the default in the child at exec) undoes it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = datetime.now(timezone.utc).strftime('%Y-%m-%d %H:%M UTC')
    try:  # the code under test is the code at the start
        commit = subprocess.run(['git', 'rev-parse', '--short', 'HEAD'], capture_output=True,
                                text=True, cwd=ROOT).stdout.strip()
    except OSError:
        commit = ''
    res = run(args.minutes, args.scenarios, args.planner, args.sample_s, args.domain_id)
    res['summary'].update(started_utc=started, commit=commit, command=' '.join(
        ['benchmarks/bench_soak.py'] + sys.argv[1:]), load_average_end=' '.join(
        Path('/proc/loadavg').read_text().split()[:3]))
    print(table(res))
    if args.out:
        Path(args.out).write_text(json.dumps(res, indent=1))
        print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
