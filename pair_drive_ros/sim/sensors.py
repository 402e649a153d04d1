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
Synthetic LiDAR and front camera, shaped like CARLA's default ego sensors (numpy only).

World model: flat ground at z = 0; lanes from a core.RoadMap (road surface and painted lines);
barriers WALL_HEIGHT_M high along continuous lane boundaries that are road edges (a continuous
line with road on both sides, e.g. a ramp or ring line, is paint, not a barrier); other vehicles
as boxes (length, width, height) standing on the ground. Everything is deterministic.

LiDAR (`simulate_lidar`): `channels` elevation rings evenly spread over [lower_fov, upper_fov]
(CARLA convention), `horizontal_samples` azimuths per ring, mounted at `mount` (x, y, z, yaw) in
the ego frame; returns (N, 4) float32 x, y, z, intensity in the sensor frame (x forward, y left,
z up), rays without a return within `range_m` dropped. Ground returns lie at z = -mount z, so in
the ego (ground) frame z_ground = z + mount_z. Height split for a Transfuser-style BEV
histogram: ground-level points have z_ground < LIDAR_SPLIT_HEIGHT_M = 0.2 m (road), points above
are barriers (up to 0.8 m) and vehicles (up to 1.5 m). Intensity = exp(-0.004 range), CARLA's
default atmospheric attenuation.

