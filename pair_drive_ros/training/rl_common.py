"""Plumbing shared by the PaIR trainers: YAML + `--set key=value` configs, run folders."""

import argparse
import dataclasses
from pathlib import Path
import shutil

import numpy as np
import torch
import yaml

from pair_drive_ros.policy.configs import config_from_dict


def export_copy(path: str | Path, out: str | Path | None) -> None:
    """Copy a finished checkpoint to `out` (the config's export path), if one is set."""
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, out)


def add_config_arguments(parser: argparse.ArgumentParser, default_config: str) -> None:
    """--config YAML and repeated --set key=value overrides (YAML-parsed values)."""
    parser.add_argument('--config', default=default_config,
                        help=f'YAML config (default {default_config}); keys are the config '
                             'dataclass fields, an unknown key is an error')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help='override one config field, e.g. --set total_steps=20')


def load_config(cls: type, path: str | Path | None = None, overrides: list | None = None):
    """Frozen config `cls` from a YAML file (may be missing: defaults) plus KEY=VALUE strings."""
    data = {}
    if path:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f'config file {p} does not exist')
        data = yaml.safe_load(p.read_text()) or {}
    for item in overrides or []:
        if '=' not in item:
            raise ValueError(f'--set expects KEY=VALUE, got {item!r}')
        key, value = item.split('=', 1)
        parts = key.split('.')
        node = data
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    return config_from_dict(cls, data)


def config_from_args(cls: type, args: argparse.Namespace):
    """Build the config of a trainer's parsed arguments."""
    return load_config(cls, args.config, args.set)


def replace(cfg, **changes):
    """dataclasses.replace for frozen configs (a new object; the old one is never mutated)."""
    return dataclasses.replace(cfg, **changes)


def perturb_reference(reference: torch.Tensor, rng: np.random.Generator, fraction: float,
                      speed: float, lateral_m: float, jitter_m: float = 0.0) -> torch.Tensor:
    """Trajectories (B, 8, 3), a random `fraction` of them scaled along time and shifted sideways.

    Scale U(1 - speed, 1 + speed) on xy; lateral shift ramping up to U(-lateral_m, lateral_m);
    with jitter_m > 0 also N(0, jitter_m) noise on every waypoint's xy (an unsmooth plan);
    headings recomputed from the new path (finite differences), so the result is consistent.
    """
    b, n = reference.shape[:2]
    use = torch.as_tensor(rng.random(b) < fraction)
    scale = torch.as_tensor(rng.uniform(1 - speed, 1 + speed, b), dtype=reference.dtype)
    lateral = torch.as_tensor(rng.uniform(-lateral_m, lateral_m, b), dtype=reference.dtype)
    ramp = torch.linspace(1.0 / n, 1.0, n, dtype=reference.dtype)
    out = reference.clone()
    out[..., :2] = out[..., :2] * scale[:, None, None]
    out[..., 1] = out[..., 1] + lateral[:, None] * ramp
    if jitter_m > 0:
        noise = rng.normal(0.0, jitter_m, tuple(out[..., :2].shape))
        out[..., :2] = out[..., :2] + torch.as_tensor(noise, dtype=reference.dtype)
    xy = torch.cat([torch.zeros_like(out[:, :1, :2]), out[..., :2]], 1)
    d = xy[:, 1:] - xy[:, :-1]
    moving = d.norm(dim=-1) > 0.05
    out[..., 2] = torch.where(moving, torch.atan2(d[..., 1], d[..., 0]), reference[..., 2])
    return torch.where(use[:, None, None], out, reference)
