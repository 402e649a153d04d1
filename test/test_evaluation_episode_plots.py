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

"""Map-frame plots of closed-loop episodes: which episodes get one, and what goes into it."""

import pytest

from pair_drive_ros.evaluation.episode_plot import PlanTrace, plot_episode, wants_plot
from pair_drive_ros.evaluation.evaluate import evaluate_closed_loop
from pair_drive_ros.policy.factory import build_planner
from pair_drive_ros.sim.closed_loop import run_episode


@pytest.mark.parametrize('mode,row,expected', [
    ('none', {'collision': True}, False),
    ('failed', {'collision': False, 'off_road': False}, False),
    ('failed', {'collision': True, 'off_road': False}, True),
    ('failed', {'collision': False, 'off_road': True}, True),
    ('all', {'collision': False, 'off_road': False}, True),
])
def test_which_episodes_are_plotted(mode, row, expected):
    assert wants_plot(mode, row) is expected


def test_an_unknown_mode_is_refused_before_any_episode():
    with pytest.raises(ValueError, match='episode_plots'):
        wants_plot('some', {})
    with pytest.raises(ValueError, match='episode_plots'):
        evaluate_closed_loop(build_planner('constant_velocity'), [('highway', 10000)],
                             max_steps=2, plot_dir='unused', episode_plots='some')


def test_evaluate_plots_the_episodes_asked_for(tmp_path):
    planner = build_planner('constant_velocity')
    jobs = [('highway', 10000), ('merge', 10000)]
    evaluate_closed_loop(planner, jobs, max_steps=6, plot_dir=tmp_path / 'all',
                         episode_plots='all')
    assert sorted(p.name for p in (tmp_path / 'all').glob('*.png')) == \
        ['highway_10000.png', 'merge_10000.png']
    # Six steps end on time, not in a failure: nothing to plot.
    out = evaluate_closed_loop(planner, jobs, max_steps=6, plot_dir=tmp_path / 'failed',
                               episode_plots='failed')
    assert not any(e['collision'] or e['off_road'] for e in out['episodes'])
    assert not (tmp_path / 'failed').exists()


def test_plot_episode_draws_the_plans_and_the_end(tmp_path):
    res = run_episode('highway', 10000, None, max_steps=4, record=True)
    trace = PlanTrace()
    pose = res.log.arrays['ego_pose'][0]
    trace.add(0.0, pose[None, :2] + [[5.0, 0.0], [10.0, 0.0]])
    row = res.as_dict() | {'end_cause': 'off_road', 'end_step': 2}
    path = plot_episode(res.log, trace, row, tmp_path / 'ep.png')
    assert path.is_file() and path.stat().st_size > 1000
    trace.clear()
    assert trace.plans == []
