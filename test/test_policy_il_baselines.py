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

"""Planner factory and baselines (constant velocity, expert replay, reference)."""

import numpy as np
import pytest

from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.core.sensor_frame import SensorFrame
from pair_drive_ros.perception import FeatureBuilder
from pair_drive_ros.policy.base import PlannerInput
from pair_drive_ros.policy.baselines import PlannerInputError
from pair_drive_ros.policy.checkpoint import CheckpointError
from pair_drive_ros.policy.factory import build_planner, UnknownPlannerError


def _inputs(speed=(8.0, 0.0)):
    ego = EgoState(np.array([3.0, 4.0, 0.5]), np.array(speed))
    return PlannerInput(FeatureBuilder().build(SensorFrame(stamp_s=0.0, ego=ego)))


def test_constant_velocity_keeps_speed_and_heading():
    plan = build_planner('constant_velocity').compute_plan(_inputs((6.0, 8.0)))
    np.testing.assert_allclose(plan.trajectory.poses[:, 0], 10.0 * 0.5 * np.arange(1, 9))
    np.testing.assert_allclose(plan.trajectory.poses[:, 1:], 0.0)
    assert plan.trajectory.frame == 'ego' and plan.trajectory.dt_s == 0.5


def test_privileged_planners_need_the_scene():
    for name in ('expert', 'reference'):
        planner = build_planner(name)
        assert planner.requires_scene
        with pytest.raises(PlannerInputError, match='scene'):
            planner.compute_plan(_inputs())


def test_factory_errors(tmp_path):
    with pytest.raises(UnknownPlannerError, match='unknown planner'):
        build_planner('nope')
    with pytest.raises(CheckpointError, match='does not exist'):
        build_planner('transfuser', il_checkpoint=tmp_path / 'missing.pt')
