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

"""Ablation planners for attribution: PaIR's selector over candidates without the RL branch."""

import numpy as np
import torch

from pair_drive_ros.policy.pair import PaIRPlanner
from pair_drive_ros.policy.selector import (NUM_PLAN_VARIANTS, plan_variants,
                                            reference_alternatives, VARIANT_LATERAL_M,
                                            VARIANT_SPEEDS)


class VariantsOnlyPaIR(PaIRPlanner):
    """
    The no-RL row: the IL plan and its 14 whole-trajectory variants, no tree leaves.

    Exactly the non-RL part of the shipped candidate set (PaIRPlanner with plan variants),
    picked by the same selector. The RL branch only supplies the selector's context tokens (its
    trunk), not candidates.
    """

    name = 'pair_variants_only'

    @torch.no_grad()
    def candidates(self, batch: dict, il_poses: np.ndarray):
        """Return [IL plan, 14 variants, braking] (B, 15 + S, 8, 3) and the RL context tokens."""
        ref = torch.as_tensor(il_poses, dtype=torch.float32, device=self.device)
        context = self.rl_branch.encode(batch)
        parts = [ref[:, None], *reference_alternatives(ref, True, self.stop_decels)]
        return torch.cat(parts, 1), context

    def candidates_per_frame(self) -> int:
        """K = 1 + 14 + the braking candidates."""
        return 1 + NUM_PLAN_VARIANTS + len(self.stop_decels)


class NoTreePaIR(PaIRPlanner):
    """
    Ablation: the same number of candidates without the tree (whole-trajectory variants).

    Candidates: the IL plan, then the IL plan with its xy scaled by a speed factor and shifted
    along the ego y axis by a lateral offset ramping up over the horizon: 5 x 3 = 15 variants
    (one of them is the IL plan itself), 16 candidates like the tree of 15.
    """

    name = 'pair_no_tree'

    @torch.no_grad()
    def candidates(self, batch: dict, il_poses: np.ndarray):
        """Return [IL plan, 15 variants] (B, 16, 8, 3) and the RL context tokens."""
        ref = torch.as_tensor(il_poses, dtype=torch.float32, device=self.device)
        context = self.rl_branch.encode(batch)
        return torch.cat([ref[:, None], plan_variants(ref, keep_identity=True)], 1), context

    def candidates_per_frame(self) -> int:
        """K = 1 + 15."""
        return 1 + len(VARIANT_SPEEDS) * len(VARIANT_LATERAL_M)
