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

"""The speed governor: re-times plans to the speed limit and the route's curve speed."""

from dataclasses import asdict, replace

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

from pair_drive_ros.core.route import Route
from pair_drive_ros.core.trajectory import MAP_FRAME, Trajectory
from pair_drive_ros.runtime.speed_governor import (allowed_speed, corridor_hit, govern, Obstacle,
                                                   SpeedGovernor, SpeedGovernorConfig)

ON = SpeedGovernorConfig(enabled=True, lateral_accel_mps2=2.0, decel_mps2=2.0)


def straight_route(length: float = 300.0) -> Route:
    return Route(np.stack([np.linspace(-10.0, length, 60), np.zeros(60)], -1))


def circle_route(radius: float) -> Route:
    th = np.linspace(-np.pi / 2, 1.5 * np.pi, 400)
    return Route(np.stack([radius * np.cos(th), radius + radius * np.sin(th)], -1))


def straight_plan(speed: float) -> Trajectory:
    x = speed * 0.5 * np.arange(1, 9)
    return Trajectory(np.stack([x, np.zeros(8), np.zeros(8)], -1))


def speeds(traj: Trajectory) -> np.ndarray:
    pts = np.vstack([np.zeros(2), traj.xy])
    return np.linalg.norm(np.diff(pts, axis=0), axis=1) / traj.dt_s


def test_route_curvature_of_a_circle_and_a_line():
    assert np.allclose(straight_route().curvature(np.array([5.0, 50.0])), 0.0)
    kappa = circle_route(20.0).curvature(np.array([10.0, 30.0, 60.0]))
    assert np.allclose(kappa, 1 / 20.0, rtol=0.05)


def test_plan_within_limits_is_returned_unchanged():
    plan = straight_plan(8.0)
    assert govern(plan, np.zeros(3), straight_route(), 10.0, ON) is plan


def test_disabled_or_without_road_information_returns_the_plan():
    plan = straight_plan(30.0)
    assert govern(plan, np.zeros(3), straight_route(), 10.0, SpeedGovernorConfig()) is plan
    assert govern(plan, np.zeros(3), None, None, ON) is plan


def test_speed_limit_caps_a_fast_plan_on_a_straight_road():
    out = govern(straight_plan(15.0), np.zeros(3), straight_route(), 10.0, ON)
    assert np.allclose(speeds(out), 10.0, atol=0.05)
    assert np.allclose(out.poses[:, 1:], 0.0)
    factor = SpeedGovernorConfig(enabled=True, limit_factor=1.2)
    assert np.allclose(speeds(govern(straight_plan(15.0), np.zeros(3), straight_route(), 10.0,
                                     factor)), 12.0, atol=0.05)


def test_curve_speed_and_braking_into_a_curve_ahead():
    # A straight 40 m, then a circle of radius 8 m (curve speed 4 m/s at 2 m/s^2).
    th = np.linspace(-np.pi / 2, np.pi / 2, 100)
    ring = np.stack([40.0 + 8.0 * np.cos(th), 8.0 + 8.0 * np.sin(th)], -1)
    route = Route(np.vstack([np.stack([np.linspace(0.0, 39.9, 40), np.zeros(40)], -1), ring]))
    d, allowed = allowed_speed(route, 0.0, 60.0, None, ON)
    assert allowed[int(45 / 1.0)] == pytest.approx(4.0, rel=0.1)
    # 20 m before the curve: at most sqrt(4^2 + 2 * 2 * 20) ~ 9.8 m/s
    assert allowed[20] <= np.sqrt(16 + 2 * 2.0 * 22.5) + 0.3
    assert allowed[0] > allowed[20] > allowed[45]
    out = govern(straight_plan(12.0), np.zeros(3), route, None, ON)
    v = speeds(out)
    assert v[0] <= np.interp(0.0, d, allowed) + 0.1
    assert np.all(np.diff(v) <= 0.1)   # it only slows down approaching the curve


