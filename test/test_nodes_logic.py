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

"""Node helpers without a ROS graph: sync, safety, control, markers, feature messages, params."""

from dataclasses import fields
import importlib.util
import json

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

from pair_drive_ros import ros
from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.core.features import Features, STATUS_DIM
from pair_drive_ros.core.route import Route
from pair_drive_ros.core.trajectory import Trajectory
from pair_drive_ros.nodes.params import (DEFAULT_CONFIG, NODE_NAMES, PARAMS_CLASSES,
                                         params_from_dict, ParamsError, PlannerParams, yaml_params)
from pair_drive_ros.nodes.sim_bridge_node import parse_scenarios
from pair_drive_ros.nodes.tracker_node import control_message, pick_control_type
from pair_drive_ros.ros.features import feature_messages, features_from_messages, unstack_image
from pair_drive_ros.ros.markers import agent_markers, candidate_markers, score_colors
from pair_drive_ros.runtime import safety
from pair_drive_ros.runtime.path_tracker import (ControlGains, lookahead_point, PathTracker,
                                                 pure_pursuit_curvature, reference_speed)
from pair_drive_ros.runtime.sync import ExactJoin, LatestSlot, StampSync, TimeJump

MS = 1_000_000


# ---- sync ------------------------------------------------------------------------------------
def test_stamp_sync_matches_within_slop_and_anchors_on_lidar():
    sync = StampSync(('lidar', 'camera', 'odometry'), anchor='lidar', slop_ns=10 * MS)
    assert sync.add('camera', 1000 * MS, 'c0') is None
    assert sync.add('odometry', 1004 * MS, 'o0') is None
    stamp, parts = sync.add('lidar', 1002 * MS, 'l0')
    assert stamp == 1002 * MS
    assert parts == {'lidar': 'l0', 'camera': 'c0', 'odometry': 'o0'}
    assert sync.buffered == {'lidar': 0, 'camera': 0, 'odometry': 0}


def test_stamp_sync_rejects_outside_slop_and_picks_closest():
    sync = StampSync(('lidar', 'camera'), anchor='lidar', slop_ns=10 * MS)
    sync.add('camera', 1000 * MS, 'far')
    sync.add('camera', 1058 * MS, 'near')
    assert sync.add('lidar', 1030 * MS, 'l0') is None  # 28 ms from either camera
    assert sync.add('lidar', 1050 * MS, 'l1') == (1050 * MS, {'lidar': 'l1', 'camera': 'near'})


def test_stamp_sync_drops_late_frames_and_raises_on_time_jump():
    sync = StampSync(('lidar', 'camera'), anchor='lidar', slop_ns=5 * MS,
                     jump_tolerance_ns=500 * MS)
    sync.add('camera', 2000 * MS, 'c')
    assert sync.add('lidar', 2000 * MS, 'l')[0] == 2000 * MS
    assert sync.add('camera', 1990 * MS, 'late') is None
    with pytest.raises(TimeJump, match='before the last frame'):
        sync.add('lidar', 100 * MS, 'jumped')
    # After the jump the buffer restarted from the jumped message.
    assert sync.add('camera', 100 * MS, 'c2') == (100 * MS, {'lidar': 'jumped', 'camera': 'c2'})


def test_stamp_sync_unknown_key_and_anchor():
    with pytest.raises(ValueError, match='anchor'):
        StampSync(('a', 'b'), anchor='c', slop_ns=1)
    with pytest.raises(KeyError, match='unknown sync key'):
        StampSync(('a',), anchor='a', slop_ns=1).add('z', 0, None)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=1, max_size=40))
def test_exact_join_emits_only_complete_stamps(order):
    join = ExactJoin(('a', 'b'), max_pending=3)
    emitted = []
    for i, stamp in enumerate(order):
        for key in ('a', 'b') if i % 2 else ('b', 'a'):
            out = join.add(key, stamp, (key, stamp))
            if out is not None:
                emitted.append(out)
    for stamp, parts in emitted:
        assert parts == {'a': ('a', stamp), 'b': ('b', stamp)}
    assert len(emitted) == len(order)


