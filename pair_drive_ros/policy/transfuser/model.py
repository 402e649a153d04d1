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
IL planner A: the lite Transfuser model (trunk + trajectory head on the trajectory query).

The head's 8 poses are integrated from per-step length and heading change (kinematically
consistent) instead of regressed independently, as a residual on the constant-velocity rollout
(zero-initialised); the loss is still L1 on the poses.
"""

import torch
from torch import nn

from pair_drive_ros.core.features import COMMANDS
from pair_drive_ros.policy.backbone import (integrate_kinematics, PerceptionTrunk,
                                            residual_kinematics)
from pair_drive_ros.policy.transfuser.config import TransfuserConfig


class TransfuserModel(nn.Module):
    """Camera + LiDAR-BEV Transfuser: 8 ego-frame poses plus auxiliary agents and semantics."""

    model_name = 'transfuser'

    def __init__(self, cfg: TransfuserConfig = TransfuserConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.trunk = PerceptionTrunk(cfg.backbone)
        d = cfg.backbone.d_model
        self.trajectory_head = nn.Sequential(nn.Linear(d, 2 * d), nn.ReLU(),
                                             nn.Linear(2 * d, cfg.num_poses * 2))
        # Zero-initialised output layer: the untrained plan is the constant-velocity rollout.
        nn.init.zeros_(self.trajectory_head[-1].weight)
        nn.init.zeros_(self.trajectory_head[-1].bias)

    def forward(self, batch: dict) -> dict:
        """
        Forward a feature batch.

        Returns the trunk outputs plus trajectory (B, 8, 3): x, y [m], yaw [rad], ego frame.
        """
        out = self.trunk(batch)
        raw = self.trajectory_head(out['traj_query']).view(-1, self.cfg.num_poses, 2)
        speed = batch['ego_status'][:, len(COMMANDS)].clamp_min(0.0)
        base_step = (speed * self.cfg.pose_dt_s)[:, None].expand(-1, self.cfg.num_poses)
        step, turn = residual_kinematics(raw, base_step, torch.zeros_like(base_step),
                                         self.cfg.step_scale_m, self.cfg.max_turn_rad)
        out['trajectory'] = integrate_kinematics(step, turn)
        return out

    @torch.no_grad()
    def plan(self, batch: dict) -> dict:
        """Inference without gradients: trajectory (B, 8, 3), candidates (B, 1, 8, 3), scores."""
        out = self.forward(batch)
        traj = out['trajectory']
        return {'trajectory': traj, 'candidates': traj[:, None],
                'scores': torch.ones(traj.shape[0], 1, device=traj.device),
                'context': out['memory']}
