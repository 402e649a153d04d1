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

"""`pair-drive score` end to end on a small synthetic scene log (documented schema)."""

import json

import numpy as np
import pytest
import yaml

logs = pytest.importorskip('pair_drive_ros.sim.logs')

from pair_drive_ros import cli  # noqa: E402
from pair_drive_ros.scoring.cli import load_trajectories, save_trajectories  # noqa: E402


def _episode(path, frames: int = 60, speed: float = 10.0):
    """Return a straight 3-lane road; the ego drives lane 0 at constant speed, one leader ahead."""
    t = np.arange(frames) * 0.1
    ego = np.c_[speed * t, np.zeros(frames), np.zeros(frames)]
    lead = np.c_[30.0 + 8.0 * t, np.zeros(frames), np.zeros(frames)][:, None]
    xs = np.arange(-100.0, 800.0, 5.0)
    lane_pts = np.concatenate([np.c_[xs, np.full_like(xs, 4.0 * i)] for i in range(3)])
    meta = dict(schema_version=logs.SCHEMA_VERSION, scenario='synthetic', seed=0, split='val',
                num_frames=frames)
    arrays = {
        'meta': np.array(json.dumps(meta)), 't': t, 'ego_pose': ego,
        'ego_speed': np.full(frames, speed),
        'ego_velocity': np.c_[np.full(frames, speed), np.zeros(frames)],
        'ego_accel': np.zeros((frames, 2)), 'ego_yaw_rate': np.zeros(frames),
        'ego_action': np.zeros((frames, 2)), 'ego_lane': np.zeros(frames, np.int64),
        'ego_crashed': np.zeros(frames, bool), 'ego_on_road': np.ones(frames, bool),
        'agent_ids': np.array([7]), 'agent_sizes': np.array([[5.0, 2.0]]),
        'agent_heights': np.array([1.5]), 'agent_poses': lead,
        'agent_velocities': np.tile([[[8.0, 0.0]]], (frames, 1, 1)),
        'agent_valid': np.ones((frames, 1), bool),
        'lane_ids': np.array(['a:b:0', 'a:b:1', 'a:b:2']),
        'lane_offsets': np.arange(4) * len(xs), 'lane_points': lane_pts,
        'lane_widths': np.full(len(lane_pts), 4.0), 'lane_left': np.ones(3, np.int8),
        'lane_right': np.ones(3, np.int8), 'lane_speed_limit': np.full(3, 20.0),
        'lane_in_intersection': np.zeros(3, bool), 'route_lanes': np.array(['a:b:0']),
    }
    logs.EpisodeLog(arrays).save(path)


@pytest.fixture
def log_root(tmp_path):
    root = tmp_path / 'logs'
    _episode(root / 'val' / 'ep0.npz')
    return root


def test_score_expert_and_cv_baselines(log_root, tmp_path):
    out = tmp_path / 'out_expert'
    rc = cli.main(['score', '--logs', str(log_root), '--split', 'val', '--baseline', 'expert',
                   '--out', str(out), '--frame-stride', '5'])
    assert rc == 0
    summary = json.loads((out / 'summary.json').read_text())
    rows = json.loads((out / 'scores.json').read_text())
    assert summary['num_scenes'] == len(rows) == 4      # scorable frames 0..19, stride 5
    assert (out / 'scores.csv').read_text().startswith('episode,frame,token,NC,DAC')
    assert summary['means']['NC'] == 1.0 and summary['means']['DAC'] == 1.0
    assert summary['num_scenes_with_previous_frame'] == 3
    assert all(r['ec_used'] for r in rows[1:])
    assert summary['means']['pdms'] > 0.8
    saved = yaml.safe_load((out / 'config.yaml').read_text())
    assert saved['baseline'] == 'expert' and saved['frame_stride'] == 5


def test_score_trajectory_file_round_trip(log_root, tmp_path):
    poses = np.zeros((2, 8, 3))
    poses[:, :, 0] = 20.0 * 0.5 * np.arange(1, 9)     # too fast: runs into the leader
    traj = tmp_path / 'trajs.npz'
    save_trajectories(traj, ['ep0.npz', 'ep0.npz'], [0, 5], poses)
    episodes, frames, back = load_trajectories(traj)
    assert episodes == ['ep0.npz', 'ep0.npz'] and frames.tolist() == [0, 5]
    np.testing.assert_array_equal(back, poses)
    out = tmp_path / 'out'
    assert cli.main(['score', '--logs', str(log_root), '--split', 'val', '--trajectories',
                     str(traj), '--out', str(out)]) == 0
    rows = json.loads((out / 'scores.json').read_text())
    assert [r['frame'] for r in rows] == [0, 5]
    assert rows[0]['NC'] == 0.0 and rows[0]['pdms'] == 0.0


def test_bad_trajectory_file_is_a_clean_error(log_root, tmp_path):
    bad = tmp_path / 'bad.npz'
    np.savez(bad, episode=np.array(['ep0.npz']), frame=np.array([0]))
    assert cli.main(['score', '--logs', str(log_root), '--split', 'val', '--trajectories',
                     str(bad), '--out', str(tmp_path / 'o')]) == 2
    with pytest.raises(ValueError, match='shape'):
        save_trajectories(tmp_path / 'x.npz', ['a'], [0], np.zeros((1, 6, 3)))
