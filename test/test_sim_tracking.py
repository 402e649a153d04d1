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

"""The trajectory-tracking ego follows plans; the closed-loop runner and session work."""

import numpy as np
import pytest

from pair_drive_ros.core.trajectory import MAP_FRAME, Trajectory
from pair_drive_ros.sim import hw
from pair_drive_ros.sim.closed_loop import run_episode, SimSession
from pair_drive_ros.sim.tracking import plan_from_trajectory, track_control


def _empty_highway():
    return hw.make_env('highway-fast-v0', {'vehicles_count': 0, 'lanes_count': 3,
                                           'duration': 10})


def _lane_change_y(x: np.ndarray, x0: float) -> np.ndarray:
    u = np.clip((x - x0) / 60.0, 0.0, 1.0)
    return 8.0 - 4.0 * (3 * u ** 2 - 2 * u ** 3)   # lane 2 (y = 8) to lane 1 (y = 4)


def test_tracker_follows_lane_change_within_0_3_m():
    session = SimSession(_empty_highway, ego_mode='tracking', max_steps=100,
                         record_past_goal=True)
    session.reset(0)
    x0 = float(session.ego.position[0]) + 15.0
    assert session.ego.position[1] == pytest.approx(8.0)
    errors = []
    while not session.done:
        if session.steps % 5 == 0:
            pose = session.ego.pose()
            xs = pose[0] + 25.0 * 0.5 * np.arange(1, 9)
            ys = _lane_change_y(xs, x0)
            yaw = np.arctan2(np.gradient(ys), np.gradient(xs))
            session.set_trajectory(Trajectory(np.stack([xs, ys, yaw], -1), 0.5, MAP_FRAME))
        session.step()
        x, y = session.ego.position
        errors.append(abs(y - _lane_change_y(np.array([x]), x0)[0]))
    assert session.steps == 100 and not session.ego.crashed and session.goal_reached
    assert max(errors) < 0.3
    assert session.ego.position[1] == pytest.approx(4.0, abs=0.1)
    assert session.ego.speed == pytest.approx(25.0, abs=0.5)


def test_track_control_inverts_the_bicycle_model():
    # Straight plan ahead at the current speed: no steering, no acceleration.
    traj = Trajectory(np.stack([10.0 * 0.5 * np.arange(1, 9), np.zeros(8), np.zeros(8)], -1))
    plan = plan_from_trajectory(traj, np.zeros(3), 0.0)
    acc, steer = track_control(np.zeros(2), 0.0, 10.0, 0.0, plan)
    assert acc == pytest.approx(0.0, abs=1e-9) and steer == pytest.approx(0.0, abs=1e-9)
    # A plan bending left steers left.
    traj = Trajectory(np.stack([5.0 * np.arange(1, 9), 0.2 * np.arange(1, 9) ** 2,
                                np.zeros(8)], -1))
    _, steer = track_control(np.zeros(2), 0.0, 10.0, 0.0,
                             plan_from_trajectory(traj, np.zeros(3), 0.0))
    assert steer > 0.0


def test_run_episode_with_policy_and_session_api():
    calls = []

    def policy(frame, scene):
        calls.append((frame.stamp_s, scene.ego.stamp_s))
        assert frame.lidar_points.shape[1] == 4 and frame.camera_image.dtype == np.uint8
        assert scene.agents.num_steps == 41 and scene.expert is None
        # Keep the lane at constant speed (ego frame).
        v = max(scene.ego.speed, 1.0)
        return Trajectory(np.stack([v * 0.5 * np.arange(1, 9), np.zeros(8), np.zeros(8)], -1))

    result = run_episode('merge', 10000, policy, max_steps=40, replan_every=5, record=True)
    # 0.8 x 20 m/s for 4 s: the ego, faster than that, covers the 64-m target before the cap.
    assert result.extra['route_target_m'] == pytest.approx(64.0)
    assert result.end_cause == 'goal' and result.goal_reached and result.route_completion == 1.0
    assert result.steps == result.end_step < 40 and result.log.num_frames == result.steps + 1
    assert [c[0] for c in calls] == pytest.approx(0.5 * np.arange((result.steps + 4) // 5))
    assert not result.collision and not result.off_road and result.progress_m >= 64.0
    with pytest.raises(TypeError, match='scenario'):
        run_episode(3.5, 0, policy)


def test_expert_episode_on_env_instance():
    env = _empty_highway()
    result = run_episode(env, 1, None, max_steps=15)
    assert result.steps == 15 and result.extra['expert'] == 'idm' and not result.collision


def test_episode_speed_statistics_come_from_the_logged_speeds():
    res = run_episode('highway', 11000, None, max_steps=15, record=True)
    speeds = res.log.arrays['ego_speed']
    assert res.mean_speed_mps == pytest.approx(float(np.mean(speeds)), abs=0.0)
    assert res.p95_speed_mps == pytest.approx(float(np.percentile(speeds, 95)), abs=0.0)
    lanes = res.log.arrays['ego_lane']
    limits = res.log.arrays['lane_speed_limit'][lanes[lanes >= 0]]
    assert res.mean_speed_limit_mps == pytest.approx(float(np.mean(limits)))
    assert res.as_dict()['p95_speed_mps'] == res.p95_speed_mps