def test_exact_join_counts_dropped_partial_frames():
    join = ExactJoin(('a', 'b'), max_pending=2)
    join.add('a', 1, 'a1')
    join.add('a', 2, 'a2')
    assert join.add('b', 3, 'b3') is None
    assert join.dropped == 1  # stamp 1 pushed out by the cap
    assert join.add('a', 3, 'a3') == (3, {'b': 'b3', 'a': 'a3'})
    assert join.dropped == 2  # stamp 2 was older than the completed one


def test_latest_slot_keeps_newest_and_counts_overwrites():
    slot = LatestSlot()
    assert slot.take() is None
    slot.put(1)
    slot.put(2)
    assert slot.overwritten == 1
    assert slot.take() == 2
    assert slot.take() is None
    # offer: a held-back frame goes back only where no newer one came meanwhile
    assert slot.offer(3) and slot.take() == 3
    slot.put(4)
    assert not slot.offer(3) and slot.take() == 4 and slot.overwritten == 1


# ---- safety ----------------------------------------------------------------------------------
def test_stopping_trajectory_brakes_to_standstill_straight():
    traj = safety.stopping_trajectory(10.0, decel_mps2=2.5)
    x = traj.poses[:, 0]
    # s(t) = v t - a t^2 / 2 until t = 4 s, then constant 20 m.
    np.testing.assert_allclose(x, [4.6875, 8.75, 12.1875, 15.0, 17.1875, 18.75, 19.6875, 20.0])
    np.testing.assert_allclose(traj.poses[:, 1:], 0.0)
    assert traj.frame == 'ego' and len(traj) == 8


def test_stopping_trajectory_follows_the_last_plan():
    path = np.stack([np.arange(1, 41) * 1.0, np.zeros(40)], -1)
    path[10:, 1] = np.arange(30) * 1.0  # bends left 45 degrees after 11 m
    traj = safety.stopping_trajectory(10.0, 2.5, path_xy=path)
    d = np.linalg.norm(np.diff(np.vstack([[0, 0], traj.xy]), axis=0), axis=1)
    np.testing.assert_allclose(np.cumsum(d)[-1], 20.0, atol=0.5)
    assert traj.poses[-1, 1] > 0.0 and traj.poses[0, 2] == 0.0


def test_stopping_trajectory_from_standstill_and_bad_decel():
    np.testing.assert_allclose(safety.stopping_trajectory(0.0).poses, 0.0)
    np.testing.assert_allclose(safety.stopping_trajectory(float('nan')).poses, 0.0)
    with pytest.raises(ValueError, match='decel_mps2'):
        safety.stopping_trajectory(5.0, decel_mps2=0.0)


def test_plan_is_finite():
    assert safety.plan_is_finite(np.zeros((8, 3)), None)
    assert not safety.plan_is_finite(np.zeros((8, 3)), np.array([[np.nan]]))


def test_planner_status_levels_and_diagnostic_message():
    health = safety.PlannerHealth(planner='cv', device='cpu')
    assert safety.planner_status(health, [])['level'] == safety.WARN
    health.plans = 3
    ok = safety.planner_status(health, [1.0, 3.0, 2.0])
    assert ok['level'] == safety.OK and ok['values']['inference_latency_ms_p50'] == '2.00'
    health.fault = 'input is 0.5 s old'
    err = safety.planner_status(health, [])
    assert err['level'] == safety.ERROR and 'input is 0.5 s old' in err['message']
    msg = safety.diagnostic_status(err, 'planner', 'cpu')
    assert msg.level == bytes([safety.ERROR]) and msg.name == 'planner'
    assert {kv.key for kv in msg.values} >= {'dropped_frames', 'input_age_s', 'device'}