def test_map_frame_plan_stays_in_the_map_frame():
    ego = np.array([100.0, 5.0, 0.3])
    local = straight_plan(15.0)
    heading = np.array([np.cos(0.3), np.sin(0.3)])
    route = Route(local.to_map(ego).xy[[0, -1]] + np.array([-heading, 50 * heading]))
    out = govern(local.to_map(ego), ego, route, 10.0, ON)
    assert out.frame == MAP_FRAME
    back = out.to_ego(ego)
    assert np.allclose(speeds(back), 10.0, atol=0.05)


def test_bad_settings_are_refused():
    for bad in ({'lateral_accel_mps2': 0.0}, {'decel_mps2': -1.0}, {'limit_factor': np.nan}):
        with pytest.raises(ValueError, match='speed governor'):
            SpeedGovernorConfig(enabled=True, **bad)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 40.0), min_size=8, max_size=8), st.floats(1.0, 40.0),
       st.floats(5.0, 60.0))
def test_governed_plan_never_leads_the_plan_and_keeps_its_path(step_speeds, limit, radius):
    # Any forward plan along a circle: the governed plan is never further along than the plan
    # at the same time, and never faster than allowed (limit, curve speed).
    arc = np.cumsum(np.asarray(step_speeds) * 0.5)
    th = arc / radius
    poses = np.stack([radius * np.sin(th), radius * (1 - np.cos(th)), th], -1)
    plan = Trajectory(poses)
    route = circle_route(radius)
    out = govern(plan, np.zeros(3), route, limit, ON)
    out_arc = np.cumsum(speeds(out) * 0.5)
    assert np.all(out_arc <= arc + 1e-6)
    # Every governed pose lies on the plan's polyline (origin first).
    poly = Route(np.vstack([np.zeros(2), plan.xy])) if np.ptp(plan.xy) > 1e-6 else None
    if poly is not None:
        _, lateral = poly.project(out.xy)
        assert np.all(np.abs(lateral) < 1e-6)
    cap = min(limit, np.sqrt(2.0 * radius))
    assert np.all(speeds(out) <= np.maximum(cap * 1.08 + 0.1, 0.0) + 1e-6) or out is plan


GAP = SpeedGovernorConfig(enabled=True, keep_gap=True, decel_mps2=2.0, standstill_gap_m=5.0,
                          headway_s=1.0)


def car_cells(x0: float, y0: float = 0.0) -> np.ndarray:
    """Return LiDAR cells on the rear of a car whose back is at x0 (ego frame)."""
    return np.stack([np.full(5, x0), y0 + np.linspace(-1.0, 1.0, 5)], -1)


def test_corridor_hit_finds_the_first_obstacle_on_the_path_only():
    path = np.vstack([np.zeros(2), straight_plan(10.0).xy])
    cells = np.vstack([car_cells(30.0), car_cells(20.0, y0=4.0), car_cells(-5.0)])
    assert corridor_hit(path, cells, 1.5) == pytest.approx(30.0)
    assert corridor_hit(path, car_cells(20.0, y0=4.0), 1.5) is None
    assert corridor_hit(path, np.zeros((0, 2)), 1.5) is None


def test_static_obstacle_stops_the_plan_before_it():
    gov = SpeedGovernor(GAP)
    out = gov(straight_plan(10.0), np.zeros(3), 0.0, None, None, car_cells(20.0))
    assert out.poses[-1, 0] <= 20.0 - GAP.standstill_gap_m + 1e-6
    assert np.all(np.diff(speeds(out)) <= 1e-6)


def test_lead_speed_from_two_plans_lets_the_ego_follow():
    # The lead drives 8 m/s: the ego at 10 m/s, 30 m behind, may keep close to its speed.
    gov = SpeedGovernor(GAP)
    ego0 = np.zeros(3)
    gov(straight_plan(10.0), ego0, 0.0, None, None, car_cells(30.0))
    ego1 = np.array([5.0, 0.0, 0.0])            # the ego moved 5 m in 0.5 s, the lead 4 m
    obstacle = gov.obstacle(straight_plan(10.0), ego1, 0.5, car_cells(29.0))
    assert obstacle.distance_m == pytest.approx(29.0)
    assert obstacle.speed_mps == pytest.approx(8.0)
    followed = govern(straight_plan(10.0), ego1, None, None, GAP, obstacle)
    stopped = govern(straight_plan(10.0), ego1, None, None, GAP, Obstacle(29.0, 0.0))
    assert speeds(followed)[-1] >= 8.0 - 1e-6
    assert followed.poses[-1, 0] > stopped.poses[-1, 0]


