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

"""Hand-built scenes with known answers for every sub-metric, aggregation and the filter."""

import numpy as np
import pytest
from scoring_scenes import (make_scene, states_from_centres, straight_lanes,
                            straight_trajectory)

from pair_drive_ros.core import Lane, Trajectory
from pair_drive_ros.scoring import (aggregate_epdms, aggregate_pdms, constant_velocity_trajectory,
                                    human_filter_mask, Metric, prepare_scene, reference_plan,
                                    reference_progress, score_candidates, score_scenes,
                                    ScorerConfig)
from pair_drive_ros.scoring import metrics

CFG = ScorerConfig()
V1 = ScorerConfig(navsim_version='v1')
T = 41


def _score(scene, *plans, cfg=CFG, reference=None, prev=None):
    poses = np.stack([p.poses for p in plans])
    return score_candidates(scene, poses, cfg, reference=reference, prev_states=prev)


def _geo(scene, states, cfg=CFG):
    prep = prepare_scene(scene, cfg)
    return prep, metrics.ego_geometry(np.asarray(states)[None] if np.ndim(states) == 2
                                      else np.asarray(states), prep, cfg)


# ---------------------------------------------------------------- NC
def test_head_on_collision_is_at_fault():
    oncoming = dict(x=45.0, y=0.0, yaw=np.pi, speed=10.0)
    scene = make_scene(10.0, [oncoming])
    table = _score(scene, straight_trajectory(10.0), reference=40.0)
    assert table[Metric.NC][0] == 0.0
    assert table.pdms[0] == 0.0 and table.epdms[0] == 0.0


def test_rear_end_by_fast_follower_is_not_at_fault_but_fails_ttc():
    follower = dict(x=-21.0, y=0.0, yaw=0.0, speed=20.0)
    scene = make_scene(5.0, [follower])
    table = _score(scene, straight_trajectory(5.0), reference=20.0)
    assert table[Metric.NC][0] == 1.0
    # NAVSIM quirk: the follower's future centroid passes the ego's rear axle -> "ahead"
    assert table[Metric.TTC][0] == 0.0


def test_stopped_ego_hit_head_on_is_not_at_fault_and_skips_ttc():
    oncoming = dict(x=30.0, y=0.0, yaw=np.pi, speed=10.0)
    scene = make_scene(0.0, [oncoming])
    table = _score(scene, straight_trajectory(0.0), reference=0.0)
    assert table[Metric.NC][0] == 1.0
    assert table[Metric.TTC][0] == 1.0


def test_hitting_a_stopped_car_is_at_fault():
    parked = dict(x=25.0, y=0.0, yaw=0.0, speed=0.0)
    scene = make_scene(10.0, [parked])
    table = _score(scene, straight_trajectory(10.0), reference=40.0)
    assert table[Metric.NC][0] == 0.0


def test_v2_drops_agents_overlapping_the_ego_at_start_v1_keeps_them():
    on_top = dict(x=1.0, y=0.0, yaw=0.0, speed=0.0)
    scene = make_scene(10.0, [on_top])
    assert _score(scene, straight_trajectory(10.0), reference=40.0)[Metric.NC][0] == 1.0
    assert _score(scene, straight_trajectory(10.0), cfg=V1, reference=40.0)[Metric.NC][0] == 0.0


# ---------------------------------------------------------------- DAC
def test_one_corner_off_the_road_fails_dac():
    lanes, fwd = straight_lanes(1)
    scene = make_scene(0.0, lanes=lanes, route_ids=fwd)
    veh = CFG.vehicle
    one_out = states_from_centres(np.tile([10.0, -0.95], (T, 1)), -0.03, 0.0, veh)
    _, geo = _geo(scene, one_out)
    assert geo.non_drivable.all() and not geo.multiple_lanes.any()
    assert metrics.drivable_area_compliance(geo)[0] == 0.0
    inside = states_from_centres(np.tile([10.0, -0.9], (T, 1)), 0.0, 0.0, veh)
    _, geo = _geo(scene, inside)
    assert metrics.drivable_area_compliance(geo)[0] == 1.0


def test_leaving_the_road_plan_fails_dac_and_pdms():
    lanes, fwd = straight_lanes(1)
    scene = make_scene(10.0, lanes=lanes, route_ids=fwd)
    table = _score(scene, straight_trajectory(10.0, lateral=-3.0), straight_trajectory(10.0),
                   reference=40.0)
    np.testing.assert_array_equal(table[Metric.DAC], [0.0, 1.0])
    assert table.pdms[0] == 0.0 and table.pdms[1] > 0.9