# ---- control ---------------------------------------------------------------------------------
def _straight_path(speed, n=8, dt=0.5, y=0.0):
    t = dt * np.arange(1, n + 1)
    return t, np.stack([speed * t, np.full(n, y)], -1)


def test_reference_speed_and_lookahead_point():
    t, pts = _straight_path(4.0)
    assert reference_speed(t, pts, 1.2) == pytest.approx(4.0)
    target = lookahead_point(np.zeros(3), pts, 5.0)
    assert target[0] == pytest.approx(5.0, abs=0.25) and target[1] == 0.0
    assert lookahead_point(np.array([0, 0, np.pi]), pts, 5.0) is None


def test_pure_pursuit_curvature_known_circle():
    # A point at 90 degrees on a circle of radius 10 through the origin, heading +x.
    assert pure_pursuit_curvature(np.zeros(3), np.array([10.0, 10.0])) == pytest.approx(0.1)
    assert pure_pursuit_curvature(np.zeros(3), np.array([10.0, -10.0])) == pytest.approx(-0.1)


def test_tracker_steers_towards_the_path_and_tracks_speed():
    tracker = PathTracker(ControlGains())
    t, pts = _straight_path(8.0, y=2.0)
    cmd = tracker.command(np.zeros(3), 5.0, 0.0, t, pts, 0.05)
    assert cmd.steer > 0 and cmd.throttle > 0 and cmd.brake == 0
    t, pts = _straight_path(2.0, y=-2.0)
    cmd = tracker.command(np.zeros(3), 10.0, 0.0, t, pts, 0.05)
    assert cmd.steer < 0 and cmd.throttle == 0 and cmd.brake > 0
    stop = tracker.command(np.zeros(3), 0.2, 0.0, t, np.zeros((8, 2)), 0.05)
    assert stop.brake == 1.0 and stop.throttle == 0.0


def test_control_messages_of_each_kind():
    from geometry_msgs.msg import Twist

    tracker = PathTracker()
    t, pts = _straight_path(8.0, y=2.0)
    cmd = tracker.command(np.zeros(3), 5.0, 0.0, t, pts, 0.05)
    # 'auto' takes the first importable of carla_msgs, ackermann_msgs, geometry_msgs.
    importable = [k for k, mod in (('carla', 'carla_msgs'), ('ackermann', 'ackermann_msgs'))
                  if importlib.util.find_spec(mod) is not None]
    kind, cls, key = pick_control_type('auto')
    assert kind == (importable + ['twist'])[0]
    assert pick_control_type('twist') == ('twist', Twist, 'twist')
    msg = control_message('twist', Twist, cmd, ros.seconds_to_stamp(1.0))
    assert msg.linear.x == pytest.approx(cmd.target_speed_mps)
    assert msg.angular.z == pytest.approx(cmd.target_speed_mps * cmd.curvature)
    if 'carla' in importable:
        kind, cls, key = pick_control_type('carla')
        msg = control_message(kind, cls, cmd, ros.seconds_to_stamp(1.0))
        # CARLA steers positive to the right: the sign is flipped.
        assert key == 'control' and msg.steer == pytest.approx(-cmd.steer, abs=1e-6)
        assert msg.throttle == pytest.approx(cmd.throttle) and msg.brake == cmd.brake
    else:
        with pytest.raises(ImportError, match='carla_msgs'):
            pick_control_type('carla')
    with pytest.raises(ValueError, match='control_type'):
        pick_control_type('joystick')


# ---- markers ---------------------------------------------------------------------------------
def test_candidate_markers_deleteall_then_one_strip_per_candidate():
    from visualization_msgs.msg import Marker

    cands = np.zeros((3, 8, 3))
    cands[:, :, 0] = np.arange(1, 9)
    hdr = ros.make_header(ros.seconds_to_stamp(2.0), 'map')
    arr = candidate_markers(hdr, cands, np.array([0.1, 0.9, 0.5]))
    assert arr.markers[0].action == Marker.DELETEALL
    assert [m.id for m in arr.markers[1:]] == [0, 1, 2]
    assert all(m.type == Marker.LINE_STRIP and len(m.points) == 8 for m in arr.markers[1:])
    best = arr.markers[2]
    assert best.color.g == pytest.approx(1.0) and best.color.r == pytest.approx(0.0)


