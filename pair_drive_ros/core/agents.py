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

"""Other traffic participants as oriented boxes."""

from dataclasses import dataclass

import numpy as np

from pair_drive_ros.core.se2 import as_poses, box_corners, poses_to_local, rotation


@dataclass
class Agents:
    """
    M agents at one instant, in one frame.

    ids: (M,) int64 track ids. poses: (M, 3) box centre x, y [m], yaw [rad].
    sizes: (M, 2) length, width [m]. heights: (M,) [m]. velocities: (M, 2) vx, vy [m/s] in the
    same frame.
    """

    ids: np.ndarray
    poses: np.ndarray
    sizes: np.ndarray
    velocities: np.ndarray
    heights: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        m = len(self.ids)
        self.poses = as_poses(self.poses).reshape(m, 3)
        self.sizes = np.asarray(self.sizes, dtype=np.float64).reshape(m, 2)
        self.velocities = np.asarray(self.velocities, dtype=np.float64).reshape(m, 2)
        if self.heights is None:
            self.heights = np.full(m, 1.5)
        self.heights = np.asarray(self.heights, dtype=np.float64).reshape(m)

    def __len__(self) -> int:
        return len(self.ids)

    @classmethod
    def empty(cls) -> 'Agents':
        """No agents."""
        return cls(np.zeros(0), np.zeros((0, 3)), np.zeros((0, 2)), np.zeros((0, 2)))

    def corners(self) -> np.ndarray:
        """(M, 4, 2) box corners."""
        return box_corners(self.poses, self.sizes[:, 0], self.sizes[:, 1])

    def select(self, mask: np.ndarray) -> 'Agents':
        """Return the agents where `mask` (M,) is true (or the given indices)."""
        return Agents(self.ids[mask], self.poses[mask], self.sizes[mask], self.velocities[mask],
                      self.heights[mask])

    def to_frame(self, origin: np.ndarray) -> 'Agents':
        """Express the agents in the frame of `origin` (3,), given in their current frame."""
        poses = poses_to_local(origin, self.poses)
        rot = rotation(-float(np.asarray(origin)[2]))
        return Agents(self.ids, poses, self.sizes, self.velocities @ rot.T, self.heights)
