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
Embedded simulator throughput: synthetic LiDAR and camera ms/frame, sim steps/s, generation.

Prints a markdown table (p50/p95 over repeated calls on logged frames of each family).
Targets: LiDAR <= 5 ms, camera <= 10 ms at 400x300.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_sim.py [--data data/logs]
"""

import argparse
import os
from pathlib import Path
import platform
import tempfile
import time

import numpy as np

from pair_drive_ros.core.trajectory import Trajectory
from pair_drive_ros.sim import generate
from pair_drive_ros.sim.closed_loop import SimSession
from pair_drive_ros.sim.logs import EpisodeLog
from pair_drive_ros.sim.sensors import (CameraConfig, LidarConfig, render_camera,
                                        simulate_lidar)

FAMILIES = ('highway', 'merge', 'intersection', 'roundabout')


def timeit(fn, repeat: int) -> tuple[float, float, float]:
    """
    Return p50, p95 wall [ms] and p50 process CPU time [ms] of `repeat` calls (after warm-up).

    CPU time is what the call costs on a free core; wall time includes waiting for a core on
    this shared machine.
    """
    fn()
    fn()
    wall = np.empty(repeat)
    cpu = np.empty(repeat)
    for i in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall[i], cpu[i] = time.perf_counter() - t0, time.process_time() - c0
    return (float(np.percentile(wall, 50) * 1e3), float(np.percentile(wall, 95) * 1e3),
            float(np.percentile(cpu, 50) * 1e3))


def sensor_rows(data: Path, repeat: int) -> list[str]:
    rows = []
    for fam in FAMILIES:
        paths = sorted((data / 'val' / fam).glob('*.npz'))
        if not paths:
            continue
        log = EpisodeLog.load(paths[0])
        geo = log.road_geometry()
        frames = np.linspace(0, log.num_frames - 1, 8).astype(int)
        states = [(log.arrays['ego_pose'][k], log.agents(k)) for k in frames]
        it = iter(range(10 ** 9))

        def lidar(cfg=LidarConfig()):
            pose, agents = states[next(it) % len(states)]
            return simulate_lidar(pose, agents, geo, cfg)

        n_pts = np.mean([len(simulate_lidar(p, a, geo)) for p, a in states])
        p50, p95, cpu = timeit(lidar, repeat)
        rows.append(f'| LiDAR 32 x 720 rays, 50 m | {fam} | {cpu:.2f} | {p50:.2f} | {p95:.2f} | '
                    f'{n_pts:.0f} points |')
        for w, h in ((256, 128), (400, 300), (800, 600)):
            cfg = CameraConfig(width=w, height=h)

            def cam(cfg=cfg):
                pose, agents = states[next(it) % len(states)]
                return render_camera(pose, agents, geo, cfg)

            p50, p95, cpu = timeit(cam, repeat)
            rows.append(f'| camera {w}x{h} | {fam} | {cpu:.2f} | {p50:.2f} | {p95:.2f} | |')
    return rows


def sim_rows(steps: int) -> list[str]:
    rows = []
    for fam in FAMILIES:
        session = SimSession(fam, ego_mode='tracking', max_steps=steps)
        session.reset(10000)
        plan = Trajectory(np.stack([5.0 * np.arange(1, 9), np.zeros(8), np.zeros(8)], -1))
        t0, c0 = time.perf_counter(), time.process_time()
        n = 0
        while not session.done:
            if session.steps % 5 == 0:
                session.set_trajectory(plan)
            session.step()
            n += 1
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        rows.append(f'| sim step, tracking ego (incl. recording) | {fam} | '
                    f'{1000 * cpu / n:.2f} ms CPU ({1000 * wall / n:.2f} ms wall) | '
                    f'{n / cpu:.0f} steps/s per core |')
    with tempfile.TemporaryDirectory() as tmp:
        for fam in FAMILIES:
            t0, c0 = time.perf_counter(), time.process_time()
            res = generate.record_episode(generate.DEFAULT_SUITE.as_posix(), 'val', fam, 10000,
                                          os.path.join(tmp, f'{fam}.npz'))
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            rows.append(f'| generate (expert + log), 1 episode | {fam} | '
                        f'{res["frames"]} frames in {cpu:.1f} s CPU ({wall:.1f} s wall) | '
                        f'{res["frames"] / cpu:.0f} frames/s per core |')
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--data', default='data/logs', help='scene logs (uses the val split)')
    parser.add_argument('--repeat', type=int, default=40)
    parser.add_argument('--steps', type=int, default=100)
    parser.add_argument('--sensors-only', action='store_true')
    args = parser.parse_args()
    lines = [f'Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, '
             f'numpy {np.__version__}.', '',
             '| sensor | family | CPU p50 [ms] | wall p50 [ms] | wall p95 [ms] | note |',
             '|---|---|---|---|---|---|']
    lines += sensor_rows(Path(args.data), args.repeat)
    if not args.sensors_only:
        lines += ['', '| what | family | time | rate |', '|---|---|---|---|']
        lines += sim_rows(args.steps)
    lines.append(f'\nload average at the end: {os.getloadavg()[0]:.1f}')
    print('\n'.join(lines))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
