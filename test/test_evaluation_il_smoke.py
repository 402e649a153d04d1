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

"""Evaluation: open-loop scoring of baselines on tiny logs, the CLI's JSON/Markdown/PNG output."""

import json
from pathlib import Path
import sys

import pytest
import torch
import yaml

from pair_drive_ros.cli import main as cli_main
from pair_drive_ros.evaluation.evaluate import (evaluate_open_loop, markdown_table,
                                                OPEN_LOOP_METRICS)
from pair_drive_ros.policy.factory import build_planner
from pair_drive_ros.sim.logs import list_frames

sys.path.insert(0, str(Path(__file__).parent))
from il_synthetic_logs import write_logs  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def logs(tmp_path_factory) -> Path:
    return write_logs(tmp_path_factory.mktemp('eval') / 'logs', splits=('test',), episodes=1,
                      num_frames=46)


def test_open_loop_scores_every_frame(logs):
    frames = list_frames(logs, 'test')
    assert len(frames) == 6
    res = evaluate_open_loop(build_planner('expert'), frames[:3], batch_size=2)
    assert res['frames'] == 3 and len(res['scenes']) == 3
    s = res['summary']
    assert set(OPEN_LOOP_METRICS) <= set(s)
    assert all(0.0 <= s[k] <= 100.0 for k in s)
    # Expert replay on a free straight lane collides with nothing and stays on the road.
    assert s['NC'] == 100.0 and s['DAC'] == 100.0
    assert res['by_family']['highway']['frames'] == 3
    md = markdown_table('expert', res, None)
    assert md.splitlines()[0].startswith('| planner | frames | NC |')


def test_evaluate_cli_writes_json_markdown_and_plots(logs, tmp_path):
    out = tmp_path / 'eval'
    assert cli_main(['evaluate', '--planner', 'constant_velocity', '--data', str(logs),
                     '--split', 'test', '--out', str(out), '--frame-stride', '2', '--plots',
                     '1', '--cache-dir', str(tmp_path / 'cache'), '--set', 'progress=false']) == 0
    data = json.loads((out / 'open_loop.json').read_text())
    assert data['planner'] == 'constant_velocity' and data['frames'] == 3
    assert 0.0 <= data['summary']['pdms'] <= 100.0
    assert '| constant_velocity | 3 |' in (out / 'summary.md').read_text()
    assert len(list((out / 'plots').glob('*.png'))) == 1
    # The resolved config is saved with the outputs.
    saved = yaml.safe_load((out / 'config.yaml').read_text())
    assert saved['planner'] == 'constant_velocity' and saved['frame_stride'] == 2


def test_evaluate_closed_loop_on_a_users_suite_and_seed_range(tmp_path):
    import hashlib

    suite = tmp_path / 'my_suite.yaml'
    suite.write_text('scenarios:\n  fast_road:\n    env_id: highway-fast-v0\n'
                     '    expert: idm\n    max_steps: 12\n'
                     '    seeds: {train: [0, 10], val: [10, 20], test: [20, 30]}\n')
    out = tmp_path / 'eval'
    assert cli_main(['evaluate', '--planner', 'constant_velocity', '--data', str(tmp_path),
                     '--suite', str(suite), '--seeds', '500-501', '--split', 'heldout',
                     '--out', str(out), '--set', 'progress=false']) == 0
    closed = json.loads((out / 'closed_loop.json').read_text())
    jobs = [(e['scenario'], e['seed']) for e in closed['episodes']]
    assert jobs == [('fast_road', 500), ('fast_road', 501)]
    assert closed['suite']['sha256'] == hashlib.sha256(suite.read_bytes()).hexdigest()
    assert closed['summary']['episodes'] == 2
    assert not (out / 'open_loop.json').exists()
