"""Frozen config dataclasses from plain dicts (YAML, checkpoints), failing on unknown keys."""

import dataclasses
from typing import Any, get_type_hints


class ConfigError(ValueError):
    """A config dict does not match its dataclass (unknown key, bad nesting)."""


def config_from_dict(cls: type, data: dict | None) -> Any:
    """Build dataclass `cls` from `data`; nested dataclass fields take dicts, lists become tuples.

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