def test_extra_drivable_areas_count_for_dac_but_are_no_lane():
    lanes, fwd = straight_lanes(1)
    scene = make_scene(0.0, lanes=lanes, route_ids=fwd)
    states = states_from_centres(np.tile([10.0, -1.5], (T, 1)), 0.0, 0.0, CFG.vehicle)
    _, geo = _geo(scene, states)
    assert metrics.drivable_area_compliance(geo)[0] == 0.0
    scene.road.drivable_areas = [np.array([[0.0, -4.0], [20.0, -4.0], [20.0, -1.0],
                                           [0.0, -1.0]])]
    _, geo = _geo(scene, states)
    assert metrics.drivable_area_compliance(geo)[0] == 1.0
    assert not geo.multiple_lanes.any()


def test_straddling_two_lanes_is_multiple_lanes():
    scene = make_scene(0.0)
    states = states_from_centres(np.tile([10.0, 2.0], (T, 1)), 0.0, 0.0, CFG.vehicle)
    _, geo = _geo(scene, states)
    assert geo.multiple_lanes.all() and not geo.non_drivable.any()


# ---------------------------------------------------------------- DDC
@pytest.mark.parametrize('speed, expected', [(1.0, 1.0), (3.0, 0.5), (6.0, 0.0)])
def test_ddc_thresholds_on_oncoming_lane(speed, expected):
    lanes, fwd = straight_lanes(1, opposite=1)
    scene = make_scene(speed, lanes=lanes, route_ids=fwd)
    x = 10.0 + speed * 0.1 * np.arange(T)
    states = states_from_centres(np.c_[x, np.full(T, -4.0)], 0.0, speed, CFG.vehicle)
    _, geo = _geo(scene, states)
    # window k-10..k: 10 steps of speed * 0.1 m -> 1.0, 3.0, 6.0 m
    assert metrics.driving_direction_compliance(geo, CFG)[0] == expected


def test_ddc_skips_intersection_steps_in_v2_only():
    lanes, fwd = straight_lanes(1)
    xs = np.arange(-100.0, 400.0, 5.0)
    lanes.append(Lane('X', np.c_[xs[::-1], np.full_like(xs, -4.0)], 4.0, in_intersection=True))
    scene = make_scene(8.0, lanes=lanes, route_ids=fwd)
    x = 10.0 + 0.8 * np.arange(T)
    states = states_from_centres(np.c_[x, np.full(T, -4.0)], 0.0, 8.0, CFG.vehicle)
    _, geo = _geo(scene, states)
    assert metrics.driving_direction_compliance(geo, CFG)[0] == 1.0
    _, geo = _geo(scene, states, V1)
    assert metrics.driving_direction_compliance(geo, V1)[0] == 0.0


# ---------------------------------------------------------------- EP
def test_stop_on_a_free_road_gives_low_progress():
    scene = make_scene(10.0)
    ref = reference_progress(scene)
    assert ref > 30.0
    table = _score(scene, straight_trajectory(10.0, accel=-6.0), reference=ref)
    assert table[Metric.EP][0] < 0.5
    standing = make_scene(0.0)
    table = _score(standing, straight_trajectory(0.0))
    assert table.reference_progress_m > 5.0
    assert table[Metric.EP][0] == 0.0
    assert table[Metric.NC][0] == table[Metric.DAC][0] == 1.0


def test_ep_five_metre_rule():
    standing = make_scene(0.0)
    for cfg in (CFG, V1):
        table = _score(standing, straight_trajectory(0.0), straight_trajectory(0.5), cfg=cfg,
                       reference=4.0)
        assert table.progress_m.max() < 5.0
        np.testing.assert_array_equal(table[Metric.EP], [1.0, 1.0])


def test_ep_is_progress_over_reference():
    scene = make_scene(10.0)
    table = _score(scene, straight_trajectory(10.0), reference=80.0)
    assert table[Metric.EP][0] == pytest.approx(table.progress_m[0] / 80.0)
    assert table.progress_m[0] == pytest.approx(40.0, abs=0.5)


