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

"""Checkpoints: a plain state_dict with its configs and a schema version (weights_only loads)."""

import dataclasses
import logging
from pathlib import Path

import torch

from pair_drive_ros.core.config import config_diff, config_to_dict
from pair_drive_ros.core.files import atomic_path

LOG = logging.getLogger(__name__)

CHECKPOINT_SCHEMA_VERSION = 1


class CheckpointError(ValueError):
    """A checkpoint is missing, unreadable, or does not match what the caller expects."""


def _plain(cfg) -> dict:
    if cfg is None:
        return {}
    if dataclasses.is_dataclass(cfg):
        return config_to_dict(cfg)
    if hasattr(cfg, 'as_dict'):
        return cfg.as_dict()
    return dict(cfg)


def save_checkpoint(path: str | Path, model: torch.nn.Module, *, model_name: str,
                    model_config, perception_config=None, extra: dict | None = None) -> Path:
    """
    Write {schema_version, model, model_config, perception_config, state_dict, **extra}.

    The model is unwrapped from DDP; tensors are moved to the CPU. Written atomically.
    """
    path = Path(path)
    module = getattr(model, 'module', model)
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    payload = {'schema_version': CHECKPOINT_SCHEMA_VERSION, 'model': model_name,
               'model_config': _plain(model_config),
               'perception_config': _plain(perception_config), 'state_dict': state}
    payload.update(extra or {})
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def load_checkpoint(path: str | Path, *, expect_model: str | None = None,
                    expect_model_config=None, expect_perception_config=None,
                    map_location: str = 'cpu') -> dict:
    """
    Read a checkpoint with weights_only=True and check it against what the caller expects.

    Raises CheckpointError naming the differing schema version, model name or config keys.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'checkpoint {path} does not exist')
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:  # noqa: B902  (torch raises many types for a bad file)
        raise CheckpointError(f'cannot read checkpoint {path}: {err}') from err
    if not isinstance(ckpt, dict) or 'state_dict' not in ckpt:
        raise CheckpointError(f'checkpoint {path} is not a pair_drive_ros checkpoint '
                              f'(no state_dict)')
    version = ckpt.get('schema_version')
    if version != CHECKPOINT_SCHEMA_VERSION:
        raise CheckpointError(f'checkpoint {path}: schema_version {version} != supported '
                              f'{CHECKPOINT_SCHEMA_VERSION}')
    if expect_model is not None and ckpt.get('model') != expect_model:
        raise CheckpointError(f'checkpoint {path}: model {ckpt.get("model")!r} != expected '
                              f'{expect_model!r}')
    for key, expected in (('model_config', expect_model_config),
                          ('perception_config', expect_perception_config)):
        if expected is None:
            continue
        diff = config_diff(_plain(expected), ckpt.get(key, {}))
        if diff:
            raise CheckpointError(f'checkpoint {path}: {key} differs: ' + '; '.join(diff))
    return ckpt


def load_state(module: torch.nn.Module, ckpt: dict, source: str = 'checkpoint') -> None:
    """Load a state dict strictly; a mismatch raises CheckpointError naming the keys/shapes."""
    state = ckpt['state_dict']
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = [f'{k}: {tuple(state[k].shape)} != model {tuple(own[k].shape)}'
              for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape]
    if missing or unexpected or shapes:
        parts = []
        if missing:
            parts.append(f'missing keys {missing[:8]}')
        if unexpected:
            parts.append(f'unexpected keys {unexpected[:8]}')
        if shapes:
            parts.append('shape mismatch ' + '; '.join(shapes[:8]))
        raise CheckpointError(f'{source} does not fit the model: ' + ', '.join(parts))
    module.load_state_dict(state)
