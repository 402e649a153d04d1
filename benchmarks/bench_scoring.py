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
Throughput of the PDM scorer on one core.

Candidates scored per second for G = 16 and G = 256 per scene, and the speed-up over the
slow reference implementation in test/.
With --baselines, also the mean scores of the expert (route follower), constant velocity and
the reference planner on synthetic scenes (until the simulator's val split exists).

Times are process CPU time (time.process_time) with one BLAS/OpenMP thread, i.e. throughput
per core, which stays meaningful on a machine shared with other jobs.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_scoring.py [--baselines N]
"""

import argparse
import os
import sys
import time

for _var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
    os.environ.setdefault(_var, '1')

import numpy as np  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'test'))

from pair_drive_ros.core.se2 import poses_to_global  # noqa: E402
from pair_drive_ros.core import Trajectory  # noqa: E402
from pair_drive_ros.core.se2 import poses_to_local  # noqa: E402
from pair_drive_ros.scoring import (constant_velocity_trajectory, Metric,  # noqa: E402
                                    prepare_scene, reference_plan, reference_progress,
                                    score_candidates, score_scenes, ScorerConfig)
import scoring_reference as slow  # noqa: E402
from scoring_scenes import (arc_lanes, make_scene, random_candidates,  # noqa: E402
                            straight_lanes)


def highway_scene(rng: np.random.Generator, token: str):
    """Return a 4-lane, 600 m highway (centrelines every 2 m) with 20 agents within 80 m."""
    lanes, fwd = straight_lanes(4, x0=-200.0, x1=400.0, spacing=2.0)
    agents = []
    for _ in range(20):
        agents.append(dict(x=float(rng.uniform(-60, 100)), y=4.0 * int(rng.integers(4)),
                           yaw=0.0, speed=float(rng.uniform(15, 30))))
    return make_scene(float(rng.uniform(15, 30)), agents, lanes, fwd, token=token)


def bench_fast(preps, refs, cands, cfg, repeat: int = 3) -> float:
    best = np.inf
    for _ in range(repeat):
        t0 = time.process_time()
        score_scenes(preps, cands, cfg, references=refs)
        best = min(best, time.process_time() - t0)
    return cands.shape[0] * cands.shape[1] / best


def bench_slow(scenes, cands, cfg, n: int) -> float:
    t0 = time.process_time()
    done = 0
    for scene, c in zip(scenes, cands):
        scorer = slow.SlowScorer(scene, cfg)
        start = prepare_scene(scene, cfg).start_state
        for g in range(len(c)):
            states = slow.simulate_one(poses_to_global(scene.ego.pose, c[g]), start,
                                       cfg.vehicle)
            scorer.score(states)
            slow.comfort_v1(states)
            done += 1
            if done >= n:
                return done / (time.process_time() - t0)
    return done / (time.process_time() - t0)


def synthetic_scene(rng: np.random.Generator, i: int):
    """Free road, curve, or a slow / stopped car ahead; returns (scene, expert speeds (8,))."""
    speed = float(rng.uniform(8.0, 20.0))
    kind = i % 3
    t = 0.5 * np.arange(1, 9)
    if kind == 1:
        # comfortable cornering speed: lateral acceleration v^2 / R <= 2 m/s^2
        radius = float(rng.uniform(60.0, 150.0))
        speed = min(speed, float(np.sqrt(2.0 * radius)))
        lanes, ids = arc_lanes(2, radius=radius)
        scene = make_scene(speed, lanes=lanes, route_ids=ids, route_points=lanes[0].centerline)
        return scene, np.full(8, speed)
    if kind == 2:
        gap = float(rng.uniform(30.0, 60.0))
        lead_v = float(rng.uniform(0.0, 0.5 * speed))
        scene = make_scene(speed, [dict(x=gap, y=0.0, yaw=0.0, speed=lead_v)])
        # brake uniformly to the leader's speed, reached 10 m behind where it will be
        dist = gap - 15.0 + lead_v * 4.0
        decel = max((speed - lead_v) ** 2 / max(2.0 * (dist - lead_v * 4.0), 1.0), 0.5)
        return scene, np.maximum(speed - decel * t, lead_v)
    return make_scene(speed), np.full(8, speed)


def route_follower(scene, speeds: np.ndarray) -> np.ndarray:
    """Ego-frame poses (8, 3) along the route centreline at the given speeds."""
    s0, _ = scene.route.project(scene.ego.pose[:2])
    poses = scene.route.interpolate(s0 + np.cumsum(0.5 * speeds))
    return Trajectory(poses_to_local(scene.ego.pose, poses)).poses


def baselines(num: int) -> None:
    """Mean sub-metrics, PDMS and EPDMS of three planners on synthetic scenes."""
    rng = np.random.default_rng(1)
    cfg = ScorerConfig()
    rows = {'expert (route follower)': [], 'constant velocity': [], 'reference planner': []}
    for i in range(num):
        scene, speeds = synthetic_scene(rng, i)
        prep = prepare_scene(scene, cfg)
        ref = reference_progress(prep, cfg)
        cands = np.stack([route_follower(scene, speeds),
                          constant_velocity_trajectory(scene.ego).poses,
                          reference_plan(prep, cfg).poses])
        table = score_candidates(prep, cands, cfg, reference=ref)
        for j, name in enumerate(rows):
            rows[name].append(np.r_[table.table[:, j], table.pdms[j], table.epdms[j]])
    cols = [m.name for m in Metric if m not in (Metric.TLC, Metric.EC)] + ['PDMS', 'EPDMS']
    idx = [int(m) for m in Metric if m not in (Metric.TLC, Metric.EC)] + [len(Metric),
                                                                          len(Metric) + 1]
    print(f'synthetic scenes: {num} (free road, curve, slow/stopped leader), navsim v2')
    print('| planner | ' + ' | '.join(cols) + ' |')
    print('|---' * (len(cols) + 1) + '|')
    for name, vals in rows.items():
        mean = np.mean(vals, axis=0)[idx]
        print(f'| {name} | ' + ' | '.join(f'{100 * v:.1f}' for v in mean) + ' |')


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--scenes', type=int, default=32)
    parser.add_argument('--slow-candidates', type=int, default=60)
    parser.add_argument('--baselines', type=int, default=0, metavar='N',
                        help='also score three baselines on N synthetic scenes')
    args = parser.parse_args()
    if args.baselines:
        baselines(args.baselines)
    rng = np.random.default_rng(0)
    cfg = ScorerConfig(human_filter=False)
    scenes = [highway_scene(rng, f'h{i}') for i in range(args.scenes)]
    t0 = time.process_time()
    preps = [prepare_scene(s, cfg) for s in scenes]
    prep_ms = 1e3 * (time.process_time() - t0) / len(scenes)
    # the first call loads the scorer's compiled kernels (compiles them on a machine's first
    # run): once per process, kept out of the per-scene and per-candidate numbers below
    t0 = time.process_time()
    warm = random_candidates(np.random.default_rng(1), scenes[0].ego.speed, 2)
    score_scenes(preps[:1], warm[None], cfg)
    first_s = time.process_time() - t0
    t0 = time.process_time()
    refs = [reference_progress(p, cfg) for p in preps]
    ref_ms = 1e3 * (time.process_time() - t0) / len(scenes)
    results = {}
    for g in (16, 256):
        n_scenes = len(scenes) if g == 16 else max(4, len(scenes) // 8)
        cands = np.stack([random_candidates(rng, s.ego.speed, g) for s in scenes[:n_scenes]])
        results[f'batched G={g}'] = bench_fast(preps[:n_scenes], refs[:n_scenes], cands, cfg)
        per_scene = [bench_fast([p], [r], c[None], cfg, 3)
                     for p, r, c in zip(preps[:4], refs[:4], cands[:4])]
        results[f'one scene per call G={g}'] = float(np.median(per_scene))
    cands = np.stack([random_candidates(rng, s.ego.speed, 16) for s in scenes[:8]])
    slow_rate = bench_slow(scenes[:8], cands, cfg, args.slow_candidates)
    print(f'first scorer call (loads or compiles the numba kernels, once per process): '
          f'{first_s:.2f} s')
    print(f'scene preparation (lane grid, agents; once per scene): {prep_ms:.2f} ms/scene')
    print(f'reference_progress (PDM-Closed-style planner, 15 proposals): {ref_ms:.2f} ms/scene')
    for name, rate in results.items():
        print(f'fast scorer, {name}: {rate:,.0f} candidates/s '
              f'({rate / slow_rate:,.0f}x the slow reference)')
    print(f'slow reference (test/scoring_reference.py): {slow_rate:,.1f} candidates/s')
    return 0


if __name__ == '__main__':
    sys.exit(main())