# ---------------------------------------------------------------- TTC
def test_ttc_fails_for_a_stopped_car_within_the_projection():
    parked = dict(x=13.0, y=0.0, yaw=0.0, speed=0.0)   # 8 m gap < 0.9 s at 10 m/s
    table = _score(make_scene(10.0, [parked]), straight_trajectory(10.0, accel=-8.0),
                   reference=40.0)
    assert table[Metric.TTC][0] == 0.0


def test_ttc_passes_for_a_car_in_the_next_lane():
    parked = dict(x=13.0, y=4.0, yaw=0.0, speed=0.0)
    table = _score(make_scene(10.0, [parked]), straight_trajectory(10.0), reference=40.0)
    assert table[Metric.TTC][0] == 1.0 and table[Metric.NC][0] == 1.0


def test_ttc_same_speed_leader_with_gap_passes():
    leader = dict(x=15.0, y=0.0, yaw=0.0, speed=10.0)
    table = _score(make_scene(10.0, [leader]), straight_trajectory(10.0), reference=40.0)
    assert table[Metric.TTC][0] == 1.0 and table[Metric.NC][0] == 1.0


# ---------------------------------------------------------------- C, HC, EC
def test_harsh_braking_fails_comfort_gentle_passes():
    scene = make_scene(15.0)
    table = _score(scene, straight_trajectory(15.0, accel=-8.0),
                   straight_trajectory(15.0, accel=-0.5), reference=60.0)
    np.testing.assert_array_equal(table[Metric.C], [0.0, 1.0])


def test_history_comfort_uses_the_logged_history():
    scene = make_scene(10.0)
    plan = straight_trajectory(10.0)
    assert _score(scene, plan, reference=40.0)[Metric.HC][0] == 1.0
    swerve = scene.ego_history.copy()
    swerve[:, 2] = np.where(np.arange(len(swerve)) % 2 == 0, 0.3, -0.3)
    scene.ego_history = swerve
    assert _score(scene, plan, reference=40.0)[Metric.HC][0] == 0.0
    no_hist = make_scene(10.0, history=False)
    assert _score(no_hist, straight_trajectory(10.0, accel=-9.0),
                  reference=40.0)[Metric.HC][0] == 1.0


def _turn_entry(speed: float = 4.0, yaw_accel: float = 1.5, yaw_rate: float = 0.6):
    """
    Return a scene whose ego history enters a left turn, and states that continue the arc.

    The yaw rate ramps up at `yaw_accel` from t = -1.0 s to `yaw_rate`, at constant speed; the
    (1, 41, S) states continue the arc as the bicycle model would carry it (no lateral
    acceleration output).
    """
    from dataclasses import replace
    from pair_drive_ros.scoring.simulation import NUM_STATE, StateIndex
    dt, fine = 0.1, 100
    t = np.arange(-15 * fine, 40 * fine + 1) * dt / fine
    w = np.clip((t + 1.0) * yaw_accel, 0.0, yaw_rate)
    h = np.concatenate([[0.0], np.cumsum(w[:-1]) * dt / fine])
    x = np.concatenate([[0.0], np.cumsum(speed * np.cos(h[:-1])) * dt / fine])
    y = np.concatenate([[0.0], np.cumsum(speed * np.sin(h[:-1])) * dt / fine])
    w, h, x, y = w[::fine], h[::fine], x[::fine], y[::fine]
    r = CFG.vehicle.rear_axle_to_center_m
    centre = np.c_[x + r * np.cos(h), y + r * np.sin(h), h]
    scene = replace(make_scene(speed, ego_xy=centre[15, :2], ego_yaw=h[15]),
                    ego_history=centre[:16])
    states = np.zeros((1, T, NUM_STATE))
    states[0, :, StateIndex.X], states[0, :, StateIndex.Y] = x[15:], y[15:]
    states[0, :, StateIndex.HEADING] = h[15:]
    states[0, :, StateIndex.VELOCITY_X] = speed
    states[0, :, StateIndex.ANGULAR_VELOCITY] = w[15:]
    return scene, states


def test_history_rows_carry_no_yaw_rate_as_navsim_builds_them():
    from pair_drive_ros.scoring.simulation import StateIndex
    scene, _ = _turn_entry()
    hist = prepare_scene(scene, CFG).history_states
    assert hist.shape[0] == 12                  # 16 logged poses less two at each end
    assert not hist[:, StateIndex.ANGULAR_VELOCITY].any()
    assert not hist[:, StateIndex.ANGULAR_ACCELERATION].any()
    assert not hist[:, StateIndex.STEERING_ANGLE].any()
    # the finite-difference dynamics are kept: constant speed, v w lateral acceleration
    np.testing.assert_allclose(hist[:, StateIndex.VELOCITY_X], 4.0, atol=0.02)
    np.testing.assert_allclose(hist[-1, StateIndex.ACCELERATION_Y], 4.0 * 0.6, atol=0.05)


