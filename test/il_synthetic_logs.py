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

"""Tiny synthetic scene logs for the IL tests: a straight 3-lane road, the ego and two agents."""

import json
from pathlib import Path

import numpy as np

from pair_drive_ros.core.road import Lane, LINE_CONTINUOUS, LINE_STRIPED
from pair_drive_ros.sim.logs import EpisodeLog, lanes_to_arrays, SCHEMA_VERSION


def make_log(seed: int, num_frames: int = 50, speed_mps: float = 15.0) -> EpisodeLog:
    """One episode: the ego drives along lane 1 at `speed_mps` (+ a seed-dependent offset)."""
    rng = np.random.default_rng(seed)
    length = 500.0
    xs = np.linspace(0.0, length, 101)
    lanes = []
    for i in range(3):
        y = 4.0 * i
        lanes.append(Lane(f'a:b:{i}', np.stack([xs, np.full_like(xs, y)], -1), 4.0,
                          left_line=LINE_CONTINUOUS if i == 0 else LINE_STRIPED,
                          right_line=LINE_CONTINUOUS if i == 2 else LINE_STRIPED,
                          speed_limit_mps=30.0))
    t = np.arange(num_frames) * 0.1
    v = speed_mps + rng.uniform(-3, 3)
    ego_pose = np.stack([20.0 + v * t, np.full_like(t, 4.0), np.zeros_like(t)], -1)
    m = 2
    agent_poses = np.zeros((num_frames, m, 3))
    agent_poses[:, 0, 0] = 45.0 + 0.8 * v * t
    agent_poses[:, 0, 1] = 4.0 * rng.integers(0, 3)
    agent_poses[:, 1, 0] = 30.0 + v * t
    agent_poses[:, 1, 1] = 0.0
    agent_vel = np.zeros((num_frames, m, 2))
    agent_vel[:, 0, 0] = 0.8 * v
    agent_vel[:, 1, 0] = v
    meta = {'schema_version': SCHEMA_VERSION, 'scenario': 'synthetic', 'family': 'highway',
            'seed': int(seed), 'split': 'train', 'num_frames': num_frames, 'expert': 'idm',
            'ego_length': 5.0, 'ego_width': 2.0, 'ego_height': 1.5}
    arrays = {
        'meta': np.array(json.dumps(meta)), 't': t, 'ego_pose': ego_pose,
        'ego_speed': np.full(num_frames, v), 'ego_velocity': np.tile([v, 0.0], (num_frames, 1)),
        'ego_accel': np.zeros((num_frames, 2)), 'ego_yaw_rate': np.zeros(num_frames),
        'ego_action': np.zeros((num_frames, 2)), 'ego_lane': np.ones(num_frames, np.int64),
        'ego_crashed': np.zeros(num_frames, bool), 'ego_on_road': np.ones(num_frames, bool),
        'agent_ids': np.arange(m, dtype=np.int64), 'agent_sizes': np.tile([5.0, 2.0], (m, 1)),
        'agent_heights': np.full(m, 1.5), 'agent_poses': agent_poses,
        'agent_velocities': agent_vel, 'agent_valid': np.ones((num_frames, m), bool),
        'route_lanes': np.array(['a:b:1']),
    }
    arrays.update(lanes_to_arrays(lanes))
    return EpisodeLog(arrays)


def write_logs(root: Path, splits=('train', 'val', 'test'), episodes: int = 2,
               num_frames: int = 50) -> Path:
    """Write `episodes` synthetic logs per split under root/<split>/synthetic/."""
    for s, split in enumerate(splits):
        for e in range(episodes):
            log = make_log(100 * s + e, num_frames)
            log.save(Path(root) / split / 'synthetic' / f'synthetic_s{100 * s + e:06d}.npz')
    return Path(root)
