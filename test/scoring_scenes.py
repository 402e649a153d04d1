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

"""Synthetic scenes for the scorer tests, built from core types (shared by test_scoring_*)."""

import numpy as np

from pair_drive_ros.core import AgentTracks, EgoState, Lane, RoadMap, Route, Scene, Trajectory
from pair_drive_ros.core.scene import SCENE_DT_S, SCENE_FUTURE_STEPS

LANE_WIDTH = 4.0


def straight_lanes(num_lanes: int = 3, x0: float = -100.0, x1: float = 400.0,
                   spacing: float = 5.0, opposite: int = 0, speed_limit: float = 30.0):
    """
    Return (lanes, forward lane ids) of parallel lanes along +x.

    Lane i is centred at y = 4 i; `opposite` lanes at negative y run towards -x.
    """
    xs = np.arange(x0, x1 + 1e-9, spacing)
    lanes, forward = [], []
    for i in range(num_lanes):
        lanes.append(Lane(f'L{i}', np.c_[xs, np.full_like(xs, LANE_WIDTH * i)], LANE_WIDTH,
                          speed_limit_mps=speed_limit))
        forward.append(f'L{i}')
    for j in range(opposite):
        y = -LANE_WIDTH * (j + 1)
        lanes.append(Lane(f'O{j}', np.c_[xs[::-1], np.full_like(xs, y)], LANE_WIDTH,
                          speed_limit_mps=speed_limit))
    return lanes, tuple(forward)


def constant_velocity_tracks(agents: list, steps: int = SCENE_FUTURE_STEPS) -> AgentTracks:
    """agents: list of dicts with x, y, yaw, speed and optional length, width, accel."""
    m = len(agents)
    t = np.arange(steps) * SCENE_DT_S
    poses = np.zeros((steps, m, 3))
    vel = np.zeros((steps, m, 2))
    sizes = np.zeros((m, 2))
    for j, a in enumerate(agents):
        acc = a.get('accel', 0.0)
        v = np.maximum(a['speed'] + acc * t, 0.0)
        dist = a['speed'] * t + 0.5 * acc * t ** 2
        if acc < 0:
            t_stop = a['speed'] / -acc
            dist = np.where(t < t_stop, dist, a['speed'] * t_stop / 2)
        c, s = np.cos(a['yaw']), np.sin(a['yaw'])
        poses[:, j] = np.c_[a['x'] + c * dist, a['y'] + s * dist, np.full(steps, a['yaw'])]
        vel[:, j] = np.c_[c * v, s * v]
        sizes[j] = (a.get('length', 5.0), a.get('width', 2.0))
    if m == 0:
        # core.AgentTracks cannot hold zero agents (reshape(-1, 0, 3)); use one that never
        # exists instead
        return AgentTracks([0], [[5.0, 2.0]], np.full((steps, 1, 3), 1e4), np.zeros((steps, 1, 2)),
                           np.zeros((steps, 1), bool))
    return AgentTracks(np.arange(m) + 1, sizes, poses, vel, np.ones((steps, m), bool))


def straight_trajectory(speed: float, accel: float = 0.0, lateral: float = 0.0,
                        lateral_time: float = 2.0) -> Trajectory:
    """
    Return an ego-frame plan along x at `speed` with `accel` (stopping at 0).

    It moves `lateral` m to the left over `lateral_time` s (smooth step).
    """
    t = np.arange(1, 9) * 0.5
    v = np.maximum(speed + accel * t, 0.0)
    x = speed * t + 0.5 * accel * t ** 2
    if accel < 0:
        t_stop = speed / -accel
        x = np.where(t < t_stop, x, speed * t_stop / 2)
    u = np.clip(t / lateral_time, 0.0, 1.0)
    y = lateral * (3 * u ** 2 - 2 * u ** 3)
    dy = lateral * (6 * u - 6 * u ** 2) / lateral_time * (t < lateral_time)
    yaw = np.arctan2(dy, np.maximum(v, 1e-3))
    return Trajectory(np.c_[x, y, yaw])


def make_scene(speed: float = 10.0, agents: list | None = None, lanes=None, route_ids=None,
               ego_xy=(0.0, 0.0), ego_yaw: float = 0.0, history: bool = True,
               expert: Trajectory | None = None, route_points=None,
               token: str = 'synthetic') -> Scene:
    """Return an ego at `ego_xy` on a straight multi-lane road, with constant-velocity agents."""
    if lanes is None:
        lanes, fwd = straight_lanes()
        route_ids = fwd if route_ids is None else route_ids
    route_ids = tuple(route_ids or ())
    ego = EgoState([ego_xy[0], ego_xy[1], ego_yaw], velocity=[speed, 0.0])
    hist = None
    if history:
        t = np.arange(-15, 1) * SCENE_DT_S
        hist = np.c_[ego_xy[0] + np.cos(ego_yaw) * speed * t,
                     ego_xy[1] + np.sin(ego_yaw) * speed * t, np.full(len(t), ego_yaw)]
    else:
        hist = np.array([[ego_xy[0], ego_xy[1], ego_yaw]])
    if route_points is None:
        route_points = lanes[0].centerline if lanes else np.array([[-100.0, 0.0], [400.0, 0.0]])
    tracks = constant_velocity_tracks(agents or [])
    return Scene(token, ego, hist, tracks, RoadMap(list(lanes)), Route(route_points), route_ids,
                 expert)