def test_score_colors_without_scores_and_with_nan():
    np.testing.assert_allclose(score_colors(None, 2)[:, 3], 0.5)
    colors = score_colors(np.array([np.nan, 1.0, 2.0]), 3)
    assert colors[0, 0] == 1.0 and colors[2, 1] == 1.0


def test_agent_markers_one_cube_per_agent():
    from pair_drive_ros.core.agents import Agents
    from visualization_msgs.msg import Marker

    agents = Agents([7, 9], [[1, 2, 0], [3, 4, np.pi / 2]], [[5, 2], [4, 2]], np.zeros((2, 2)))
    arr = agent_markers(ros.make_header(ros.seconds_to_stamp(1.0), 'map'), agents)
    cubes = arr.markers[1:]
    assert [m.id for m in cubes] == [7, 9] and all(m.type == Marker.CUBE for m in cubes)
    assert cubes[1].pose.orientation.z == pytest.approx(np.sin(np.pi / 4))


# ---- feature messages ------------------------------------------------------------------------
def _features(rng):
    ego = EgoState([10.0, -2.0, 0.3], [5.0, 0.1], [0.5, -0.2], 0.05, stamp_s=12.5)
    status = np.zeros(STATUS_DIM, np.float32)
    status[1] = 1.0
    status[4:6], status[6:8] = ego.velocity, ego.acceleration
    return Features(lidar_bev=rng.random((2, 16, 12), dtype=np.float32),
                    camera=rng.standard_normal((3, 8, 10)).astype(np.float32),
                    route_raster=(rng.random((1, 16, 12)) > 0.5).astype(np.float32),
                    ego_status=status, ego=ego, route=Route([[0, 0], [50, 5]]), stamp_s=12.5)


def test_features_round_trip_through_messages_bit_exact():
    f = _features(np.random.default_rng(0))
    stamp = ros.seconds_to_stamp(f.stamp_s)
    msgs = feature_messages(f, stamp)
    assert {m.header.stamp.sec for m in msgs.values()} == {12}
    assert msgs['lidar_bev'].encoding == '32FC1' and msgs['lidar_bev'].height == 32
    back = features_from_messages(msgs)
    for name in ('lidar_bev', 'camera', 'route_raster', 'ego_status'):
        np.testing.assert_array_equal(getattr(back, name), getattr(f, name))
    np.testing.assert_allclose(back.ego.pose, f.ego.pose)
    np.testing.assert_allclose(back.ego.acceleration, f.ego.acceleration, atol=1e-6)
    np.testing.assert_allclose(back.route.points, f.route.points)
    assert back.stamp_s == pytest.approx(12.5)


def test_unstack_image_rejects_wrong_layouts():
    f = _features(np.random.default_rng(1))
    msgs = feature_messages(f, ros.seconds_to_stamp(1.0))
    with pytest.raises(ros.CodecError, match='stacked channels'):
        unstack_image(msgs['camera'], 5)
    rgb = ros.numpy_to_image(np.zeros((4, 4, 3), np.uint8), 'rgb8', msgs['camera'].header)
    with pytest.raises(ros.CodecError, match='32FC1'):
        unstack_image(rgb, 1)


# ---- params ----------------------------------------------------------------------------------
def test_config_file_matches_every_params_dataclass():
    for exe, cls in PARAMS_CLASSES.items():
        values = yaml_params(DEFAULT_CONFIG, NODE_NAMES[exe])
        assert set(values) == {f.name for f in fields(cls)} | {'use_sim_time'}, exe
        assert params_from_dict(cls, values) == cls()


