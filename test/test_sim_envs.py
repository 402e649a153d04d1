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

"""Every single-ego driving env of highway-env 1.12.1 runs in closed loop and in generate."""

import gymnasium
import highway_env  # noqa: F401  (registers the environments)
import numpy as np
import pytest

from pair_drive_ros.core.trajectory import Trajectory
from pair_drive_ros.sim import generate, hw
from pair_drive_ros.sim.closed_loop import run_episode, SimSession
from pair_drive_ros.sim.logs import EpisodeLog
from pair_drive_ros.sim.suite import ScenarioSpec

# Registered ids that are not single-ego road driving: goal-conditioned parking and the
# multi-agent intersection (several controlled vehicles).
NOT_DRIVING = ('parking', 'intersection-multi-agent')
DRIVING_IDS = sorted(e for e in gymnasium.registry
                     if str(gymnasium.registry[e].entry_point).startswith('highway_env.')
                     and not e.startswith(NOT_DRIVING))
STEPS = 4


def test_the_driving_ids_are_the_expected_ones():
    assert DRIVING_IDS == sorted(hw.DRIVING_ENV_IDS)
    assert {'racetrack-v0', 'two-way-v0', 'u-turn-v0', 'merge-generic-v0',
            'roundabout-generic-v0', 'racetrack-oval-v0', 'highway-fast-v0'} <= set(DRIVING_IDS)


def _crossings(a: np.ndarray, b: np.ndarray) -> int:
    """Return how many segments of a (N, 2, 2) cross segments of b (M, 2, 2)."""
    if len(a) == 0 or len(b) == 0:
        return 0
    p, r = a[:, None, 0], a[:, None, 1] - a[:, None, 0]
    q, s = b[None, :, 0], b[None, :, 1] - b[None, :, 0]

    def cross(u, v):
        return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]
    den = cross(r, s)
    ok = np.abs(den) > 1e-9
    den = np.where(ok, den, 1.0)
    t, u = cross(q - p, s) / den, cross(q - p, r) / den
    return int(np.sum(ok & (t >= 0) & (t <= 1) & (u >= 0) & (u <= 1)))


def _keep_lane(frame, scene):
    v = max(scene.ego.speed, 1.0)
    return Trajectory(np.stack([v * 0.5 * np.arange(1, 9), np.zeros(8), np.zeros(8)], -1))


@pytest.mark.parametrize('env_id', DRIVING_IDS)
def test_env_runs_with_expert_planner_and_generate(env_id, tmp_path):
    spec = ScenarioSpec(name=env_id.replace('-', '_'), env_id=env_id, family='any',
                        expert='idm', max_steps=STEPS)
    expert = run_episode(spec, 5, None)
    planner = run_episode(spec, 5, _keep_lane, replan_every=2)
    for res in (expert, planner):
        assert res.steps == res.end_step <= STEPS and res.end_cause
        assert 0.0 <= res.route_completion <= 1.0
    assert expert.extra['expert'] == 'idm' and planner.extra['expert'] == 'tracking'
    suite = tmp_path / 'suite.yaml'
    suite.write_text(f'scenarios:\n  {spec.name}:\n    env_id: {env_id}\n'
                     f'    expert: idm\n    max_steps: {STEPS}\n    seeds: {{any: [5, 6]}}\n')
    path = tmp_path / 'ep.npz'
    res = generate.record_episode(str(suite), 'any', spec.name, 5, str(path))
    log = EpisodeLog.load(path)
    assert log.meta['env_id'] == env_id and log.num_frames == res['frames'] >= 2
    assert log.meta['end_cause'] and log.scene(0).route.length > 0.0
    # The simulated LiDAR's barriers run along road edges, never across the route (the mouths
    # of roundabouts and junctions are open).
    route = log.scene(0).route.points
    segments = np.stack([route[:-1], route[1:]], 1)
    assert not _crossings(segments, log.road_geometry().walls)
    mid, d = segments[0].mean(0), segments[0, 1] - segments[0, 0]
    across = np.array([[mid - [-d[1], d[0]], mid + [-d[1], d[0]]]])
    assert _crossings(segments[:1], across) == 1


@pytest.mark.parametrize('env_id', ['two-way-v0', 'u-turn-v0'])
@pytest.mark.parametrize('mode', ['idm', 'tracking'])
def test_egos_have_what_the_env_reads(env_id, mode):
    session = SimSession(ScenarioSpec(name='x', env_id=env_id, family='x'), ego_mode=mode,
                         max_steps=3)
    session.reset(0)
    session.step()
    u = session.env.unwrapped
    # The env's own reward terms and observation (TimeToCollision) read speed_index,
    # target_speeds and target_lane_index of the controlled vehicle.
    assert set(u._rewards(1)) and u.observation_type.observe().shape[0] == 3
    assert session.ego.speed_index == int(np.argmin(np.abs(session.ego.target_speeds
                                                           - session.ego.speed)))
