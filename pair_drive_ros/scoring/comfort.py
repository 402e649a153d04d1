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
Comfort metrics (C, HC, EC) with NAVSIM's Savitzky-Golay derivatives.

Bounds are NAVSIM's pdm_comfort_metrics.py constants (v1.1 and v2 share them); values are
rounded to 8 decimals and compared strictly, as NAVSIM does.
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.signal import savgol_filter

from pair_drive_ros.scoring.simulation import StateIndex


@dataclass(frozen=True)
class ComfortBounds:
    """Comfort bounds (v1.1 and v2)."""

    min_lon_accel: float = -4.05   # [m/s^2]
    max_lon_accel: float = 2.40    # [m/s^2]
    max_abs_lat_accel: float = 4.89  # [m/s^2]
    max_abs_jerk: float = 8.37     # [m/s^3]
    max_abs_lon_jerk: float = 4.13  # [m/s^3]
    max_abs_yaw_accel: float = 1.93  # [rad/s^2]
    max_abs_yaw_rate: float = 0.95  # [rad/s]


BOUNDS = ComfortBounds()
DECIMALS = 8


@lru_cache(maxsize=64)
def _savgol_operator(length: int, window: int, poly: int, deriv: int, delta: float) -> np.ndarray:
    """(T, T) matrix R with savgol_filter(y) == y @ R (the filter is linear in y, edges too)."""
    return savgol_filter(np.eye(length), window_length=min(window, length), polyorder=poly,
                         deriv=deriv, delta=delta, axis=-1)


def _savgol(y: np.ndarray, window: int, poly: int, deriv: int = 0, delta: float = 1.0):
    return y @ _savgol_operator(y.shape[-1], window, poly, deriv, float(delta))


def phase_unwrap(headings: np.ndarray) -> np.ndarray:
    """Unwrap headings along the last axis (NAVSIM's _phase_unwrap)."""
    two_pi = 2.0 * np.pi
    adj = np.zeros_like(headings)
    adj[..., 1:] = np.cumsum(np.round(np.diff(headings, axis=-1) / two_pi), axis=-1)
    return headings - two_pi * adj


def _within(values: np.ndarray, lo: float, hi: float) -> np.ndarray:
    return np.all((values > lo) & (values < hi), axis=-1)


def yaw_rate(states: np.ndarray, dt: float) -> np.ndarray:
    """(N, T) yaw rate: window 5, order 2."""
    h = phase_unwrap(states[..., StateIndex.HEADING])
    return np.round(_savgol(h, 5, 2, 1, dt), DECIMALS)


def yaw_accel(states: np.ndarray, dt: float, poly: int) -> np.ndarray:
    """(N, T) yaw acceleration: window 5, order `poly` (3 for C/HC, 2 for EC)."""
    h = phase_unwrap(states[..., StateIndex.HEADING])
    return np.round(_savgol(h, 5, poly, 2, dt), DECIMALS)


def centre_lon_accel(states: np.ndarray, rear_to_centre_m: float) -> np.ndarray:
    """a_x moved to the box centre as NAVSIM v2 does: a_x + r w^2 + r dw/dt."""
    return (states[..., StateIndex.ACCELERATION_X]
            + rear_to_centre_m * states[..., StateIndex.ANGULAR_VELOCITY] ** 2
            + rear_to_centre_m * states[..., StateIndex.ANGULAR_ACCELERATION])


def comfort_v1(states: np.ndarray, dt: float, bounds: ComfortBounds = BOUNDS) -> np.ndarray:
    """C (navsim v1.1) for states (N, T, S): (N,) bool."""
    ax = states[..., StateIndex.ACCELERATION_X]
    ay = states[..., StateIndex.ACCELERATION_Y]
    lon = np.round(_savgol(ax, 41, 2), DECIMALS)
    lat = np.round(_savgol(ay, 41, 2), DECIMALS)
    mag = np.round(_savgol(np.hypot(ax, ay), 8, 2), DECIMALS)
    jerk = np.round(_savgol(mag, 41, 2, 1, dt), DECIMALS)
    lon_s = np.round(_savgol(ax, 8, 2), DECIMALS)
    lon_jerk = np.round(_savgol(lon_s, 41, 2, 1, dt), DECIMALS)
    return _all_bounds(lon, lat, jerk, lon_jerk, *_yaw_features(states, dt), bounds)


def _yaw_features(states: np.ndarray, dt: float) -> tuple:
    """yaw_accel(states, dt, 3) and yaw_rate(states, dt) with one heading unwrap."""
    h = phase_unwrap(states[..., StateIndex.HEADING])
    return (np.round(_savgol(h, 5, 3, 2, dt), DECIMALS),
            np.round(_savgol(h, 5, 2, 1, dt), DECIMALS))


def comfort_v2(states: np.ndarray, dt: float, rear_to_centre_m: float,
               bounds: ComfortBounds = BOUNDS) -> np.ndarray:
    """Check v2 comfort (used by HC) for states (N, T, S): (N,) bool."""
    ax_c = centre_lon_accel(states, rear_to_centre_m)
    ay = states[..., StateIndex.ACCELERATION_Y]
    lon = np.round(_savgol(ax_c, 8, 2), DECIMALS)
    lat = np.round(_savgol(ay, 8, 2), DECIMALS)
    mag = np.round(_savgol(np.hypot(states[..., StateIndex.ACCELERATION_X], ay), 8, 2),
                   DECIMALS)
    jerk = np.round(_savgol(mag, 15, 2, 1, dt), DECIMALS)
    lon_jerk = np.round(_savgol(lon, 15, 2, 1, dt), DECIMALS)
    return _all_bounds(lon, lat, jerk, lon_jerk, *_yaw_features(states, dt), bounds)


def _all_bounds(lon, lat, jerk, lon_jerk, yaw_acc, yaw_r, b: ComfortBounds) -> np.ndarray:
    ok = _within(lon, b.min_lon_accel, b.max_lon_accel)
    ok &= _within(lat, -b.max_abs_lat_accel, b.max_abs_lat_accel)
    ok &= _within(jerk, -b.max_abs_jerk, b.max_abs_jerk)
    ok &= _within(lon_jerk, -b.max_abs_lon_jerk, b.max_abs_lon_jerk)
    ok &= _within(yaw_acc, -b.max_abs_yaw_accel, b.max_abs_yaw_accel)
    ok &= _within(yaw_r, -b.max_abs_yaw_rate, b.max_abs_yaw_rate)
    return ok


def extended_comfort_features(states: np.ndarray, dt: float) -> tuple:
    """EC features (N, T) each: |a| (window 8), jerk (window 15), yaw rate, yaw accel."""
    acc = np.round(_savgol(np.hypot(states[..., StateIndex.ACCELERATION_X],
                                    states[..., StateIndex.ACCELERATION_Y]), 8, 2), DECIMALS)
    jerk = np.round(_savgol(acc, 15, 2, 1, dt), DECIMALS)
    return acc, jerk, yaw_rate(states, dt), yaw_accel(states, dt, 2)


def extended_comfort(now: np.ndarray, prev: np.ndarray, dt: float,
                     thresholds: tuple) -> np.ndarray:
    """EC: RMS differences of the features of overlapping states (N, T, S) within thresholds."""
    ok = np.ones(len(now), dtype=bool)
    for f_now, f_prev, lim in zip(extended_comfort_features(now, dt),
                                  extended_comfort_features(prev, dt), thresholds):
        rms = np.sqrt(np.mean((f_now - f_prev) ** 2, axis=-1))
        ok &= rms <= lim
    return ok
