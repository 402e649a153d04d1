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
Drivable patches where connected lanes meet (the junction polygons highway-env does not have).

highway-env lanes are separate strips: where an entry lane merges into a roundabout ring, or a
lane ends and its successors begin at another angle, the union of lane polygons leaves thin gaps
that every real driver (and the logged expert) cuts across. NAVSIM's maps cover such places with
roadblock and intersection polygons; we add, for each lane and each successor (lane ids
`from:to:index`, successors start at `to`), the convex hull of the last `patch_length_m` of the
lane and the first `patch_length_m` of the successor.
"""

import numpy as np

from pair_drive_ros.core.road import Lane


def _cross2(a: np.ndarray, b: np.ndarray) -> float:
    # np.cross of 2-vectors is deprecated in NumPy 2.
    return float(a[0] * b[1] - a[1] * b[0])


def _convex_hull(points: np.ndarray) -> np.ndarray:
    """Return the convex hull (K, 2) of points (N, 2), counter-clockwise (monotone chain)."""
    pts = np.unique(np.round(points, 9), axis=0)
    if len(pts) < 3:
        return pts

    def half(seq: np.ndarray) -> list:
        out: list = []
        for p in seq:
            while len(out) >= 2 and _cross2(out[-1] - out[-2], p - out[-2]) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.array(lower[:-1] + upper[:-1])


def _end_strip(lane: Lane, length_m: float, at_start: bool) -> np.ndarray:
    """Boundary points of the first or last `length_m` of a lane, (K, 2)."""
    seg = np.linalg.norm(np.diff(lane.centerline, axis=0), axis=1)
    s = np.r_[0.0, np.cumsum(seg)]
    keep = s <= length_m if at_start else s >= s[-1] - length_m
    keep[0 if at_start else -1] = True
    keep[1 if at_start else -2] = True
    return np.concatenate([lane.left_boundary[keep], lane.right_boundary[keep]])


def connection_areas(lanes: list[Lane], patch_length_m: float = 6.0) -> list[np.ndarray]:
    """Convex patches joining each lane's end with the start of each successor lane."""
    starts: dict[str, list[Lane]] = {}
    for lane in lanes:
        parts = lane.lane_id.split(':')
        if len(parts) == 3:
            starts.setdefault(parts[0], []).append(lane)
    areas = []
    for lane in lanes:
        parts = lane.lane_id.split(':')
        if len(parts) != 3:
            continue
        tail = _end_strip(lane, patch_length_m, at_start=False)
        for succ in starts.get(parts[1], []):
            head = _end_strip(succ, patch_length_m, at_start=True)
            hull = _convex_hull(np.concatenate([tail, head]))
            if len(hull) >= 3:
                areas.append(hull)
    return areas
