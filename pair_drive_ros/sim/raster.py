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
Pure-numpy rasters of lanes, markings, route and vehicles (BEV ground truth, camera texture).

BEV semantic classes (`bev_semantics`):
  0 background, 1 drivable road (any lane), 2 lane marking / boundary (striped or continuous
  lines), 3 vehicle (other agents' boxes; the ego is not drawn), 4 route (route centreline
  +- ROUTE_HALF_WIDTH_M, drawn over the road and under markings and vehicles).
Layout: raster[i, j] is the ego-frame cell x = extent - (i + 0.5) res (forward is up, row 0),
y = extent - (j + 0.5) res (left is column 0); the ego is at the centre.
"""

from typing import Callable

import numpy as np

from pair_drive_ros.core.agents import Agents
from pair_drive_ros.core.road import Lane, LINE_CONTINUOUS, LINE_STRIPED
from pair_drive_ros.core.se2 import inverse_transform_points, transform_points

BACKGROUND, ROAD, MARKING, VEHICLE, ROUTE = 0, 1, 2, 3, 4
BEV_CLASSES = ('background', 'road', 'marking', 'vehicle', 'route')
ROUTE_HALF_WIDTH_M = 1.0
MARKING_HALF_WIDTH_M = 0.1
STRIPE_PERIOD_M = 5.0   # highway-env STRIPE_SPACING
STRIPE_LENGTH_M = 3.0   # highway-env STRIPE_LENGTH


def _lane_frames(lane: Lane, ds: float, center: np.ndarray | None, radius: float
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sample a lane: s (S,), centre (S, 2), left normal (S, 2), width (S,)."""
    c = lane.centerline
    arc = np.r_[0.0, np.cumsum(np.linalg.norm(np.diff(c, axis=0), axis=1))]
    s = np.arange(0.0, arc[-1] + 1e-9, ds)
    cx = np.interp(s, arc, c[:, 0])
    cy = np.interp(s, arc, c[:, 1])
    centre = np.stack([cx, cy], -1)
    nx = np.interp(s, arc, -np.sin(lane.headings))
    ny = np.interp(s, arc, np.cos(lane.headings))
    norm = np.maximum(np.hypot(nx, ny), 1e-9)
    normal = np.stack([nx / norm, ny / norm], -1)
    width = np.interp(s, arc, lane.widths)
    if center is not None:
        keep = np.linalg.norm(centre - center, axis=1) <= radius + width
        s, centre, normal, width = s[keep], centre[keep], normal[keep], width[keep]
    return s, centre, normal, width


def lane_area_points(lane: Lane, step: float, center: np.ndarray | None = None,
                     radius: float = np.inf) -> np.ndarray:
    """(N, 2) points covering the lane surface at spacing `step` (near `center` only)."""
    s, centre, normal, width = _lane_frames(lane, step, center, radius)
    if len(s) == 0:
        return np.zeros((0, 2))
    frac = np.linspace(-0.5, 0.5, max(2, int(np.ceil(width.max() / step)) + 1))
    lat = width[:, None] * frac[None, :]
    return (centre[:, None, :] + lat[..., None] * normal[:, None, :]).reshape(-1, 2)


def lane_marking_points(lane: Lane, step: float, center: np.ndarray | None = None,
                        radius: float = np.inf) -> np.ndarray:
    """(N, 2) points on the lane's painted boundary lines (striped ones dashed)."""
    s, centre, normal, width = _lane_frames(lane, step, center, radius)
    out = []
    offsets = np.arange(-MARKING_HALF_WIDTH_M, MARKING_HALF_WIDTH_M + 1e-9,
                        max(step, 1e-3))
    for sign, kind in ((1.0, lane.left_line), (-1.0, lane.right_line)):
        if kind == LINE_CONTINUOUS:
            keep = np.ones(len(s), bool)
        elif kind == LINE_STRIPED:
            keep = np.mod(s, STRIPE_PERIOD_M) < STRIPE_LENGTH_M
        else:
            continue
        lat = sign * 0.5 * width[keep][:, None] + offsets[None, :]
        out.append((centre[keep][:, None, :] + lat[..., None] * normal[keep][:, None, :])
                   .reshape(-1, 2))
    return np.concatenate(out) if out else np.zeros((0, 2))


