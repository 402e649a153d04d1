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

"""Episode outcomes: goal, collision, off-road and env termination with exact steps."""

from highway_env.vehicle.kinematics import Vehicle
import numpy as np
import pytest

from pair_drive_ros.sim import hw
from pair_drive_ros.sim.closed_loop import run_episode, SimSession
from pair_drive_ros.sim.suite import ScenarioSpec


def _spec(max_steps: int, lanes: int = 3, **config) -> ScenarioSpec:
    cfg = {'vehicles_count': 0, 'lanes_count': lanes, 'duration': 100, **config}
    # Target: 10 m/s x max_steps x 0.1 s of route (the route is the 10-km highway lane).
    return ScenarioSpec(name='straight', env_id='highway-fast-v0', family='t', config=cfg,
                        max_steps=max_steps, reference_speed_mps=10.0)


def _session(max_steps: int, speed: float, heading: float = 0.0, obstacle_m: float = 0.0,
             record_past_goal: bool = False, lanes: int = 3, record_past_failure_steps: int = 0,
             **config) -> SimSession:
    """Return a tracking ego without a plan (it holds speed and heading) on an empty highway."""
    session = SimSession(_spec(max_steps, lanes, **config), ego_mode='tracking',
                         record_past_goal=record_past_goal,
                         record_past_failure_steps=record_past_failure_steps)
    session.reset(0)
    ego = session.ego
    ego.speed, ego.heading = speed, heading
    if obstacle_m:
        road = session.env.unwrapped.road
        road.vehicles.append(Vehicle(road, ego.position + [obstacle_m, 0.0], 0.0, 0.0))
    return session


def _run(session: SimSession) -> dict:
    while not session.done:
        session.step()
    return session.metrics()


def test_goal_ends_the_episode_before_a_later_crash():
    # 2 m per step; target 21 m -> reached at step 11 (22 m); the parked car 30 m ahead would
    # be hit at step 13 (centres 4 m apart < 5 m).
    m = _run(_session(21, 20.0, obstacle_m=30.0))
    assert m['end_cause'] == 'goal' and m['end_step'] == 11 == m['steps']
    assert m['goal_reached'] and not m['collision'] and m['route_completion'] == 1.0
    assert m['progress_m'] == pytest.approx(22.0) and m['route_target_m'] == pytest.approx(21.0)
    # Recording on past the goal (data generation): the crash is logged, the outcome stays.
    session = _session(21, 20.0, obstacle_m=30.0, record_past_goal=True)
    m = _run(session)
    assert m['end_cause'] == 'goal' and m['end_step'] == 11 and m['steps'] == 13
    assert session.log().meta['expert_crashed'] and session.log().meta['crash_step'] == 13
    assert m['route_completion'] == 1.0 and not m['collision']


def test_collision_before_the_target():
    m = _run(_session(50, 20.0, obstacle_m=30.0))
    assert m['end_cause'] == 'collision' and m['end_step'] == 13 == m['steps']
    assert m['collision'] and not m['goal_reached'] and not m['off_road']
    # At step 13 the boxes overlap by 1 m; highway-env pushes both back by half of it.
    assert m['progress_m'] == pytest.approx(25.5)
    assert m['route_completion'] == pytest.approx(25.5 / 50.0)
    # The ego drove into the parked car ahead, boxes pushed apart to 5 m between centres.
    crash = m['crash']
    assert crash['kind'] == 'rear_end' and crash['other_speed_mps'] == 0.0
    assert crash['other_x_m'] == pytest.approx(5.0) and crash['other_y_m'] == pytest.approx(0.0)
    assert crash['ego_speed_mps'] == pytest.approx(20.0)


@pytest.mark.parametrize('other, kind', [
    ((4.0, 0.5, np.pi), 'head_on'), ((-5.0, 0.0, 0.3), 'struck_from_behind'),
    ((5.0, 0.2, -0.3), 'rear_end'), ((2.0, 3.0, np.pi / 2), 'crossing'),
    ((3.0, -3.0, -2.0), 'crossing')])