def test_the_governor_forgets_the_lead_on_reset_and_on_a_time_jump():
    gov = SpeedGovernor(GAP)
    gov(straight_plan(10.0), np.zeros(3), 5.0, None, None, car_cells(30.0))
    assert gov.obstacle(straight_plan(10.0), np.zeros(3), 1.0, car_cells(20.0)).speed_mps == 0.0
    gov.reset()
    assert gov.obstacle(straight_plan(10.0), np.zeros(3), 1.5, car_cells(20.0)).speed_mps == 0.0


def test_obstacle_cells_are_the_non_empty_cells_above_the_split_height():
    from pair_drive_ros.perception.builder import lidar_histogram, obstacle_cells
    from pair_drive_ros.perception.config import PerceptionConfig

    cfg = PerceptionConfig()
    points = np.array([[20.3, 0.4, 1.0], [20.6, 0.2, 1.2], [10.5, -3.5, -2.3]])
    cells = obstacle_cells(cfg, lidar_histogram(cfg, points, np.zeros(4)))
    assert cells.shape == (1, 2)
    assert np.all(np.abs(cells[0] - points[0, :2]) <= cfg.resolution_m)


ACC = replace(GAP, lane_half_width_m=1.5, min_lead_speed_mps=1.0)


def lane_change_plan() -> Trajectory:
    """10 m/s ahead, drifting 2 m to the left over 4 s."""
    x = straight_plan(10.0).xy[:, 0]
    return Trajectory(np.c_[x, np.linspace(0.25, 2.0, len(x)), np.zeros(len(x))])


def test_in_the_lane_only_a_moving_lead_is_followed():
    route = straight_route()
    plan = straight_plan(10.0)
    acc = SpeedGovernor(ACC)
    # First sight: no speed measured yet, so nothing is followed.
    assert acc.obstacle(plan, np.zeros(3), 0.0, car_cells(30.0), route) is None
    # The ego moved 5 m in 0.5 s and the cells stayed put: stationary, left to the planner.
    ego1 = np.array([5.0, 0.0, 0.0])
    assert acc.obstacle(plan, ego1, 0.5, car_cells(25.0), route) is None
    assert acc(plan, ego1, 0.5, route, None, car_cells(25.0)) is plan
    # A lead that drives 8 m/s is followed.
    acc.reset()
    acc.obstacle(plan, np.zeros(3), 0.0, car_cells(30.0), route)
    lead = acc.obstacle(plan, ego1, 0.5, car_cells(29.0), route)
    assert lead is not None and lead.speed_mps == pytest.approx(8.0)
    # Without a lane every cell is in it: the same rule for all of them.
    acc.reset()
    acc.obstacle(plan, np.zeros(3), 0.0, car_cells(30.0, 4.0) + [0.0, -4.0], None)
    assert acc.obstacle(plan, ego1, 0.5, car_cells(25.0), None) is None
    for name in ('lane_half_width_m', 'min_lead_speed_mps'):
        with pytest.raises(ValueError, match=name):
            SpeedGovernorConfig(**{name: -1.0})


def test_beside_the_lane_a_barrier_the_plan_heads_into_stops_it():
    # A barrier 2.4 m left of the route (a road edge): a plan that drifts 2 m left meets it
    # in its corridor and stops before it; a plan that keeps its lane passes it.
    route = straight_route()
    barrier = np.stack([np.linspace(20.0, 40.0, 21), np.full(21, 2.4)], -1)
    acc = SpeedGovernor(ACC)
    hit = acc.obstacle(lane_change_plan(), np.zeros(3), 0.0, barrier, route)
    assert hit is not None and hit.distance_m == pytest.approx(20.0, abs=1.0)
    assert hit.speed_mps == 0.0
    out = acc(lane_change_plan(), np.zeros(3), 0.0, route, None, barrier)
    # It stops within one step of the allowed-speed profile (STEP_M) of the gap.
    assert out.poses[-1, 0] <= hit.distance_m - ACC.standstill_gap_m + 1.0
    assert acc(straight_plan(10.0), np.zeros(3), 0.5, route, None, barrier) \
        .poses[-1, 0] == pytest.approx(40.0)
    # Pure adaptive cruise: nothing beside the lane counts.
    cruise = SpeedGovernor(replace(ACC, beside_lane=False))
    assert cruise.obstacle(lane_change_plan(), np.zeros(3), 0.0, barrier, route) is None


