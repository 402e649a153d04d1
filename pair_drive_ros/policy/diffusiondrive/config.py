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

"""DiffusionDrive-style IL planner config (lite defaults; diffusion settings as the original)."""

from dataclasses import dataclass, field

from pair_drive_ros.policy.backbone import BackboneConfig

# Fields that only change how a trained model plans (the DDIM schedule at inference), not what
# it learns: an exported checkpoint may set them after training
# (ILTrainConfig.export_model_config).
INFERENCE_FIELDS = ('infer_noise_t', 'infer_steps')


@dataclass(frozen=True)
class DiffusionDriveConfig:
    """Model, truncated-diffusion and loss settings of IL planner B."""

    backbone: BackboneConfig = field(default_factory=BackboneConfig)
    num_poses: int = 8
    num_modes: int = 20               # K-means anchors
    decoder_layers: int = 2           # cascade decoder layers
    point_embed_dim: int = 16         # sine features per coordinate
    # Add the trunk's plan query (scene and ego status, the token Transfuser regresses its plan
    # from) to every mode query. Off: the mode queries see the scene only by cross-attention
    # (the original design, and the checkpoints trained before this option).
    plan_query: bool = False
    step_scale_m: float = 2.0         # sample head: step-length residual per unit [m]
    max_turn_rad: float = 0.6         # sample head: largest heading change per step
    train_timesteps: int = 1000       # DDIM, scaled-linear betas, predicting the sample
    beta_start: float = 0.0001
    beta_end: float = 0.02
    train_max_t: int = 50             # training noise step drawn from [0, 50)
    infer_noise_t: int = 8            # inference: anchors noised to t = 8 ...
    infer_steps: tuple = (10, 0)      # ... then 2 denoising steps at these timesteps
    x_range_m: tuple = (-2.0, 98.0)   # coordinate normalisation to [-1, 1]
    y_range_m: tuple = (-25.0, 25.0)
    cls_weight: float = 10.0          # DiffusionDrive: classification 10
    reg_weight: float = 8.0           # regression 8
    bev_semantic_weight: float = 14.0  # BEV 14
    agent_class_weight: float = 10.0  # Transfuser's agent terms
    agent_box_weight: float = 1.0