def test_crash_kind_follows_the_headings(other, kind):
    from pair_drive_ros.sim.closed_loop import crash_geometry

    # The ego at (10, 20) heading +y (pi / 2) at 3 m/s; the other vehicle given in the ego
    # frame (x ahead, y left, relative heading), with a far, invalid slot that must be ignored.
    x, y, rel = other
    ego = np.array([10.0, 20.0, np.pi / 2])
    world = ego[:2] + np.array([-y, x])
    arrays = {'ego_pose': ego[None], 'ego_speed': np.array([3.0]),
              'agent_poses': np.array([[[world[0], world[1], ego[2] + rel], [10.0, 20.0, 0.0]]]),
              'agent_valid': np.array([[True, False]]),
              'agent_velocities': np.array([[[3.0, 4.0], [0.0, 0.0]]])}
    crash = crash_geometry(arrays, 0)
    assert crash['kind'] == kind
    assert crash['other_x_m'] == pytest.approx(x) and crash['other_y_m'] == pytest.approx(y)
    assert crash['relative_yaw_rad'] == pytest.approx(rel)
    assert crash['other_speed_mps'] == pytest.approx(5.0) and crash['ego_speed_mps'] == 3.0
    arrays['agent_valid'][:] = False
    assert crash_geometry(arrays, 0) == {}


def test_recording_past_a_failure_keeps_the_outcome():
    # The collision of the test above, logged on for 10 steps (rollouts for selector labels).
    session = _session(50, 20.0, obstacle_m=30.0, record_past_failure_steps=10)
    m = _run(session)
    assert m['end_cause'] == 'collision' and m['end_step'] == 13 and m['steps'] == 23
    assert m['progress_m'] == pytest.approx(25.5) and not m['goal_reached']
    assert session.log().num_frames == 24
    # The step cap still ends the recording.
    m = _run(_session(50, 20.0, obstacle_m=30.0, record_past_failure_steps=100))
    assert m['end_cause'] == 'collision' and m['end_step'] == 13 and m['steps'] == 50


def test_trying_candidates_leaves_the_session_where_it_was():
    from pair_drive_ros.core.trajectory import POSE_DT_S

    session = _session(50, 10.0, obstacle_m=30.0, lanes=1)
    ego = session.ego
    before = (session.steps, ego.position.copy(), ego.speed)
    t = POSE_DT_S * np.arange(1, 9)
    fast = np.stack([20.0 * t, 0 * t, 0 * t], -1)       # into the parked car 30 m ahead
    stop = np.stack([np.minimum(10.0 * t, 5.0), 0 * t, 0 * t], -1)   # stops 5 m ahead
    left = np.stack([10.0 * t, 0.8 * (10.0 * t) ** 1.2, 0 * t], -1)   # off the 4-m lane
    collision, off_road = session.try_candidates(np.stack([fast, stop, left]), 30)
    assert collision.tolist() == [True, False, False]
    assert off_road.tolist() == [False, False, True]
    # A shorter horizon: the fast candidate has not reached the car yet.
    collision, _ = session.try_candidates(fast[None], 5)
    assert not collision[0]
    assert session.steps == before[0] and session.ego is ego and ego.speed == before[2]
    np.testing.assert_array_equal(ego.position, before[1])
    assert not ego.crashed and len(session.log().arrays['ego_speed']) == 1


def test_leaving_the_road_is_a_failure_even_when_the_env_terminates():
    # One 4-m lane; 10 m/s at 0.2 rad: lateral 10 sin(0.2) x 0.1 = 0.199 m per step, off the
    # lane (|y| > 2 m) at step 11; the env (offroad_terminal) terminates there too.
    m = _run(_session(50, 10.0, heading=0.2, lanes=1, offroad_terminal=True))
    assert m['end_cause'] == 'off_road' and m['end_step'] == 11 and m['off_road']
    assert m['terminated'] and not m['goal_reached'] and not m['collision']
    progress = 11 * 10.0 * np.cos(0.2) * 0.1
    assert m['progress_m'] == pytest.approx(progress, abs=1e-6)
    assert m['route_completion'] == pytest.approx(progress / 50.0, abs=1e-6)


def test_env_termination_ends_the_episode_with_its_cause_and_step():
    session = _session(50, 20.0)
    u = session.env.unwrapped
    u._is_terminated = lambda: u.time >= 0.5 - 1e-9      # the env ends the episode at 0.5 s
    m = _run(session)
    assert m['end_cause'] == 'env_terminated' and m['end_step'] == 5 and m['terminated']
    assert not m['goal_reached'] and m['route_completion'] == pytest.approx(10.0 / 50.0)


def test_time_limit_and_step_cap():
    m = _run(_session(50, 5.0, duration=2))
    # duration 2 s shortens the target to 10 m/s x 2 s; 0.5 m per step covers 10 m.
    assert m['route_target_m'] == pytest.approx(20.0)
    assert m['end_cause'] == 'time_limit' and m['end_step'] == 20
    assert m['route_completion'] == pytest.approx(10.0 / 20.0)
    m = _run(_session(10, 5.0))
    assert m['end_cause'] == 'step_cap' and m['end_step'] == 10
    assert m['route_completion'] == pytest.approx(5.0 / 10.0)


