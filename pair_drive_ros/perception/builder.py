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
The feature builder: raw sensor data of one frame -> model Features (pure numpy, vectorized).

The perception node and the training dataset both call `FeatureBuilder.build`, so the features a
model sees at run time are computed by exactly the code that built its training data.
"""

import logging

import numpy as np

from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.core.features import COMMANDS, Features, STATUS_DIM
from pair_drive_ros.core.route import Route
from pair_drive_ros.core.se2 import inverse_transform_points, wrap_angle
from pair_drive_ros.core.sensor_frame import SensorFrame
from pair_drive_ros.perception.config import PerceptionConfig
from pair_drive_ros.perception.history import SweepHistory

LOG = logging.getLogger(__name__)

LEFT, STRAIGHT, RIGHT, UNKNOWN = (COMMANDS.index(c) for c in COMMANDS)


class FeatureError(ValueError):
    """Sensor data that cannot be turned into features (wrong shape or type)."""


def bev_cells(cfg: PerceptionConfig,
              xy_ego: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid cell (row, col, inside) of ego-frame points (N, 2) on the BEV grid of `cfg`."""
    rows = np.floor((cfg.x_max_m - xy_ego[:, 0]) / cfg.resolution_m).astype(np.int64)
    cols = np.floor((cfg.y_extent_m - xy_ego[:, 1]) / cfg.resolution_m).astype(np.int64)
    inside = (rows >= 0) & (rows < cfg.bev_height) & (cols >= 0) & (cols < cfg.bev_width)
    return rows, cols, inside


def bev_cell_centers(cfg: PerceptionConfig) -> tuple[np.ndarray, np.ndarray]:
    """Ego-frame x (H,) of each row centre and y (W,) of each column centre [m]."""
    x = cfg.x_max_m - (np.arange(cfg.bev_height) + 0.5) * cfg.resolution_m
    y = cfg.y_extent_m - (np.arange(cfg.bev_width) + 0.5) * cfg.resolution_m
    return x, y


def lidar_histogram(cfg: PerceptionConfig, points: np.ndarray | None,
                    mount: np.ndarray) -> np.ndarray:
    """
    (2, H, W) float32 clipped point counts below / above the split height, in [0, 1].

    points: (N, >=3) x, y, z [m] in the LiDAR frame; mount: (4,) x, y, z, yaw of the LiDAR in the
    ego frame.
    """
    return lidar_bev_and_obstacles(cfg, points, mount, keep_obstacles=False)[0]


