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

"""Motion and road-speed features: past sweeps land exactly where they must; defaults unchanged."""

from dataclasses import replace
import hashlib

import numpy as np
import pytest

from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.core.features import status_layout, STATUS_DIM
from pair_drive_ros.core.route import Route
from pair_drive_ros.core.se2 import inverse_transform_points, transform_points
from pair_drive_ros.core.sensor_frame import SensorFrame
from pair_drive_ros.perception import FeatureBuilder, PerceptionConfig
from pair_drive_ros.perception.builder import bev_cells, curve_speed
from pair_drive_ros.training.data import DataConfig, episode_samples, frame_features
from il_synthetic_logs import make_log

MOTION = PerceptionConfig(history_sweeps=2, history_dt_s=0.2, history_tolerance_s=0.05)
NOW = 0.4
# Current ego pose (map frame) and the ego's pose at time t: turning at 0.5 rad/s, 10 m/s.
EGO_NOW = np.array([100.0, 50.0, 0.3])
# A vehicle seen from the current ego: at (20.5, 0.5) now, driving at 15 m/s along the current
# ego's x axis, so 3 m per 0.2 s; a parked car at (10.5, -5.5). Both on cell centres.
MOVER_NOW = np.array([20.5, 0.5])
MOVER_VEL = np.array([15.0, 0.0])
PARKED = np.array([10.5, -5.5])
HEIGHT_M = 1.0       # above the split height
POINTS = 3           # points per object: a channel value of 3 / 5


def ego_pose(t: float) -> np.ndarray:
    yaw = EGO_NOW[2] + 0.5 * (t - NOW)
    # Any path works: the compensation must cancel it. A curved one exercises the rotation.
    x = EGO_NOW[0] + 10.0 * (t - NOW) * np.cos(yaw)
    y = EGO_NOW[1] + 10.0 * (t - NOW) * np.sin(yaw) + 0.3 * (t - NOW) ** 2
    return np.array([x, y, yaw])


def objects_map(t: float) -> np.ndarray:
    """(2, 2) map-frame positions of the mover and the parked car at time t."""
    mover_now_ego = MOVER_NOW + MOVER_VEL * (t - NOW)
    return transform_points(EGO_NOW, np.stack([mover_now_ego, PARKED]))


def frame_at(t: float, mount=(0.5, -0.2, 2.4, 0.1)) -> SensorFrame:
    pose = ego_pose(t)
    ego_xy = inverse_transform_points(pose, objects_map(t))
    m = np.asarray(mount)
    c, s = np.cos(m[3]), np.sin(m[3])
    rel = ego_xy - m[:2]
    lidar_xy = np.stack([c * rel[:, 0] + s * rel[:, 1], -s * rel[:, 0] + c * rel[:, 1]], -1)
    pts = np.zeros((2 * POINTS, 4), np.float32)
    pts[:, :2] = np.repeat(lidar_xy, POINTS, axis=0)
    pts[:, 2] = HEIGHT_M - m[2]
    return SensorFrame(stamp_s=t, ego=EgoState(pose, [10.0, 0.0], stamp_s=t), lidar_points=pts,
                       lidar_mount=m)


def occupied(channel: np.ndarray) -> set:
    return {(int(r), int(c)) for r, c in zip(*np.nonzero(channel))}


def cell(cfg: PerceptionConfig, xy) -> tuple:
    rows, cols, inside = bev_cells(cfg, np.asarray(xy, float)[None])
    assert inside[0]
    return int(rows[0]), int(cols[0])


def run(times, cfg=MOTION, history=None):
    builder = FeatureBuilder(cfg)
    history = builder.new_history() if history is None else history
    out = [builder.build(frame_at(t), history) for t in times]
    return out, history


