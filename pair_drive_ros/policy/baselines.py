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

"""Baseline planners: constant velocity, expert replay, and the privileged reference planner."""

import numpy as np

from pair_drive_ros.core.trajectory import NUM_POSES, POSE_DT_S, Trajectory
from pair_drive_ros.policy.base import AbstractPlanner, PlannerInput, PlanOutput


class PlannerInputError(ValueError):
    """A planner got inputs it cannot plan from (e.g. no scene for a privileged planner)."""


def _require_scene(planner: AbstractPlanner, inputs: PlannerInput):
    if inputs.scene is None:
        raise PlannerInputError(f'planner {planner.name!r} needs the scene (requires_scene)')
    return inputs.scene


class ConstantVelocityPlanner(AbstractPlanner):
    """Keep the current speed along the current heading (NAVSIM's constant-velocity agent)."""

    name = 'constant_velocity'

    def compute_plan(self, inputs: PlannerInput) -> PlanOutput:
        """Plan for one frame from the ego state only."""
        speed = float(np.hypot(*inputs.features.ego.velocity))
        t = np.arange(1, NUM_POSES + 1) * POSE_DT_S
        poses = np.stack([speed * t, np.zeros_like(t), np.zeros_like(t)], -1)
        return PlanOutput(Trajectory(poses, POSE_DT_S))


class ExpertPlanner(AbstractPlanner):
    """Replay the logged expert trajectory (privileged: needs scene.expert)."""

    name = 'expert'
    requires_scene = True

    def compute_plan(self, inputs: PlannerInput) -> PlanOutput:
        """Return the scene's expert; a scene without one is an error."""
        scene = _require_scene(self, inputs)
        if scene.expert is None:
            raise PlannerInputError(f'scene {scene.token} has no expert trajectory')
        expert = scene.expert.to_ego(scene.ego.pose)
        return PlanOutput(Trajectory(expert.poses, expert.dt_s))


class ReferencePlanner(AbstractPlanner):
    """The scorer's privileged PDM-Closed-style reference planner (sees the agents' future)."""

    name = 'reference'
    requires_scene = True

    def __init__(self, scorer_cfg=None) -> None:
        self._scorer_cfg = scorer_cfg

    def compute_plan(self, inputs: PlannerInput) -> PlanOutput:
        """Best IDM proposal along the route, scored with the logged future."""
        from pair_drive_ros.scoring import reference_plan, ScorerConfig

        scene = _require_scene(self, inputs)
        cfg = self._scorer_cfg if self._scorer_cfg is not None else ScorerConfig()
        return PlanOutput(reference_plan(scene, cfg))
