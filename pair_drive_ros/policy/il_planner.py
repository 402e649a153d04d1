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

"""IL planners behind the common interface: model registry, batching, checkpoint loading."""

import logging
from pathlib import Path
import time

import numpy as np
import torch

from pair_drive_ros.core.config import config_from_dict
from pair_drive_ros.core.features import FEATURE_KEYS, Features
from pair_drive_ros.core.trajectory import POSE_DT_S, Trajectory
from pair_drive_ros.perception.config import PerceptionConfig
from pair_drive_ros.policy.base import AbstractPlanner, PlannerInput, PlanOutput
from pair_drive_ros.policy.checkpoint import CheckpointError, load_checkpoint, load_state

LOG = logging.getLogger(__name__)

IL_MODELS = ('transfuser', 'diffusiondrive')


def model_classes(name: str) -> tuple[type, type]:
    """(config class, model class) of an IL model name."""
    if name == 'transfuser':
        from pair_drive_ros.policy.transfuser.config import TransfuserConfig
        from pair_drive_ros.policy.transfuser.model import TransfuserModel
        return TransfuserConfig, TransfuserModel
    if name == 'diffusiondrive':
        from pair_drive_ros.policy.diffusiondrive.config import DiffusionDriveConfig
        from pair_drive_ros.policy.diffusiondrive.model import DiffusionDriveModel
        return DiffusionDriveConfig, DiffusionDriveModel
    raise ValueError(f'unknown IL model {name!r}; choose one of {IL_MODELS}')


def inference_fields(name: str) -> tuple:
    """Model-config fields of IL model `name` that change only inference (none for Transfuser)."""
    if name == 'diffusiondrive':
        from pair_drive_ros.policy.diffusiondrive.config import INFERENCE_FIELDS
        return INFERENCE_FIELDS
    model_classes(name)  # an unknown name is an error
    return ()


def build_model(name: str, model_config=None) -> torch.nn.Module:
    """Instantiate an IL model from a config object or dict (None: lite defaults)."""
    cfg_cls, model_cls = model_classes(name)
    if model_config is None or isinstance(model_config, dict):
        model_config = config_from_dict(cfg_cls, model_config)
    return model_cls(model_config)


def compute_loss(name: str, model: torch.nn.Module, out: dict, targets: dict) -> dict:
    """Loss terms of model `name` ('loss' is the total)."""
    module = getattr(model, 'module', model)
    if name == 'transfuser':
        from pair_drive_ros.policy.transfuser.loss import transfuser_loss
        return transfuser_loss(out, targets, module.cfg)
    from pair_drive_ros.policy.diffusiondrive.loss import diffusiondrive_loss
    return diffusiondrive_loss(out, targets, module.cfg, module.anchors)


def features_to_batch(features: list[Features], device: str | torch.device = 'cpu') -> dict:
    """Stack Features into float32 tensors keyed by FEATURE_KEYS."""
    return {k: torch.as_tensor(np.stack([getattr(f, k) for f in features]),
                               dtype=torch.float32, device=device) for k in FEATURE_KEYS}


class ILPlanner(AbstractPlanner):
    """An IL model as a planner: Features -> 8 ego-frame poses (+ candidates)."""

    name = 'il'

    def __init__(self, model: torch.nn.Module, perception_config: PerceptionConfig | None = None,
                 device: str = 'cpu', checkpoint: str | None = None) -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.perception_config = perception_config or PerceptionConfig()
        self.checkpoint = checkpoint

    def _check(self, f: Features) -> None:
        cfg = self.perception_config
        want = (cfg.lidar_channels, cfg.bev_height, cfg.bev_width)
        if tuple(f.lidar_bev.shape) != want:
            raise ValueError(f'{self.name}: lidar_bev shape {tuple(f.lidar_bev.shape)} does not '
                             f'match the model perception config {want}')
        if np.shape(f.ego_status) != (cfg.status_dim,):
            raise ValueError(f'{self.name}: ego_status of {np.shape(f.ego_status)} values does '
                             f'not match the model perception config ({cfg.status_dim},)')

    def _plan(self, tensors: dict) -> dict:
        return self.model.plan(tensors)

    def plan_tensors(self, tensors: dict) -> dict:
        """Return the model's plan dict for a feature batch (as in compute_plans; no checks)."""
        return self._plan(tensors)

    def compute_plans(self, batch: list[PlannerInput]) -> list[PlanOutput]:
        """Plan for several frames in one forward pass."""
        if not batch:
            return []
        for inputs in batch:
            self._check(inputs.features)
        t0 = time.perf_counter()
        tensors = features_to_batch([b.features for b in batch], self.device)
        out = self._plan(tensors)
        traj = out['trajectory'].cpu().numpy().astype(np.float64)
        cands = out['candidates'].cpu().numpy().astype(np.float64)
        scores = out['scores'].cpu().numpy().astype(np.float64)
        ms = (time.perf_counter() - t0) * 1e3 / len(batch)
        plans = []
        for i in range(len(batch)):
            keep = cands.shape[1] > 1
            plans.append(PlanOutput(
                Trajectory(traj[i], POSE_DT_S),
                candidates=cands[i] if keep else None,
                candidate_scores=scores[i] if keep else None,
                info={'model': self.name, 'inference_ms': ms}))
        return plans

    def compute_plan(self, inputs: PlannerInput) -> PlanOutput:
        """Plan for one frame."""
        return self.compute_plans([inputs])[0]


class TransfuserPlanner(ILPlanner):
    """IL planner A (Transfuser-style)."""

    name = 'transfuser'


class DiffusionDrivePlanner(ILPlanner):
    """IL planner B (DiffusionDrive-style): best mode as the plan, all modes as candidates."""

    name = 'diffusiondrive'

    def __init__(self, *args, noise_seed: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.noise_seed = noise_seed

    def _plan(self, tensors: dict) -> dict:
        # A fixed noise seed per call: the same frame always gives the same plan.
        gen = torch.Generator().manual_seed(self.noise_seed)
        return self.model.plan(tensors, generator=gen)


PLANNER_CLASSES = {'transfuser': TransfuserPlanner, 'diffusiondrive': DiffusionDrivePlanner}


def load_il_model(path: str | Path, device: str = 'cpu', expect_model: str | None = None
                  ) -> tuple[torch.nn.Module, dict]:
    """(model in eval mode, checkpoint dict) from an IL checkpoint."""
    ckpt = load_checkpoint(path, expect_model=expect_model, map_location='cpu')
    name = ckpt.get('model')
    if name not in IL_MODELS:
        raise CheckpointError(f'checkpoint {path}: model {name!r} is not an IL model '
                              f'{IL_MODELS}')
    model = build_model(name, ckpt.get('model_config'))
    load_state(model, ckpt, f'checkpoint {path}')
    return model.to(device).eval(), ckpt


def load_il_planner(path: str | Path, device: str = 'cpu', expect_model: str | None = None
                    ) -> ILPlanner:
    """Load an IL planner (TransfuserPlanner or DiffusionDrivePlanner) from a checkpoint."""
    model, ckpt = load_il_model(path, device, expect_model)
    perception = PerceptionConfig.from_dict(ckpt.get('perception_config') or None)
    return PLANNER_CLASSES[ckpt['model']](model, perception, device, str(path))