def test_moving_and_parked_vehicles_land_on_their_past_cells():
    feats, _ = run([0.0, 0.1, 0.2, 0.3, 0.4])
    f = feats[-1]
    assert f.lidar_bev.shape == (4, 64, 64)
    value = POINTS / MOTION.hist_max_per_cell
    parked = cell(MOTION, PARKED)
    for j, ch in enumerate([1, 2, 3]):   # now, 0.2 s ago, 0.4 s ago
        # The vehicle's position j * 0.2 s ago, in the current ego frame: shifted by v * dt.
        mover = cell(MOTION, MOVER_NOW - MOVER_VEL * 0.2 * j)
        assert occupied(f.lidar_bev[ch]) == {mover, parked}
        assert f.lidar_bev[ch][mover] == pytest.approx(value)
        assert f.lidar_bev[ch][parked] == pytest.approx(value)
    assert cell(MOTION, MOVER_NOW) == (27, 31) and cell(MOTION, [14.5, 0.5]) == (33, 31)
    assert f.ego_status.shape == (STATUS_DIM + 2,)
    np.testing.assert_array_equal(f.ego_status[-2:], [1.0, 1.0])
    # The first frame has no past: both channels empty and flagged missing.
    assert not feats[0].lidar_bev[2:].any()
    np.testing.assert_array_equal(feats[0].ego_status[-2:], [0.0, 0.0])


def test_gap_gives_a_flagged_zero_channel():
    feats, _ = run([0.0, 0.1, 0.3, 0.4])          # the 0.2-s sweep was lost
    f = feats[-1]
    assert not f.lidar_bev[2].any()
    assert occupied(f.lidar_bev[3]) == {cell(MOTION, MOVER_NOW - MOVER_VEL * 0.4),
                                        cell(MOTION, PARKED)}
    np.testing.assert_array_equal(f.ego_status[-2:], [0.0, 1.0])
    # A sweep 0.04 s off its slot still counts (tolerance 0.05 s); 0.07 s off does not.
    feats, _ = run([0.0, 0.16, 0.4])
    np.testing.assert_array_equal(feats[-1].ego_status[-2:], [1.0, 1.0])
    feats, _ = run([0.0, 0.27, 0.4])
    np.testing.assert_array_equal(feats[-1].ego_status[-2:], [0.0, 1.0])


def test_time_jump_back_resets_and_repeated_stamp_replaces():
    feats, history = run([0.0, 0.1, 0.2, 0.3, 0.4])
    assert len(history) == 5
    builder = FeatureBuilder(MOTION)
    f = builder.build(frame_at(0.1), history)       # a replayed bag restarting
    assert history.resets == 1 and len(history) == 1
    assert not f.lidar_bev[2:].any()
    np.testing.assert_array_equal(f.ego_status[-2:], [0.0, 0.0])
    builder.build(frame_at(0.1), history)
    assert len(history) == 1 and history.resets == 1
    # Old sweeps are dropped once they cannot fill a slot any more.
    _, history = run(np.round(np.arange(0.0, 2.01, 0.1), 3))
    assert len(history) == 5     # 1.6 .. 2.0 s: the slots reach back 0.4 s + 0.05 s


def test_no_history_object_means_flagged_zeros():
    f = FeatureBuilder(MOTION).build(frame_at(0.4))
    assert f.lidar_bev.shape == (4, 64, 64) and not f.lidar_bev[2:].any()
    np.testing.assert_array_equal(f.ego_status[-2:], [0.0, 0.0])


# Features of frames 0 and 12 of make_log(3, 30) with the default config, as the feature
# builder computed them before the motion and road-speed options existed.
OLD_DIGESTS = {
    0: {'lidar_bev': '4040eb802ccbea51', 'camera': '2e12d2d130ec43ad',
        'route_raster': '768a5272ba64b8b9', 'ego_status': '54faf44b75ad7102'},
    12: {'lidar_bev': 'd3b0b416600a9604', 'camera': '20cec0573abfff47',
         'route_raster': '768a5272ba64b8b9', 'ego_status': '54faf44b75ad7102'},
}
OLD_KEYS = {'x_min_m', 'x_max_m', 'y_extent_m', 'resolution_m', 'split_height_m',
            'max_height_m', 'min_height_m', 'hist_max_per_cell', 'camera_width',
            'camera_height', 'camera_mean', 'camera_std', 'route_half_width_m',
            'command_lookahead_m', 'command_turn_rad', 'command_lateral_m'}


