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

"""The route: a polyline the ego should follow, with arc length."""

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Route:
    """
    A route centreline.

    points: (P, 2) x, y [m] in the map frame, P >= 2, consecutive duplicates removed.
    """

    points: np.ndarray
    arc_length: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        pts = np.asarray(self.points, dtype=np.float64)
        if pts.ndim != 2 or pts.shape[1] != 2:
            raise ValueError(f'Route points must have shape (P, 2), got shape {pts.shape}')
        if not np.all(np.isfinite(pts)):
            raise ValueError('Route points contain non-finite values')
        if len(pts) > 1:
            keep = np.r_[True, np.linalg.norm(np.diff(pts, axis=0), axis=1) > 1e-9]
            pts = pts[keep]
        if len(pts) < 2:
            raise ValueError(f'Route needs at least 2 distinct points, got {len(pts)}')
        self.points = pts
        self.arc_length = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))]

    @property
    def length(self) -> float:
        """Total length [m]."""
        return float(self.arc_length[-1])

    @property
    def headings(self) -> np.ndarray:
        """(P-1,) heading [rad] of each segment."""
        d = np.diff(self.points, axis=0)
        return np.arctan2(d[:, 1], d[:, 0])

    def project(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """
        Project points (..., 2) onto the route.

        Returns (s, lateral): arc length [m] of the closest point (clamped to the route) and the
        signed perpendicular offset [m] from the closest segment (positive to the left).
        """
        q = np.asarray(xy, dtype=np.float64)
        shape = q.shape[:-1]
        q = q.reshape(-1, 2)
        a = self.points[:-1]
        d = np.diff(self.points, axis=0)
        seg_len2 = np.einsum('ij,ij->i', d, d)
        rel = q[:, None, :] - a[None]
        t = np.clip(np.einsum('nij,ij->ni', rel, d) / seg_len2, 0.0, 1.0)
        closest = a[None] + t[..., None] * d[None]
        dist2 = np.sum((q[:, None, :] - closest) ** 2, axis=-1)
        best = np.argmin(dist2, axis=1)
        idx = np.arange(len(q))
        s = self.arc_length[best] + t[idx, best] * np.sqrt(seg_len2[best])
        # Perpendicular offset from the closest segment's line: equals the signed distance inside
        # the route and stays a lateral offset (not a distance) beyond its ends.
        cross = d[best, 0] * rel[idx, best, 1] - d[best, 1] * rel[idx, best, 0]
        lateral = cross / np.sqrt(seg_len2[best])
        return s.reshape(shape), lateral.reshape(shape)

    def interpolate(self, s: np.ndarray) -> np.ndarray:
        """Poses (..., 3) at arc lengths `s` [m] (clamped to the route)."""
        s = np.clip(np.asarray(s, dtype=np.float64), 0.0, self.length)
        x = np.interp(s, self.arc_length, self.points[:, 0])
        y = np.interp(s, self.arc_length, self.points[:, 1])
        seg = np.searchsorted(self.arc_length, s, side='right') - 1
        seg = np.clip(seg, 0, len(self.points) - 2)
        return np.stack([x, y, self.headings[seg]], -1)

    def curvature(self, s: np.ndarray, chord_m: float = 5.0) -> np.ndarray:
        """
        Unsigned curvature [1/m] at arc lengths `s` (clamped to the route).

        The circle through the route's points at s - chord/2, s and s + chord/2 (Menger
        curvature): it reads positions only, so a short back-step or a joint between two lane
        polylines does not read as a sharp turn. Zero where the route is straight or too short.
        """
        s = np.clip(np.asarray(s, dtype=np.float64), 0.0, self.length)
        half = 0.5 * float(chord_m)
        a = self.interpolate(np.clip(s - half, 0.0, self.length))[..., :2]
        m = self.interpolate(s)[..., :2]
        b = self.interpolate(np.clip(s + half, 0.0, self.length))[..., :2]
        u, v = m - a, b - m
        cross = np.abs(u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0])
        lengths = (np.linalg.norm(u, axis=-1) * np.linalg.norm(v, axis=-1)
                   * np.linalg.norm(b - a, axis=-1))
        return np.where(lengths > 1e-9, 2.0 * cross / np.maximum(lengths, 1e-9), 0.0)