def polyline_band_points(points: np.ndarray, half_width: float, step: float) -> np.ndarray:
    """(N, 2) points covering a band of +-half_width around a polyline."""
    lane = Lane('band', points, 2.0 * half_width)
    return lane_area_points(lane, step)


def box_points(agents: Agents, step: float) -> np.ndarray:
    """(N, 2) points covering the agents' boxes (in the agents' frame)."""
    if len(agents) == 0:
        return np.zeros((0, 2))
    out = []
    for pose, (length, width) in zip(agents.poses, agents.sizes):
        u = np.linspace(-0.5, 0.5, max(2, int(np.ceil(length / step)) + 1)) * length
        v = np.linspace(-0.5, 0.5, max(2, int(np.ceil(width / step)) + 1)) * width
        local = np.stack(np.meshgrid(u, v, indexing='ij'), -1).reshape(-1, 2)
        out.append(transform_points(pose, local))
    return np.concatenate(out)


def paint(raster: np.ndarray, to_cells: Callable, points: np.ndarray, value: int) -> None:
    """Set the cells hit by world points to `value` (to_cells maps (N, 2) -> rows, cols)."""
    if len(points) == 0:
        return
    rows, cols = to_cells(points)
    ok = (rows >= 0) & (rows < raster.shape[0]) & (cols >= 0) & (cols < raster.shape[1])
    raster[rows[ok], cols[ok]] = value


def bev_semantics(scene, extent_m: float = 32.0, resolution: float = 0.25) -> np.ndarray:
    """
    Ego-frame BEV semantic raster (uint8, classes above) of a core.Scene at its t = 0.

    `scene` may also be an (EpisodeLog, frame_index) pair. Shape (n, n) with
    n = round(2 extent_m / resolution).
    """
    if isinstance(scene, tuple):
        log, k = scene
        scene = log.scene(k)
    if extent_m <= 0 or resolution <= 0:
        raise ValueError(f'extent_m and resolution must be positive, got {extent_m}, '
                         f'{resolution}')
    n = int(round(2.0 * extent_m / resolution))
    raster = np.zeros((n, n), dtype=np.uint8)
    origin = scene.ego.pose
    center = origin[:2]
    radius = extent_m * np.sqrt(2.0) + 1.0
    step = resolution * 0.5

    def to_cells(world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        local = inverse_transform_points(origin, world)
        rows = np.floor((extent_m - local[:, 0]) / resolution).astype(np.int64)
        cols = np.floor((extent_m - local[:, 1]) / resolution).astype(np.int64)
        return rows, cols

    lanes = scene.road.crop(center, radius + 200.0).lanes
    for lane in lanes:
        paint(raster, to_cells, lane_area_points(lane, step, center, radius), ROAD)
    if scene.route is not None:
        pts = scene.route.points
        near = np.linalg.norm(pts - center, axis=1) <= radius + 10.0
        if near.sum() >= 2:
            idx = np.nonzero(near)[0]
            seg = pts[idx.min():idx.max() + 1]
            paint(raster, to_cells, polyline_band_points(seg, ROUTE_HALF_WIDTH_M, step), ROUTE)
    for lane in lanes:
        paint(raster, to_cells, lane_marking_points(lane, step, center, radius), MARKING)
    agents = scene.agents.at(0)
    if len(agents):
        near = np.linalg.norm(agents.poses[:, :2] - center, axis=1) <= radius + 5.0
        paint(raster, to_cells, box_points(agents.select(near), step), VEHICLE)
    return raster
