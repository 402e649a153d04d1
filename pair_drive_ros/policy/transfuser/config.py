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

"""Transfuser-style IL planner config (lite defaults; loss weights as NAVSIM's Transfuser)."""

from dataclasses import dataclass, field

from pair_drive_ros.policy.backbone import BackboneConfig


@dataclass(frozen=True)
class TransfuserConfig:
    """Model and loss settings of IL planner A."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    num_poses: int = 8
    pose_dt_s: float = 0.5            # time between poses [s]
    step_scale_m: float = 2.0         # trajectory head: step-length residual per unit [m]
    max_turn_rad: float = 0.6         # trajectory head: largest heading change per step
    trajectory_weight: float = 10.0   # NAVSIM Transfuser: 10 L1(trajectory)
    agent_class_weight: float = 10.0  # 10 agent classification
    agent_box_weight: float = 1.0     # 1 box regression
    bev_semantic_weight: float = 10.0  # 10 BEV cross-entropy
