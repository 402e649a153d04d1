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

"""The closed-loop pick log records every replan of a PaIR planner (shipped checkpoints)."""

import pytest

from pair_drive_ros.evaluation.pick_log import log_picks, pick_kind, summary
from pair_drive_ros.policy.pair import PaIRPlanner


def test_pick_kind():
    assert [pick_kind(k, 15) for k in (0, 1, 15, 16, 29)] == [
        'il', 'tree', 'tree', 'variant', 'variant']


def test_pick_log_of_a_short_episode():
    planner = PaIRPlanner.from_checkpoints()
    episodes = log_picks(planner, [('highway', 10000)], max_steps=15)
    assert len(episodes) == 1
    picks = episodes[0]['picks']
    assert len(picks) == 3                        # replans at steps 0, 5 and 10
    for p in picks:
        assert 0 <= p['index'] < planner.candidates_per_frame()
        assert p['kind'] == pick_kind(p['index'], 15)
        if p['kind'] == 'il':
            assert p['speed_ratio'] == pytest.approx(1.0) and p['lateral_m'] == 0.0
        assert p['ego_speed'] > 0
    s = summary(episodes)
    assert s['episodes'] == 1 and sum(s['pick_share'].values()) == pytest.approx(1.0)
    assert s['collisions_by_scenario']['highway'] == int(episodes[0]['collision'])


def test_picks_flags_are_config_fields():
    from pair_drive_ros.core.config import parse_config
    from pair_drive_ros.evaluation.pick_log import add_arguments, PickLogConfig

    argv = ['--split', 'val', '--episodes', '2', '--il-checkpoint',
            'models/diffusiondrive_lite.pt', '--set', 'out=runs/p.json']
    assert parse_config(PickLogConfig, add_arguments, argv) == PickLogConfig(
        episodes=2, il_checkpoint='models/diffusiondrive_lite.pt', out='runs/p.json')
