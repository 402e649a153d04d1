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

"""Records a highway-env episode, frame by frame, into the scene-log arrays (see logs.py)."""

import json
from typing import Any

import numpy as np

from pair_drive_ros.core.se2 import wrap_angle
from pair_drive_ros.sim import hw
from pair_drive_ros.sim.logs import EpisodeLog, lanes_to_arrays, SCHEMA_VERSION

AGENT_HEIGHT_M = 1.5
EGO_HEIGHT_M = 1.5


def derive_ego_motion(poses: np.ndarray, speeds: np.ndarray, dt: float
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """
    Body-frame velocity (T, 2), acceleration (T, 2) and yaw rate (T,) by backward differences.

    Backward differences only, so the value at frame k is the same online (at k) and offline;
    frame 0 gets zero lateral velocity, acceleration and yaw rate.
    """
    n = len(poses)
    vel = np.zeros((n, 2))
    acc = np.zeros((n, 2))
    yaw_rate = np.zeros(n)
    vel[:, 0] = speeds
    if n > 1:
        d = np.diff(poses[:, :2], axis=0)
        yaw = poses[1:, 2]
        vel[1:, 1] = (-d[:, 0] * np.sin(yaw) + d[:, 1] * np.cos(yaw)) / dt
        yaw_rate[1:] = wrap_angle(np.diff(poses[:, 2])) / dt
        acc[1:, 0] = np.diff(speeds) / dt
        acc[:, 1] = speeds * yaw_rate
    return vel, acc, yaw_rate


class EpisodeRecorder:
    """Collects the state of every 0.1-s frame of one episode."""

    def __init__(self, env_u: Any, ego: Any, meta: dict, horizon_s: float = 30.0) -> None:
        road = env_u.road
        reach = 300.0 + 40.0 * horizon_s  # lanes cropped to where the ego can get
        lanes = hw.road_lanes(road, keep_xy=np.asarray([ego.position]), margin_m=reach)
        self.lane_arrays = lanes_to_arrays(lanes)
        self.lane_index = {lid: k for k, lid in enumerate(self.lane_arrays['lane_ids'])}
        self.lanes = lanes
        self.route_lanes = [hw.lane_id(x) for x in hw.route_chain(road, ego)]
        self.meta = dict(meta)
        self._ids: dict = {}      # id(vehicle) -> (vehicle, track index); keeps ids unique
        self._sizes: list = []
        self.frames: list = []

    def _track(self, v: Any) -> int:
        key = id(v)
        if key not in self._ids:
            self._ids[key] = (v, len(self._ids))
            self._sizes.append((v.LENGTH, v.WIDTH))
        return self._ids[key][1]

    def record(self, env_u: Any, ego: Any) -> None:
        """Snapshot the current state (call after reset and after every step)."""
        others = []
        for v in env_u.road.vehicles:
            if v is ego:
                continue
            idx = self._track(v)
            others.append((idx, v.position[0], v.position[1], v.heading,
                           v.velocity[0], v.velocity[1]))
        action = getattr(ego, 'action', None) or {}
        self.frames.append({
            'pose': (float(ego.position[0]), float(ego.position[1]), float(ego.heading)),
            'speed': float(ego.speed),
            'action': (float(action.get('acceleration', 0.0)),
                       float(action.get('steering', 0.0))),
            'lane': self.lane_index.get(hw.lane_id(ego.lane_index), -1)
            if ego.lane_index is not None else -1,
            'crashed': bool(ego.crashed),
            'on_road': hw.any_lane_contains(env_u.road, ego.position),
            'agents': others,
        })

    def arrays(self, extra_meta: dict | None = None) -> dict:
        """Return the scene-log arrays of the frames recorded so far."""
        n = len(self.frames)
        m = len(self._ids)
        poses = np.array([f['pose'] for f in self.frames], dtype=np.float64).reshape(n, 3)
        speeds = np.array([f['speed'] for f in self.frames], dtype=np.float64)
        vel, acc, yaw_rate = derive_ego_motion(poses, speeds, hw.SIM_DT_S)
        a_poses = np.zeros((n, m, 3))
        a_vel = np.zeros((n, m, 2))
        valid = np.zeros((n, m), dtype=bool)
        for k, f in enumerate(self.frames):
            if f['agents']:
                rows = np.array(f['agents'], dtype=np.float64)
                idx = rows[:, 0].astype(np.int64)
                a_poses[k, idx] = rows[:, 1:4]
                a_vel[k, idx] = rows[:, 4:6]
                valid[k, idx] = True
        crashed = np.array([f['crashed'] for f in self.frames], dtype=bool)
        meta = dict(self.meta)
        meta.update(extra_meta or {})
        crash_steps = np.nonzero(crashed)[0]
        meta.update({
            'schema_version': SCHEMA_VERSION,
            'num_frames': n,
            'expert_crashed': bool(crashed.any()),
            'crash_step': int(crash_steps[0]) if len(crash_steps) else -1,
            'sim_hz': hw.SIM_HZ,
            'ego_length': 5.0, 'ego_width': 2.0, 'ego_height': EGO_HEIGHT_M,
            'pose_convention': 'box centre (highway-env vehicle position), yaw = heading',
        })
        arrays = {
            'meta': np.array(json.dumps(meta, sort_keys=True)),
            't': np.arange(n) * hw.SIM_DT_S,
            'ego_pose': poses,
            'ego_speed': speeds,
            'ego_velocity': vel,
            'ego_accel': acc,
            'ego_yaw_rate': yaw_rate,
            # The action recorded at frame k + 1 is the one applied from k to k + 1.
            'ego_action': np.array([f['action'] for f in self.frames[1:]] + [(0.0, 0.0)],
                                   dtype=np.float64).reshape(n, 2),
            'ego_lane': np.array([f['lane'] for f in self.frames], dtype=np.int32),
            'ego_crashed': crashed,
            'ego_on_road': np.array([f['on_road'] for f in self.frames], dtype=bool),
            'agent_ids': np.arange(m, dtype=np.int64),
            'agent_sizes': np.array(self._sizes, dtype=np.float64).reshape(m, 2),
            'agent_heights': np.full(m, AGENT_HEIGHT_M),
            'agent_poses': a_poses,
            'agent_velocities': a_vel,
            'agent_valid': valid,
            'route_lanes': np.array(self.route_lanes, dtype=str),
        }
        arrays.update(self.lane_arrays)
        return arrays

    def to_log(self, extra_meta: dict | None = None) -> EpisodeLog:
        """Return an in-memory EpisodeLog of the frames recorded so far."""
        return EpisodeLog(self.arrays(extra_meta))
