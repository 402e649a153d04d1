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
Episode-level bootstrap confidence intervals and paired differences.

Frames of one episode are correlated (consecutive states of the same traffic), so resampling
frames would give intervals that are too narrow. We resample whole episodes with replacement
and recompute the frame-weighted mean of the resampled set. A paired difference is the same
bootstrap applied to the per-frame difference of two planners on the same frames, so the
between-episode variance they share cancels. For closed loop every episode is its own group.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    """A mean with its bootstrap interval (percentile method)."""

    mean: float
    low: float
    high: float
    frames: int
    episodes: int

    def scaled(self, factor: float) -> 'Interval':
        """Return the interval with mean and bounds multiplied by `factor` (e.g. 100)."""
        return Interval(self.mean * factor, self.low * factor, self.high * factor,
                        self.frames, self.episodes)

    def as_dict(self) -> dict:
        """Plain dict for JSON."""
        return dict(self.__dict__)

    def excludes_zero(self) -> bool:
        """Whether the interval lies strictly on one side of 0."""
        return self.low > 0.0 or self.high < 0.0


def bootstrap_draws(num_episodes: int, n_boot: int, seed: int) -> np.ndarray:
    """
    (n_boot, num_episodes) episode indices drawn with replacement.

    Every interval of one report uses the draws of the same seed, so all rows see the same
    resampled episode sets.
    """
    if num_episodes < 1:
        raise ValueError('the bootstrap needs at least one episode')
    if n_boot < 1:
        raise ValueError(f'n_boot must be >= 1, got {n_boot}')
    return np.random.default_rng(seed).integers(0, num_episodes, size=(n_boot, num_episodes))


def episode_bootstrap(values, episodes, n_boot: int = 2000, seed: int = 0,
                      level: float = 0.95) -> Interval:
    """
    Frame-weighted mean of `values` with an episode-level bootstrap interval.

    values: (N,) per-frame numbers; episodes: (N,) episode ids (any hashable numpy dtype).
    Each bootstrap replicate draws as many episodes as there are, with replacement, and takes
    sum(values of the drawn episodes' frames) / (their frame count).
    """
    values = np.asarray(values, dtype=np.float64)
    episodes = np.asarray(episodes)
    if values.ndim != 1 or values.shape != episodes.shape:
        raise ValueError(f'values {values.shape} and episodes {episodes.shape} must be equal 1-D')
    if not 0.0 < level < 1.0:
        raise ValueError(f'level must be in (0, 1), got {level}')
    _, inverse = np.unique(episodes, return_inverse=True)
    sums = np.bincount(inverse, weights=values)
    counts = np.bincount(inverse).astype(np.float64)
    draws = bootstrap_draws(len(sums), n_boot, seed)
    boot = sums[draws].sum(1) / counts[draws].sum(1)
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(boot, [tail, 1.0 - tail])
    return Interval(float(values.mean()), float(low), float(high), len(values), len(sums))


def paired_difference(a, b, episodes, n_boot: int = 2000, seed: int = 0,
                      level: float = 0.95) -> Interval:
    """Mean of a - b (same frames, same order) with an episode-level bootstrap interval."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f'paired values need the same frames: {a.shape} vs {b.shape}')
    return episode_bootstrap(a - b, episodes, n_boot, seed, level)
