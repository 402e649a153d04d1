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
Past LiDAR sweeps for the motion channels: a short, stamped history of obstacle points.

One frame of LiDAR cannot tell a slow lead vehicle from a parked one; the same obstacle seen
`history_dt_s` and `2 * history_dt_s` earlier can. `SweepHistory` keeps the obstacle points
(above the split height) of the recent sweeps in the ego frame of their own sweep, with that
sweep's ego pose and stamp. At frame t, slot j (1..history_sweeps) takes the stored sweep whose
stamp is nearest to t - j * history_dt_s, moves its points into the current ego frame through
the two ego poses (ego-motion compensation: a static obstacle lands on the same cells in every
channel, a moving one is shifted by its own displacement) and counts them on the BEV grid.

Gaps, resets and time jumps: a slot with no sweep within `history_tolerance_s` is an all-zero
channel with its valid flag 0 (the flags travel in the ego status); a stamp older than the
newest stored one (a replayed bag, a restarted simulator) clears the history; a sweep with the
stamp of the newest one replaces it. The perception node feeds one history from its callbacks;
the dataset feeds a fresh one per episode from the episode's earlier frames, in time order.
"""

from collections import deque
from dataclasses import dataclass
import logging

import numpy as np

from pair_drive_ros.perception.config import PerceptionConfig

LOG = logging.getLogger(__name__)

_SAME_STAMP_S = 1e-6


@dataclass
class Sweep:
    """Obstacle points of one sweep: xy (N, 2) float64 in the ego frame of `pose` at `stamp_s`."""

    stamp_s: float
    pose: np.ndarray
    xy: np.ndarray


class SweepHistory:
    """Ring buffer of the recent sweeps (see the module docstring)."""

    def __init__(self, cfg: PerceptionConfig) -> None:
        self.cfg = cfg
        self._sweeps: deque = deque()
        self.resets = 0      # time jumps backwards seen (for diagnostics)

    def __len__(self) -> int:
        return len(self._sweeps)

    @property
    def newest_stamp_s(self) -> float | None:
        """Stamp of the newest stored sweep (None when empty)."""
        return self._sweeps[-1].stamp_s if self._sweeps else None

    def reset(self) -> None:
        """Forget every stored sweep (a new episode, a relocalisation)."""
        self._sweeps.clear()

    def _check_time(self, stamp_s: float) -> None:
        newest = self.newest_stamp_s
        if newest is not None and stamp_s < newest - _SAME_STAMP_S:
            LOG.warning('sweep history: stamp %.3f s is older than the newest sweep %.3f s '
                        '(time jumped backwards); history cleared', stamp_s, newest)
            self.resets += 1
            self.reset()

    def push(self, stamp_s: float, pose: np.ndarray, xy: np.ndarray) -> None:
        """Store the obstacle points xy (N, 2) of the sweep at stamp_s seen from ego pose."""
        stamp_s = float(stamp_s)
        self._check_time(stamp_s)
        if self._sweeps and abs(self._sweeps[-1].stamp_s - stamp_s) <= _SAME_STAMP_S:
            self._sweeps.pop()
        self._sweeps.append(Sweep(stamp_s, np.array(pose, dtype=np.float64),
                                  np.asarray(xy, dtype=np.float64)))
        cfg = self.cfg
        oldest = stamp_s - cfg.history_sweeps * cfg.history_dt_s - cfg.history_tolerance_s
        while self._sweeps and self._sweeps[0].stamp_s < oldest - _SAME_STAMP_S:
            self._sweeps.popleft()

    def slots(self, stamp_s: float) -> list:
        """Return the stored Sweep (or None) of each past slot j = 1..history_sweeps at stamp_s."""
        cfg = self.cfg
        self._check_time(float(stamp_s))
        past = [s for s in self._sweeps if s.stamp_s < stamp_s - _SAME_STAMP_S]
        out = []
        for j in range(1, cfg.history_sweeps + 1):
            target = stamp_s - j * cfg.history_dt_s
            best = min(past, key=lambda s: abs(s.stamp_s - target), default=None)
            ok = best is not None and abs(best.stamp_s - target) <= cfg.history_tolerance_s + 1e-9
            out.append(best if ok else None)
        return out

    def channels(self, stamp_s: float, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """
        (history_sweeps, H, W) float32 past-sweep channels and (history_sweeps,) valid flags.

        Each channel is the clipped, normalised obstacle-point count of its sweep, moved into
        the ego frame of `pose` (map frame) at stamp_s.
        """
        cfg = self.cfg
        h, w = cfg.bev_height, cfg.bev_width
        out = np.zeros((cfg.history_sweeps, h, w), dtype=np.float32)
        valid = np.zeros(cfg.history_sweeps, dtype=bool)
        cur = np.asarray(pose, dtype=np.float64)
        cc, sc = np.cos(cur[2]), np.sin(cur[2])
        for j, sweep in enumerate(self.slots(stamp_s)):
            if sweep is None:
                continue
            valid[j] = True
            if len(sweep.xy) == 0:
                continue
            # Past ego frame -> current ego frame: rotate by the yaw change, then add the past
            # ego position seen from the current ego.
            dyaw = sweep.pose[2] - cur[2]
            c, s = np.cos(dyaw), np.sin(dyaw)
            dx, dy = sweep.pose[0] - cur[0], sweep.pose[1] - cur[1]
            tx, ty = cc * dx + sc * dy, -sc * dx + cc * dy
            px, py = sweep.xy[:, 0], sweep.xy[:, 1]
            u = (cfg.x_max_m - (px * c - py * s + tx)) / cfg.resolution_m
            v = (cfg.y_extent_m - (px * s + py * c + ty)) / cfg.resolution_m
            idx = np.flatnonzero((u >= 0) & (u < h) & (v >= 0) & (v < w))
            flat = np.floor(u[idx]).astype(np.int64) * w + np.floor(v[idx]).astype(np.int64)
            counts = np.bincount(flat, minlength=h * w)
            ch = np.minimum(counts, cfg.hist_max_per_cell).astype(np.float32)
            ch *= 1.0 / cfg.hist_max_per_cell
            out[j] = ch.reshape(h, w)
        return out, valid
