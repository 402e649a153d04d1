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
IL planner B: lite DiffusionDrive (truncated diffusion around K-means anchors).

Anchors (K, 8, 2) come from K-means over the training set's expert trajectories and live in the
state dict. Training noises the anchors to a step t in [0, train_max_t); a cascade decoder
(per layer: mode self-attention, cross-attention to BEV + ego tokens and to agent queries, FFN,
time modulation) predicts the clean trajectory of every mode (the sample, parametrized as
integrated step lengths and heading changes so it is kinematically consistent) and a score per
mode; each layer re-encodes the previous layer's prediction. Inference
noises the anchors to `infer_noise_t` and runs DDIM steps at `infer_steps`; the best-scored mode
is the plan and all modes are candidates.
"""

import torch
from torch import nn
import torch.nn.functional as F  # noqa: N812

from pair_drive_ros.policy.backbone import (integrate_kinematics, kinematic_params,
                                            PerceptionTrunk, residual_kinematics,
                                            sine_embedding)
from pair_drive_ros.policy.diffusiondrive.config import DiffusionDriveConfig


def scaled_linear_alphas_cumprod(cfg: DiffusionDriveConfig) -> torch.Tensor:
    """(T,) cumulative alphas of the scaled-linear beta schedule (diffusers' definition)."""
    betas = torch.linspace(cfg.beta_start ** 0.5, cfg.beta_end ** 0.5, cfg.train_timesteps,
                           dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, 0).float()


class CascadeLayer(nn.Module):
    """One cascade decoder layer over K mode queries."""

    def __init__(self, d: int, heads: int, num_poses: int) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.bev_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.agent_attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.norms = nn.ModuleList([nn.LayerNorm(d) for _ in range(4)])
        self.ffn = nn.Sequential(nn.Linear(d, 4 * d), nn.ReLU(), nn.Linear(4 * d, d))
        self.modulation = nn.Linear(d, 2 * d)
        self.cls_head = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, 1))
        self.reg_head = nn.Sequential(nn.Linear(d, 2 * d), nn.ReLU(),
                                      nn.Linear(2 * d, num_poses * 2))
        # Zero-initialised: an untrained layer returns its base trajectory unchanged.
        nn.init.zeros_(self.reg_head[-1].weight)
        nn.init.zeros_(self.reg_head[-1].bias)

    def forward(self, q: torch.Tensor, memory: torch.Tensor, agents: torch.Tensor,
                time_emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Return (queries, class logits (B, K), raw sample head output (B, K, 8 * 2))."""
        h = self.norms[0](q)
        q = q + self.self_attn(h, h, h, need_weights=False)[0]
        h = self.norms[1](q)
        q = q + self.bev_attn(h, memory, memory, need_weights=False)[0]
        h = self.norms[2](q)
        q = q + self.agent_attn(h, agents, agents, need_weights=False)[0]
        q = q + self.ffn(self.norms[3](q))
        scale, shift = self.modulation(time_emb)[:, None].chunk(2, -1)
        q = q * (1.0 + scale) + shift
        return q, self.cls_head(q)[..., 0], self.reg_head(q)


class DiffusionDriveModel(nn.Module):
    """Transfuser trunk + truncated-diffusion cascade decoder over anchor modes."""

    model_name = 'diffusiondrive'

    def __init__(self, cfg: DiffusionDriveConfig = DiffusionDriveConfig()) -> None:
        super().__init__()
        self.cfg = cfg
        self.trunk = PerceptionTrunk(cfg.backbone)
        d = cfg.backbone.d_model
        # Anchors default to straight lines at several speeds; training sets K-means anchors.
        speeds = torch.linspace(0.0, 30.0, cfg.num_modes)
        t = torch.arange(1, cfg.num_poses + 1, dtype=torch.float32) * 0.5
        anchors = torch.stack([speeds[:, None] * t, torch.zeros(cfg.num_modes, cfg.num_poses)],
                              -1)
        self.register_buffer('anchors', anchors)
        self.register_buffer('alphas_cumprod', scaled_linear_alphas_cumprod(cfg))
        lo = torch.tensor([cfg.x_range_m[0], cfg.y_range_m[0]], dtype=torch.float32)
        hi = torch.tensor([cfg.x_range_m[1], cfg.y_range_m[1]], dtype=torch.float32)
        self.register_buffer('coord_lo', lo, persistent=False)
        self.register_buffer('coord_hi', hi, persistent=False)
        self.traj_encoder = nn.Sequential(
            nn.Linear(cfg.num_poses * 2 * cfg.point_embed_dim, d), nn.ReLU(), nn.Linear(d, d))
        self.time_mlp = nn.Sequential(nn.Linear(d, d), nn.ReLU(), nn.Linear(d, d))
        self.layers = nn.ModuleList([CascadeLayer(d, cfg.backbone.num_heads, cfg.num_poses)
                                     for _ in range(cfg.decoder_layers)])

    # ---- coordinates and diffusion -----------------------------------------------------------
    def normalize(self, xy: torch.Tensor) -> torch.Tensor:
        """Metres -> [-1, 1] (the original's coordinate normalisation)."""
        return 2.0 * (xy - self.coord_lo) / (self.coord_hi - self.coord_lo) - 1.0

    def denormalize(self, xy: torch.Tensor) -> torch.Tensor:
        """[-1, 1] -> metres."""
        return (xy + 1.0) * 0.5 * (self.coord_hi - self.coord_lo) + self.coord_lo

    def add_noise(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """q(x_t | x_0) for per-sample steps t (B,)."""
        a = self.alphas_cumprod[t].view(-1, *([1] * (x0.dim() - 1)))
        return a.sqrt() * x0 + (1.0 - a).sqrt() * noise

    def set_anchors(self, anchors) -> None:
        """Replace the anchors (K, 8, 2) [m] (K-means centres of the training trajectories)."""
        anchors = torch.as_tensor(anchors, dtype=torch.float32)
        if anchors.shape != self.anchors.shape:
            raise ValueError(f'anchors must have shape {tuple(self.anchors.shape)}, got '
                             f'{tuple(anchors.shape)}')
        self.anchors.copy_(anchors)

    # ---- decoder ------------------------------------------------------------------------------
    def decode(self, enc: dict, noisy: torch.Tensor, t: torch.Tensor) -> list:
        """
        Cascade decoding of noisy normalized trajectories (B, K, 8, 2) at steps t (B,).

        Returns per layer (logits (B, K), trajectories (B, K, 8, 3) in metres / radians).
        """
        cfg = self.cfg
        b, k = noisy.shape[:2]
        d = cfg.backbone.d_model
        time_emb = self.time_mlp(sine_embedding(t.float(), d))
        agents = enc['agent_queries']
        memory = enc['memory']
        current = noisy
        q = None
        outputs = []
        # Layer 1 refines each mode's anchor, later layers the previous layer's sample; the
        # noisy trajectory enters through the mode queries.
        base_step, base_turn = kinematic_params(self.anchors)
        base_step = base_step[None].expand(b, -1, -1)
        base_turn = base_turn[None].expand(b, -1, -1)
        for layer in self.layers:
            feats = sine_embedding(current.clamp(-1.5, 1.5) * 50.0,
                                   cfg.point_embed_dim).reshape(b, k, -1)
            enc_q = self.traj_encoder(feats)
            if q is None:
                q = enc_q + enc['traj_query'][:, None] if cfg.plan_query else enc_q
            else:
                q = q + enc_q
            q, logits, raw = layer(q, memory, agents, time_emb)
            step, turn = residual_kinematics(raw.view(b, k, cfg.num_poses, 2), base_step,
                                             base_turn, cfg.step_scale_m, cfg.max_turn_rad)
            poses = integrate_kinematics(step, turn)
            outputs.append((logits, poses))
            current = self.normalize(poses[..., :2]).detach()
            base_step, base_turn = step.detach(), turn.detach()
        return outputs

    def forward(self, batch: dict, t: torch.Tensor | None = None,
                noise: torch.Tensor | None = None) -> dict:
        """
        Training forward: anchors noised to random steps in [0, train_max_t).

        Returns the trunk outputs plus 'layers' (per cascade layer: logits, trajectories) and
        'trajectory' (B, 8, 3), the last layer's best mode.
        """
        enc = self.trunk(batch)
        b = enc['memory'].shape[0]
        dev = enc['memory'].device
        x0 = self.normalize(self.anchors)[None].expand(b, -1, -1, -1)
        if t is None:
            t = torch.randint(0, self.cfg.train_max_t, (b,), device=dev)
        if noise is None:
            noise = torch.randn_like(x0)
        noisy = self.add_noise(x0, t, noise).clamp(-1.0, 1.0)
        layers = self.decode(enc, noisy, t)
        enc['layers'] = layers
        logits, trajs = layers[-1]
        enc['trajectory'] = trajs[torch.arange(b, device=dev), logits.argmax(-1)]
        return enc

    @torch.no_grad()
    def plan(self, batch: dict, generator: torch.Generator | None = None) -> dict:
        """
        Truncated-diffusion inference (no gradients).

        Returns trajectory (B, 8, 3) the best-scored mode, candidates (B, K, 8, 3) all modes,
        scores (B, K) mode probabilities, context (B, 65, d) the trunk's tokens.
        """
        return self.denoise(self.trunk(batch), generator)

    def denoise(self, enc: dict, generator: torch.Generator | None = None) -> dict:
        """
        plan() from the trunk's outputs `enc`, differentiable (the caller picks grad mode).

        The same noise draw, DDIM steps and best-mode choice as plan(), which calls it under
        no_grad; the sequential GRPO baseline fine-tunes the decoder through it.
        """
        cfg = self.cfg
        b = enc['memory'].shape[0]
        dev = enc['memory'].device
        x0 = self.normalize(self.anchors)[None].expand(b, -1, -1, -1)
        # One noise draw shared by the batch: a frame's plan does not depend on its batch.
        noise = torch.randn((1,) + tuple(x0.shape[1:]), generator=generator).to(dev)
        t0 = torch.full((b,), cfg.infer_noise_t, dtype=torch.long, device=dev)
        x = self.add_noise(x0, t0, noise).clamp(-1.0, 1.0)
        steps = list(cfg.infer_steps)
        logits = trajs = None
        for i, step in enumerate(steps):
            t = torch.full((b,), int(step), dtype=torch.long, device=dev)
            logits, trajs = self.decode(enc, x, t)[-1]
            pred = self.normalize(trajs[..., :2])
            if i + 1 < len(steps):
                # DDIM update (eta = 0) from step to the next one, predicting the sample.
                a_t = self.alphas_cumprod[int(step)]
                nxt = steps[i + 1]
                a_prev = self.alphas_cumprod[int(nxt)] if nxt >= 0 else torch.tensor(1.0)
                eps = (x - a_t.sqrt() * pred) / (1.0 - a_t).sqrt().clamp_min(1e-6)
                x = (a_prev.sqrt() * pred + (1.0 - a_prev).sqrt() * eps).clamp(-1.0, 1.0)
        scores = F.softmax(logits, -1)
        best = scores.argmax(-1)
        return {'trajectory': trajs[torch.arange(b, device=dev), best], 'candidates': trajs,
                'scores': scores, 'context': enc['memory']}