def arc_lanes(num_lanes: int = 2, radius: float = 60.0, spacing_deg: float = 4.0):
    """Lanes curving left around (0, radius), starting at the origin heading +x."""
    ang = np.deg2rad(np.arange(-40.0, 120.0 + 1e-9, spacing_deg))
    lanes, ids = [], []
    for i in range(num_lanes):
        r = radius - LANE_WIDTH * i
        pts = np.c_[r * np.sin(ang), radius - r * np.cos(ang)]
        lanes.append(Lane(f'A{i}', pts, LANE_WIDTH))
        ids.append(f'A{i}')
    return lanes, tuple(ids)


def random_scene(rng: np.random.Generator, token: str = 'random') -> Scene:
    """
    Return a small random scene.

    Straight or curved lanes, maybe an opposite lane and a crossing junction lane, 2-5 agents
    near the ego.
    """
    speed = float(rng.uniform(0.0, 15.0))
    kind = rng.integers(3)
    if kind == 2:
        lanes, fwd = arc_lanes(int(rng.integers(1, 3)))
        route_points = lanes[0].centerline
    else:
        lanes, fwd = straight_lanes(int(rng.integers(1, 4)), x0=-60.0, x1=160.0, spacing=10.0,
                                    opposite=int(rng.integers(0, 2)))
        route_points = lanes[0].centerline
        if kind == 1:
            ys = np.arange(-30.0, 30.0 + 1e-9, 10.0)
            xj = float(rng.uniform(20.0, 50.0))
            lanes.append(Lane('J0', np.c_[np.full_like(ys, xj), ys], 8.0, in_intersection=True))
    agents = []
    for _ in range(int(rng.integers(2, 6))):
        lane = lanes[int(rng.integers(len(lanes)))]
        k = int(rng.integers(len(lane.centerline) // 4, 3 * len(lane.centerline) // 4))
        x, y = lane.centerline[k]
        yaw = lane.headings[k] + rng.normal(0.0, 0.1)
        agents.append(dict(x=x, y=y + rng.normal(0, 0.5), yaw=yaw,
                           speed=float(rng.choice([0.0, rng.uniform(0.0, 15.0)])),
                           accel=float(rng.uniform(-2.0, 1.0))))
    # an agent close behind or ahead of the ego in its lane, so collisions happen
    agents.append(dict(x=float(rng.uniform(-12.0, 25.0)), y=float(rng.normal(0.0, 1.0)),
                       yaw=float(rng.normal(0.0, 0.05)), speed=float(rng.uniform(0.0, 15.0))))
    scene = make_scene(speed, agents, lanes, fwd, route_points=route_points, token=token)
    if rng.random() < 0.4:
        # extra drivable areas next to the road: a rotated box and a ring (polygon with a hole)
        from shapely.geometry import Point
        c = np.array([rng.uniform(0.0, 40.0), rng.choice([-4.0, 4.0 * len(fwd)])])
        a = rng.uniform(0.0, np.pi)
        box = c + np.array([[8, 3], [-8, 3], [-8, -3], [8, -3]]) @ np.array(
            [[np.cos(a), np.sin(a)], [-np.sin(a), np.cos(a)]])
        ring = Point(*rng.uniform([0.0, -10.0], [40.0, 10.0])).buffer(9.0).difference(
            Point(0.0, 0.0).buffer(0.1).union(Point(*c).buffer(4.0)))
        scene.road.drivable_areas = [box, ring]
    return scene


def random_candidates(rng: np.random.Generator, speed: float, g: int) -> np.ndarray:
    """(g, 8, 3) smooth-ish random ego-frame plans around a start speed."""
    out = []
    for _ in range(g):
        accel = float(rng.uniform(-5.0, 3.0))
        lateral = float(rng.uniform(-6.0, 6.0)) * rng.integers(0, 2)
        traj = straight_trajectory(speed, accel, lateral, float(rng.uniform(1.0, 4.0)))
        poses = traj.poses.copy()
        curv = float(rng.normal(0.0, 0.01))
        s = poses[:, 0]
        poses[:, 1] += 0.5 * curv * s ** 2
        poses[:, 2] += curv * s + rng.normal(0.0, 0.02, 8)
        out.append(poses)
    return np.stack(out)


def states_from_centres(centres: np.ndarray, heading, speed, vehicle) -> np.ndarray:
    """(T, 11) simulated-state rows whose box centres are `centres` (T, 2)."""
    centres = np.asarray(centres, dtype=np.float64)
    heading = np.broadcast_to(np.asarray(heading, dtype=np.float64), (len(centres),))
    states = np.zeros((len(centres), 11))
    r = vehicle.rear_axle_to_center_m
    states[:, 0] = centres[:, 0] - r * np.cos(heading)
    states[:, 1] = centres[:, 1] - r * np.sin(heading)
    states[:, 2] = heading
    states[:, 3] = speed
    return states
