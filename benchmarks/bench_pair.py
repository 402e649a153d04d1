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
PaIR-Drive inference latency on CPU: features -> IL -> tree (G = 15) -> selector -> plan.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_pair.py [--frames 200] [--threads 1]

Uses the shipped checkpoints (models/) and real cached test-split features. Reports p50 / p95
per frame of the whole PaIRPlanner.compute_plan call and of its parts (IL, RL tree, selector),
plus the IL planner alone and the feature builder (sensor frame -> features) for reference.
Prints a Markdown table for docs/RESULTS.md.
"""

import argparse
import time

import numpy as np
import torch


def percentiles(ms: list) -> str:
    """'p50 / p95' of milliseconds."""
    a = np.asarray(ms)
    return f'{np.percentile(a, 50):.1f} / {np.percentile(a, 95):.1f}'


def main() -> None:
    from pair_drive_ros.policy.base import PlannerInput
    from pair_drive_ros.policy.pair import PaIRPlanner
    from pair_drive_ros.training.data import DataConfig, ILDataset

    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument('--frames', type=int, default=200)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--il', default='models/transfuser_lite.pt')
    p.add_argument('--rl', default='models/pair_rl_branch.pt')
    p.add_argument('--selector', default='models/pair_selector.pt')
    p.add_argument('--data', default='data/logs')
    p.add_argument('--feature-frames', type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    planner = PaIRPlanner.from_checkpoints(il_checkpoint=args.il, rl_checkpoint=args.rl,
                                           selector_checkpoint=args.selector)
    frames = ILDataset(args.data, 'test', data_cfg=DataConfig(frame_stride=8))
    n = min(args.frames, len(frames))
    idx = np.linspace(0, len(frames) - 1, n).astype(int)
    inputs = [PlannerInput(frames.features(int(i))) for i in idx]
    for x in inputs[:5]:      # warm-up
        planner.compute_plan(x)
    total, il, tree, sel, il_alone = [], [], [], [], []
    for x in inputs:
        t0 = time.perf_counter()
        plan = planner.compute_plan(x)
        total.append((time.perf_counter() - t0) * 1e3)
        il.append(plan.info['il_ms'])
        tree.append(plan.info['tree_ms'])
        sel.append(plan.info['selector_ms'])
        t0 = time.perf_counter()
        planner.il_planner.compute_plan(x)
        il_alone.append((time.perf_counter() - t0) * 1e3)

    from pair_drive_ros.perception.builder import FeatureBuilder
    from pair_drive_ros.sim.logs import EpisodeLog
    builder = FeatureBuilder()
    feat_ms = []
    for i in idx[:args.feature_frames]:
        path, k = frames.episode_frame(int(i))
        frame = EpisodeLog.load(path).sensor_frame(k)
        t0 = time.perf_counter()
        builder.build(frame)
        feat_ms.append((time.perf_counter() - t0) * 1e3)

    print(f'| stage (CPU, {args.threads} thread(s), {n} test frames) | p50 / p95 [ms] |')
    print('|---|---|')
    k = planner.candidates_per_frame()
    print(f'| **PaIR compute_plan (IL + tree G=15{" + variants" if planner.variants else ""}'
          f' + selector)** | {percentiles(total)} |')
    print(f'| of which IL planner | {percentiles(il)} |')
    print(f'| of which RL trunk + tree | {percentiles(tree)} |')
    print(f'| of which selector ({k} candidates) | {percentiles(sel)} |')
    print(f'| IL planner alone | {percentiles(il_alone)} |')
    print(f'| feature builder (sensor frame -> features, {len(feat_ms)} frames) | '
          f'{percentiles(feat_ms)} |')


if __name__ == '__main__':
    main()