def lidar_bev_and_obstacles(cfg: PerceptionConfig, points: np.ndarray | None,
                            mount: np.ndarray, keep_obstacles: bool = True
                            ) -> tuple[np.ndarray, np.ndarray]:
    """
    Return lidar_histogram's (2, H, W) histogram and the obstacle points' ego-frame xy (N, 2).

    Obstacle points are those above the split height and below max_height_m, near enough to
    enter the BEV within the sweep history's time span (for SweepHistory). One pass over the
    cloud serves both (the history must not cost a second one).
    """
    h, w = cfg.bev_height, cfg.bev_width
    none = np.zeros((0, 2))
    if points is None or len(points) == 0:
        return np.zeros((2, h, w), dtype=np.float32), none
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] < 3:
        raise FeatureError(f'lidar_points must have shape (N, >=3), got {pts.shape}')
    mnt = np.asarray(mount, dtype=np.float64).reshape(-1)
    if mnt.shape != (4,):
        raise FeatureError(f'lidar_mount must have shape (4,), got {np.shape(mount)}')
    c, s = np.cos(mnt[3]), np.sin(mnt[3])
    px, py = pts[:, 0], pts[:, 1]
    ex = px * c - py * s + mnt[0]
    ey = px * s + py * c + mnt[1]
    # Fractional grid coordinates; the bounds are checked on them (floor(u) in [0, h) <=> u in
    # [0, h), NaN fails both), so only the points inside are cast: the same cells as flooring
    # every point, at half the cost on 60,000 points.
    u = (cfg.x_max_m - ex) / cfg.resolution_m
    v = (cfg.y_extent_m - ey) / cfg.resolution_m
    z = pts[:, 2] + mnt[2]
    in_height = (z >= cfg.min_height_m) & (z <= cfg.max_height_m)
    ok = (u >= 0) & (u < h) & (v >= 0) & (v < w) & in_height
    idx = np.flatnonzero(ok)
    flat = u[idx].astype(np.int64) * w + v[idx].astype(np.int64)  # truncation = floor here
    flat += (z[idx] > cfg.split_height_m) * (h * w)
    counts = np.bincount(flat, minlength=2 * h * w)
    hist = np.minimum(counts, cfg.hist_max_per_cell).astype(np.float32)
    hist *= 1.0 / cfg.hist_max_per_cell
    obstacles = none
    if keep_obstacles:
        # Points outside the BEV now may enter it later, as the ego or they move: keep a margin
        # that covers 50 m/s of relative motion over the whole history (+5 m for turning).
        margin = cfg.history_sweeps * cfg.history_dt_s * 50.0 + 5.0
        sel = np.flatnonzero(in_height & (z > cfg.split_height_m)
                             & (u >= -margin / cfg.resolution_m)
                             & (u < h + margin / cfg.resolution_m)
                             & (np.abs(ey) <= cfg.y_extent_m + margin))
        obstacles = np.stack([ex[sel], ey[sel]], -1).astype(np.float64)
    return hist.reshape(2, h, w), obstacles


def obstacle_cells(cfg: PerceptionConfig, lidar_bev: np.ndarray) -> np.ndarray:
    """
    Ego-frame xy (N, 2) of the BEV cells that hold LiDAR points above the split height.

    The centres of the non-empty cells of the current sweep's obstacle channel (channel 1 of
    `lidar_histogram`): what a collision monitor checks the plan's corridor against.
    """
    bev = np.asarray(lidar_bev)
    if bev.ndim != 3 or bev.shape[0] < 2:
        raise FeatureError(f'lidar_bev must have shape (C >= 2, H, W), got {bev.shape}')
    rows, cols = np.nonzero(bev[1] > 0)
    x, y = bev_cell_centers(cfg)
    return np.stack([x[rows], y[cols]], -1).astype(np.float64)


def route_raster(cfg: PerceptionConfig, route: Route | None, ego_pose: np.ndarray) -> np.ndarray:
    """(1, H, W) float32: 1 on cells within route_half_width_m of the route centreline."""
    raster = np.zeros((1, cfg.bev_height, cfg.bev_width), dtype=np.float32)
    if route is None:
        return raster
    step = 0.5 * cfg.resolution_m
    s = np.arange(0.0, route.length + 1e-9, step)
    centre = route.interpolate(s)
    local = inverse_transform_points(ego_pose, centre[:, :2])
    margin = cfg.route_half_width_m + cfg.resolution_m
    near = ((local[:, 0] >= cfg.x_min_m - margin) & (local[:, 0] <= cfg.x_max_m + margin)
            & (np.abs(local[:, 1]) <= cfg.y_extent_m + margin))
    if not near.any():
        return raster
    local = local[near]
    yaw = centre[near, 2] - ego_pose[2]
    normal = np.stack([-np.sin(yaw), np.cos(yaw)], -1)
    n_off = max(2, int(np.ceil(2.0 * cfg.route_half_width_m / step)) + 1)
    offsets = np.linspace(-cfg.route_half_width_m, cfg.route_half_width_m, n_off)
    band = (local[:, None, :] + offsets[None, :, None] * normal[:, None, :]).reshape(-1, 2)
    rows, cols, inside = bev_cells(cfg, band)
    raster[0, rows[inside], cols[inside]] = 1.0
    return raster


