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

"""Synthetic LiDAR and camera geometry: boxes and barriers appear where they should."""

import numpy as np
import pytest

from pair_drive_ros.core.agents import Agents
from pair_drive_ros.core.road import Lane, RoadMap
from pair_drive_ros.sim.sensors import (CameraConfig, LIDAR_SPLIT_HEIGHT_M, LidarConfig,
                                        project_points, render_camera, RoadGeometry,
                                        simulate_lidar, WALL_HEIGHT_M)

EGO = np.array([100.0, 50.0, 0.3])  # arbitrary map pose; everything is placed relative to it


def _agent_at(x_ego: float, y_ego: float, yaw_ego: float = 0.0, length=4.0, width=2.0,
              height=1.5) -> Agents:
    c, s = np.cos(EGO[2]), np.sin(EGO[2])
    pose = np.array([EGO[0] + c * x_ego - s * y_ego, EGO[1] + s * x_ego + c * y_ego,
                     EGO[2] + yaw_ego])
    return Agents([7], pose[None], [[length, width]], [[0.0, 0.0]], [height])


def _empty_road() -> RoadGeometry:
    return RoadGeometry.from_road(RoadMap([]))


def _above_ground(points: np.ndarray, cfg: LidarConfig) -> np.ndarray:
    return points[points[:, 2] + cfg.mount[2] > LIDAR_SPLIT_HEIGHT_M]


@pytest.mark.parametrize('x,y', [(20.0, 0.0), (12.0, 6.0), (-15.0, -4.0)])
def test_lidar_box_at_known_range_and_bearing(x, y):
    cfg = LidarConfig()
    pts = simulate_lidar(EGO, _agent_at(x, y), _empty_road(), cfg)
    assert pts.dtype == np.float32 and pts.shape[1] == 4
    obj = _above_ground(pts, cfg)
    assert len(obj) > 20
    # The box's near face: its closest point is the box surface point nearest the sensor.
    rng = np.hypot(obj[:, 0], obj[:, 1])
    nearest = obj[np.argmin(rng)]
    qx = np.clip(0.0, x - 2.0, x + 2.0)
    qy = np.clip(0.0, y - 1.0, y + 1.0)
    assert rng.min() == pytest.approx(np.hypot(qx, qy), abs=0.15)
    bearings = np.degrees(np.arctan2(obj[:, 1], obj[:, 0]))
    centre_bearing = np.degrees(np.arctan2(y, x))
    assert np.abs(bearings - centre_bearing).max() < 15.0
    assert np.hypot(*nearest[:2]) < np.hypot(x, y)
    # All object points lie on the box (in its frame: |x| <= 2, |y| <= 1, 0 <= z <= 1.5).
    local = obj[:, :2] - np.array([x, y])
    assert np.all(np.abs(local[:, 0]) <= 2.0 + 1e-3)
    assert np.all(np.abs(local[:, 1]) <= 1.0 + 1e-3)
    assert np.all(obj[:, 2] + cfg.mount[2] <= 1.5 + 1e-3)


def test_lidar_ground_and_range():
    cfg = LidarConfig(channels=8, horizontal_samples=90, range_m=30.0)
    pts = simulate_lidar(EGO, Agents.empty(), _empty_road(), cfg)
    np.testing.assert_allclose(pts[:, 2], -cfg.mount[2], atol=1e-5)
    assert np.linalg.norm(pts[:, :3], axis=1).max() <= cfg.range_m + 1e-4
    np.testing.assert_allclose(pts[:, 3], np.exp(-0.004 * np.linalg.norm(pts[:, :3], axis=1)),
                               rtol=1e-5)


def test_lidar_sees_barrier_at_continuous_road_edge():
    # One straight lane along the ego heading; its right edge (continuous) is a barrier.
    c, s = np.cos(EGO[2]), np.sin(EGO[2])
    xs = np.linspace(-60, 60, 61)
    centre = np.stack([EGO[0] + c * xs, EGO[1] + s * xs], -1)
    lane = Lane('a:b:0', centre, 4.0, left_line='striped', right_line='continuous')
    geo = RoadGeometry.from_road(RoadMap([lane]))
    assert len(geo.walls) > 0
    cfg = LidarConfig()
    pts = simulate_lidar(EGO, Agents.empty(), geo, cfg)
    obj = _above_ground(pts, cfg)
    assert len(obj) > 10
    np.testing.assert_allclose(obj[:, 1], -2.0, atol=0.05)
    assert np.all(obj[:, 2] + cfg.mount[2] <= WALL_HEIGHT_M + 1e-3)


@pytest.mark.parametrize('size', [(256, 128), (400, 300), (800, 600)])
def test_camera_box_projects_to_expected_pixels(size):
    cfg = CameraConfig(width=size[0], height=size[1])
    road = _empty_road()
    empty = render_camera(EGO, Agents.empty(), road, cfg)
    assert empty.shape == (size[1], size[0], 3) and empty.dtype == np.uint8
    x, y = 30.0, 3.0
    img = render_camera(EGO, _agent_at(x, y), road, cfg)
    changed = np.any(img != empty, axis=-1)
    rows, cols = np.nonzero(changed)
    # Expected: the box's 8 corners in the camera frame (mount x = 2, z = 2).
    mx, _, mz, _ = cfg.mount
    corners = np.array([[x + dx, y + dy, z] for dx in (-2, 2) for dy in (-1, 1)
                        for z in (0.0, 1.5)])
    cam = corners - np.array([mx, 0.0, mz])
    uv = project_points(cfg, cam)
    assert cols.min() == pytest.approx(uv[:, 0].min(), abs=1.5)
    assert cols.max() == pytest.approx(uv[:, 0].max(), abs=1.5)
    assert rows.min() == pytest.approx(uv[:, 1].min(), abs=1.5)
    assert rows.max() == pytest.approx(uv[:, 1].max(), abs=1.5)


def test_camera_horizon_and_road():
    cfg = CameraConfig(width=200, height=100)
    c, s = np.cos(EGO[2]), np.sin(EGO[2])
    xs = np.linspace(-20, 200, 111)
    lane = Lane('a:b:0', np.stack([EGO[0] + c * xs, EGO[1] + s * xs], -1), 4.0)
    img = render_camera(EGO, Agents.empty(), RoadGeometry.from_road(RoadMap([lane])), cfg)
    # Sky above the horizon row (blue dominates), asphalt straight ahead at the bottom centre.
    assert img[10, 100, 2] > img[10, 100, 0]
    bottom = img[-5, 100].astype(int)
    assert abs(bottom[0] - bottom[1]) < 15 and bottom[2] >= bottom[1]
    side = img[-5, 5].astype(int)
    assert side[1] > side[0]  # grass beside the lane


def test_sensors_are_deterministic_and_reject_bad_road():
    agents = _agent_at(10.0, 0.0)
    road = _empty_road()
    a = simulate_lidar(EGO, agents, road)
    b = simulate_lidar(EGO, agents, road)
    assert a.tobytes() == b.tobytes()
    with pytest.raises(TypeError, match='RoadMap'):
        simulate_lidar(EGO, agents, 'not a road')
