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

"""A planner as the simulator's closed-loop policy: sensor frame -> features -> plan."""

from pair_drive_ros.core.trajectory import Trajectory
from pair_drive_ros.perception.builder import FeatureBuilder, obstacle_cells
from pair_drive_ros.perception.config import PerceptionConfig
from pair_drive_ros.policy.base import AbstractPlanner, PlannerInput
from pair_drive_ros.runtime.speed_governor import SpeedGovernor, SpeedGovernorConfig


def planner_perception_config(planner: AbstractPlanner) -> PerceptionConfig:
    """Return the perception configuration a planner was trained with (default: baselines)."""
    return getattr(planner, 'perception_config', None) or PerceptionConfig()


def closed_loop_policy(planner: AbstractPlanner, on_plan=None,
                       governor: SpeedGovernorConfig | None = None):
    """
    Wrap a planner as the simulator's policy(frame, scene) -> Trajectory.

    on_plan(frame, plan): called with every PlanOutput (e.g. to log what was picked).
    The policy's `observe(frame)` feeds a frame it does not plan on to the sweep history
    (`needs_every_frame`: the planner reads past sweeps), so that plans at other spacings than
    the sweeps' still find them. governor: the speed governor between planner and tracker, as
    on the planner node (off when None or disabled); on_plan sees the plan before it.
    """
    builder = FeatureBuilder(planner_perception_config(planner))
    history = builder.new_history()
    govern = SpeedGovernor(governor) if governor is not None and governor.enabled else None

    def start_if_new(frame) -> None:
        newest = history.newest_stamp_s
        if newest is not None and frame.stamp_s <= newest:
            history.reset()  # a new episode: its sweeps must not see the last one's
            if govern is not None:
                govern.reset()

    def policy(frame, scene) -> Trajectory:
        start_if_new(frame)
        features = builder.build(frame, history)
        plan = planner.compute_plan(PlannerInput(features, scene))
        if on_plan is not None:
            on_plan(frame, plan)
        if govern is None:
            return plan.trajectory
        cells = obstacle_cells(builder.cfg, features.lidar_bev) if governor.keep_gap else None
        return govern(plan.trajectory, frame.ego.pose, frame.stamp_s, frame.route,
                      frame.speed_limit_mps, cells)

    def observe(frame) -> None:
        # A frame between plans: only its sweep, for the past sweeps of later plans.
        start_if_new(frame)
        builder.observe(frame, history)

    policy.needs_every_frame = builder.cfg.history_sweeps > 0
    policy.observe = observe
    return policy