def driving_command(cfg: PerceptionConfig, route: Route | None, ego_pose: np.ndarray) -> int:
    """
    Index into COMMANDS: where the route goes `command_lookahead_m` past the ego.

    Left/right when the route's heading turns by more than command_turn_rad, or its lookahead
    point lies more than command_lateral_m to the side of the ego; 'unknown' without a route.
    """
    if route is None:
        return UNKNOWN
    s, _ = route.project(np.asarray(ego_pose[:2])[None])
    here, ahead = route.interpolate(np.array([s[0], s[0] + cfg.command_lookahead_m]))
    turn = float(wrap_angle(ahead[2] - here[2]))
    lateral = float(inverse_transform_points(ego_pose, ahead[None, :2])[0, 1])
    if turn > cfg.command_turn_rad or (abs(turn) <= cfg.command_turn_rad
                                       and lateral > cfg.command_lateral_m):
        return LEFT
    if turn < -cfg.command_turn_rad or lateral < -cfg.command_lateral_m:
        return RIGHT
    return STRAIGHT


def ego_status(command: int, ego: EgoState) -> np.ndarray:
    """(STATUS_DIM,) float32: command one-hot, velocity xy [m/s], acceleration xy [m/s^2]."""
    status = np.zeros(STATUS_DIM, dtype=np.float32)
    status[command] = 1.0
    n = len(COMMANDS)
    status[n:n + 2] = ego.velocity
    status[n + 2:n + 4] = ego.acceleration
    return status


def curve_speed(cfg: PerceptionConfig, route: Route | None, ego_pose: np.ndarray) -> float:
    """
    Return the speed [m/s] of the sharpest curve within road_lookahead_m along the route.

    At that speed the lateral acceleration is road_lateral_accel_mps2 (capped at
    road_speed_cap_mps; the cap without a route).

    Curvature is the heading change over 5-m chords (robust to the polyline's vertex noise).
    """
    if route is None:
        return cfg.road_speed_cap_mps
    chord = 5.0
    s0, _ = route.project(np.asarray(ego_pose[:2])[None])
    s = s0[0] + np.arange(0.0, cfg.road_lookahead_m + chord, chord)
    s = s[s <= route.length]
    if len(s) < 3:
        return cfg.road_speed_cap_mps
    xy = route.interpolate(s)[:, :2]
    d = np.diff(xy, axis=0)
    heading = np.unwrap(np.arctan2(d[:, 1], d[:, 0]))
    seg = np.maximum(np.linalg.norm(d, axis=1), 1e-6)
    kappa = np.abs(np.diff(heading)) / (0.5 * (seg[1:] + seg[:-1]))
    k_max = float(kappa.max(initial=0.0))
    if k_max <= cfg.road_lateral_accel_mps2 / cfg.road_speed_cap_mps ** 2:
        return cfg.road_speed_cap_mps
    return float(np.sqrt(cfg.road_lateral_accel_mps2 / k_max))


def road_status(cfg: PerceptionConfig, speed_limit_mps: float | None, route: Route | None,
                ego_pose: np.ndarray) -> np.ndarray:
    """(3,) float32 speed limit [m/s] (0 unknown), known flag, curve speed [m/s]."""
    limit = speed_limit_mps
    if limit is None or not np.isfinite(limit) or limit <= 0:
        limit = cfg.speed_limit_default_mps
    known = limit > 0
    return np.array([limit if known else 0.0, float(known), curve_speed(cfg, route, ego_pose)],
                    dtype=np.float32)