def test_turn_entry_history_passes_hc_without_differentiated_yaw_rate():
    from pair_drive_ros.scoring.simulation import StateIndex
    scene, states = _turn_entry()
    prep = prepare_scene(scene, CFG)
    assert metrics.history_comfort(states, prep, CFG)[0] == 1.0
    # Differentiating the history's yaw rate instead puts r dw/dt = 2.5 m * 1.5 rad/s^2 into
    # the history rows' a_x at the box centre, over the 2.4 m/s^2 bound: HC would be 0.
    yaw = np.unwrap(scene.ego_history[:, 2])
    rate = np.gradient(yaw, scene.dt_s)
    rows = prep.history_states.copy()
    rows[:, StateIndex.ANGULAR_VELOCITY] = rate[2:-2]
    rows[:, StateIndex.ANGULAR_ACCELERATION] = np.gradient(rate, scene.dt_s)[2:-2]
    object.__setattr__(prep, 'history_states', rows)
    assert metrics.history_comfort(states, prep, CFG)[0] == 0.0


def test_extended_comfort_against_previous_frame():
    scene = make_scene(10.0)
    steady = _score(scene, straight_trajectory(10.0), reference=40.0)
    assert not steady.ec_used
    again = _score(scene, straight_trajectory(10.0), straight_trajectory(10.0, accel=-6.0),
                   reference=40.0, prev=steady.states[0])
    assert again.ec_used
    np.testing.assert_array_equal(again[Metric.EC], [1.0, 0.0])


def test_ec_weight_dropped_without_previous_frame():
    scene = make_scene(10.0)
    table = _score(scene, straight_trajectory(10.0), reference=40.0)
    t = table.table[:, 0]
    expected = (5 * t[Metric.EP] + 5 * t[Metric.TTC] + 2 * t[Metric.LK] + 2 * t[Metric.HC]) / 14
    assert table.epdms[0] == pytest.approx(expected)


# ---------------------------------------------------------------- LK
@pytest.mark.parametrize('steps, expected', [(19, 1.0), (20, 0.0)])
def test_lane_keeping_needs_20_consecutive_steps(steps, expected):
    scene = make_scene(10.0)
    y = np.zeros(T)
    y[5:5 + steps] = 0.8
    states = states_from_centres(np.c_[np.arange(T) * 1.0, y], 0.0, 10.0, CFG.vehicle)
    prep, geo = _geo(scene, states)
    assert metrics.lane_keeping(geo, prep, CFG)[0] == expected


def test_lane_keeping_skips_intersection_steps_without_reset():
    lanes, fwd = straight_lanes(3)
    ys = np.arange(-10.0, 10.1, 2.0)
    lanes.append(Lane('J', np.c_[np.full_like(ys, 12.0), ys], 4.0, in_intersection=True))
    scene = make_scene(10.0, lanes=lanes, route_ids=fwd)
    x = np.arange(T) * 1.0 + 0.5      # steps 10..13 (x 10.5..13.5) are inside the junction
    for off_steps, expected in ((24, 0.0), (23, 1.0)):
        y = np.zeros(T)
        y[:off_steps] = 0.8
        states = states_from_centres(np.c_[x, y], 0.0, 10.0, CFG.vehicle)
        prep, geo = _geo(scene, states)
        np.testing.assert_array_equal(np.nonzero(geo.centre_in_intersection[0])[0],
                                      [10, 11, 12, 13])
        # 24 off-centre steps, 4 skipped -> 20 counted (a reset would leave runs of 10)
        assert metrics.lane_keeping(geo, prep, CFG)[0] == expected


def test_held_lateral_offset_plan_fails_lane_keeping():
    scene = make_scene(10.0, ego_xy=(0.0, 0.8))
    table = _score(scene, straight_trajectory(10.0), reference=40.0)
    assert table[Metric.LK][0] == 0.0
    centred = make_scene(10.0, ego_xy=(0.0, 0.3))
    assert _score(centred, straight_trajectory(10.0), reference=40.0)[Metric.LK][0] == 1.0


