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

"""Closed-loop evaluation sharded by seed range: two shards merged equal one run."""

import json
from pathlib import Path
import sys

import pytest

from pair_drive_ros.cli import main as cli_main
from pair_drive_ros.evaluation.evaluate import evaluate_closed_loop
from pair_drive_ros.evaluation.shards import merge_closed_loop, ShardError
from pair_drive_ros.policy.factory import build_planner
from pair_drive_ros.sim.suite import split_scenarios

sys.path.insert(0, str(Path(__file__).parent))
from il_synthetic_logs import write_logs  # noqa: E402


def _without_wall(rows: list) -> list:
    return [{k: v for k, v in r.items() if k != 'wall_s'} for r in rows]


def test_two_shards_equal_one_run():
    planner = build_planner('constant_velocity')
    names = ('highway', 'merge')

    def jobs(n, skip=0):
        return [j for j in split_scenarios('val', n, skip=skip) if j[0] in names]

    one = evaluate_closed_loop(planner, jobs(2), max_steps=8)
    shards = [evaluate_closed_loop(planner, jobs(1, skip), max_steps=8) for skip in (1, 0)]
    merged = merge_closed_loop(shards)
    assert [(r['scenario'], r['seed']) for r in merged['episodes']] == \
        [('highway', 10000), ('highway', 10001), ('merge', 10000), ('merge', 10001)]
    assert _without_wall(merged['episodes']) == _without_wall(one['episodes'])
    assert merged['summary'] == one['summary']
    with pytest.raises(ShardError, match='more than one shard'):
        merge_closed_loop([shards[0], shards[0]])


def test_evaluate_skip_and_report_merge(tmp_path):
    data = write_logs(tmp_path / 'logs', splits=('val',), episodes=1, num_frames=46)
    config = tmp_path / 'eval.yaml'
    config.write_text('closed_loop_max_steps: 3\nplots: 0\nnum_threads: 1\n')
    common = ['evaluate', '--planner', 'constant_velocity', '--data', str(data), '--split', 'val',
              '--config', str(config), '--closed-loop-episodes', '1', '--set', 'progress=false']
    assert cli_main(common + ['--out', str(tmp_path / 's0')]) == 0
    assert cli_main(common + ['--closed-loop-skip', '1', '--out', str(tmp_path / 's1')]) == 0
    shard1 = json.loads((tmp_path / 's1' / 'closed_loop.json').read_text())
    assert {r['seed'] for r in shard1['episodes']} == {10001}
    assert shard1['config']['closed_loop_skip'] == 1
    assert cli_main(['report', 'merge', str(tmp_path / 's1'), str(tmp_path / 's0'),
                     '--out', str(tmp_path / 'all')]) == 0
    merged = json.loads((tmp_path / 'all' / 'closed_loop.json').read_text())
    seeds = [(r['scenario'], r['seed']) for r in merged['episodes']]
    assert len(seeds) == 8 and seeds[:2] == [(seeds[0][0], 10000), (seeds[0][0], 10001)]
    assert merged['summary']['episodes'] == 8
    # A shard of another planner (or other settings) is refused.
    other = json.loads((tmp_path / 's1' / 'closed_loop.json').read_text())
    other['planner'] = 'expert'
    (tmp_path / 'x').mkdir()
    (tmp_path / 'x' / 'closed_loop.json').write_text(json.dumps(other))
    assert cli_main(['report', 'merge', str(tmp_path / 's0'), str(tmp_path / 'x'),
                     '--out', str(tmp_path / 'bad')]) == 2
    assert not (tmp_path / 'bad').exists()
