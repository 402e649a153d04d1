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

"""A scene: one planning instant with its logged context, as the scorer and the trainers see it."""

from dataclasses import dataclass

import numpy as np

from pair_drive_ros.core.agents import Agents
from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.core.road import RoadMap
from pair_drive_ros.core.route import Route
from pair_drive_ros.core.trajectory import Trajectory

# NAVSIM simulates 4 s at 10 Hz: 41 states including t = 0.
SCENE_DT_S = 0.1
SCENE_FUTURE_STEPS = 41


@dataclass
class AgentTracks:
    """
    Logged agent states over time (map frame), for non-reactive replay.

    ids: (M,). sizes: (M, 2) length, width [m]. heights: (M,) [m].
    poses: (T, M, 3) box centre x, y [m], yaw [rad]. velocities: (T, M, 2) [m/s].
    valid: (T, M) whether the agent exists at that step. Step k is at time k * dt_s after the
    scene start.
    """

    ids: np.ndarray
    sizes: np.ndarray
    poses: np.ndarray
    velocities: np.ndarray
    valid: np.ndarray
    heights: np.ndarray | None = None
    dt_s: float = SCENE_DT_S

    def __post_init__(self) -> None:
        self.ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        m = len(self.ids)
        # reshape(-1, 0, 3) cannot infer the step count when there are no agents: take it from
        # `valid` then.
        steps = np.asarray(self.valid).shape[0] if m == 0 else -1
        self.poses = np.asarray(self.poses, dtype=np.float64).reshape(steps, m, 3)
        t = self.poses.shape[0]
        self.sizes = np.asarray(self.sizes, dtype=np.float64).reshape(m, 2)
        self.velocities = np.asarray(self.velocities, dtype=np.float64).reshape(t, m, 2)
        self.valid = np.asarray(self.valid, dtype=bool).reshape(t, m)
        if self.heights is None:
            self.heights = np.full(m, 1.5)
        self.heights = np.asarray(self.heights, dtype=np.float64).reshape(m)

    @property
    def num_steps(self) -> int:
        """Return the number of time steps T."""
        return self.poses.shape[0]

    def at(self, step: int) -> Agents:
        """Return the valid agents at one step."""
        mask = self.valid[step]
        return Agents(self.ids[mask], self.poses[step, mask], self.sizes[mask],
                      self.velocities[step, mask], self.heights[mask])


@dataclass
class Scene:
    """
    Everything needed to score candidate trajectories at one planning instant.

    ego: the ego state at t = 0 (map frame). ego_history: (H, 3) past ego poses at dt_s, oldest
    first,
    the last row at t = 0. agents: logged agent tracks from t = 0 over the scoring horizon.
    road: lane geometry. route: the route centreline. route_lane_ids: lanes that belong to the
    route.
    expert: the expert (human-like) trajectory in the ego frame, if known.
    """

    token: str
    ego: EgoState
    ego_history: np.ndarray
    agents: AgentTracks
    road: RoadMap
    route: Route
    route_lane_ids: tuple[str, ...] = ()
    expert: Trajectory | None = None
    dt_s: float = SCENE_DT_S
