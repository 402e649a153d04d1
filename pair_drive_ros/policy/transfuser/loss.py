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

"""IL planner A loss: 10 L1(trajectory) + 10 agent class + 1 box + 10 BEV cross-entropy."""

import torch

from pair_drive_ros.policy.losses import (agent_loss, bev_semantic_loss, known_agents,
                                          trajectory_l1)
from pair_drive_ros.policy.transfuser.config import TransfuserConfig


def transfuser_loss(out: dict, targets: dict, cfg: TransfuserConfig) -> dict[str, torch.Tensor]:
    """Weighted loss terms; 'loss' is their sum (the one to backpropagate)."""
    traj = trajectory_l1(out['trajectory'], targets['trajectory'])
    cls, box = agent_loss(out['agent_states'], out['agent_logits'], targets['agent_states'],
                          targets['agent_mask'], known_agents(targets))
    bev = bev_semantic_loss(out['bev_semantics'], targets['bev_semantics'])
    total = (cfg.trajectory_weight * traj + cfg.agent_class_weight * cls
             + cfg.agent_box_weight * box + cfg.bev_semantic_weight * bev)
    return {'loss': total, 'trajectory': traj, 'agent_class': cls, 'agent_box': box,
            'bev_semantic': bev}