def test_params_reject_unknown_names_and_bad_values(tmp_path):
    with pytest.raises(ParamsError, match='unknown PlannerParams'):
        params_from_dict(PlannerParams, {'horizon': 3})
    with pytest.raises(ParamsError, match='max_input_age_s'):
        params_from_dict(PlannerParams, {'max_input_age_s': 'soon'})
    assert params_from_dict(PlannerParams, {'max_input_age_s': 1}).max_input_age_s == 1.0
    bad = tmp_path / 'bad.yaml'
    bad.write_text('planner: [1, 2]\n')
    with pytest.raises(ParamsError, match='ros__parameters'):
        yaml_params(bad, 'planner')


def test_parse_scenarios():
    assert parse_scenarios('highway:11000, merge:3') == [('highway', 11000), ('merge', 3)]
    with pytest.raises(ValueError, match='name:seed'):
        parse_scenarios('highway:x')
    with pytest.raises(ValueError, match='no scenarios'):
        parse_scenarios(' , ')


def test_path_message_stamps_each_pose_with_its_time():
    traj = Trajectory(np.zeros((8, 3)), dt_s=0.5, frame='map')
    msg = ros.trajectory_to_path(traj, ros.make_header(ros.seconds_to_stamp(100.0), 'map'))
    times = [ros.stamp_to_seconds(p.header.stamp) for p in msg.poses]
    np.testing.assert_allclose(times, 100.0 + 0.5 * np.arange(1, 9))
    assert {p.header.frame_id for p in msg.poses} == {'map'}


@pytest.mark.parametrize('encoding', ['bgra8', 'bgr8', 'rgb8', 'rgba8', 'mono8'])
def test_rgb_array_is_rgb_and_a_view_where_the_encoding_allows(encoding):
    from pair_drive_ros.perception.builder import FeatureBuilder
    from pair_drive_ros.ros import image_to_numpy, numpy_to_image

    channels = {'bgra8': 4, 'rgba8': 4, 'mono8': 1}.get(encoding, 3)
    shape = (64, 128, channels) if channels > 1 else (64, 128)
    arr = np.random.default_rng(5).integers(0, 256, shape, dtype=np.uint8)
    msg = numpy_to_image(arr, encoding)
    rgb = ros.image_to_rgb(msg)
    expected = image_to_numpy(msg, 'rgb8')  # the contiguous converting decoder
    np.testing.assert_array_equal(rgb, expected)
    assert np.shares_memory(rgb, image_to_numpy(msg)) == (encoding != 'mono8')
    # The feature builder gives the same tensor from the view as from a contiguous copy, on an
    # integer-factor resize (64x128 -> 32x64) and a sampled one (-> 24x40).
    for size in ({}, {'camera_height': 24, 'camera_width': 40}):
        from pair_drive_ros.perception.config import PerceptionConfig
        builder = FeatureBuilder(PerceptionConfig(**size))
        np.testing.assert_array_equal(builder.camera_tensor(rgb), builder.camera_tensor(expected))


def test_the_perception_config_travels_in_the_checkpoint():
    from pair_drive_ros.nodes.planner_node import perception_config_mismatch
    from pair_drive_ros.perception.config import load_perception_config, PerceptionConfig
    from pair_drive_ros.policy.factory import default_checkpoint

    ckpt = default_checkpoint('transfuser')
    cfg = load_perception_config(ckpt)
    assert cfg == PerceptionConfig()
    same = json.dumps(cfg.as_dict())
    assert perception_config_mismatch(cfg, same) == ''
    other = dict(cfg.as_dict(), resolution_m=0.5)
    assert 'resolution_m' in perception_config_mismatch(cfg, json.dumps(other))
    assert perception_config_mismatch(None, json.dumps(other)) == ''   # no model: no check
    assert 'unreadable' in perception_config_mismatch(cfg, 'not json')