class FeatureBuilder:
    """Build model Features from one SensorFrame (what the car sees; nothing privileged)."""

    def __init__(self, cfg: PerceptionConfig = PerceptionConfig()) -> None:
        self.cfg = cfg
        mean = np.asarray(cfg.camera_mean, dtype=np.float32)
        std = np.asarray(cfg.camera_std, dtype=np.float32)
        # Normalisation folded into one multiply-add per pixel: x * scale + offset.
        self._cam_scale = (1.0 / (255.0 * std)).astype(np.float32)
        self._cam_offset = (-mean / std).astype(np.float32)
        self._resize_index: dict = {}

    def camera_tensor(self, image: np.ndarray | None) -> np.ndarray:
        """(3, camera_height, camera_width) float32 normalized image from (H, W, 3) uint8 RGB."""
        cfg = self.cfg
        if image is None:
            return np.zeros((3, cfg.camera_height, cfg.camera_width), dtype=np.float32)
        img = np.asarray(image)
        if img.ndim != 3 or img.shape[2] < 3:
            raise FeatureError(f'camera_image must have shape (H, W, 3), got {img.shape}')
        h, w = img.shape[:2]
        oh, ow = cfg.camera_height, cfg.camera_width
        if h % oh == 0 and w % ow == 0:
            # Integer factor: area average (no aliasing), still a few reshapes.
            fh, fw = h // oh, w // ow
            small = img[:, :, :3].reshape(oh, fh, ow, fw, 3).mean(axis=(1, 3), dtype=np.float32)
        else:
            key = (h, w)
            if key not in self._resize_index:
                rows = ((np.arange(oh) + 0.5) * h / oh).astype(np.int64)
                cols = ((np.arange(ow) + 0.5) * w / ow).astype(np.int64)
                self._resize_index[key] = (rows[:, None], cols[None, :])
            rows, cols = self._resize_index[key]
            small = img[rows, cols, :3].astype(np.float32)
        out = small * self._cam_scale + self._cam_offset
        return np.ascontiguousarray(out.transpose(2, 0, 1))

    def new_history(self) -> SweepHistory:
        """Return an empty sweep history for one stream of frames (an episode, a sensor feed)."""
        return SweepHistory(self.cfg)

    def observe(self, frame: SensorFrame, history: SweepHistory) -> None:
        """Feed a frame's sweep to `history` without building its features (cheap)."""
        _, obstacles = lidar_bev_and_obstacles(self.cfg, frame.lidar_points, frame.lidar_mount)
        history.push(float(frame.stamp_s), frame.ego.pose, obstacles)

    def build(self, frame: SensorFrame, history: SweepHistory | None = None) -> Features:
        """
        Features of one frame (ego frame at frame.stamp_s).

        With history_sweeps > 0, `history` holds this stream's earlier sweeps (fed in time order
        by earlier calls) and receives this frame's sweep; without one the past channels are
        zeros flagged missing. Frames of different streams must not share a history.
        """
        if not isinstance(frame, SensorFrame):
            raise FeatureError(f'expected a SensorFrame, got {type(frame).__name__}')
        cfg = self.cfg
        ego = frame.ego
        command = driving_command(cfg, frame.route, ego.pose)
        motion = cfg.history_sweeps > 0
        lidar, obstacles = lidar_bev_and_obstacles(cfg, frame.lidar_points, frame.lidar_mount,
                                                   keep_obstacles=motion and history is not None)
        status = ego_status(command, ego)
        if cfg.road_speed:
            status = np.concatenate([status, road_status(
                cfg, frame.speed_limit_mps, frame.route, ego.pose)])
        if motion:
            stamp = float(frame.stamp_s)
            if history is None:
                past = np.zeros((cfg.history_sweeps,) + lidar.shape[1:], np.float32)
                valid = np.zeros(cfg.history_sweeps, bool)
            else:
                past, valid = history.channels(stamp, ego.pose)
                history.push(stamp, ego.pose, obstacles)
            lidar = np.concatenate([lidar, past])
            status = np.concatenate([status, valid.astype(np.float32)])
        return Features(
            lidar_bev=lidar,
            camera=self.camera_tensor(frame.camera_image),
            route_raster=route_raster(cfg, frame.route, ego.pose),
            ego_status=status,
            ego=ego, route=frame.route, stamp_s=float(frame.stamp_s))
