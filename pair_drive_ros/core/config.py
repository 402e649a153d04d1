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
Configuration of every command: frozen dataclasses from YAML plus `--set key=value` overrides.

One mechanism for all commands: a dataclass declares the fields and defaults, a YAML file sets
some of them, repeated `--set key=value` (YAML-parsed values, dotted keys for nested configs)
override them; an unknown key is an error. The same dicts travel in checkpoints.
"""

import argparse
import dataclasses
from pathlib import Path
from typing import Any, get_type_hints

import yaml


class ConfigError(ValueError):
    """A config dict does not match its dataclass (unknown key, bad nesting)."""


def config_from_dict(cls: type, data: dict | None) -> Any:
    """
    Build dataclass `cls` from `data`; nested dataclass fields take dicts, lists become tuples.

    Unknown keys raise ConfigError naming them.
    """
    data = dict(data or {})
    hints = get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ConfigError(f'{cls.__name__}: unknown config keys {unknown}')
    kwargs = {}
    for key, value in data.items():
        hint = hints.get(key)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = config_from_dict(hint, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[key] = value
    return cls(**kwargs)


def config_to_dict(cfg: Any) -> dict:
    """Plain nested dict of a config dataclass (tuples become lists, for YAML and checkpoints)."""
    def plain(value):
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, dict):
            return {k: plain(v) for k, v in value.items()}
        return value
    return plain(dataclasses.asdict(cfg))


def config_diff(expected: dict, got: dict, prefix: str = '') -> list[str]:
    """Human-readable differences between two nested config dicts."""
    out = []
    for key in sorted(set(expected) | set(got)):
        name = f'{prefix}{key}'
        if key not in got:
            out.append(f'{name}: missing (expected {expected[key]!r})')
        elif key not in expected:
            out.append(f'{name}: unexpected ({got[key]!r})')
        elif isinstance(expected[key], dict) and isinstance(got[key], dict):
            out.extend(config_diff(expected[key], got[key], f'{name}.'))
        elif expected[key] != got[key]:
            out.append(f'{name}: {got[key]!r} != expected {expected[key]!r}')
    return out


def add_config_arguments(parser: argparse.ArgumentParser, default_config: str | None,
                         fields: tuple[str, ...] = (), aliases: dict | None = None,
                         switches: dict | None = None) -> None:
    """
    --config YAML, repeated --set key=value overrides, and `--<field>` shortcuts.

    Each name in `fields` (a top-level config field) gets a `--<field-name> VALUE` flag that is
    exactly `--set <field>=VALUE` (the same YAML parsing; applied after the --set items), so a
    command's frequent settings read naturally without a second configuration mechanism.
    `aliases` maps a flag name to the field it sets (`{'data': 'data_root'}`: `--data VALUE`),
    for flags whose name differs from their field's; `switches` maps a flag name to the
    `KEY=VALUE` a bare flag applies (`{'no-progress': 'progress=false'}`).
    """
    parser.add_argument('--config', default=default_config,
                        help=f'YAML config (default {default_config}); keys are the config '
                             'dataclass fields, an unknown key is an error')
    parser.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                        help='override one config field, e.g. --set total_steps=20')
    flags = [(name.replace('_', '-'), name) for name in fields]
    flags += list((aliases or {}).items())
    for flag, name in flags:
        parser.add_argument('--' + flag, dest=_FIELD_PREFIX + name, metavar='VALUE',
                            help=f'same as --set {name}=VALUE')
    for flag, item in (switches or {}).items():
        parser.add_argument('--' + flag, dest=_SWITCH_DEST, action='append_const', const=item,
                            help=f'same as --set {item}')


_FIELD_PREFIX = 'config_field__'
_SWITCH_DEST = 'config_switches'


def load_config(cls: type, path: str | Path | None = None, overrides: list | None = None) -> Any:
    """Frozen config `cls` from a YAML file (None: defaults) plus KEY=VALUE strings."""
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
        node[parts[-1]] = _parse_value(value, _field_type(cls, parts))
    return config_from_dict(cls, data)


def _field_type(cls: type, parts: list[str]) -> Any:
    """Type hint of the (dotted) field `parts` of dataclass `cls`; None where unknown."""
    hint: Any = cls
    for part in parts:
        if not dataclasses.is_dataclass(hint):
            return None
        hint = get_type_hints(hint).get(part)
    return hint


def _parse_value(text: str, hint: Any) -> Any:
    """
    YAML-parse an override, except that a `str` field keeps its text.

    Otherwise `--frames 0:50` would become 50 (a YAML 1.1 base-60 number) and `--out 1` an int;
    a quoted YAML string still works (`--set out="a b"`).
    """
    value = yaml.safe_load(text)
    if hint is str and not isinstance(value, str):
        return text
    return value


def config_from_args(cls: type, args: argparse.Namespace) -> Any:
    """Build the config of a command's parsed `--config` / `--set` / `--<field>` arguments."""
    shortcuts = [f'{key[len(_FIELD_PREFIX):]}={value}' for key, value in vars(args).items()
                 if key.startswith(_FIELD_PREFIX) and value is not None]
    switches = list(getattr(args, _SWITCH_DEST, None) or [])
    return load_config(cls, args.config, list(args.set) + switches + shortcuts)


def parse_config(cls: type, add_arguments, argv: list[str]) -> Any:
    """Return the config `cls` of a command line, parsed with the command's `add_arguments`."""
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from_args(cls, parser.parse_args(argv))


def config_text(cfg: Any) -> str:
    """Return the whole resolved config as YAML (printed at start, saved with the outputs)."""
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def save_config(cfg: Any, out_dir: str | Path, name: str = 'config.yaml') -> Path:
    """Write the resolved config next to a run's outputs; returns the file."""
    path = Path(out_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(config_text(cfg))
    return path
