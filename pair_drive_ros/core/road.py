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

"""Lane geometry: centrelines with widths, boundary line types and speed limits."""

from dataclasses import dataclass, field

import numpy as np

# Boundary line types, as in highway-env and OpenDRIVE road marks.
LINE_NONE = 'none'
LINE_STRIPED = 'striped'
LINE_CONTINUOUS = 'continuous'
LINE_TYPES = (LINE_NONE, LINE_STRIPED, LINE_CONTINUOUS)


@dataclass
class Lane:
    """
    One lane.

    centerline: (P, 2) x, y [m] in the map frame. widths: (P,) lane width [m] at each
    centreline point.
    left_line, right_line: boundary line types (LINE_TYPES). speed_limit_mps: [m/s].
    in_intersection: the lane lies inside a junction (LK and DDC skip such steps).
    """

    lane_id: str
    centerline: np.ndarray
    widths: np.ndarray
    left_line: str = LINE_STRIPED
    right_line: str = LINE_STRIPED
    speed_limit_mps: float = 30.0
    in_intersection: bool = False
    headings: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        c = np.asarray(self.centerline, dtype=np.float64)
        if c.ndim != 2 or c.shape[1] != 2 or len(c) < 2:
            raise ValueError(f'Lane {self.lane_id} centerline must have shape (P>=2, 2), '
                             f'got {c.shape}')
        w = np.broadcast_to(np.asarray(self.widths, dtype=np.float64), (len(c),)).copy()
        for name in ('left_line', 'right_line'):
            if getattr(self, name) not in LINE_TYPES:
                raise ValueError(f'Lane {self.lane_id} {name} must be one of {LINE_TYPES}, '
                                 f'got {getattr(self, name)!r}')
        self.centerline = c
        self.widths = w
        d = np.gradient(c, axis=0)
        self.headings = np.arctan2(d[:, 1], d[:, 0])
        self.speed_limit_mps = float(self.speed_limit_mps)

    def _offset(self, sign: float) -> np.ndarray:
        normal = np.stack([-np.sin(self.headings), np.cos(self.headings)], -1)
        return self.centerline + sign * 0.5 * self.widths[:, None] * normal

    @property
    def left_boundary(self) -> np.ndarray:
        """(P, 2) left boundary points."""
        return self._offset(1.0)

    @property
    def right_boundary(self) -> np.ndarray:
        """(P, 2) right boundary points."""
        return self._offset(-1.0)

    @property
    def polygon(self) -> np.ndarray:
        """(2P, 2) closed-ring vertices (left boundary forward, right boundary backward)."""
        return np.concatenate([self.left_boundary, self.right_boundary[::-1]])


@dataclass
class RoadMap:
    """All lanes of a scene."""

    lanes: list[Lane]
    # Extra drivable polygons (each (P, 2) map-frame vertices) that lanes do not cover: junction
    # areas, roundabout rings, merge tapers. Drivable area = union of lane polygons and these.
    drivable_areas: list[np.ndarray] = field(default_factory=list)

    def lane(self, lane_id: str) -> Lane:
        """Return the lane with this id."""
        for lane in self.lanes:
            if lane.lane_id == lane_id:
                return lane
        raise KeyError(f'no lane {lane_id!r} in the road map')

    def contains(self, points: np.ndarray) -> np.ndarray:
        """
        Whether (N, 2) map points lie on the drivable area: (N,) bool.

        The area the scorer's DAC check uses (`scoring.geometry.LaneIndex`): the union of the
        lane polygons and `drivable_areas`, here by an even-odd test per polygon.
        """
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        inside = np.zeros(len(pts), dtype=bool)
        rings = [ln.polygon for ln in self.lanes]
        rings += [np.asarray(a.exterior.coords if hasattr(a, 'exterior') else a,
                             dtype=np.float64) for a in self.drivable_areas]
        for ring in rings:
            todo = ~inside
            if not todo.any():
                break
            lo, hi = ring.min(0), ring.max(0)
            near = todo & np.all((pts >= lo) & (pts <= hi), axis=1)
            if near.any():
                inside[near] = _inside_ring(pts[near], ring)
        return inside

    def crop(self, center_xy: np.ndarray, radius_m: float) -> 'RoadMap':
        """Lanes with at least one centreline point within `radius_m` of `center_xy`."""
        center = np.asarray(center_xy, dtype=np.float64)
        keep = [ln for ln in self.lanes
                if np.min(np.sum((ln.centerline - center) ** 2, axis=1)) <= radius_m ** 2]
        areas = [a for a in self.drivable_areas
                 if np.min(np.sum((np.asarray(a) - center) ** 2, axis=1)) <= radius_m ** 2]
        return RoadMap(keep, areas)


def _inside_ring(points: np.ndarray, ring: np.ndarray) -> np.ndarray:
    """Even-odd (crossing number) test of (N, 2) points against a closed ring (V, 2)."""
    a, b = ring, np.roll(ring, -1, axis=0)
    py = points[:, 1:2]
    spans = (a[:, 1] > py) != (b[:, 1] > py)
    dy = np.where(b[:, 1] != a[:, 1], b[:, 1] - a[:, 1], 1.0)
    x_cross = a[:, 0] + (py - a[:, 1]) * (b[:, 0] - a[:, 0]) / dy
    return (np.count_nonzero(spans & (points[:, :1] < x_cross), axis=1) % 2) == 1