# ---------------------------------------------------------------- aggregation
def test_pdms_and_epdms_formulas_and_multiplier_masks():
    table = np.ones((len(Metric), 4))
    table[Metric.NC] = [1.0, 0.5, 1.0, 1.0]
    table[Metric.DAC] = [1.0, 1.0, 0.0, 1.0]
    table[Metric.DDC] = [1.0, 1.0, 1.0, 0.5]
    table[Metric.EP] = [0.5, 0.5, 0.5, 0.5]
    table[Metric.TTC] = [0.0, 1.0, 1.0, 1.0]
    table[Metric.C] = [1.0, 1.0, 1.0, 0.0]
    np.testing.assert_allclose(aggregate_pdms(table, CFG),
                               [4.5 / 12, 0.5 * 9.5 / 12, 0.0, 7.5 / 12])
    np.testing.assert_allclose(aggregate_epdms(table, CFG, True),
                               [8.5 / 16, 0.5 * 13.5 / 16, 0.0, 0.5 * 13.5 / 16])
    # the filter sets whole rows to 1, a multiplier (DAC) and a weighted metric (TTC) alike
    filt = np.zeros(len(Metric), dtype=bool)
    filt[[Metric.DAC, Metric.TTC]] = True
    np.testing.assert_allclose(aggregate_epdms(table, CFG, True, filt),
                               [13.5 / 16, 0.5 * 13.5 / 16, 13.5 / 16, 0.5 * 13.5 / 16])
    filt[:] = False
    filt[Metric.EP] = True
    np.testing.assert_allclose(aggregate_epdms(table, CFG, False, filt),
                               [9.0 / 14, 0.5 * 14.0 / 14, 0.0, 0.5 * 14.0 / 14])
    with pytest.raises(ValueError, match='filtered'):
        aggregate_epdms(table, CFG, True, np.array([False, True, False, False]))


def _human(**values) -> np.ndarray:
    column = np.ones(len(Metric))
    column[Metric.EP] = 0.0     # sub_metrics leaves EP at 0; human_filter_mask computes it
    for name, value in values.items():
        column[Metric[name]] = value
    return column


def _mask(*names) -> np.ndarray:
    out = np.zeros(len(Metric), dtype=bool)
    out[[Metric[n] for n in names]] = True
    return out


def test_human_filter_mask_follows_navsim_columns():
    # every multiplier and weighted metric on which the human scores 0 is filtered
    np.testing.assert_array_equal(
        human_filter_mask(_human(NC=0.0, DDC=0.0, TTC=0.0, LK=0.0), 30.0, CFG),
        _mask('NC', 'DDC', 'TTC', 'LK'))
    # a half (NC, DDC) is not a 0
    np.testing.assert_array_equal(human_filter_mask(_human(NC=0.5, DDC=0.5), 30.0, CFG),
                                  _mask())
    # NAVSIM scores the human alone and without a history: its EP is its own progress over
    # itself (1 in v2, even with a 0 multiplier or no progress), its HC is 1; EC and C are not
    # columns of the filter
    np.testing.assert_array_equal(
        human_filter_mask(_human(DAC=0.0, HC=0.0, EC=0.0, C=0.0), 30.0, CFG), _mask('DAC'))
    np.testing.assert_array_equal(human_filter_mask(_human(), 0.0, CFG), _mask())
    # v1's EP is 0 under a 0 multiplier when the normaliser is under 5 m
    np.testing.assert_array_equal(human_filter_mask(_human(DAC=0.0), 30.0, V1),
                                  _mask('DAC', 'EP'))


def test_human_filter_sets_failed_metrics_to_one_and_recomputes():
    lanes, fwd = straight_lanes(1)
    expert = straight_trajectory(10.0, lateral=-3.0)        # the human leaves the road
    scene = make_scene(10.0, lanes=lanes, route_ids=fwd, expert=expert)
    table = _score(scene, straight_trajectory(10.0, lateral=-3.0), reference=40.0)
    # the human's centre also leaves the only (route) lane, so DDC is filtered too, and it
    # stays 3 m off the centreline for over 2 s, so LK is
    np.testing.assert_array_equal(table.human_filtered, _mask('DAC', 'DDC', 'LK'))
    t = table.table[:, 0]
    assert t[Metric.DAC] == 0.0 and t[Metric.LK] == 0.0 and table.pdms[0] == 0.0
    expected = t[Metric.NC] * (5 * t[Metric.EP] + 5 * t[Metric.TTC] + 2 + 2 * t[Metric.HC]) / 14
    assert table.epdms[0] == pytest.approx(expected, abs=1e-15) and expected > 0
    off = _score(scene, straight_trajectory(10.0, lateral=-3.0),
                 cfg=ScorerConfig(human_filter=False), reference=40.0)
    assert off.epdms[0] == 0.0
    np.testing.assert_array_equal(off.human_filtered, _mask())
    # same metrics up to the last bit (the two runs sum in a different order)
    np.testing.assert_allclose(off.table, table.table, rtol=0, atol=1e-12)