def test_merge_success_termination_goes_on_to_the_route_target():
    session = SimSession('merge', ego_mode='tracking', max_steps=200)
    session.reset(10000)
    ego = session.ego
    ego.position = np.array([368.0, ego.position[1]])
    ego.speed, ego.heading = 10.0, 0.0
    session._s_start = float(session.route.project(ego.position)[0])   # start from here
    session.step()
    session.step()
    session.step()
    # x > 370: merge terminates (its success): recorded, the episode goes on.
    assert session.terminated and session.env_goal_step == 3 and not session.done
    assert session.end_cause == ''


def test_run_episode_reports_the_outcome():
    res = run_episode(lambda: hw.make_env('highway-fast-v0', {'vehicles_count': 0}), 0, None,
                      max_steps=5)
    assert res.end_cause == 'goal' and res.goal_reached and res.steps == res.end_step == 5
    assert res.as_dict()['end_cause'] == 'goal'


@pytest.mark.parametrize('rule', ['drivable_area', 'lanes'])
def test_the_corner_of_a_roundabout_entry_is_road_for_the_drivable_area_rule(rule):
    # (6.1, 29.8) lies 2.1 m right of the entry lane's centre, outside highway-env's 4-m lane
    # strip but inside the junction patch the scorer counts as drivable (where every learned
    # planner ended its roundabout episodes under the old rule).
    session = SimSession('roundabout', ego_mode='tracking', max_steps=3, off_road=rule)
    session.reset(10000)
    session.ego.position = np.array([6.1, 29.8])
    session.ego.speed = 0.0
    m = _run(session)
    # (the jump along the route counts as progress: 'goal' is the outcome when on the road)
    assert m['end_cause'] == ('off_road' if rule == 'lanes' else 'goal')
    assert m['off_lanes_step'] == 1 and m['off_road'] == (rule == 'lanes')


def test_off_the_drivable_area_ends_the_episode_under_either_rule():
    for rule in ('drivable_area', 'lanes'):
        session = SimSession('roundabout', ego_mode='tracking', max_steps=3, off_road=rule)
        session.reset(10000)
        session.ego.position = np.array([40.0, 40.0])     # between the entries, no road
        session.ego.speed = 0.0
        m = _run(session)
        assert m['end_cause'] == 'off_road' and m['end_step'] == 1 == m['off_lanes_step']
    with pytest.raises(ValueError, match='off_road must be one of'):
        SimSession('roundabout', off_road='grass')


@pytest.mark.parametrize('scenario', ['roundabout', 'intersection'])
def test_closed_loop_road_is_the_scorers_drivable_area(scenario):
    from pair_drive_ros.scoring.geometry import LaneIndex

    session = SimSession(scenario, ego_mode='tracking')
    session.reset(10000)
    road = session._road_map
    rng = np.random.default_rng(0)
    lo = np.min([ln.centerline.min(0) for ln in road.lanes], axis=0)
    hi = np.max([ln.centerline.max(0) for ln in road.lanes], axis=0)
    pts = rng.uniform(lo, hi, size=(4000, 2))
    # points near the lanes too, where the two tests could disagree on an edge
    near = np.concatenate([ln.centerline for ln in road.lanes])
    pts = np.concatenate([pts, near[rng.integers(len(near), size=4000)]
                          + rng.normal(0.0, 2.5, (4000, 2))])
    ours = road.contains(pts)
    scorer = LaneIndex.build(road).points_in_lanes(pts).any(-1)
    assert ours.any() and not ours.all()
    assert np.mean(ours != scorer) < 1e-3


def test_the_search_expert_plans_from_the_driven_state_without_moving_it():
    from pair_drive_ros.core.trajectory import POSE_DT_S, Trajectory

    session = SimSession('intersection', ego_mode='tracking')
    session.reset(10003)
    t = POSE_DT_S * np.arange(1, 9)
    session.set_trajectory(Trajectory(np.stack([8.0 * t, 0 * t, 0 * t], -1), POSE_DT_S))
    for _ in range(20):
        session.step()
    before = (session.steps, session.ego.position.copy(), session.ego.speed)
    plan = session.expert_plan()
    assert plan.shape == (8, 3) and np.isfinite(plan).all()
    # It drives forward from the ego, slower than the 8 m/s the ego was told to hold: the
    # expert waits before the junction's conflict zone.
    assert 0 < plan[0, 0] < plan[-1, 0] < 8.0 * 4.0
    assert session.steps == before[0] and session.ego.speed == before[2]
    np.testing.assert_array_equal(session.ego.position, before[1])
    assert plan.tolist() == session.expert_plan().tolist()     # deterministic