def test_default_config_reproduces_the_old_features_and_dict():
    log = make_log(3, 30)
    builder = FeatureBuilder()
    for k, digests in OLD_DIGESTS.items():
        f = builder.build(log.sensor_frame(k), builder.new_history())
        got = {n: hashlib.sha1(np.ascontiguousarray(getattr(f, n)).tobytes()).hexdigest()[:16]
               for n in digests}
        assert got == digests
    assert set(PerceptionConfig().as_dict()) == OLD_KEYS
    assert PerceptionConfig.from_dict(PerceptionConfig().as_dict()) == PerceptionConfig()
    assert set(MOTION.as_dict()) == OLD_KEYS | {'history_sweeps', 'history_dt_s',
                                                'history_tolerance_s'}
    assert PerceptionConfig.from_dict(MOTION.as_dict()) == MOTION


def test_dataset_history_equals_the_online_stream():
    log = make_log(5, 60)
    builder = FeatureBuilder(MOTION)
    offline = episode_samples(log, [12, 4, 8], builder, DataConfig())
    history = builder.new_history()
    online = {k: builder.build(log.sensor_frame(k), history) for k in range(13)}
    for k, sample in zip([4, 8, 12], offline):
        np.testing.assert_array_equal(sample['lidar_bev'], online[k].lidar_bev)
        np.testing.assert_array_equal(sample['ego_status'], online[k].ego_status)
    # Random access (open-loop evaluation of single frames) rebuilds the same history.
    np.testing.assert_array_equal(frame_features(log, 12, builder).lidar_bev,
                                  online[12].lidar_bev)
    # The two agents drive along x at 0.8 v and v, like the ego (v ~ 15 m/s): over 0.2 s the
    # slower one falls ~0.6 m back in the ego frame, the other keeps its cells.
    assert online[12].lidar_bev[3].any() and online[12].ego_status[-1] == 1.0


def test_road_speed_entries():
    cfg = PerceptionConfig(road_speed=True, history_sweeps=1)
    assert status_layout(True, 1)[STATUS_DIM:] == ('speed_limit_mps', 'speed_limit_known',
                                                   'curve_speed_mps', 'sweep_1_valid')
    assert cfg.status_dim == STATUS_DIM + 4
    log = make_log(3, 30)
    f = FeatureBuilder(cfg).build(log.sensor_frame(5))
    # The log's lanes allow 30 m/s; the straight route allows the cap.
    np.testing.assert_array_equal(f.ego_status[STATUS_DIM:], [30.0, 1.0, 40.0, 0.0])
    frame = replace(log.sensor_frame(5), speed_limit_mps=None)
    f = FeatureBuilder(cfg).build(frame)
    np.testing.assert_array_equal(f.ego_status[STATUS_DIM:STATUS_DIM + 2], [0.0, 0.0])
    f = FeatureBuilder(replace(cfg, speed_limit_default_mps=13.9)).build(frame)
    np.testing.assert_allclose(f.ego_status[STATUS_DIM:STATUS_DIM + 2], [13.9, 1.0], rtol=1e-6)


def test_curve_speed_on_a_circle():
    cfg = PerceptionConfig(road_speed=True)
    radius = 50.0
    a = np.linspace(0.0, np.pi, 600)
    straight = np.stack([np.linspace(-100.0, -0.5, 200), np.full(200, -radius)], -1)
    arc = np.stack([radius * np.sin(a), -radius * np.cos(a)], -1)
    route = Route(np.concatenate([straight, arc]))
    # 80 m before the bend: the 60-m lookahead sees only straight road.
    assert curve_speed(cfg, route, np.array([-80.0, -radius, 0.0])) == cfg.road_speed_cap_mps
    # 30 m before it: sqrt(3 m/s^2 * 50 m) = 12.25 m/s.
    v = curve_speed(cfg, route, np.array([-30.0, -radius, 0.0]))
    assert v == pytest.approx(np.sqrt(3.0 * radius), rel=0.01)
    assert curve_speed(cfg, None, np.zeros(3)) == cfg.road_speed_cap_mps