def test_keep_lane_drives_the_route_where_the_plan_heads_into_something_beside_it():
    route = straight_route()
    barrier = np.stack([np.linspace(20.0, 40.0, 21), np.full(21, 2.4)], -1)
    keep = SpeedGovernor(replace(ACC, beside_lane_action='keep_lane'))
    hit = keep.obstacle(lane_change_plan(), np.zeros(3), 0.0, barrier, route)
    assert hit is not None and hit.beside
    keep.reset()
    out = keep(lane_change_plan(), np.zeros(3), 0.0, route, None, barrier)
    # The route's lane at the plan's speeds: on the centreline, as far along as the plan.
    np.testing.assert_allclose(out.poses[:, 1:], 0.0, atol=1e-9)
    np.testing.assert_allclose(out.poses[-1, 0], np.linalg.norm(np.diff(
        np.vstack([np.zeros(2), lane_change_plan().xy]), axis=0), axis=1).sum())
    # An ego 1 m left of the route starts from where it is and is back on the lane at the end.
    ego = np.array([0.0, 1.0, 0.0])
    keep.reset()
    out = keep(lane_change_plan(), ego, 0.0, route, None, barrier - [0.0, 1.0])
    assert 0.0 < -out.poses[0, 1] < 0.2 and out.poses[-1, 1] == pytest.approx(-1.0)
    # A lane change with nothing beside the lane in its way is passed on unchanged, and in the
    # map frame the lane path comes back in the map frame.
    plan = lane_change_plan()
    assert keep(plan, np.zeros(3), 1.0, route, None, np.zeros((0, 2))) is plan
    keep.reset()
    in_map = keep(lane_change_plan().to_map(np.zeros(3)), np.zeros(3), 0.0, route, None, barrier)
    assert in_map.frame == MAP_FRAME
    np.testing.assert_allclose(in_map.poses[:, 1], 0.0, atol=1e-9)
    with pytest.raises(ValueError, match='beside_lane_action'):
        SpeedGovernorConfig(beside_lane_action='swerve')


def test_the_planner_node_runs_the_governor_with_adaptive_cruise():
    from pair_drive_ros.nodes.params import PlannerParams

    cruise = SpeedGovernorConfig.adaptive_cruise()
    assert PlannerParams().governor() == cruise
    assert cruise.enabled and cruise.keep_gap and not cruise.beside_lane
    assert cruise.lane_half_width_m > 0 and cruise.min_lead_speed_mps > 0
    assert SpeedGovernorConfig.adaptive_cruise(beside_lane=True).beside_lane


def test_describe_names_the_mode_and_from_dict_reads_older_or_newer_dicts():
    assert SpeedGovernorConfig().describe() == 'off'
    assert SpeedGovernorConfig(enabled=True).describe() == 'limits'
    assert SpeedGovernorConfig(enabled=True, keep_gap=True).describe() == 'gap'
    assert SpeedGovernorConfig.adaptive_cruise().describe() == 'adaptive cruise'
    assert SpeedGovernorConfig.adaptive_cruise(beside_lane=True).describe() == 'gap, lane apart'
    assert SpeedGovernorConfig.adaptive_cruise(
        beside_lane=True, beside_lane_action='keep_lane').describe() \
        == 'gap, lane apart, keeps the lane'
    saved = asdict(SpeedGovernorConfig.adaptive_cruise())
    assert SpeedGovernorConfig.from_dict(saved) == SpeedGovernorConfig.adaptive_cruise()
    assert SpeedGovernorConfig.from_dict({'enabled': True, 'a_later_field': 1.0}).enabled
    assert SpeedGovernorConfig.from_dict(None) == SpeedGovernorConfig()
