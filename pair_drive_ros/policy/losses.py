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
Losses shared by the IL planners: Hungarian-matched agent boxes and BEV semantics.

Target batch keys (built by training.data from the scene logs): TARGET_KEYS.
"""

import numpy as np
from scipy.optimize import linear_sum_assignment
import torch
import torch.nn.functional as F  # noqa: N812

# trajectory (B, 8, 3) ego frame; bev_semantics (B, H, W) int64 classes on the BEV grid;
# agent_states (B, A, 5) x, y, yaw, length, width; agent_mask (B, A) bool (a real agent).
TARGET_KEYS = ('trajectory', 'bev_semantics', 'agent_states', 'agent_mask')
# Optional target keys: agents_known (B,) bool, false for frames without agent boxes (converted
# recordings; their agent terms are skipped). BEV cells of unknown class hold IGNORE_CLASS.
IGNORE_CLASS = 255


def known_agents(targets: dict):
    """Return the (B,) agents_known flags of a target batch, or None when all are known."""
    return targets.get('agents_known')


def agent_loss(pred_states: torch.Tensor, pred_logits: torch.Tensor, gt_states: torch.Tensor,
               gt_mask: torch.Tensor, known: torch.Tensor | None = None
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """
    Transfuser's agent loss: Hungarian match, then BCE on existence and L1 on matched boxes.

    known: (B,) bool, false where the frame's agents are unknown (no existence target there).
    Returns (class loss, box loss), each a scalar.
    """
    b, a = pred_logits.shape
    with torch.no_grad():
        # Matching cost: L1 of position (the box part that matters) minus existence log-prob.
        cost = (torch.cdist(pred_states[..., :2], gt_states[..., :2], p=1)
                - F.logsigmoid(pred_logits)[..., None]).cpu().numpy()
        gt_mask_np = gt_mask.cpu().numpy()
    target_cls = torch.zeros_like(pred_logits)
    rows_b, rows_p, rows_g = [], [], []
    for i in range(b):
        valid = np.flatnonzero(gt_mask_np[i])
        if len(valid) == 0:
            continue
        p_idx, g_idx = linear_sum_assignment(cost[i][:, valid])
        rows_b.append(np.full(len(p_idx), i))
        rows_p.append(p_idx)
        rows_g.append(valid[g_idx])
    if rows_b:
        ib = torch.as_tensor(np.concatenate(rows_b), device=pred_logits.device)
        ip = torch.as_tensor(np.concatenate(rows_p), device=pred_logits.device)
        ig = torch.as_tensor(np.concatenate(rows_g), device=pred_logits.device)
        target_cls[ib, ip] = 1.0
        pred = pred_states[ib, ip]
        gt = gt_states[ib, ig]
        yaw_err = torch.atan2(torch.sin(pred[:, 2] - gt[:, 2]), torch.cos(pred[:, 2] - gt[:, 2]))
        box = (F.l1_loss(pred[:, :2], gt[:, :2]) + yaw_err.abs().mean()
               + F.l1_loss(pred[:, 3:], gt[:, 3:]))
    else:
        box = pred_states.sum() * 0.0
    if known is None or bool(known.all()):
        cls = F.binary_cross_entropy_with_logits(pred_logits, target_cls)
    elif bool(known.any()):
        k = known.to(torch.bool)
        cls = F.binary_cross_entropy_with_logits(pred_logits[k], target_cls[k])
    else:
        cls = pred_logits.sum() * 0.0
    return cls, box


def bev_semantic_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """
    Pixel-wise cross-entropy; logits (B, C, h, w), target (B, h, w) int64.

    Cells holding IGNORE_CLASS (frames without a map) do not count; 0 when none is known.
    """
    if logits.shape[-2:] != target.shape[-2:]:
        raise ValueError(f'BEV semantics size mismatch: model {tuple(logits.shape[-2:])}, '
                         f'target {tuple(target.shape[-2:])}')
    target = target.long()
    if not bool((target != IGNORE_CLASS).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits, target, ignore_index=IGNORE_CLASS)


def trajectory_l1(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 over (x, y, yaw) of 8 poses; the yaw error is wrapped."""
    xy = (pred[..., :2] - target[..., :2]).abs().mean()
    dyaw = pred[..., 2] - target[..., 2]
    yaw = torch.atan2(torch.sin(dyaw), torch.cos(dyaw)).abs().mean()
    return (2.0 * xy + yaw) / 3.0
