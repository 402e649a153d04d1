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

"""`pair-drive report table`: closed-loop intervals, paired deltas, speeds, beside open loop."""

import json

import pytest

from pair_drive_ros.evaluation.results_table import closed_loop_tables, tables


def _result(planner: str, collisions: list, speed: float, ckpt: str = '') -> dict:
    eps = [{'scenario': fam, 'seed': seed, 'collision': c, 'off_road': False,
            'route_completion': 0.5, 'mean_speed_mps': speed, 'p95_speed_mps': speed + 1.0,
            'off_lanes_step': 7 if fam == 'u_turn' and seed == 2 else -1}
           for (fam, seed), c in zip([('exit', 1), ('exit', 2), ('u_turn', 1), ('u_turn', 2)],
                                     collisions)]
    return {'planner': planner, 'il_checkpoint': ckpt, 'episodes': eps,
            'suite': {'path': 'config/heldout.yaml'}}


def test_closed_loop_rates_deltas_and_speeds():
    expert = _result('expert', [False] * 4, 10.0)
    il = _result('transfuser', [True, True, False, False], 12.0, 'models/transfuser_lite.pt')
    lines = closed_loop_tables([expert, il], n_boot=500)
    # A constant column has a degenerate interval; the paired delta of equal episodes is exact.
    assert lines[2].startswith('| expert | heldout.yaml | 4 | 0.00 [0.00, 0.00] |')
    row = lines[3]
    assert row.startswith('| transfuser (transfuser_lite.pt) | heldout.yaml | 4 | 0.50 [')
    assert '| 0.50 [0.50, 0.50] | +0.50 [' in row      # route completion, then Δ collision
    # failed (collided or left the road: here the collisions) after off-road; Δ off-road is
    # exact, Δ failed is the collisions' +0.50
    cells = [c.strip() for c in row.strip('|').split('|')]
    assert cells[4] == '0.00 [0.00, 0.00]' and cells[5].startswith('0.50 [')
    assert cells[8] == '+0.00 [+0.00, +0.00]' and cells[9].startswith('+0.50 [')
    speed_row = lines.index('| planner | exit: mean / p95 [m/s] | u_turn: mean / p95 [m/s] |')
    assert lines[speed_row + 3] == ('| transfuser (transfuser_lite.pt) | 12.0 / 13.0 (1.20 × '
                                    'expert) | 12.0 / 13.0 (1.20 × expert) |')
    # failures per family: collision / off-road / off the lane strips, episodes
    assert lines[-1] == ('| transfuser (transfuser_lite.pt) | 1.00 / 0.00 / 0.00 (2) | '
                         '0.00 / 0.00 / 0.50 (2) |')


def test_collisions_by_kind():
    expert = _result('expert', [False] * 4, 10.0)
    il = _result('transfuser', [True, True, True, False], 12.0)
    kinds = [{'kind': 'head_on', 'ego_speed_mps': 2.0, 'other_speed_mps': 5.0},
             {'kind': 'head_on', 'ego_speed_mps': 4.0, 'other_speed_mps': 1.0}, {}]
    for episode, crash in zip(il['episodes'], kinds):
        episode['crash'] = crash
    lines = closed_loop_tables([expert, il], n_boot=100)
    head = lines.index('| planner | collisions | rear end | struck from behind | head on | '
                       'crossing | unrecorded | ego / other speed at the crash, mean [m/s] |')
    assert lines[head + 2] == '| expert | 0 | 0 | 0 | 0 | 0 | 0 | - |'
    # the third collision has no recorded geometry (a result from before it existed)
    assert lines[head + 3] == '| transfuser | 3 | 0 | 0 | 2 | 0 | 1 | 3.0 / 3.0 |'
    # results without any crash geometry get no such table
    for episode in il['episodes']:
        episode.pop('crash', None)
    assert not any('head on' in line for line in closed_loop_tables([expert, il], n_boot=100))


def test_table_of_closed_loop_folders(tmp_path):
    for name, result in (('a', _result('expert', [False] * 4, 10.0)),
                         ('b', _result('pair', [False, True, False, False], 9.0))):
        (tmp_path / name).mkdir()
        (tmp_path / name / 'closed_loop.json').write_text(json.dumps(result))
    text = tables([tmp_path / 'a', tmp_path / 'b'])
    assert '| pair | heldout.yaml | 4 | 0.25 [' in text
    assert '9.0 / 10.0 (0.90 × expert)' in text
    governed = _result('pair', [False] * 4, 8.0)
    governed['config'] = {'speed_governor': {'enabled': True, 'keep_gap': True}}
    (tmp_path / 'g').mkdir()
    (tmp_path / 'g' / 'closed_loop.json').write_text(json.dumps(governed))
    assert '| pair + speed governor, gap | heldout.yaml | 4 | 0.00 [' in tables(
        [tmp_path / 'a', tmp_path / 'g'])
    # The lane settings name the mode: adaptive cruise reads apart from the full corridor check.
    for beside, label in ((False, 'adaptive cruise'), (True, 'gap, lane apart')):
        governed['config']['speed_governor'].update(lane_half_width_m=1.5, beside_lane=beside)
        (tmp_path / 'g' / 'closed_loop.json').write_text(json.dumps(governed))
        assert f'| pair + speed governor, {label} | heldout.yaml |' in tables(
            [tmp_path / 'a', tmp_path / 'g'])
    governed['config']['speed_governor'] = {'enabled': True, 'unknown_key': 1}
    (tmp_path / 'g' / 'closed_loop.json').write_text(json.dumps(governed))
    assert '| pair + speed governor | heldout.yaml |' in tables([tmp_path / 'a', tmp_path / 'g'])
    (tmp_path / 'c').mkdir()
    with pytest.raises(FileNotFoundError, match='neither'):
        tables([tmp_path / 'c'])


def test_table_of_open_and_closed_loop_folders(tmp_path):
    from pair_drive_ros.evaluation.results_table import OPEN_LOOP_METRICS

    for name, planner, collisions in (('a', 'transfuser', [True, True, False, False]),
                                      ('b', 'pair', [False, False, False, False])):
        summary = {c: 90.0 for c in (*OPEN_LOOP_METRICS, 'pdms', 'epdms')}
        ol = {'planner': planner, 'il_checkpoint': '', 'summary': summary, 'frames': 8,
              'inference_ms': 1.0, 'by_family': {'exit': {'pdms': 90.0, 'epdms': 80.0}}}
        result = _result(planner, collisions, 10.0)
        result['summary'] = {'episodes': 4, 'collision_rate': sum(collisions) / 4,
                             'off_road_rate': 0.0, 'route_completion': 0.5, 'progress_m': 1.0,
                             'comfort_violations': 0.0}
        (tmp_path / name).mkdir()
        (tmp_path / name / 'open_loop.json').write_text(json.dumps(ol))
        (tmp_path / name / 'closed_loop.json').write_text(json.dumps(result))
    text = tables([tmp_path / 'a', tmp_path / 'b'])
    assert '| pair | 4 | 0.00 | 0.00 | 0.50 | 1.0 | 0.0 |' in text      # the plain rates
    # ... and the same runs with intervals and paired differences against the first row
    assert '| pair | heldout.yaml | 4 | 0.00 [0.00, 0.00] |' in text
    assert '| -0.50 [' in text