def test_human_filter_forgives_lane_keeping_the_human_also_fails():
    # three forward lanes, all on the route; the route centreline is the right lane's
    expert = straight_trajectory(10.0, lateral=4.0, lateral_time=1.0)  # the human changes lane
    scene = make_scene(10.0, expert=expert)
    change = straight_trajectory(10.0, lateral=4.0, lateral_time=1.0)
    keep = straight_trajectory(10.0)
    table = _score(scene, change, keep, reference=40.0)
    off = _score(scene, change, keep, cfg=ScorerConfig(human_filter=False), reference=40.0)
    np.testing.assert_array_equal(table.human_filtered, _mask('LK'))
    np.testing.assert_array_equal(table[Metric.LK], [0.0, 1.0])
    for m in ('NC', 'DAC', 'DDC', 'TLC', 'TTC', 'HC'):
        np.testing.assert_array_equal(table[Metric[m]], [1.0, 1.0], err_msg=m)
    ep = table[Metric.EP]
    # before: LK counted 0 for the lane change; now it counts 1 (EC dropped: no previous frame)
    np.testing.assert_allclose(off.epdms, [(5 * ep[0] + 5 + 0 + 2) / 14, (5 * ep[1] + 9) / 14],
                               rtol=0, atol=1e-15)
    np.testing.assert_allclose(table.epdms, (5 * ep + 9) / 14, rtol=0, atol=1e-15)
    assert table.epdms[0] - off.epdms[0] == pytest.approx(2 / 14, abs=1e-15)
    assert table.epdms[1] == off.epdms[1]
    np.testing.assert_array_equal(table.pdms, off.pdms)   # PDMS has no human filter


def test_human_filter_forgives_ttc_the_human_also_fails():
    # a fast follower fails TTC for human and candidate, without an at-fault collision (as in
    # test_rear_end_by_fast_follower_is_not_at_fault_but_fails_ttc)
    follower = dict(x=-21.0, y=0.0, yaw=0.0, speed=20.0)
    scene = make_scene(5.0, [follower], expert=straight_trajectory(5.0))
    plan = straight_trajectory(5.0)
    table = _score(scene, plan, reference=20.0)
    off = _score(scene, plan, cfg=ScorerConfig(human_filter=False), reference=20.0)
    np.testing.assert_array_equal(table.human_filtered, _mask('TTC'))
    assert table[Metric.TTC][0] == 0.0 and table[Metric.NC][0] == 1.0
    assert table.epdms[0] - off.epdms[0] == pytest.approx(5 / 14, abs=1e-15)


# ---------------------------------------------------------------- API
def test_score_scenes_matches_score_candidates():
    rng = np.random.default_rng(0)
    scenes = [make_scene(8.0), make_scene(12.0, [dict(x=20.0, y=0.0, yaw=0.0, speed=3.0)])]
    cands = np.stack([np.stack([straight_trajectory(v, a).poses for v, a in
                                rng.uniform([5, -4], [15, 2], (3, 2))]) for _ in scenes])
    batch = score_scenes(scenes, cands, CFG, references=[30.0, 30.0])
    for scene, c, b in zip(scenes, cands, batch):
        one = score_candidates(scene, c, CFG, reference=30.0)
        np.testing.assert_allclose(one.table, b.table)
        np.testing.assert_allclose(one.epdms, b.epdms)


