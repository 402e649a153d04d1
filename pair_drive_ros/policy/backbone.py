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
Lite Transfuser perception trunk shared by both IL planners.

Camera and LiDAR-BEV conv encoders (four stride-2 stages each) fused by GPT-style transformer
layers at the last two scales (as Transfuser does at four), an 8 x 8 BEV token grid plus one
ego-status token, a transformer decoder with one trajectory query and `num_agents` agent queries,
an agent head (boxes + existence) and a BEV-semantic head. Sizes are "lite" (ros2.md section 10):
the default config has ~0.6 M parameters and runs one frame in a few ms on one CPU core.
"""

from dataclasses import dataclass
import math

import torch
from torch import nn
import torch.nn.functional as F  # noqa: N812

from pair_drive_ros.core.features import (COMMANDS, FEATURE_KEYS, SPEED_STATUS, STATUS_DIM,
                                          status_layout)

# Agent box state: x, y [m], yaw [rad], length, width [m] in the ego frame (Transfuser's order).
AGENT_STATE_DIM = 5


@dataclass(frozen=True)
class BackboneConfig:
    """Perception trunk sizes (lite defaults; the GPU config may be larger)."""

    channels: tuple = (16, 32, 64, 64)     # per encoder stage
    image_strides: tuple = (2, 2, 2, 1)    # camera 32 x 64 -> 4 x 8
    lidar_strides: tuple = (2, 2, 2, 1)    # BEV 64 x 64 -> 8 x 8 tokens
    d_model: int = 64                      # token width
    num_heads: int = 4
    fusion_layers: int = 1                 # GPT layers per fused scale
    fusion_tokens: tuple = (8, 8)          # per-stream token grid at each fused scale
    decoder_layers: int = 2                # query decoder (Transfuser: 3)
    num_agents: int = 16                   # agent queries (Transfuser: 30)
    lidar_channels: int = 3                # LiDAR BEV channels + route raster (2 + 1 by default)
    status_dim: int = STATUS_DIM           # ego-status length (PerceptionConfig.status_dim)
    status_speed_slots: tuple = ()         # further status entries in m/s (scaled like speed)
    bev_classes: int = 5                   # sim.raster BEV_CLASSES
    semantic_channels: int = 32            # BEV-semantic head width
    agent_range_m: float = 48.0            # agent x, y are tanh-bounded to this [m]
    speed_scale_mps: float = 20.0          # ego-status velocity normalisation
    accel_scale_mps2: float = 4.0          # ego-status acceleration normalisation
    dropout: float = 0.0


def backbone_inputs(perception) -> dict:
    """Return the BackboneConfig fields a perception config fixes (LiDAR channels, status)."""
    layout = status_layout(perception.road_speed, perception.history_sweeps)
    slots = [i for i, name in enumerate(layout) if name in SPEED_STATUS and i >= STATUS_DIM]
    return {'lidar_channels': perception.lidar_channels + 1, 'status_dim': len(layout),
            'status_speed_slots': tuple(slots)}


def _stage(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True))


class GPTFusion(nn.Module):
    """Transfuser's GPT block: joint self-attention over pooled image and LiDAR tokens."""

    def __init__(self, channels: int, cfg: BackboneConfig) -> None:
        super().__init__()
        self.grid = tuple(cfg.fusion_tokens)
        n = 2 * self.grid[0] * self.grid[1]
        self.pos = nn.Parameter(torch.zeros(1, n, channels))
        layer = nn.TransformerEncoderLayer(channels, cfg.num_heads, 2 * channels, cfg.dropout,
                                           batch_first=True, norm_first=True)
        self.gpt = nn.TransformerEncoder(layer, cfg.fusion_layers, enable_nested_tensor=False)

    def forward(self, image: torch.Tensor, lidar: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the fused context back onto both streams (residual, upsampled)."""
        gh, gw = self.grid
        img_t = F.adaptive_avg_pool2d(image, (gh, gw)).flatten(2).transpose(1, 2)
        lid_t = F.adaptive_avg_pool2d(lidar, (gh, gw)).flatten(2).transpose(1, 2)
        out = self.gpt(torch.cat([img_t, lid_t], 1) + self.pos)
        n = gh * gw
        b, c = image.shape[:2]
        img_o = out[:, :n].transpose(1, 2).reshape(b, c, gh, gw)
        lid_o = out[:, n:].transpose(1, 2).reshape(b, c, gh, gw)
        image = image + F.interpolate(img_o, size=image.shape[-2:], mode='bilinear',
                                      align_corners=False)
        lidar = lidar + F.interpolate(lid_o, size=lidar.shape[-2:], mode='bilinear',
                                      align_corners=False)
        return image, lidar


def sine_embedding(x: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding (..., dim) of scalars x (...)."""
    half = dim // 2
    steps = torch.arange(half, device=x.device, dtype=torch.float32)
    freqs = torch.exp(-math.log(max_period) * steps / half)
    args = x.float()[..., None] * freqs
    return torch.cat([torch.sin(args), torch.cos(args)], -1)


class PerceptionTrunk(nn.Module):
    """Camera + LiDAR-BEV encoders, GPT fusion, BEV tokens, query decoder, agent and BEV heads."""

    def __init__(self, cfg: BackboneConfig) -> None:
        super().__init__()
        self.cfg = cfg
        ch = tuple(cfg.channels)
        if len(ch) != 4:
            raise ValueError(f'BackboneConfig.channels needs 4 stages, got {ch}')
        img_in = (3,) + ch[:-1]
        lid_in = (cfg.lidar_channels,) + ch[:-1]
        self.image_stages = nn.ModuleList(
            [_stage(a, b, s) for a, b, s in zip(img_in, ch, cfg.image_strides)])
        self.lidar_stages = nn.ModuleList(
            [_stage(a, b, s) for a, b, s in zip(lid_in, ch, cfg.lidar_strides)])
        self.fusions = nn.ModuleList([GPTFusion(ch[2], cfg), GPTFusion(ch[3], cfg)])
        d = cfg.d_model
        self.bev_proj = nn.Conv2d(ch[3], d, 1)
        self.status_proj = nn.Sequential(nn.Linear(cfg.status_dim, d), nn.ReLU(),
                                         nn.Linear(d, d))
        self.bev_pos = nn.Parameter(torch.zeros(1, 64, d))
        self.status_pos = nn.Parameter(torch.zeros(1, 1, d))
        self.queries = nn.Parameter(torch.randn(1, 1 + cfg.num_agents, d) * 0.02)
        dec_layer = nn.TransformerDecoderLayer(d, cfg.num_heads, 4 * d, cfg.dropout,
                                               batch_first=True, norm_first=True)
        self.decoder = nn.TransformerDecoder(dec_layer, cfg.decoder_layers)
        self.agent_head = nn.Sequential(nn.Linear(d, d), nn.ReLU(),
                                        nn.Linear(d, AGENT_STATE_DIM + 1))
        # BEV semantics at the input BEV resolution: FPN-style top-down path.
        sd = cfg.semantic_channels
        self.sem_top = nn.Conv2d(d, sd, 1)
        self.sem_lateral = nn.Conv2d(ch[1], sd, 1)
        self.sem_out = nn.Sequential(nn.Conv2d(sd, sd, 3, padding=1), nn.ReLU(inplace=True),
                                     nn.Conv2d(sd, cfg.bev_classes, 1))
        if cfg.status_dim < STATUS_DIM:
            raise ValueError(f'BackboneConfig.status_dim must be >= {STATUS_DIM}, '
                             f'got {cfg.status_dim}')
        scale = torch.ones(cfg.status_dim)
        n = len(COMMANDS)
        scale[n:n + 2] = 1.0 / cfg.speed_scale_mps
        scale[n + 2:n + 4] = 1.0 / cfg.accel_scale_mps2
        for i in cfg.status_speed_slots:
            scale[int(i)] = 1.0 / cfg.speed_scale_mps
        self.register_buffer('status_scale', scale, persistent=False)

    def forward(self, batch: dict) -> dict:
        """
        Encode a feature batch (keys FEATURE_KEYS).

        Returns bev_tokens (B, 64, d) with pos. enc., status_token (B, 1, d), memory
        (B, 65, d), traj_query (B, d), agent_queries (B, A, d), agent_states (B, A, 5),
        agent_logits (B, A), bev_semantics (B, classes, H, W).
        """
        missing = [k for k in FEATURE_KEYS if k not in batch]
        if missing:
            raise KeyError(f'feature batch lacks {missing}')
        image = batch['camera']
        lidar = torch.cat([batch['lidar_bev'], batch['route_raster']], 1)
        lidar_feats = []
        for k in range(4):
            image = self.image_stages[k](image)
            lidar = self.lidar_stages[k](lidar)
            if k >= 2:
                image, lidar = self.fusions[k - 2](image, lidar)
            lidar_feats.append(lidar)
        bev = self.bev_proj(F.adaptive_avg_pool2d(lidar, (8, 8)))
        b, d = bev.shape[:2]
        bev_tokens = bev.flatten(2).transpose(1, 2) + self.bev_pos
        status = batch['ego_status'] * self.status_scale
        status_token = self.status_proj(status)[:, None] + self.status_pos
        memory = torch.cat([bev_tokens, status_token], 1)
        q = self.decoder(self.queries.expand(b, -1, -1), memory)
        traj_query, agent_queries = q[:, 0], q[:, 1:]
        raw = self.agent_head(agent_queries)
        xy = torch.tanh(raw[..., :2]) * self.cfg.agent_range_m
        yaw = torch.tanh(raw[..., 2:3]) * math.pi
        size = F.softplus(raw[..., 3:5]) + 0.5
        agent_states = torch.cat([xy, yaw, size], -1)
        agent_logits = raw[..., AGENT_STATE_DIM]
        # Logits at the stage-2 resolution, upsampled: a 3x3 conv at full BEV resolution
        # would cost more than both encoders together.
        top = F.interpolate(self.sem_top(bev), size=lidar_feats[1].shape[-2:], mode='bilinear',
                            align_corners=False)
        sem = self.sem_out(top + self.sem_lateral(lidar_feats[1]))
        sem = F.interpolate(sem, size=batch['lidar_bev'].shape[-2:], mode='bilinear',
                            align_corners=False)
        return {'bev_tokens': bev_tokens, 'status_token': status_token, 'memory': memory,
                'traj_query': traj_query, 'agent_queries': agent_queries,
                'agent_states': agent_states, 'agent_logits': agent_logits,
                'bev_semantics': sem}


def integrate_kinematics(step_m: torch.Tensor, turn_rad: torch.Tensor) -> torch.Tensor:
    """
    Poses (..., T, 3) from per-step length [m] and heading change [rad] (..., T).

    Step k moves step_m[k] along the mid-step heading and turns by turn_rad[k], starting at the
    ego origin. A regressed pose list can zig-zag; an integrated one is kinematically consistent
    (yaw follows the path), which is what the scorer's tracker and comfort terms need.
    """
    yaw = torch.cumsum(turn_rad, -1)
    mid = yaw - 0.5 * turn_rad
    x = torch.cumsum(step_m * torch.cos(mid), -1)
    y = torch.cumsum(step_m * torch.sin(mid), -1)
    return torch.stack([x, y, yaw], -1)


def kinematic_params(xy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Inverse of integrate_kinematics for positions (..., T, 2): (step_m, turn_rad) (..., T)."""
    prev = torch.cat([torch.zeros_like(xy[..., :1, :]), xy[..., :-1, :]], -2)
    d = xy - prev
    step = torch.linalg.norm(d, dim=-1)
    seg = torch.atan2(d[..., 1], d[..., 0])
    turns = []
    yaw = torch.zeros_like(step[..., 0])
    for k in range(xy.shape[-2]):
        # Mid-step heading: seg = yaw + turn / 2; stopped steps keep the heading.
        turn = torch.where(step[..., k] > 1e-3, 2.0 * _wrap(seg[..., k] - yaw),
                           torch.zeros_like(yaw))
        turns.append(turn)
        yaw = yaw + turn
    return step, torch.stack(turns, -1)


def _wrap(a: torch.Tensor) -> torch.Tensor:
    return torch.atan2(torch.sin(a), torch.cos(a))


def residual_kinematics(raw: torch.Tensor, base_step: torch.Tensor, base_turn: torch.Tensor,
                        step_scale_m: float, max_turn_rad: float
                        ) -> tuple[torch.Tensor, torch.Tensor]:
    """
    (step_m, turn_rad) = base + raw (..., T, 2) residual; steps stay >= 0 (smoothly).

    With a zero-initialised head the output is exactly the base (constant velocity for
    Transfuser, the anchor for DiffusionDrive), so training learns only the deviations.
    """
    step = base_step + raw[..., 0] * step_scale_m
    step = F.softplus(step / 0.2) * 0.2
    turn = (base_turn + raw[..., 1] * 0.1 * max_turn_rad).clamp(-max_turn_rad, max_turn_rad)
    return step, turn
