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

"""The ego vehicle's state."""

from dataclasses import dataclass, field

import numpy as np

from pair_drive_ros.core.se2 import as_poses


def _vec2(value, name: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64).reshape(-1)
    if arr.shape != (2,):
        raise ValueError(f'{name} must have shape (2,), got {np.shape(value)}')
    return arr


@dataclass
class EgoState:
    """
    Ego state at one instant.

    pose: (3,) x [m], y [m], yaw [rad] of the ego reference point in the map frame.
    velocity: (2,) longitudinal, lateral velocity [m/s] in the ego frame.
    acceleration: (2,) longitudinal, lateral acceleration [m/s^2] in the ego frame.
    yaw_rate: [rad/s]. stamp_s: time [s] (ROS time or simulation time).
    """

    pose: np.ndarray
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))
    acceleration: np.ndarray = field(default_factory=lambda: np.zeros(2))
    yaw_rate: float = 0.0
    stamp_s: float = 0.0

    def __post_init__(self) -> None:
        pose = as_poses(self.pose, 'pose').reshape(-1)
        if pose.shape != (3,):
            raise ValueError(f'pose must have shape (3,), got {np.shape(self.pose)}')
        self.pose = pose
        self.velocity = _vec2(self.velocity, 'velocity')
        self.acceleration = _vec2(self.acceleration, 'acceleration')
        self.yaw_rate = float(self.yaw_rate)
        self.stamp_s = float(self.stamp_s)
        values = np.concatenate([self.pose, self.velocity, self.acceleration, [self.yaw_rate]])
        if not np.all(np.isfinite(values)):
            raise ValueError(f'EgoState has non-finite values: {values.tolist()}')

    @property
    def speed(self) -> float:
        """Speed [m/s] (signed by the longitudinal velocity)."""
        return float(np.copysign(np.hypot(*self.velocity), self.velocity[0]))

    @property
    def velocity_map(self) -> np.ndarray:
        """(2,) velocity [m/s] in the map frame."""
        c, s = np.cos(self.pose[2]), np.sin(self.pose[2])
        vx, vy = self.velocity
        return np.array([vx * c - vy * s, vx * s + vy * c])
