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

"""Planned trajectories: poses at a fixed time step in a named frame."""

from dataclasses import dataclass

import numpy as np

from pair_drive_ros.core.se2 import as_poses, poses_to_global, poses_to_local

EGO_FRAME = 'ego'
MAP_FRAME = 'map'

# NAVSIM's planning horizon: 8 poses at 2 Hz (4 s).
NUM_POSES = 8
POSE_DT_S = 0.5


@dataclass
class Trajectory:
    """
    A trajectory of N future poses.

    poses: (N, 3) x [m], y [m], yaw [rad]; pose k is at time t0_s + (k + 1) * dt_s, so the
    current pose
    (time t0_s) is not included. frame: the frame the poses are in ('ego' or 'map' by convention).
    """

    poses: np.ndarray
    dt_s: float = POSE_DT_S
    frame: str = EGO_FRAME
    t0_s: float = 0.0

    def __post_init__(self) -> None:
        poses = as_poses(self.poses)
        if poses.ndim != 2:
            raise ValueError(f'Trajectory poses must have shape (N, 3), got shape {poses.shape}')
        if not np.all(np.isfinite(poses)):
            raise ValueError('Trajectory poses contain non-finite values')
        if not self.dt_s > 0:
            raise ValueError(f'Trajectory dt_s must be positive, got {self.dt_s}')
        self.poses = poses
        self.dt_s = float(self.dt_s)
        self.t0_s = float(self.t0_s)

    def __len__(self) -> int:
        return len(self.poses)

    @property
    def times_s(self) -> np.ndarray:
        """(N,) absolute time [s] of each pose."""
        return self.t0_s + self.dt_s * np.arange(1, len(self.poses) + 1)

    @property
    def xy(self) -> np.ndarray:
        """(N, 2) positions [m]."""
        return self.poses[:, :2]

    def to_map(self, ego_pose: np.ndarray) -> 'Trajectory':
        """Express an ego-frame trajectory in the map frame, given the ego's map pose (3,)."""
        if self.frame == MAP_FRAME:
            return self
        return Trajectory(poses_to_global(ego_pose, self.poses), self.dt_s, MAP_FRAME, self.t0_s)

    def to_ego(self, ego_pose: np.ndarray, frame: str = EGO_FRAME) -> 'Trajectory':
        """Express a map-frame trajectory in the frame of `ego_pose` (3,)."""
        if self.frame != MAP_FRAME:
            return self
        return Trajectory(poses_to_local(ego_pose, self.poses), self.dt_s, frame, self.t0_s)
