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

"""Expert building blocks: conflict zones, stop lines, candidate plans, IDM ego."""

import numpy as np
import pytest

from pair_drive_ros.core.trajectory import MAP_FRAME
from pair_drive_ros.sim.closed_loop import SimSession
from pair_drive_ros.sim.experts import speed_profile


def test_intersection_conflict_zone_starts_at_the_box():
    session = SimSession('intersection', ego_mode='search', max_steps=5)
    session.reset(10000)
    expert = session.expert
    lanes = {ln.lane_id: ln for ln in session.recorder.lanes}
    approach = lanes[session.recorder.route_lanes[0]]
    approach_len = float(np.sum(np.linalg.norm(np.diff(approach.centerline, axis=0), axis=1)))
    conflict_s = session.route.arc_length[expert.conflict]
    assert approach_len - 3.5 < conflict_s.min() <= approach_len + 0.5
    s0 = float(session.route.project(session.ego.position)[0])
    line = expert.stop_line(s0)
    assert line == pytest.approx(conflict_s.min() - expert.cfg.stop_margin_m)
    cands = expert.candidates(session.ego)
    assert 2 <= len(cands) <= 7 and all(c.frame == MAP_FRAME for c in cands)
    ends = [float(session.route.project(c.poses[-1, :2])[0]) for c in cands]
    assert ends == sorted(ends, reverse=True)   # most progress first
    # The stop-at-the-line candidate ends at the line.
    assert min(abs(e - line) for e in ends) < 0.5
    plan = expert.plan(session.env.unwrapped.road, session.ego, 0.0)
    assert any(np.array_equal(plan.poses, c.poses) for c in cands)


def test_highway_route_has_no_conflicts():
    session = SimSession('highway', ego_mode='search', max_steps=5)
    session.reset(10000)
    assert not session.expert.conflict.any() and session.expert.stop_line(0.0) is None


def test_speed_profile_caps_speed_in_curves():
    from pair_drive_ros.core.route import Route

    t = np.linspace(0, np.pi, 200)
    arc = Route(np.stack([20 * np.sin(t), 20 - 20 * np.cos(t)], -1))  # radius 20 m
    s, v = speed_profile(arc, 0.0, 15.0, 0.0, 30.0, 3.0, 20, 0.1)
    assert v.max() <= np.sqrt(3.0 * 20.0) + 0.1
    assert np.all(np.diff(s) >= 0)
    s, v = speed_profile(arc, 0.0, 2.0, -6.0, 30.0, 3.0, 20, 0.1)
    assert v[-1] == 0.0
