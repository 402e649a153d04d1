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
IL planner B loss (DiffusionDrive weights).

Per cascade layer: mode classification (10) and regression of the mode nearest the expert (8);
plus BEV semantics (14) and Transfuser's agent terms.
"""

import torch
import torch.nn.functional as F  # noqa: N812

from pair_drive_ros.policy.diffusiondrive.config import DiffusionDriveConfig
from pair_drive_ros.policy.losses import (agent_loss, bev_semantic_loss, known_agents,
                                          trajectory_l1)


def nearest_anchor(anchors: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B,) index of the anchor (K, 8, 2) closest (mean L2) to each target (B, 8, >=2)."""
    dist = torch.linalg.norm(anchors[None] - target[:, None, :, :2], dim=-1).mean(-1)
    return dist.argmin(-1)


def diffusiondrive_loss(out: dict, targets: dict, cfg: DiffusionDriveConfig,
                        anchors: torch.Tensor) -> dict[str, torch.Tensor]:
    """Weighted loss terms; 'loss' is their sum."""
    gt = targets['trajectory']
    mode = nearest_anchor(anchors, gt)
    idx = torch.arange(gt.shape[0], device=gt.device)
    cls = gt.new_zeros(())
    reg = gt.new_zeros(())
    for logits, trajs in out['layers']:
        cls = cls + F.cross_entropy(logits, mode)
        reg = reg + trajectory_l1(trajs[idx, mode], gt)
    n = len(out['layers'])
    cls, reg = cls / n, reg / n
    a_cls, a_box = agent_loss(out['agent_states'], out['agent_logits'], targets['agent_states'],
                              targets['agent_mask'], known_agents(targets))
    bev = bev_semantic_loss(out['bev_semantics'], targets['bev_semantics'])
    total = (cfg.cls_weight * cls + cfg.reg_weight * reg + cfg.bev_semantic_weight * bev
             + cfg.agent_class_weight * a_cls + cfg.agent_box_weight * a_box)
    return {'loss': total, 'mode_class': cls, 'trajectory': reg, 'agent_class': a_cls,
            'agent_box': a_box, 'bev_semantic': bev}