def test_models_take_their_input_sizes_from_the_perception_config():
    torch = pytest.importorskip('torch')
    from pair_drive_ros.policy.base import PlannerInput
    from pair_drive_ros.policy.il_planner import TransfuserPlanner
    from pair_drive_ros.training.train_il import ILTrainConfig, model_config_for
    from pair_drive_ros.policy.il_planner import build_model

    cfg = replace(MOTION, road_speed=True)
    train = ILTrainConfig(model='transfuser', perception=cfg)
    mc = model_config_for(train)
    assert mc['backbone']['lidar_channels'] == 5 and mc['backbone']['status_dim'] == 13
    assert mc['backbone']['status_speed_slots'] == (8, 10)
    torch.manual_seed(0)
    model = build_model('transfuser', mc)
    planner = TransfuserPlanner(model, cfg)
    feats, _ = run([0.0, 0.2, 0.4], cfg)
    plan = planner.compute_plan(PlannerInput(feats[-1]))
    assert plan.trajectory.poses.shape == (8, 3)
    with pytest.raises(ValueError, match='ego_status'):
        TransfuserPlanner(model, replace(cfg, road_speed=False, history_sweeps=4)
                          ).compute_plan(PlannerInput(replace(feats[-1], lidar_bev=np.zeros(
                              (6, 64, 64), np.float32))))
    bad = ILTrainConfig(model='transfuser', perception=cfg,
                        model_config={'backbone': {'lidar_channels': 3}})
    with pytest.raises(ValueError, match='lidar_channels'):
        model_config_for(bad)


def test_feature_messages_carry_the_extra_channels():
    pytest.importorskip('sensor_msgs')
    from pair_drive_ros.ros.features import feature_messages, features_from_messages
    from pair_drive_ros.ros.stamps import seconds_to_stamp

    feats, _ = run([0.0, 0.2, 0.4])
    f = feats[-1]
    back = features_from_messages(feature_messages(f, seconds_to_stamp(0.4)))
    np.testing.assert_array_equal(back.lidar_bev, f.lidar_bev)
    np.testing.assert_array_equal(back.ego_status, f.ego_status)


def test_a_model_reads_its_part_of_richer_features():
    from pair_drive_ros.perception.config import feature_subset, PerceptionConfigError
    from pair_drive_ros.policy.il_planner import features_to_batch
    from pair_drive_ros.policy.pair import rl_features

    rich = replace(MOTION, road_speed=True)
    for want in (PerceptionConfig(), replace(MOTION, history_sweeps=1), MOTION,
                 PerceptionConfig(road_speed=True)):
        index = feature_subset(rich, want)
        # The rich features of a frame, cut down, are the features built for `want` alone.
        a = run([0.0, 0.2, 0.4], rich)[0][-1]
        b = run([0.0, 0.2, 0.4], want)[0][-1]
        cut = rl_features(features_to_batch([a]), index)
        np.testing.assert_array_equal(cut['lidar_bev'][0].numpy(), b.lidar_bev)
        np.testing.assert_array_equal(cut['ego_status'][0].numpy(), b.ego_status)
    assert feature_subset(MOTION, MOTION) == ((0, 1, 2, 3), tuple(range(MOTION.status_dim)))
    for want, bad in ((replace(MOTION, history_sweeps=3), 'history_sweeps'),
                      (replace(MOTION, history_dt_s=0.5), 'history_dt_s'),
                      (PerceptionConfig(resolution_m=0.5), 'resolution_m'),
                      (PerceptionConfig(road_speed=True, road_lookahead_m=30.0),
                       'road_lookahead_m')):
        with pytest.raises(PerceptionConfigError, match=bad):
            feature_subset(rich, want)


def test_the_union_of_two_feature_sets_feeds_both_models():
    from pair_drive_ros.perception.config import feature_subset, feature_union
    from pair_drive_ros.perception.config import PerceptionConfigError

    road = PerceptionConfig(road_speed=True, road_lookahead_m=30.0)
    union = feature_union(road, MOTION)
    assert union == replace(MOTION, road_speed=True, road_lookahead_m=30.0)
    assert feature_union(MOTION, road) == union                  # order does not matter
    assert feature_union(PerceptionConfig(), MOTION) == MOTION   # nested: the larger one
    assert feature_union(replace(MOTION, history_sweeps=1), MOTION) == MOTION
    for part in (road, MOTION):
        feature_subset(union, part)    # raises unless the part is readable from the union
    for a, b, bad in ((MOTION, replace(MOTION, history_dt_s=0.5), 'history_dt_s'),
                      (road, PerceptionConfig(road_speed=True), 'road_lookahead_m'),
                      (MOTION, PerceptionConfig(resolution_m=0.5), 'resolution_m')):
        with pytest.raises(PerceptionConfigError, match=bad):
            feature_union(a, b)
