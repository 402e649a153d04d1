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
The RL branch of PaIR-Drive: its own perception trunk and the tree sampler (paper.md 1-2).

The branch never shares a module with an IL planner: it builds its own PerceptionTrunk (the same
class as the IL planners, separate weights). Given context tokens and a reference trajectory
(the expert in training, the IL plan at inference, always detached) it expands the tree of
`policy.tree` level by level. At each level every parent node gets four queries, one per branch
type: anchor embedding of the node's current pose + branch-type embedding + level embedding.
A transformer decoder cross-attends the queries to the context; a score head gives one logit per
branch and per-level offset heads give the mean of the raw offset parameters z = (z_s, z_h).

Stochastic policy (docs/RL_DESIGN.md): at each expansion on a code's path,
  branch ~ Categorical(softmax(logits of the 4 branches of the parent))
  z ~ Normal(mean, sigma^2 I) on the used dimensions (z_s always, z_h for left/right),
  s_unit = sigmoid(z_s), h_unit = sigmoid(z_h)
log pi(path) = sum over its 4 levels of log-softmax(logits)[branch] + log N(z; mean, sigma).
The squashing is a fixed bijection, so ratios pi_new / pi_old need no Jacobian. The group is a
fixed list of codes (GRPO_num = 15 in the released code), so the branch log-probabilities act on
a fixed set of paths; z is sampled once per tree node and shared by the paths through it.
At inference z = mean (sigma = 0).
"""

from dataclasses import dataclass, field
import math

import torch
from torch import nn

from pair_drive_ros.policy.backbone import BackboneConfig, PerceptionTrunk
from pair_drive_ros.policy.tree import (branch_offsets, EXPANSION_INDICES, graft, LEFT,
                                        mean_step_length, NUM_BRANCHES, NUM_LEVELS, RIGHT,
                                        TreeLayout)

MODEL_NAME = 'pair_rl_branch'


@dataclass(frozen=True)
class RLBranchConfig:
    """RL branch sizes and tree ranges (released code: offset_range 1.0, heading_range 1.2)."""

    # The IL planners' lite layout, so the trunk can start from a copy of a trained IL trunk.
    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    decoder_layers: int = 2        # released code: 5 (d = 256)
    num_heads: int = 4
    offset_range: float = 1.0      # s <= offset_range * 1.5 * mean reference step
    heading_range: float = 1.2     # |dyaw| <= heading_range [rad]
    pose_scale_m: float = 20.0     # anchor-embedding input normalisation [m]
    init_s_bias: float = 0.0       # sigmoid(0) * 1.5 = 0.75 of a step at init
    init_h_bias: float = -2.0      # sigmoid(-2) * 1.2 = 0.14 rad at init


@dataclass
class TreeOutput:
    """
    A sampled or evaluated tree for a group of G codes over B scenes.

    paths: (B, G, 8, 3) ego-frame leaves in code order. log_prob: (B, G) log pi of each path.
    logits[l]: (B, n_l, 4) branch logits of the parents at level l. means[l]: (B, c_l, 2) raw
    offset means of the children at level l; z[l]: (B, c_l, 2) the raw offsets used;
    masks[l]: (c_l, 2) which offset dimensions the child's branch type uses.
    """

    paths: torch.Tensor
    log_prob: torch.Tensor
    logits: list
    means: list
    z: list
    masks: list


def gaussian_log_prob(z: torch.Tensor, mean: torch.Tensor, sigma: float, mask: torch.Tensor
                      ) -> torch.Tensor:
    """Sum over the last axis of log N(z; mean, sigma^2) where mask (broadcast) is 1."""
    if sigma <= 0:
        return torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
    lp = -0.5 * ((z - mean) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)
    return (lp * mask).sum(-1)


class RLBranch(nn.Module):
    """Context encoder + tree sampler; `forward` returns a TreeOutput."""

    model_name = MODEL_NAME

    def __init__(self, cfg: RLBranchConfig = RLBranchConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.trunk = PerceptionTrunk(cfg.backbone)
        d = cfg.backbone.d_model
        self.anchor_embed = nn.Sequential(nn.Linear(3, d), nn.ReLU(), nn.Linear(d, d))
        self.type_embed = nn.Embedding(NUM_BRANCHES, d)
        self.level_embed = nn.Embedding(NUM_LEVELS, d)
        layer = nn.TransformerDecoderLayer(d, cfg.num_heads, 4 * d, 0.0, batch_first=True,
                                           norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, cfg.decoder_layers)
        self.score_head = nn.Sequential(nn.Linear(d, d // 2), nn.ReLU(), nn.Linear(d // 2, 1))
        # Per-level, per-type offset heads (released code: 4 x 4 MLPs) as one wide layer.
        self.offset_head = nn.Sequential(nn.Linear(d, 2 * d), nn.ReLU(),
                                         nn.Linear(2 * d, NUM_LEVELS * NUM_BRANCHES * 2))
        with torch.no_grad():
            bias = self.offset_head[-1].bias.view(NUM_LEVELS, NUM_BRANCHES, 2)
            bias[..., 0] = cfg.init_s_bias
            bias[..., 1] = cfg.init_h_bias
        self._layouts = {}

    def layout(self, codes) -> TreeLayout:
        """Return the (cached) TreeLayout of a group."""
        key = codes if isinstance(codes, str) else tuple(codes)
        if key not in self._layouts:
            self._layouts[key] = TreeLayout.build(codes)
        return self._layouts[key]

    def encode(self, batch: dict) -> torch.Tensor:
        """Context tokens (B, 65 + agents, d) of a feature batch."""
        out = self.trunk(batch)
        return torch.cat([out['memory'], out['agent_queries']], 1)

    def init_trunk_from(self, state_dict: dict, prefix: str = 'trunk.') -> int:
        """
        Copy trunk weights from another model's state dict (values are copied, never shared).

        Returns the number of tensors copied; a shape mismatch raises ValueError.
        """
        own = self.trunk.state_dict()
        picked = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
        bad = [k for k in own if k not in picked or picked[k].shape != own[k].shape]
        if bad:
            raise ValueError(f'trunk weights do not fit the RL trunk: {bad[:5]}')
        self.trunk.load_state_dict({k: picked[k].clone() for k in own})
        return len(own)

    def expand(self, context: torch.Tensor, reference: torch.Tensor, codes='15',
               sigma: float = 0.0, z: list | None = None,
               generator: torch.Generator | None = None) -> TreeOutput:
        """
        Grow the tree of `codes` around `reference` (B, 8, 3), detached.

        sigma > 0 and z None: sample z; z given: evaluate log pi of those offsets; sigma = 0:
        deterministic (z = mean).
        """
        lay = self.layout(codes)
        reference = reference.detach()
        b = reference.shape[0]
        device = context.device
        step_m = mean_step_length(reference)[:, None]
        paths = reference[:, None]
        node_lp = torch.zeros(b, 1, device=device)
        logits_all, means_all, z_all, masks = [], [], [], []
        d = self.cfg.backbone.d_model
        heads = self.offset_head[-1].out_features
        assert heads == NUM_LEVELS * NUM_BRANCHES * 2
        for level in range(NUM_LEVELS):
            t = EXPANSION_INDICES[level]
            n = paths.shape[1]
            pose = paths[:, :, t].clone()
            pose[..., :2] = pose[..., :2] / self.cfg.pose_scale_m
            q = (self.anchor_embed(pose)[:, :, None] + self.type_embed.weight
                 + self.level_embed.weight[level])
            h = self.decoder(q.reshape(b, n * NUM_BRANCHES, d), context)
            h = h.view(b, n, NUM_BRANCHES, d)
            logits = self.score_head(h)[..., 0]
            raw = self.offset_head(h).view(b, n, NUM_BRANCHES, NUM_LEVELS, NUM_BRANCHES, 2)
            types = torch.arange(NUM_BRANCHES, device=device)
            raw = raw[:, :, types, level, types]      # (B, n, 4, 2): own level and type
            parent = torch.tensor(lay.parent[level], device=device)
            branch = torch.tensor(lay.branch[level], device=device)
            mean = raw[:, parent, branch]            # (B, c, 2)
            mask = torch.ones(len(branch), 2, device=device)
            turns = (branch == LEFT) | (branch == RIGHT)
            mask[:, 1] = turns.to(mask)
            if z is not None:
                zl = z[level]
            elif sigma > 0:
                noise = torch.randn(mean.shape, generator=generator, device=device)
                zl = mean.detach() + sigma * noise * mask
            else:
                zl = mean
            s_unit, h_unit = torch.sigmoid(zl[..., 0]), torch.sigmoid(zl[..., 1])
            parent_paths = paths[:, parent]
            dxy, dyaw = branch_offsets(branch, s_unit, h_unit, parent_paths[:, :, t, 2], step_m,
                                       self.cfg.offset_range, self.cfg.heading_range)
            paths = graft(parent_paths, level, dxy, dyaw)
            log_soft = torch.log_softmax(logits, -1)[:, parent, branch]
            node_lp = node_lp[:, parent] + log_soft + gaussian_log_prob(zl, mean, sigma, mask)
            logits_all.append(logits)
            means_all.append(mean)
            z_all.append(zl.detach())
            masks.append(mask)
        leaf = torch.tensor(lay.leaf_index, device=device)
        return TreeOutput(paths[:, leaf], node_lp[:, leaf], logits_all, means_all, z_all, masks)

    def forward(self, batch: dict, reference: torch.Tensor, codes='15', sigma: float = 0.0,
                z: list | None = None, generator: torch.Generator | None = None) -> TreeOutput:
        """Encode the features and grow the tree around the (detached) reference."""
        return self.expand(self.encode(batch), reference, codes, sigma, z, generator)


def untrained_tree(trained: RLBranch, init_seed: int) -> RLBranch:
    """
    Return the attribution control: `trained`'s trunk, decoder and heads at random init.

    The trunk weights are copied, so a selector reading the RL context sees exactly the same
    tokens; only the tree (anchor, type and level embeddings, decoder, score and offset heads)
    is what `RLBranch.__init__` draws under torch seed `init_seed`. The global RNG state is
    restored afterwards.
    """
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(int(init_seed))
        fresh = RLBranch(trained.cfg)
    finally:
        torch.random.set_rng_state(state)
    fresh.trunk.load_state_dict({k: v.clone() for k, v in trained.trunk.state_dict().items()})
    if hasattr(trained, 'perception_config'):
        fresh.perception_config = trained.perception_config
    device = next(trained.parameters()).device
    return fresh.to(device).eval()


def tree_kl(new: TreeOutput, old: TreeOutput, sigma: float) -> torch.Tensor:
    """
    (B,) exact KL(pi_new || pi_old) summed over levels, averaged over each level's nodes.

    Categorical KL of the branch choice at every parent + Gaussian KL of the offsets at every
    child (same sigma: |mean_new - mean_old|^2 / (2 sigma^2) on the used dimensions).
    """
    total = 0.0
    for level in range(NUM_LEVELS):
        lp_new = torch.log_softmax(new.logits[level], -1)
        lp_old = torch.log_softmax(old.logits[level].detach(), -1)
        total = total + (lp_new.exp() * (lp_new - lp_old)).sum(-1).mean(-1)
        if sigma > 0:
            diff = new.means[level] - old.means[level].detach()
            sq = (diff ** 2 * new.masks[level]).sum(-1)
            total = total + sq.mean(-1) / (2 * sigma ** 2)
    return total
