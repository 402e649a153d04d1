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

"""Feature builder: exact answers for the BEV histogram, route raster, command, camera, status."""

import numpy as np
import pytest

from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.core.route import Route
from pair_drive_ros.core.sensor_frame import SensorFrame
from pair_drive_ros.perception import (COMMANDS, driving_command, FeatureBuilder, FeatureError,
                                       lidar_histogram, PerceptionConfig, PerceptionConfigError,
                                       route_raster, STATUS_DIM)

CFG = PerceptionConfig()
MOUNT = np.array([0.0, 0.0, 2.4, 0.0])


def _frame(points=None, image=None, route=None, pose=(0.0, 0.0, 0.0), vel=(12.0, 0.5),
           acc=(1.0, -0.2)):
    ego = EgoState(np.array(pose), np.array(vel), np.array(acc))
    return SensorFrame(stamp_s=3.0, ego=ego, lidar_points=points, camera_image=image,
                       route=route, lidar_mount=MOUNT.copy())


def test_point_lands_in_its_cell_and_channel():
    # Ego-frame (10.2, -5.7): row floor((48 - 10.2) / 1) = 37, col floor((32 + 5.7) / 1) = 37.
    pts = np.array([[10.2, -5.7, 1.0 - 2.4, 0.0],    # 1.0 m above ground: obstacle channel
                    [10.2, -5.7, 0.0 - 2.4, 0.0],    # ground: below-split channel
                    [60.0, 0.0, -1.0, 0.0]], np.float32)  # beyond the front edge: dropped
    hist = lidar_histogram(CFG, pts, MOUNT)
    assert hist.shape == (2, CFG.bev_height, CFG.bev_width) == (2, 64, 64)
    assert hist[1, 37, 37] == pytest.approx(1.0 / CFG.hist_max_per_cell)
    assert hist[0, 37, 37] == pytest.approx(1.0 / CFG.hist_max_per_cell)
    assert hist.sum() == pytest.approx(2.0 / CFG.hist_max_per_cell)


def test_histogram_clips_counts_and_applies_mount_yaw():
    pts = np.tile(np.array([[1.5, 0.0, -1.0, 0.0]], np.float32), (7, 1))
    mount = np.array([2.0, 0.0, 2.4, np.pi / 2])   # LiDAR x axis points to the ego's left
    hist = lidar_histogram(CFG, pts, mount)
    # Ego-frame point (2.0, 1.5): row floor(46.0) = 46, col floor(30.5) = 30; 7 hits clip to 5.
    assert hist[1, 46, 30] == pytest.approx(1.0)
    assert np.count_nonzero(hist) == 1


def test_histogram_rejects_bad_shapes():
    with pytest.raises(FeatureError, match='shape'):
        lidar_histogram(CFG, np.zeros((5, 2)), MOUNT)
    with pytest.raises(FeatureError, match='lidar_mount'):
        lidar_histogram(CFG, np.zeros((5, 4)), np.zeros(3))


def _arc_route(sign: float) -> Route:
    straight = np.stack([np.linspace(-20, 10, 31), np.zeros(31)], -1)
    ang = np.linspace(0, np.pi / 2, 40)
    radius = 15.0
    arc = np.stack([10 + radius * np.sin(ang), sign * radius * (1 - np.cos(ang))], -1)
    return Route(np.concatenate([straight, arc[1:]]))


def test_command_from_route():
    assert COMMANDS[driving_command(CFG, _arc_route(1.0), np.zeros(3))] == 'left'
    assert COMMANDS[driving_command(CFG, _arc_route(-1.0), np.zeros(3))] == 'right'
    straight = Route(np.stack([np.linspace(-20, 200, 50), np.zeros(50)], -1))
    assert COMMANDS[driving_command(CFG, straight, np.zeros(3))] == 'straight'
    assert COMMANDS[driving_command(CFG, None, np.zeros(3))] == 'unknown'
    # A rotated ego on a rotated route gives the same command.
    pose = np.array([5.0, 7.0, 1.0])
    c, s = np.cos(1.0), np.sin(1.0)
    pts = _arc_route(1.0).points @ np.array([[c, s], [-s, c]]) + pose[:2]
    assert COMMANDS[driving_command(CFG, Route(pts), pose)] == 'left'


def test_route_raster_marks_the_centreline_band():
    route = Route(np.array([[-50.0, 2.0], [100.0, 2.0]]))
    raster = route_raster(CFG, route, np.zeros(3))
    assert raster.shape == (1, 64, 64)
    # y = 2 +- 1 m -> columns floor(32 - 3) = 29 .. floor(32 - 1) = 31, every row.
    cols = np.flatnonzero(raster[0].any(0))
    assert cols.min() >= 29 and cols.max() <= 31
    assert raster[0, :, 30].all()
    assert route_raster(CFG, None, np.zeros(3)).sum() == 0


