"""Candidate selector: a light reward model (the paper's RWM, paper.md 1 and 6.6).

The scene context is either the RL branch's context tokens (context_source 'rl_branch', the
default: no second trunk at inference, the selector is trained on the final RL branch's frozen
context) or the selector's own perception trunk ('own'). Nothing is shared with the IL branch. Each
candidate (8 x 3 ego-frame poses, flattened and normalised) is embedded by an MLP; a transformer
decoder lets the candidate queries attend to each other and to the scene tokens; a head predicts
the PDM sub-scores and the overall PDMS / EPDMS (sigmoid, each in [0, 1]). The executed plan is
the candidate with the best predicted `select_by` score. The IL trajectory is always one of the
candidates, so the selector can fall back to plain IL.
"""

from dataclasses import dataclass, field

import torch
from torch import nn
import torch.nn.functional as F  # noqa: N812

from pair_drive_ros.policy.backbone import BackboneConfig, PerceptionTrunk

MODEL_NAME = 'pair_selector'
# Predicted targets, in order (names of scoring.Metric rows, then the aggregates).
TARGETS = ('NC', 'DAC', 'DDC', 'EP', 'TTC', 'C', 'LK', 'HC', 'pdms', 'epdms')
SELECT_BY = ('pdms', 'epdms', 'composite')


@dataclass(frozen=True)
class SelectorConfig:
    """Selector sizes and the selection rule."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    context_source: str = 'rl_branch'   # 'rl_branch' (its context tokens) or 'own' (a trunk)
    layers: int = 2
    num_heads: int = 4
    pose_scale_m: float = 20.0
    select_by: str = 'pdms'      # 'pdms', 'epdms' or 'composite' (NC DAC (5 EP + 5 TTC + 2 C)/12)
    # Keep candidate 0 (the IL plan) unless the best beats it by this predicted margin; tuned on
    # the validation split after training (train_selector).
    fallback_margin: float = 0.0

    def __post_init__(self) -> None:
        if self.context_source not in ('rl_branch', 'own'):
            raise ValueError(f'context_source must be rl_branch or own, got '
                             f'{self.context_source!r}')
        if self.select_by not in SELECT_BY:
            raise ValueError(f'select_by must be one of {SELECT_BY}, got {self.select_by!r}')


class Selector(nn.Module):
    """Scene features + K candidates -> (B, K, len(TARGETS)) predicted scores in [0, 1]."""

    model_name = MODEL_NAME

    def __init__(self, cfg: SelectorConfig = SelectorConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.trunk = PerceptionTrunk(cfg.backbone) if cfg.context_source == 'own' else None
        d = cfg.backbone.d_model
        self.candidate_embed = nn.Sequential(nn.Linear(8 * 4, 2 * d), nn.ReLU(),
                                             nn.Linear(2 * d, d))
        layer = nn.TransformerDecoderLayer(d, cfg.num_heads, 4 * d, 0.0, batch_first=True,
                                           norm_first=True)
        self.decoder = nn.TransformerDecoder(layer, cfg.layers)
        self.head = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.ReLU(),
                                  nn.Linear(d, len(TARGETS)))

    def encode_candidates(self, candidates: torch.Tensor) -> torch.Tensor:
        """(B, K, d) embeddings of (B, K, 8, 3) ego-frame candidates."""
        xy = candidates[..., :2] / self.cfg.pose_scale_m
        yaw = candidates[..., 2:]
        x = torch.cat([xy, torch.cos(yaw), torch.sin(yaw)], -1).flatten(-2)
        return self.candidate_embed(x)

    def forward(self, candidates: torch.Tensor, context: torch.Tensor | None = None,
                batch: dict | None = None) -> torch.Tensor:
        """Logits (B, K, len(TARGETS)) of candidates (B, K, 8, 3); sigmoid gives the scores.

        context: (B, N, d) RL-branch context tokens (context_source 'rl_branch'); batch: the
        feature batch (context_source 'own').
        """
        if self.trunk is not None:
            if batch is None:
                raise ValueError('this selector has its own trunk: pass the feature batch')
            out = self.trunk(batch)
            context = torch.cat([out['memory'], out['agent_queries']], 1)
        elif context is None:
            raise ValueError('this selector reads the RL branch context: pass context')
        q = self.encode_candidates(candidates.detach())
        return self.head(self.decoder(q, context.detach()))

    def selection_score(self, logits: torch.Tensor) -> torch.Tensor:
        """(B, K) score the selector maximises."""
        p = torch.sigmoid(logits)
        if self.cfg.select_by == 'composite':
            i = {name: k for k, name in enumerate(TARGETS)}
            return p[..., i['NC']] * p[..., i['DAC']] * (
                5 * p[..., i['EP']] + 5 * p[..., i['TTC']] + 2 * p[..., i['C']]) / 12.0
        return p[..., TARGETS.index(self.cfg.select_by)]

    @torch.no_grad()
    def select(self, candidates: torch.Tensor, context: torch.Tensor | None = None,
               batch: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(best index (B,), selection scores (B, K)); index 0 (IL) wins ties within margin."""
        score = self.selection_score(self.forward(candidates, context, batch))
        return pick_with_margin(score, self.cfg.fallback_margin), score


def pick_with_margin(score: torch.Tensor, margin: float) -> torch.Tensor:
    """Argmax over (B, K) scores, but candidate 0 unless the best beats it by `margin`."""
    best = score.argmax(-1)
    gain = score.gather(-1, best[:, None])[:, 0] - score[:, 0]
    return torch.where(gain > margin, best, torch.zeros_like(best))


def selector_loss(logits: torch.Tensor, targets: torch.Tensor, rank_weight: float = 1.0,
                  rank_temperature: float = 0.05, select_index: int = TARGETS.index('pdms')
                  ) -> dict:
    """BCE on every target (soft labels in [0, 1]) + listwise ranking cross-entropy.

    The ranking term pushes the softmax over candidates of the `select_index` logit towards
    softmax(true score / rank_temperature): choosing the best matters more than calibration.
    """
    bce = F.binary_cross_entropy_with_logits(logits, targets)
    pred = logits[..., select_index]
    target = torch.softmax(targets[..., select_index] / rank_temperature, -1)
    rank = -(target * torch.log_softmax(pred, -1)).sum(-1).mean()
    return {'loss': bce + rank_weight * rank, 'bce': bce, 'rank': rank}
