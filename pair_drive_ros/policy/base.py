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

"""
The one interface every planner implements (like NAVSIM's AbstractAgent).

Features in, an 8-pose ego-frame trajectory out, optionally with scored candidates. The IL
planners,
the baselines, the privileged reference planner and the PaIR composition all implement it, so the
evaluation and the nodes treat them alike. This module imports no torch.
"""

from abc import ABC, abstractmethod
from dataclasses import dataclass, field

import numpy as np

from pair_drive_ros.core.features import Features
from pair_drive_ros.core.scene import Scene
from pair_drive_ros.core.trajectory import Trajectory


@dataclass
class PlannerInput:
    """
    What a planner sees at one frame.

    scene: privileged ground truth (logged agents, lanes, expert); available only offline and
    in the
    embedded simulator. Planners that need it set `requires_scene = True`.
    """

    features: Features
    scene: Scene | None = None


@dataclass
class PlanOutput:
    """
    A planner's answer.

    trajectory: the plan (8 poses, ego frame). candidates: (K, 8, 3) ego-frame candidates it
    chose from, if any; candidate_scores: (K,) their scores (higher is better).
    il_trajectory: the IL branch's plan (PaIR only). info: small diagnostics (model ids, timings).
    """

    trajectory: Trajectory
    candidates: np.ndarray | None = None
    candidate_scores: np.ndarray | None = None
    il_trajectory: Trajectory | None = None
    info: dict = field(default_factory=dict)


class AbstractPlanner(ABC):
    """Base class of every planner."""

    name: str = 'abstract'
    requires_scene: bool = False

    def reset(self) -> None:
        """Forget any state kept between frames (new episode)."""

    @abstractmethod
    def compute_plan(self, inputs: PlannerInput) -> PlanOutput:
        """Plan for one frame."""

    def compute_plans(self, batch: list[PlannerInput]) -> list[PlanOutput]:
        """Plan for several frames (planners with a model override this to batch)."""
        return [self.compute_plan(inputs) for inputs in batch]