def test_camera_tensor_normalization_and_resize():
    builder = FeatureBuilder(CFG)
    img = np.full((128, 256, 3), 100, np.uint8)
    cam = builder.camera_tensor(img)
    assert cam.shape == (3, CFG.camera_height, CFG.camera_width)
    expect = (100 / 255.0 - np.array(CFG.camera_mean)) / np.array(CFG.camera_std)
    np.testing.assert_allclose(cam[:, 5, 7], expect, rtol=1e-5)
    big = np.zeros((600, 800, 3), np.uint8)
    big[:300] = 255   # top half white: the top rows of the tensor are white too
    cam = builder.camera_tensor(big)
    np.testing.assert_allclose(cam[:, 0, 0], (1 - np.array(CFG.camera_mean))
                               / np.array(CFG.camera_std), rtol=1e-5)
    with pytest.raises(FeatureError, match='camera_image'):
        builder.camera_tensor(np.zeros((10, 10)))


def test_build_gives_the_features_contract():
    route = Route(np.stack([np.linspace(-20, 200, 50), np.zeros(50)], -1))
    feats = FeatureBuilder(CFG).build(_frame(np.zeros((0, 4), np.float32),
                                             np.zeros((128, 256, 3), np.uint8), route))
    assert feats.ego_status.shape == (STATUS_DIM,)
    np.testing.assert_allclose(feats.ego_status, [0, 1, 0, 0, 12.0, 0.5, 1.0, -0.2])
    assert feats.lidar_bev.dtype == np.float32 and feats.lidar_bev.sum() == 0
    assert feats.stamp_s == 3.0 and feats.route is route
    empty = FeatureBuilder(CFG).build(_frame())
    assert empty.camera.shape == (3, 32, 64) and empty.ego_status[3] == 1.0
    with pytest.raises(FeatureError, match='SensorFrame'):
        FeatureBuilder(CFG).build('frame')


def test_config_rejects_unknown_keys_and_bad_extent():
    with pytest.raises(PerceptionConfigError, match='unknown'):
        PerceptionConfig.from_dict({'resolution': 1.0})
    with pytest.raises(PerceptionConfigError, match='x_max_m'):
        PerceptionConfig(x_min_m=10.0, x_max_m=5.0)
    cfg = PerceptionConfig.from_dict(CFG.as_dict())
    assert cfg == CFG


def _floor_histogram(cfg: PerceptionConfig, pts: np.ndarray, mount) -> np.ndarray:
    """Return the reference: each transformed point floored to its cell (the grid's definition)."""
    c, s = np.cos(mount[3]), np.sin(mount[3])
    x = pts[:, 0] * c - pts[:, 1] * s + mount[0]
    y = pts[:, 0] * s + pts[:, 1] * c + mount[1]
    z = pts[:, 2] + mount[2]
    h, w = cfg.bev_height, cfg.bev_width
    hist = np.zeros((2, h, w), dtype=np.int64)
    for xi, yi, zi in zip(x, y, z):
        if not (np.isfinite(xi) and np.isfinite(yi) and np.isfinite(zi)):
            continue
        row = int(np.floor((cfg.x_max_m - xi) / cfg.resolution_m))
        col = int(np.floor((cfg.y_extent_m - yi) / cfg.resolution_m))
        if 0 <= row < h and 0 <= col < w and cfg.min_height_m <= zi <= cfg.max_height_m:
            hist[int(zi > cfg.split_height_m), row, col] += 1
    return (np.minimum(hist, cfg.hist_max_per_cell) / cfg.hist_max_per_cell).astype(np.float32)


@pytest.mark.parametrize('mount', [(0.0, 0.0, 2.4, 0.0), (1.3, -0.4, 2.0, 0.3)])
def test_histogram_equals_flooring_every_point_including_edges_and_non_finite(mount):
    cfg = PerceptionConfig(resolution_m=2.0)
    rng = np.random.default_rng(3)
    pts = rng.uniform(-70.0, 70.0, (3000, 4)).astype(np.float32)
    pts[:, 2] = rng.uniform(-4.0, 3.0, 3000)
    # Exact cell borders and grid edges (x_max, y_extent, multiples of the resolution).
    pts[:40, 0] = np.arange(40) * 2.0 - 30.0
    pts[:40, 1] = 32.0
    pts[40:60, 0] = 48.0
    pts[60, 0], pts[61, 1], pts[62, 2] = np.nan, np.inf, -np.inf
    pts[63, 0], pts[64, 1] = 1e30, -1e30
    got = lidar_histogram(cfg, pts, np.asarray(mount))
    np.testing.assert_array_equal(got, _floor_histogram(cfg, pts, np.asarray(mount)))
