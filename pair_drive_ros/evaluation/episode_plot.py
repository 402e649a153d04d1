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
Map-frame plot of one closed-loop episode: what the planner asked for and where the ego went.

A failed episode's table row says what ended it (cause, step, route completion); the plot shows
how: the road and the barriers the simulated LiDAR sees, the route, the ego's driven path
coloured by speed, every plan the planner issued (as it issued it, before the speed governor),
the other vehicles' tracks and the point where the episode ended.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

EPISODE_PLOTS = ('none', 'failed', 'all')


@dataclass
class PlanTrace:
    """The plans issued during one episode: (stamp [s], (N, 2) map-frame xy) each."""

    plans: list = field(default_factory=list)

    def add(self, stamp_s: float, xy_map: np.ndarray) -> None:
        """Record one plan (map-frame positions)."""
        self.plans.append((float(stamp_s), np.asarray(xy_map, dtype=np.float64).reshape(-1, 2)))

    def clear(self) -> None:
        """Forget the plans (a new episode)."""
        self.plans.clear()


def wants_plot(mode: str, row: dict) -> bool:
    """Whether `mode` (one of EPISODE_PLOTS) plots an episode with this result row."""
    if mode not in EPISODE_PLOTS:
        raise ValueError(f'episode_plots must be one of {EPISODE_PLOTS}, got {mode!r}')
    if mode == 'all':
        return True
    return mode == 'failed' and bool(row.get('collision') or row.get('off_road'))


def plot_episode(log, trace: PlanTrace, row: dict, path: str | Path) -> Path:
    """
    Write the episode's map-frame PNG to `path`.

    log: the episode's sim.logs.EpisodeLog (lanes, route, ego and agent poses); row: its result
    row (EpisodeResult.as_dict()).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    a = log.arrays
    ego = np.asarray(a['ego_pose'])[:, :2]
    speed = np.asarray(a['ego_speed'], dtype=np.float64)
    fig, ax = plt.subplots(figsize=(8, 6), dpi=90)
    for lane in log.lanes:
        for line in (lane.left_boundary, lane.right_boundary):
            ax.plot(line[:, 0], line[:, 1], color='0.6', lw=0.5)
    # The barriers the simulated LiDAR sees (sim.sensors): where a plan meets one, the
    # governor's keep_gap stops.
    walls = np.asarray(log.road_geometry().walls).reshape(-1, 2, 2)
    for k, seg in enumerate(walls):
        ax.plot(seg[:, 0], seg[:, 1], color='0.15', lw=1.2,
                label='barriers (LiDAR)' if k == 0 else None)
    route = log.episode_route().points
    ax.plot(route[:, 0], route[:, 1], color='tab:green', lw=3, alpha=0.3, label='route')
    valid = np.asarray(a['agent_valid'], dtype=bool)
    poses = np.asarray(a['agent_poses'])
    for j in range(valid.shape[1]):
        track = poses[valid[:, j], j, :2]
        if len(track):
            ax.plot(track[:, 0], track[:, 1], color='tab:blue', lw=0.6, alpha=0.5)
            ax.plot(track[-1, 0], track[-1, 1], 's', color='tab:blue', ms=3, alpha=0.6)
    for k, (_, xy) in enumerate(trace.plans):
        ax.plot(xy[:, 0], xy[:, 1], color='tab:red', lw=0.6, alpha=0.5,
                label='plans' if k == 0 else None)
    drive = ax.scatter(ego[:, 0], ego[:, 1], c=speed, s=4, cmap='viridis', zorder=3)
    fig.colorbar(drive, ax=ax, label='ego speed [m/s]', shrink=0.7)
    end_step = int(row.get('end_step', -1))
    end = min(end_step, len(ego) - 1) if end_step >= 0 else len(ego) - 1
    ax.plot(ego[end, 0], ego[end, 1], 'rx', ms=10, mew=2, zorder=4,
            label=f'end: {row.get("end_cause") or "time"}')
    # Frame the drive and the plans (with some road around them), not the whole map.
    seen = np.vstack([ego] + [xy for _, xy in trace.plans])
    lo, hi = seen.min(0) - 20.0, seen.max(0) + 20.0
    ax.set_xlim(lo[0], hi[0])
    ax.set_ylim(lo[1], hi[1])
    ax.set_aspect('equal')
    ax.set_xlabel('x [m]')
    ax.set_ylabel('y [m]')
    ax.legend(loc='best', fontsize=7)
    ax.set_title(f'{row.get("scenario")} seed {row.get("seed")}: {row.get("end_cause") or "time"} '
                 f'at step {row.get("end_step")},\nroute completion '
                 f'{float(row.get("route_completion", float("nan"))):.2f}', fontsize=9)
    return save_figure(fig, path)


def save_figure(fig, path: str | Path) -> Path:
    """Write a matplotlib figure to `path` (parents made), close it and return the path."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
