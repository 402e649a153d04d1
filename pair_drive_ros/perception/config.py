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

"""Perception configuration: BEV extent and resolution, camera size, LiDAR histogram, command."""

from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import yaml

from pair_drive_ros.core.features import status_layout

# Optional feature groups: the switch field and every field of its group (switch included).
OPTION_GROUPS = {
    'history_sweeps': ('history_sweeps', 'history_dt_s', 'history_tolerance_s'),
    'road_speed': ('road_speed', 'road_lookahead_m', 'road_lateral_accel_mps2',
                   'road_speed_cap_mps', 'speed_limit_default_mps'),
}


class PerceptionConfigError(ValueError):
    """A perception configuration is invalid (unknown key, bad value)."""


@dataclass(frozen=True)
class PerceptionConfig:
    """
    Feature-builder settings (ego frame: x forward, y left, z up, metres).

    The BEV grid covers x in [x_min_m, x_max_m] and y in [-y_extent_m, y_extent_m]; row 0 is the
    far front (x_max_m), column 0 the far left (+y_extent_m). The default looks 48 m ahead
    (LiDAR range is 50 m) and 16 m behind, so a 25 m/s highway ego sees ~2 s of road ahead.
    """

    x_min_m: float = -16.0          # BEV rear edge [m]
    x_max_m: float = 48.0           # BEV front edge [m]
    y_extent_m: float = 32.0        # BEV half width [m]
    resolution_m: float = 1.0       # BEV cell size [m] (lite; Transfuser: 0.25)
    split_height_m: float = 0.2     # Transfuser: points above this height are obstacles [m]
    max_height_m: float = 4.0       # points higher than this are ignored [m]
    min_height_m: float = -1.0      # points lower than this (noise) are ignored [m]
    hist_max_per_cell: int = 5      # Transfuser clips the counts at 5 per cell
    camera_width: int = 64          # lite camera tensor width [px]
    camera_height: int = 32         # lite camera tensor height [px]
    camera_mean: tuple = (0.485, 0.456, 0.406)   # ImageNet normalization
    camera_std: tuple = (0.229, 0.224, 0.225)
    route_half_width_m: float = 1.0         # route raster band half width [m]
    command_lookahead_m: float = 30.0       # route point used for the driving command [m]
    command_turn_rad: float = 0.35          # heading change that counts as a turn [rad]
    command_lateral_m: float = 3.0          # lateral offset that counts as a turn [m]
    # Motion: past LiDAR sweeps, ego-motion compensated into the current ego frame, one BEV
    # channel each (points above split_height_m). 0: off (the features of the original models).
    history_sweeps: int = 0
    # Spacing of the past sweeps [s]. 0.5 s matches the closed-loop replanning period of the
    # simulator (it hands the planner a frame every 5 steps); online every sweep is fed.
    history_dt_s: float = 0.5
    history_tolerance_s: float = 0.05       # a sweep this far from its slot time still counts [s]
    # The speed the road allows, as ego-status entries: speed limit [m/s], its known flag, and
    # the curve speed sqrt(road_lateral_accel_mps2 / max |curvature|) over the route ahead [m/s].
    road_speed: bool = False
    road_lookahead_m: float = 60.0          # route stretch searched for the sharpest curve [m]
    road_lateral_accel_mps2: float = 3.0    # comfortable lateral acceleration in curves
    road_speed_cap_mps: float = 40.0        # curve speed on straight road (and its upper bound)
    speed_limit_default_mps: float = 0.0    # limit when a frame carries none (0: unknown)

    def __post_init__(self) -> None:
        if not self.x_max_m > self.x_min_m:
            raise PerceptionConfigError(f'x_max_m ({self.x_max_m}) must exceed x_min_m '
                                        f'({self.x_min_m})')
        if self.y_extent_m <= 0 or self.resolution_m <= 0:
            raise PerceptionConfigError('y_extent_m and resolution_m must be positive')
        if self.camera_width < 8 or self.camera_height < 8:
            raise PerceptionConfigError('camera tensor must be at least 8 x 8 px')
        if self.hist_max_per_cell < 1:
            raise PerceptionConfigError('hist_max_per_cell must be >= 1')
        if self.history_sweeps < 0 or self.history_dt_s <= 0:
            raise PerceptionConfigError('history_sweeps must be >= 0 and history_dt_s > 0')
        if not 0 <= self.history_tolerance_s < 0.5 * self.history_dt_s:
            raise PerceptionConfigError('history_tolerance_s must be in [0, history_dt_s / 2)')
        if (self.road_lookahead_m <= 0 or self.road_lateral_accel_mps2 <= 0
                or self.road_speed_cap_mps <= 0 or self.speed_limit_default_mps < 0):
            raise PerceptionConfigError('road_* settings must be positive, '
                                        'speed_limit_default_mps >= 0')

    @property
    def bev_height(self) -> int:
        """BEV rows (along x)."""
        return int(round((self.x_max_m - self.x_min_m) / self.resolution_m))

    @property
    def bev_width(self) -> int:
        """BEV columns (along y)."""
        return int(round(2.0 * self.y_extent_m / self.resolution_m))

    @property
    def lidar_channels(self) -> int:
        """Count the LiDAR BEV channels: below / above the split height, one per past sweep."""
        return 2 + self.history_sweeps

    @property
    def status_dim(self) -> int:
        """Length of the ego-status vector (see core.features.status_layout)."""
        return len(status_layout(self.road_speed, self.history_sweeps))

    def as_dict(self) -> dict:
        """Plain dict (for checkpoints and run logs)."""
        d = asdict(self)
        d['camera_mean'] = list(self.camera_mean)
        d['camera_std'] = list(self.camera_std)
        # An option group that is off is left out: a default config writes exactly the dict of
        # the models trained before the group existed (checkpoints and cache keys stay equal).
        for switch, group in OPTION_GROUPS.items():
            if not d[switch]:
                for key in group:
                    del d[key]
        return d

    @classmethod
    def from_dict(cls, data: dict | None) -> 'PerceptionConfig':
        """Build from a dict; unknown keys raise PerceptionConfigError."""
        data = dict(data or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise PerceptionConfigError(f'unknown perception config keys: {unknown}')
        for key in ('camera_mean', 'camera_std'):
            if key in data:
                data[key] = tuple(float(v) for v in data[key])
        return cls(**data)


def feature_subset(have: PerceptionConfig, want: PerceptionConfig
                   ) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """
    Return where `want`'s LiDAR channels and ego-status entries sit in features of `have`.

    A model trained on `want` can read features built with `have` when `have` builds everything
    `want` reads: the same grid, camera and route settings, each option group `want` uses
    switched on in `have` with the same settings, and at least as many past sweeps at the same
    spacing (`want` reads the most recent ones). Raises PerceptionConfigError otherwise.
    """
    optional = {f for group in OPTION_GROUPS.values() for f in group}
    differ = [f.name for f in fields(PerceptionConfig) if f.name not in optional
              and getattr(have, f.name) != getattr(want, f.name)]
    if want.road_speed:
        differ += [f for f in OPTION_GROUPS['road_speed'] if getattr(have, f) != getattr(want, f)]
    if want.history_sweeps:
        if have.history_sweeps < want.history_sweeps:
            differ.append('history_sweeps')
        differ += [f for f in ('history_dt_s', 'history_tolerance_s')
                   if getattr(have, f) != getattr(want, f)]
    if differ:
        raise PerceptionConfigError(f'these features cannot feed a model trained on other '
                                    f'settings of {sorted(set(differ))}')
    lidar = (0, 1) + tuple(2 + j for j in range(want.history_sweeps))
    layout = status_layout(have.road_speed, have.history_sweeps)
    status = tuple(layout.index(name)
                   for name in status_layout(want.road_speed, want.history_sweeps))
    return lidar, status


def feature_union(a: PerceptionConfig, b: PerceptionConfig) -> PerceptionConfig:
    """
    Return the smallest config whose features feed models trained on `a` and on `b`.

    Each option group switched on in either is on in the union with that one's settings (the
    more past sweeps of the two). Raises PerceptionConfigError where no union exists: other
    grid, camera or route settings, or one option group on in both with other settings.
    """
    group_fields = {f for group in OPTION_GROUPS.values() for f in group}
    differ = [f.name for f in fields(PerceptionConfig) if f.name not in group_fields
              and getattr(a, f.name) != getattr(b, f.name)]
    groups = {}
    for switch, group in OPTION_GROUPS.items():
        on = [c for c in (a, b) if getattr(c, switch)]
        rest = group[1:]   # the group's settings after its switch
        if len(on) == 2 and any(getattr(a, f) != getattr(b, f) for f in rest):
            differ += [f for f in rest if getattr(a, f) != getattr(b, f)]
        source = max(on, key=lambda c: getattr(c, switch)) if on else a
        groups.update({f: getattr(source, f) for f in group})
    if differ:
        raise PerceptionConfigError(f'no features feed both models: they differ in '
                                    f'{sorted(set(differ))}')
    union = replace(a, **groups)
    feature_subset(union, a)      # both must be readable from the union (a check, not a guess)
    feature_subset(union, b)
    return union


def load_perception_config(path: str | Path) -> PerceptionConfig:
    """
    Load a PerceptionConfig from YAML, or from a model checkpoint (.pt).

    YAML: a top-level `perception:` key is optional. A checkpoint carries the configuration its
    model was trained with, so a node given the planner's checkpoint builds matching features.
    """
    if Path(path).suffix == '.pt':
        import torch   # only for checkpoints; the YAML path stays torch-free

        ckpt = torch.load(path, map_location='cpu', weights_only=False)
        if not isinstance(ckpt, dict) or 'perception_config' not in ckpt:
            raise PerceptionConfigError(f'{path} is not a model checkpoint with a '
                                        'perception_config')
        return PerceptionConfig.from_dict(ckpt['perception_config'] or None)
    data = yaml.safe_load(Path(path).read_text()) or {}
    if 'perception' in data:
        data = data['perception']
    return PerceptionConfig.from_dict(data)
