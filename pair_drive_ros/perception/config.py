"""Perception configuration: BEV extent and resolution, camera size, LiDAR histogram, command."""

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml


class PerceptionConfigError(ValueError):
    """A perception configuration is invalid (unknown key, bad value)."""


@dataclass(frozen=True)
class PerceptionConfig:
    """Feature-builder settings (ego frame: x forward, y left, z up, metres).

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
        """Histogram channels of the LiDAR BEV: below and above the split height."""
        return 2

    def as_dict(self) -> dict:
        """Plain dict (for checkpoints and run logs)."""
        d = asdict(self)
        d['camera_mean'] = list(self.camera_mean)
        d['camera_std'] = list(self.camera_std)
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


def load_perception_config(path: str | Path) -> PerceptionConfig:
    """Load a PerceptionConfig from YAML (a top-level `perception:` key is optional)."""
    data = yaml.safe_load(Path(path).read_text()) or {}
    if 'perception' in data:
        data = data['perception']
    return PerceptionConfig.from_dict(data)
