"""Plumbing shared by the PaIR trainers: YAML + `--set key=value` configs, run folders."""

import argparse
import dataclasses
from pathlib import Path
import shutil

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