Camera (`render_camera`): pinhole, square pixels, focal = W / (2 tan(fov / 2)), principal point at
the image centre, optical axis along the mount's x (no pitch), image rows top to bottom; sky
gradient, ground from a 0.2-m world raster of the road (grass, asphalt, white markings), boxes
ray-cast per pixel with face shading and a depth buffer. Output (H, W, 3) uint8 RGB.
"""

from dataclasses import dataclass
import functools

import numpy as np

from pair_drive_ros.core.agents import Agents
from pair_drive_ros.core.road import LINE_CONTINUOUS, RoadMap
from pair_drive_ros.core.se2 import inverse_transform_points, transform_points
from pair_drive_ros.core.sensor_frame import DEFAULT_CAMERA_FOV_DEG, DEFAULT_CAMERA_MOUNT
from pair_drive_ros.core.sensor_frame import DEFAULT_LIDAR_MOUNT, pinhole_intrinsics
from pair_drive_ros.sim import raster as rz

WALL_HEIGHT_M = 0.8
LIDAR_SPLIT_HEIGHT_M = 0.2
RASTER_RES_M = 0.2
MAX_RASTER_CELLS = 40_000_000
CAMERA_MAX_DIST_M = 200.0
ATTENUATION = 0.004

_OFF_ROAD, _ROAD, _MARKING = 0, 1, 2
_GROUND_RGB = np.array([[86, 118, 62], [92, 92, 98], [225, 225, 225]], dtype=np.float32)
_SKY_TOP = np.array([90, 140, 210], dtype=np.float32)
_SKY_HORIZON = np.array([200, 215, 230], dtype=np.float32)
_CAR_RGB = np.array([[200, 40, 40], [40, 90, 200], [220, 200, 60], [60, 160, 80],
                     [150, 150, 160], [30, 30, 35], [230, 230, 230], [200, 110, 40]],
                    dtype=np.float32)


@dataclass(frozen=True)
class LidarConfig:
    """Ray-cast LiDAR, CARLA defaults (sensor.lidar.ray_cast: 32 channels, fov +10/-30 deg)."""

    channels: int = 32
    range_m: float = 50.0
    upper_fov_deg: float = 10.0
    lower_fov_deg: float = -30.0
    horizontal_samples: int = 720
    mount: tuple = DEFAULT_LIDAR_MOUNT   # x, y, z [m], yaw [rad] in the ego frame


@dataclass(frozen=True)
class CameraConfig:
    """Front camera 'rgb_front' (CARLA bridge mount x = 2, z = 2, fov 90), small by default."""

    width: int = 256
    height: int = 128
    fov_deg: float = DEFAULT_CAMERA_FOV_DEG
    mount: tuple = DEFAULT_CAMERA_MOUNT
    name: str = 'rgb_front'

    @property
    def focal_px(self) -> float:
        """Focal length [px]."""
        return self.width / (2.0 * np.tan(np.radians(self.fov_deg) / 2.0))

    def intrinsics(self) -> np.ndarray:
        """3x3 camera matrix K (ROS/OpenCV optical convention)."""
        return pinhole_intrinsics(self.width, self.height, self.fov_deg)


@dataclass
class RoadGeometry:
    """Precomputed road for the sensors: a world raster and barrier segments."""

    raster: np.ndarray          # (rows, cols) uint8: 0 off-road, 1 road, 2 marking
    origin: np.ndarray          # (2,) world x, y of cell (0, 0)'s corner
    resolution: float
    walls: np.ndarray           # (S, 2, 2) barrier segments

    @classmethod
    def from_road(cls, road: RoadMap, resolution: float = RASTER_RES_M) -> 'RoadGeometry':
        """Rasterize the lanes and find the barriers of a road map."""
        lanes = road.lanes
        if not lanes:
            return cls(np.zeros((1, 1), np.uint8), np.zeros(2), resolution, np.zeros((0, 2, 2)))
        pts = np.concatenate([ln.centerline for ln in lanes])
        margin = 10.0 + max(float(ln.widths.max()) for ln in lanes)
        lo = pts.min(0) - margin
        hi = pts.max(0) + margin
        while np.prod(np.ceil((hi - lo) / resolution)) > MAX_RASTER_CELLS:
            resolution *= 2.0
        shape = tuple(int(v) for v in np.ceil((hi - lo) / resolution)[::-1])  # rows = y
        grid = np.zeros(shape, dtype=np.uint8)

        def to_cells(world):
            cols = np.floor((world[:, 0] - lo[0]) / resolution).astype(np.int64)
            rows = np.floor((world[:, 1] - lo[1]) / resolution).astype(np.int64)
            return rows, cols

        step = resolution * 0.5
        for ln in lanes:
            rz.paint(grid, to_cells, rz.lane_area_points(ln, step), _ROAD)
        road_mask = grid.copy()
        for ln in lanes:
            rz.paint(grid, to_cells, rz.lane_marking_points(ln, step), _MARKING)
        geo = cls(grid, lo, resolution, np.zeros((0, 2, 2)))
        geo.walls = _barriers(lanes, road_mask, geo)
        return geo

    def lookup(self, xy: np.ndarray) -> np.ndarray:
        """Raster class at world points (..., 2); outside the raster: off-road."""
        cols = np.floor((xy[..., 0] - self.origin[0]) / self.resolution).astype(np.int64)
        rows = np.floor((xy[..., 1] - self.origin[1]) / self.resolution).astype(np.int64)
        ok = (rows >= 0) & (rows < self.raster.shape[0]) & (cols >= 0) \
            & (cols < self.raster.shape[1])
        out = np.zeros(xy.shape[:-1], dtype=np.uint8)
        out[ok] = self.raster[rows[ok], cols[ok]]
        return out


def _barriers(lanes, road_mask: np.ndarray, geo: RoadGeometry, step: float = 2.0
              ) -> np.ndarray:
    """Segments of continuous boundaries with road on one side only."""
    segs = []
    probe = 0.6
    for ln in lanes:
        s, centre, normal, width = rz._lane_frames(ln, step, None, np.inf)
        if len(s) < 2:
            continue
        for sign, kind in ((1.0, ln.left_line), (-1.0, ln.right_line)):
            if kind != LINE_CONTINUOUS:
                continue
            line = centre + sign * 0.5 * width[:, None] * normal
            outside = line + sign * probe * normal
            mask_geo = RoadGeometry(road_mask, geo.origin, geo.resolution, geo.walls)
            edge = mask_geo.lookup(outside) == 0
            keep = edge[:-1] & edge[1:]
            if keep.any():
                segs.append(np.stack([line[:-1][keep], line[1:][keep]], 1))
    return np.concatenate(segs) if segs else np.zeros((0, 2, 2))


def _as_geometry(road) -> RoadGeometry:
    if isinstance(road, RoadGeometry):
        return road
    if isinstance(road, RoadMap):
        return RoadGeometry.from_road(road)
    raise TypeError(f'road must be a RoadMap or RoadGeometry, got {type(road).__name__}')


def _sensor_pose(ego_pose: np.ndarray, mount: tuple) -> np.ndarray:
    ego_pose = np.asarray(ego_pose, dtype=np.float64).reshape(3)
    xy = transform_points(ego_pose, np.array(mount[:2], dtype=np.float64))
    return np.array([xy[0], xy[1], ego_pose[2] + float(mount[3])])


@functools.lru_cache(maxsize=16)
def _lidar_angles(cfg: LidarConfig) -> tuple[np.ndarray, np.ndarray]:
    az = np.linspace(-np.pi, np.pi, cfg.horizontal_samples, endpoint=False)
    el = np.radians(np.linspace(cfg.upper_fov_deg, cfg.lower_fov_deg, cfg.channels))
    return az, el


def simulate_lidar(ego_pose: np.ndarray, agents: Agents, road, cfg: LidarConfig = LidarConfig()
                   ) -> np.ndarray:
    """
    (N, 4) float32 x, y, z, intensity in the LiDAR frame (see module docstring).

    ego_pose: (3,) map pose; agents: other vehicles in the map frame; road: RoadMap or a cached
    RoadGeometry.
    """
    geo = _as_geometry(road)
    sensor = _sensor_pose(ego_pose, cfg.mount)
    h = float(cfg.mount[2])
    az, el = _lidar_angles(cfg)
    tan_e = np.tan(el)                                           # (C,)
    dirs = np.stack([np.cos(az), np.sin(az)], -1)                # (A, 2) sensor frame
    reach = cfg.range_m
    best = np.full((len(az), len(el)), np.inf)
    # Ground plane.
    down = tan_e < -1e-6
    d_ground = np.where(down, h / np.where(down, -tan_e, 1.0), np.inf)
    best = np.minimum(best, d_ground[None, :])
    # Barriers: 2-D ray/segment intersections, then the first one the 3-D ray does not clear.
    if len(geo.walls):
        segs = geo.walls
        mid = segs.mean(1)
        near = np.linalg.norm(mid - sensor[:2], axis=1) <= reach + 5.0
        if near.any():
            local = inverse_transform_points(sensor, segs[near].reshape(-1, 2)).reshape(-1, 2, 2)
            d2 = _ray_segments(dirs, local)                          # (A, S)
            k = min(4, d2.shape[1])
            cand = np.sort(np.partition(d2, k - 1, axis=1)[:, :k], axis=1)  # (A, K)
            z = h + cand[:, :, None] * tan_e[None, None, :]          # (A, K, C)
            ok = (z >= 0.0) & (z <= WALL_HEIGHT_M) & np.isfinite(cand)[:, :, None]
            d_wall = np.where(ok, cand[:, :, None], np.inf).min(1)  # (A, C)
            best = np.minimum(best, d_wall)
    # Vehicles: 2-D slab test per box, then side-face or roof hit per channel.
    if len(agents):
        dist = np.linalg.norm(agents.poses[:, :2] - sensor[:2], axis=1)
        sel = dist <= reach + 0.5 * np.hypot(*agents.sizes.T)
        if sel.any():
            t_in, t_out = _ray_boxes(dirs, sensor, agents.poses[sel], agents.sizes[sel])
            # Only (azimuth, box) pairs whose 2-D ray enters the box: a small fraction.
            ai, mi = np.nonzero(np.isfinite(t_in))
            if len(ai):
                heights = agents.heights[sel][mi]                          # (P,)
                tin, tout = t_in[ai, mi], t_out[ai, mi]
                z_in = h + tin[:, None] * tan_e[None, :]                   # (P, C)
                side = (z_in >= 0.0) & (z_in <= heights[:, None])
                d_top = np.where(down[None, :], (h - heights[:, None])
                                 / np.where(down, -tan_e, 1.0)[None, :], np.inf)
                roof = (z_in > heights[:, None]) & (d_top >= tin[:, None]) \
                    & (d_top <= tout[:, None])
                d_box = np.where(side, tin[:, None], np.where(roof, d_top, np.inf))
                np.minimum.at(best, ai, d_box)
    cos_e = np.cos(el)
    rng3 = best / cos_e[None, :]
    hit = np.isfinite(best) & (rng3 <= reach)
    ai, ci = np.nonzero(hit)
    d = best[ai, ci]
    pts = np.empty((len(d), 4), dtype=np.float32)
    pts[:, 0] = d * dirs[ai, 0]
    pts[:, 1] = d * dirs[ai, 1]
    pts[:, 2] = d * tan_e[ci]
    pts[:, 3] = np.exp(-ATTENUATION * rng3[ai, ci])
    return pts


def _ray_segments(dirs: np.ndarray, segs: np.ndarray) -> np.ndarray:
    """Distances (A, S) along rays from the origin to segments (S, 2, 2); inf where missed."""
    a, b = segs[:, 0], segs[:, 1]
    e = b - a
    den = dirs[:, None, 0] * e[None, :, 1] - dirs[:, None, 1] * e[None, :, 0]
    with np.errstate(divide='ignore', invalid='ignore'):
        t = (a[None, :, 0] * e[None, :, 1] - a[None, :, 1] * e[None, :, 0]) / den
        u = (a[None, :, 0] * dirs[:, None, 1] - a[None, :, 1] * dirs[:, None, 0]) / den
    hit = (t > 0.0) & (u >= 0.0) & (u <= 1.0)
    return np.where(hit, t, np.inf)


def _ray_boxes(dirs: np.ndarray, sensor: np.ndarray, poses: np.ndarray, sizes: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """2-D slab test: entry and exit distances (A, M) of sensor-frame rays into boxes."""
    centre = inverse_transform_points(sensor, poses[:, :2])             # (M, 2)
    rel_yaw = poses[:, 2] - sensor[2]
    c, s = np.cos(rel_yaw), np.sin(rel_yaw)
    # Ray origin and directions in each box frame.
    ox = -(centre[:, 0] * c + centre[:, 1] * s)
    oy = -(-centre[:, 0] * s + centre[:, 1] * c)
    dx = dirs[:, None, 0] * c[None] + dirs[:, None, 1] * s[None]
    dy = -dirs[:, None, 0] * s[None] + dirs[:, None, 1] * c[None]
    hl, hw = 0.5 * sizes[:, 0], 0.5 * sizes[:, 1]
    with np.errstate(divide='ignore', invalid='ignore'):
        tx1 = (-hl[None] - ox[None]) / dx
        tx2 = (hl[None] - ox[None]) / dx
        ty1 = (-hw[None] - oy[None]) / dy
        ty2 = (hw[None] - oy[None]) / dy
    tx1 = np.where(np.isnan(tx1), -np.inf, tx1)
    tx2 = np.where(np.isnan(tx2), np.inf, tx2)
    ty1 = np.where(np.isnan(ty1), -np.inf, ty1)
    ty2 = np.where(np.isnan(ty2), np.inf, ty2)
    t_in = np.maximum(np.minimum(tx1, tx2), np.minimum(ty1, ty2))
    t_out = np.minimum(np.maximum(tx1, tx2), np.maximum(ty1, ty2))
    miss = (t_out < np.maximum(t_in, 0.0)) | (t_in <= 0.0)
    return np.where(miss, np.inf, t_in), np.where(miss, np.inf, t_out)


@functools.lru_cache(maxsize=16)
def _camera_rays(cfg: CameraConfig) -> np.ndarray:
    """(H, W, 3) unnormalized ray directions in the camera body frame (x fwd, y left, z up)."""
    f = cfg.focal_px
    u = (np.arange(cfg.width) + 0.5 - cfg.width / 2.0) / f
    v = (np.arange(cfg.height) + 0.5 - cfg.height / 2.0) / f
    rays = np.empty((cfg.height, cfg.width, 3))
    rays[..., 0] = 1.0
    rays[..., 1] = -u[None, :]
    rays[..., 2] = -v[:, None]
    rays.setflags(write=False)
    return rays


def project_points(cfg: CameraConfig, points_cam: np.ndarray) -> np.ndarray:
    """Pixel (u, v) of camera-body-frame points (..., 3) (x forward, y left, z up)."""
    f = cfg.focal_px
    p = np.asarray(points_cam, dtype=np.float64)
    return np.stack([cfg.width / 2.0 - f * p[..., 1] / p[..., 0],
                     cfg.height / 2.0 - f * p[..., 2] / p[..., 0]], -1)


@functools.lru_cache(maxsize=16)
def _camera_static(cfg: CameraConfig) -> tuple:
    """
    Return per-config constants.

    The sky image (H, W, 3) float32, the first ground row, and the ray parameter to the ground
    of each ground row (H - first,).
    """
    rays = _camera_rays(cfg)
    elev = np.clip(rays[..., 2] / np.hypot(rays[..., 0], rays[..., 1]), 0.0, 1.0)[..., None]
    sky = (_SKY_HORIZON + (_SKY_TOP - _SKY_HORIZON) * np.sqrt(elev)).astype(np.float32)
    sky.setflags(write=False)
    dz = rays[:, 0, 2]
    first = int(np.argmax(dz < -1e-6)) if np.any(dz < -1e-6) else cfg.height
    t_row = float(cfg.mount[2]) / -dz[first:]          # ray parameter to the ground, per row
    return sky, first, t_row


def render_camera(ego_pose: np.ndarray, agents: Agents, road,
                  cfg: CameraConfig = CameraConfig()) -> np.ndarray:
    """(H, W, 3) uint8 RGB image of the front camera (see module docstring)."""
    geo = _as_geometry(road)
    cam = _sensor_pose(ego_pose, cfg.mount)
    h = float(cfg.mount[2])
    rays = _camera_rays(cfg)
    sky, first, t_row = _camera_static(cfg)
    c, s = np.cos(cam[2]), np.sin(cam[2])
    # No pitch or roll: the ground is the block of rows below the horizon, and a pixel's ground
    # point is cam + t_row * (lateral/forward components of its column), rotated by the yaw.
    img = sky.copy()
    depth = np.full((cfg.height, cfg.width), np.inf)
    if first < cfg.height:
        u = rays[0, :, 1]                                   # (W,) lateral component (x = 1)
        fx = t_row[:, None] * 1.0                           # forward distance per row
        fy = t_row[:, None] * u[None, :]
        gx = cam[0] + fx * c - fy * s
        gy = cam[1] + fx * s + fy * c
        dist = np.hypot(fx, fy)
        cls = geo.lookup(np.stack([gx, gy], -1))
        fog = (np.minimum(dist / CAMERA_MAX_DIST_M, 1.0) ** 2).astype(np.float32)[..., None]
        block = _GROUND_RGB[cls] * (1.0 - fog) + _SKY_HORIZON * fog
        img[first:] = block
        depth[first:] = np.broadcast_to(t_row[:, None], dist.shape)
    if len(agents):
        wx = rays[..., 0] * c - rays[..., 1] * s
        wy = rays[..., 0] * s + rays[..., 1] * c
        _draw_boxes(img, depth, cam, h, wx, wy, rays[..., 2], agents, cfg)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _draw_boxes(img, depth, cam, h, wx, wy, wz, agents: Agents, cfg: CameraConfig) -> None:
    local = inverse_transform_points(cam, agents.poses[:, :2])
    radius = 0.5 * np.hypot(agents.sizes[:, 0], agents.sizes[:, 1])
    visible = (local[:, 0] > -radius) & (np.hypot(*local.T) < CAMERA_MAX_DIST_M)
    order = np.argsort(-np.hypot(*local.T))
    for m in order:
        if not visible[m]:
            continue
        length, width = agents.sizes[m]
        height = float(agents.heights[m])
        rows, cols = _screen_box(cfg, local[m], cam[2], agents.poses[m, 2], length, width,
                                 height, h)
        if rows is None:
            continue
        r0, r1 = rows
        c0, c1 = cols
        yaw = agents.poses[m, 2]
        cy, sy = np.cos(yaw), np.sin(yaw)
        ox = cam[0] - agents.poses[m, 0]
        oy = cam[1] - agents.poses[m, 1]
        bx = ox * cy + oy * sy
        by = -ox * sy + oy * cy
        bz = h
        dx = wx[r0:r1, c0:c1] * cy + wy[r0:r1, c0:c1] * sy
        dy = -wx[r0:r1, c0:c1] * sy + wy[r0:r1, c0:c1] * cy
        dz = wz[r0:r1, c0:c1]
        lo = np.array([-0.5 * length, -0.5 * width, 0.0])
        hi = np.array([0.5 * length, 0.5 * width, height])
        t_near = np.full(dx.shape, -np.inf)
        t_far = np.full(dx.shape, np.inf)
        axis = np.zeros(dx.shape, dtype=np.int8)
        for k, (o, d) in enumerate(((bx, dx), (by, dy), (bz, dz))):
            with np.errstate(divide='ignore', invalid='ignore'):
                t1 = (lo[k] - o) / d
                t2 = (hi[k] - o) / d
            inside = (o >= lo[k]) & (o <= hi[k])
            t1 = np.where(d == 0, np.where(inside, -np.inf, np.inf), t1)
            t2 = np.where(d == 0, np.where(inside, np.inf, -np.inf), t2)
            tn = np.minimum(t1, t2)
            tf = np.maximum(t1, t2)
            axis = np.where(tn > t_near, k, axis)
            t_near = np.maximum(t_near, tn)
            t_far = np.minimum(t_far, tf)
        hit = (t_near <= t_far) & (t_near > 0.0) & (t_near < depth[r0:r1, c0:c1])
        if not hit.any():
            continue
        base = _CAR_RGB[int(agents.ids[m]) % len(_CAR_RGB)]
        shade = np.array([0.8, 0.62, 1.0], dtype=np.float32)[axis]
        block = img[r0:r1, c0:c1]
        block[hit] = base[None, :] * shade[hit][:, None]
        depth[r0:r1, c0:c1] = np.where(hit, t_near, depth[r0:r1, c0:c1])


def _screen_box(cfg: CameraConfig, centre_local, cam_yaw, yaw, length, width, height, h):
    """Pixel row and column ranges that can contain the box (None if off screen)."""
    rel = yaw - cam_yaw
    corners2 = transform_points(np.array([centre_local[0], centre_local[1], rel]),
                                np.array([[0.5, 0.5], [0.5, -0.5], [-0.5, -0.5], [-0.5, 0.5]])
                                * np.array([length, width]))
    pts = np.concatenate([np.c_[corners2, np.full(4, -h)],
                          np.c_[corners2, np.full(4, height - h)]])
    if np.all(pts[:, 0] <= 0.05):
        return None, None
    if np.any(pts[:, 0] <= 0.05):
        # Partly behind the camera: test the whole image (rare: a vehicle alongside).
        return (0, cfg.height), (0, cfg.width)
    uv = project_points(cfg, pts)
    c0 = int(np.clip(np.floor(uv[:, 0].min()), 0, cfg.width))
    c1 = int(np.clip(np.ceil(uv[:, 0].max()) + 1, 0, cfg.width))
    r0 = int(np.clip(np.floor(uv[:, 1].min()), 0, cfg.height))
    r1 = int(np.clip(np.ceil(uv[:, 1].max()) + 1, 0, cfg.height))
    if c0 >= c1 or r0 >= r1:
        return None, None
    return (r0, r1), (c0, c1)
