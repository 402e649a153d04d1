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
Expert quality per scenario family: crash, off-road, route completion, comfort.

Summarizes every episode of the given scene-log splits (their meta holds the outcome) and, with
--extra FAMILY=N, runs N more expert episodes of that family's scenario on seeds of the `test`
range that the data set does not use (results cached as JSON lines in --cache, so reruns resume).
Prints a markdown table.

Run: .venv/bin/python benchmarks/bench_sim_experts.py --data data/logs --extra intersection=24
"""

import argparse
from collections import defaultdict
import json
from pathlib import Path
import time

import numpy as np

from pair_drive_ros.sim.closed_loop import run_episode
from pair_drive_ros.sim.logs import episode_paths, read_meta
from pair_drive_ros.sim.suite import load_suite


def summarize_data(root: Path) -> list[dict]:
    rows = []
    for split in ('train', 'val', 'test'):
        for path in episode_paths(root, split):
            m = read_meta(path)
            rows.append({'family': m['family'], 'scenario': m['scenario'], 'seed': m['seed'],
                         'split': split, 'collision': m['expert_crashed'],
                         'off_road': m['off_road'], 'route_completion': m['route_completion'],
                         'progress_m': m['progress_m'], 'steps': m['num_frames'] - 1})
    return rows


def run_extra(family: str, count: int, used: set, cache: Path) -> list[dict]:
    suite = load_suite()
    names = [n for n in suite.names() if suite.get(n).family == family]
    if not names:
        raise SystemExit(f'no scenario of family {family!r}')
    name = names[0]
    done = {}
    if cache.is_file():
        for line in cache.read_text().splitlines():
            r = json.loads(line)
            done[(r['scenario'], r['seed'])] = r
    rows = []
    for seed in suite.get(name).seed_range('test'):
        if len(rows) >= count:
            break
        if (name, seed) in used:
            continue
        if (name, seed) not in done:
            t0 = time.perf_counter()
            res = run_episode(name, seed, None)
            r = dict(res.as_dict(), family=family, split='test-extra',
                     seconds=time.perf_counter() - t0)
            with cache.open('a') as f:
                f.write(json.dumps(r) + '\n')
            done[(name, seed)] = r
        rows.append(done[(name, seed)])
    return rows


def table(rows: list[dict]) -> str:
    by = defaultdict(list)
    for r in rows:
        by[r['family']].append(r)
    lines = ['| family | expert | episodes | crash | off-road | route completion (mean) | '
             'progress [m] (mean) |', '|---|---|---|---|---|---|---|']
    suite = load_suite()
    experts = {suite.get(n).family: suite.get(n).expert for n in suite.names()}
    for fam in sorted(by):
        rs = by[fam]
        crash = np.mean([r['collision'] for r in rs])
        off = np.mean([r['off_road'] for r in rs])
        rc = np.mean([r['route_completion'] for r in rs])
        prog = np.mean([r['progress_m'] for r in rs])
        lines.append(f'| {fam} | {experts.get(fam, "?")} | {len(rs)} | '
                     f'{100 * crash:.1f} % ({sum(r["collision"] for r in rs)}) | '
                     f'{100 * off:.1f} % | {rc:.3f} | {prog:.0f} |')
    return '\n'.join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--data', default='data/logs')
    parser.add_argument('--extra', action='append', default=[], help='FAMILY=N more episodes')
    parser.add_argument('--cache', default='runs/sim_experts.jsonl')
    args = parser.parse_args()
    rows = summarize_data(Path(args.data))
    used = {(r['scenario'], r['seed']) for r in rows}
    cache = Path(args.cache)
    cache.parent.mkdir(parents=True, exist_ok=True)
    for spec in args.extra:
        fam, n = spec.split('=')
        rows += run_extra(fam, int(n), used, cache)
    print(table(rows))
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
