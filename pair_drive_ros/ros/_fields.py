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

"""Checked access to message fields (rclpy does not type-check assignments by default)."""

from typing import Any

import numpy as np

from pair_drive_ros.ros.errors import MalformedMessageError

_MISSING = object()


def field(msg: Any, name: str, kind: str) -> Any:
    """Return `msg.<name>`, raising MalformedMessageError naming `kind.name` if absent."""
    value = getattr(msg, name, _MISSING)
    if value is _MISSING:
        raise MalformedMessageError(f'{kind} has no field {name!r} (got {type(msg).__name__})')
    return value


def uint_field(msg: Any, name: str, kind: str, bits: int = 32) -> int:
    """Return an unsigned integer field, checked for type and range."""
    value = field(msg, name, kind)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise MalformedMessageError(
            f'{kind}.{name} must be an unsigned integer, got {value!r} ({type(value).__name__})')
    if not 0 <= int(value) < 2 ** bits:
        raise MalformedMessageError(
            f'{kind}.{name} must be in [0, 2**{bits}), got {int(value)}')
    return int(value)


def bool_field(msg: Any, name: str, kind: str) -> bool:
    """Return a bool field (0/1 integers accepted, as ROS 1 bags store them)."""
    value = field(msg, name, kind)
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)) and int(value) in (0, 1):
        return bool(value)
    raise MalformedMessageError(f'{kind}.{name} must be a bool, got {value!r}')


def str_field(msg: Any, name: str, kind: str) -> str:
    """Return a string field."""
    value = field(msg, name, kind)
    if not isinstance(value, str):
        raise MalformedMessageError(
            f'{kind}.{name} must be a str, got {value!r} ({type(value).__name__})')
    return value


def byte_buffer(msg: Any, name: str, kind: str) -> np.ndarray:
    """Return `msg.<name>` as a 1-D uint8 array sharing memory with it where possible."""
    data = field(msg, name, kind)
    if isinstance(data, (list, tuple)):
        # Lists survive assignment when ROS_PYTHON_CHECK_FIELDS is unset; copy them once.
        try:
            arr = np.asarray(data, dtype=np.int64).reshape(-1)
        except (TypeError, ValueError, OverflowError) as exc:
            raise MalformedMessageError(
                f'{kind}.{name} is not a sequence of bytes: {exc}') from None
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise MalformedMessageError(
                f'{kind}.{name} holds values outside [0, 255]: min {arr.min()}, max {arr.max()}')
        return arr.astype(np.uint8)
    try:
        return np.frombuffer(data, dtype=np.uint8)
    except (TypeError, ValueError, BufferError) as exc:
        raise MalformedMessageError(
            f'{kind}.{name} must be a contiguous byte buffer, got {type(data).__name__}: {exc}'
        ) from None