def test_list_of_trajectories_and_bad_input():
    scene = make_scene(10.0)
    table = score_candidates(scene, [straight_trajectory(10.0)] * 2, reference=40.0)
    assert table.table.shape == (len(Metric), 2) and table.pdms.shape == (2,)
    with pytest.raises(ValueError, match='shape'):
        score_candidates(scene, np.zeros((2, 6, 3)), reference=40.0)
    with pytest.raises(ValueError, match='G >= 1'):
        score_candidates(scene, np.zeros((0, 8, 3)), reference=40.0)
    with pytest.raises(ValueError, match='one entry per scene'):
        score_scenes([scene], np.zeros((1, 2, 8, 3)), references=[1.0, 2.0])
    with pytest.raises(ValueError, match='prev_states'):
        score_candidates(scene, np.zeros((1, 8, 3)), reference=40.0,
                         prev_states=np.zeros((41, 5)))
    bad = np.zeros((1, 8, 3))
    bad[0, 3, 1] = np.nan
    with pytest.raises(ValueError, match='non-finite'):
        score_candidates(scene, bad, reference=40.0)
    with pytest.raises(ValueError, match='ego frame'):
        score_candidates(scene, [straight_trajectory(10.0).to_map(scene.ego.pose)])
    with pytest.raises(ValueError, match='navsim_version'):
        ScorerConfig(navsim_version='v3')
    with pytest.raises(TypeError, match='Scene'):
        score_candidates('scene', np.zeros((1, 8, 3)))


def test_reference_plan_avoids_a_stopped_car_and_beats_constant_velocity():
    parked = dict(x=40.0, y=0.0, yaw=0.0, speed=0.0)
    scene = make_scene(10.0, [parked])
    plan = reference_plan(scene)
    cv = constant_velocity_trajectory(scene.ego)
    assert isinstance(plan, Trajectory) and plan.poses.shape == (8, 3)
    np.testing.assert_allclose(cv.poses[:, 0], 10.0 * 0.5 * np.arange(1, 9))
    table = _score(scene, plan, cv)
    assert table[Metric.NC][0] == 1.0 and table[Metric.NC][1] == 0.0
    assert table.pdms[0] > 0.5 > table.pdms[1]


def test_config_yaml_loads_and_rejects_unknown_keys(tmp_path):
    from pathlib import Path
    from pair_drive_ros.scoring import load_config, PACIFICA_VEHICLE
    root = Path(__file__).resolve().parents[1]
    cfg = load_config(root / 'config' / 'scorer.yaml')
    assert cfg == ScorerConfig()
    path = tmp_path / 's.yaml'
    path.write_text('navsim_version: v1\nvehicle: pacifica\nttc_future_steps: [0, 3]\n')
    cfg = load_config(path)
    assert cfg.navsim_version == 'v1' and cfg.vehicle == PACIFICA_VEHICLE
    assert cfg.ttc_future_steps == (0, 3)
    path.write_text('no_such_key: 1\n')
    with pytest.raises(ValueError, match='unknown'):
        load_config(path)


def test_tracker_lag_and_overshoot_as_navsim_documents():
    from pair_drive_ros.scoring import PACIFICA_VEHICLE
    from pair_drive_ros.scoring.scorer import simulate_candidates
    cfg = ScorerConfig(vehicle=PACIFICA_VEHICLE)
    # a plan that stops in 7.5 m from 15 m/s is driven ~16.5 m (navsim_metrics.md, item 3)
    prep = prepare_scene(make_scene(15.0), cfg)
    states = simulate_candidates(prep, straight_trajectory(15.0, -15.0).poses[None], cfg)
    assert straight_trajectory(15.0, -15.0).poses[-1, 0] == pytest.approx(7.5)
    assert states[0, -1, 0] - states[0, 0, 0] == pytest.approx(16.5, abs=0.3)
    # a 3.5 m lateral shift overshoots to ~4.0 m
    prep = prepare_scene(make_scene(10.0), cfg)
    states = simulate_candidates(prep, straight_trajectory(10.0, lateral=3.5).poses[None], cfg)
    assert states[0, :, 1].max() == pytest.approx(4.0, abs=0.15)


def test_cropped_route_projection_equals_route_project():
    from scoring_scenes import arc_lanes
    from pair_drive_ros.core import Route
    from pair_drive_ros.scoring.geometry import project_on_polyline
    lanes, _ = arc_lanes(2)
    route = Route(lanes[0].centerline)
    pts = np.random.default_rng(0).uniform(-80.0, 120.0, (300, 2))
    s_ref, lat_ref = route.project(pts)
    s, lat = project_on_polyline(route, pts, margin_m=5.0, with_lateral=True)
    np.testing.assert_allclose(s, s_ref, atol=1e-9)
    np.testing.assert_allclose(lat, lat_ref, atol=1e-9)
