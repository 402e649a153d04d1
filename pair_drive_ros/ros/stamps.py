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

"""Time stamps: builtin_interfaces/Time <-> seconds and nanoseconds."""

import math
from typing import Any, Union

import numpy as np

from pair_drive_ros.ros._fields import field
from pair_drive_ros.ros.errors import CodecError, MalformedMessageError

_NS = 1_000_000_000


def stamp_to_nanoseconds(stamp: Any) -> int:
    """Return a builtin_interfaces/Time (anything with sec, nanosec) as integer nanoseconds."""
    sec = field(stamp, 'sec', 'Time')
    nanosec = field(stamp, 'nanosec', 'Time')
    for name, value in (('sec', sec), ('nanosec', nanosec)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise MalformedMessageError(f'Time.{name} must be an integer, got {value!r}')
    if not 0 <= nanosec < _NS:
        raise MalformedMessageError(f'Time.nanosec must be in [0, 1e9), got {nanosec}')
    return int(sec) * _NS + int(nanosec)


def stamp_to_seconds(stamp: Any) -> float:
    """Return a builtin_interfaces/Time as float seconds (a float or int passes through)."""
    if isinstance(stamp, (int, float, np.integer, np.floating)) and not isinstance(stamp, bool):
        return float(stamp)
    return stamp_to_nanoseconds(stamp) / _NS


def nanoseconds_to_stamp(t_ns: int) -> Any:
    """Return a builtin_interfaces/Time for integer nanoseconds."""
    from builtin_interfaces.msg import Time

    sec, nanosec = divmod(int(t_ns), _NS)
    if not -2 ** 31 <= sec < 2 ** 31:
        raise CodecError(f'time {t_ns} ns does not fit builtin_interfaces/Time (int32 sec)')
    return Time(sec=sec, nanosec=nanosec)


def seconds_to_nanoseconds(t: float) -> int:
    """Round float seconds to integer nanoseconds (exact for the integer part)."""
    t = float(t)
    if not math.isfinite(t):
        raise CodecError(f'time must be finite, got {t}')
    sec = math.floor(t)
    return int(sec) * _NS + int(round((t - sec) * _NS))


def seconds_to_stamp(t: float) -> Any:
    """Return a builtin_interfaces/Time for float seconds (rounded to the nanosecond)."""
    return nanoseconds_to_stamp(seconds_to_nanoseconds(t))


def as_stamp(stamp: Union[Any, float, None]) -> Any:
    """Accept a Time message, float seconds or None (time 0) and return a Time message."""
    if stamp is None:
        return nanoseconds_to_stamp(0)
    if isinstance(stamp, (int, float, np.integer, np.floating)) and not isinstance(stamp, bool):
        return seconds_to_stamp(stamp)
    return nanoseconds_to_stamp(stamp_to_nanoseconds(stamp))


def make_header(stamp: Any, frame_id: str) -> Any:
    """Build a std_msgs/Header with this stamp and frame."""
    from std_msgs.msg import Header

    return Header(stamp=stamp, frame_id=frame_id)
