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

"""The nodes in a real rclpy graph (own Context and DDS domain per test)."""

import dataclasses
from pathlib import Path
import numpy as np
import pytest

from conftest import spin_until

pytest.importorskip('rclpy')

pytestmark = pytest.mark.ros

N_FRAMES = 8
FRAME_DT_S = 0.1


@pytest.fixture(scope='module')
def sim_frames():
    """Return the SensorFrames of a short constant-velocity highway drive (a test seed)."""
    from pair_drive_ros.core.trajectory import Trajectory
    from pair_drive_ros.sim.closed_loop import SimSession

    session = SimSession('highway', ego_mode='tracking', split='test')
    session.reset(11000)
    frames = []
    for _ in range(N_FRAMES):
        frame = session.sensor_frame()
        frames.append(frame)
        v = frame.ego.speed
        session.set_trajectory(Trajectory(np.stack([v * 0.5 * np.arange(1, 9), np.zeros(8),
                                                    np.zeros(8)], -1)))
        session.step()
    return frames, session.route


def _executor(ctx, nodes):
    from rclpy.executors import MultiThreadedExecutor

    executor = MultiThreadedExecutor(num_threads=4, context=ctx)
    for node in nodes:
        executor.add_node(node)
    return executor


def _close(executor):
    nodes = executor.get_nodes()
    executor.shutdown()
    for node in nodes:
        node.destroy_node()


def _graph(ctx, exes, overrides=None):
    from pair_drive_ros.apps.run import make_nodes

    return make_nodes(exes, overrides=overrides, context=ctx)


def _collect(node, msg_type, topic, qos=10):
    got = []
    node.create_subscription(msg_type, topic, got.append, qos)
    return got


def _feature_publishers(node):
    """Return publishers of the perception node's feature topics, keyed as FEATURE_TOPICS."""
    from nav_msgs.msg import Odometry
    from sensor_msgs.msg import Image

    from pair_drive_ros.ros.features import FEATURE_TOPICS

    return {k: node.create_publisher(Odometry if k == 'ego' else Image, f'/perception/{k}', 5)
            for k in FEATURE_TOPICS}


class _SensorPublisher:
    """Publishes CARLA-bridge-shaped sensor messages (and optionally /clock) from one node."""

    def __init__(self, node, route=None):
        from nav_msgs.msg import Odometry, Path
        from rosgraph_msgs.msg import Clock
        from sensor_msgs.msg import Image, PointCloud2

        from pair_drive_ros import ros
        from pair_drive_ros.ros.carla import carla_topics

        t = carla_topics()
        self.ros = ros
        self.clock_cls = Clock
        self.pubs = {
            'camera': node.create_publisher(Image, t['camera'], 10),
            'lidar': node.create_publisher(PointCloud2, t['lidar'], 10),
            'odometry': node.create_publisher(Odometry, t['odometry'], 10),
            'clock': node.create_publisher(Clock, '/clock', 10),
        }
        if route is not None:
            pub = node.create_publisher(Path, t['route'], ros.latched_qos())
            hdr = ros.make_header(ros.seconds_to_stamp(0.0), 'map')
            pub.publish(ros.route_to_path(route, hdr))
            self.route_pub = pub

    def publish(self, frame, stamp_s, clock=False):
        from pair_drive_ros.ros.carla import sensor_messages

        stamp = self.ros.seconds_to_stamp(stamp_s)
        if clock:
            self.pubs['clock'].publish(self.clock_cls(clock=stamp))
        msgs = sensor_messages(frame, stamp)
        for key in ('camera', 'odometry', 'lidar'):
            self.pubs[key].publish(msgs[key])
        return stamp


def _write_bag(path, frames, route):
    from pair_drive_ros import ros
    from pair_drive_ros.ros.carla import carla_topics
    from pair_drive_ros.ros.carla import sensor_messages

    topics = carla_topics()
    stamps = []
    with ros.BagWriter(path) as bag:
        t0 = int(5e9)
        bag.write(topics['route'], ros.route_to_path(route, ros.make_header(
            ros.nanoseconds_to_stamp(t0), 'map')), t0, latched=True)
        for k, frame in enumerate(frames):
            t_ns = t0 + int(k * FRAME_DT_S * 1e9)
            msgs = sensor_messages(frame, ros.nanoseconds_to_stamp(t_ns))
            for key in ('camera', 'camera_info', 'odometry', 'lidar'):
                bag.write(topics[key], msgs[key], t_ns)
            stamps.append(t_ns)
    return stamps


def _publish_fresh(executor, probe, pubs, features) -> dict:
    """Publish `features` stamped now (fresh input) once the planner subscribes; the messages."""
    from pair_drive_ros.ros.features import feature_messages, FEATURE_TOPICS

    assert spin_until(executor, lambda: all(p.get_subscription_count() for p in
                                            pubs.values()), 2.0)
    msgs = feature_messages(features, probe.get_clock().now().to_msg())
    for key in FEATURE_TOPICS:
        pubs[key].publish(msgs[key])
    return msgs


def test_bag_to_perception_to_planner_one_path_per_frame(ros_context, sim_frames, tmp_path):
    from nav_msgs.msg import Path
    from rclpy.node import Node

    from pair_drive_ros import ros
    from pair_drive_ros.apps.replay import BagPlayer

    frames, route = sim_frames
    stamps = _write_bag(tmp_path / 'bag', frames, route)
    # Staleness is not under test here; a loaded machine must not turn frames into stops.
    # Constant velocity: the stamp/frame plumbing is under test, and its first pose is exactly
    # 0.5 s of travel ahead (PaIR through the graph has its own test below).
    nodes = _graph(ros_context, ('perception_node', 'planner_node'),
                   {'perception_node': {'use_sim_time': True},
                    'planner_node': {'use_sim_time': True, 'max_input_age_s': 5.0,
                                     'planner': 'constant_velocity'}})
    probe = Node('probe', context=ros_context)
    paths = _collect(probe, Path, '/planner/trajectory')
    executor = _executor(ros_context, nodes + [probe])
    try:
        player = BagPlayer(probe, tmp_path / 'bag', rate=0.5)
        assert spin_until(executor, lambda: probe.count_subscribers('/carla/ego_vehicle/lidar')
                          and probe.count_publishers('/planner/trajectory'), 2.0)
        assert spin_until(executor, lambda: not player.step() and len(paths) >= N_FRAMES, 20.0)
        spin_until(executor, lambda: False, 0.3)  # nothing more may arrive
    finally:
        _close(executor)
    assert [ros.stamp_to_nanoseconds(p.header.stamp) for p in paths] == stamps
    for p in paths:
        assert p.header.frame_id == 'map' and len(p.poses) == 8
        t0 = ros.stamp_to_seconds(p.header.stamp)
        np.testing.assert_allclose([ros.stamp_to_seconds(q.header.stamp) for q in p.poses],
                                   t0 + 0.5 * np.arange(1, 9), atol=1e-9)
        assert {q.header.frame_id for q in p.poses} == {'map'}
    # The plan starts ahead of the ego's map pose of that frame.
    first = np.array([paths[0].poses[0].pose.position.x, paths[0].poses[0].pose.position.y])
    ego = frames[0].ego
    assert np.hypot(*(first - ego.pose[:2])) == pytest.approx(0.5 * ego.speed, rel=0.05)
    assert nodes[1].health.plans == N_FRAMES and nodes[1].health.stops == 0


def test_closed_loop_episode_makes_progress_without_collision(ros_context):
    exes = ('sim_bridge_node', 'perception_node', 'planner_node', 'tracker_node')
    overrides = {e: {'use_sim_time': True} for e in exes}
    overrides['sim_bridge_node'].update(scenarios='highway:11000', max_steps=20)
    nodes = _graph(ros_context, exes, overrides)
    sim, planner, tracker = nodes[0], nodes[2], nodes[3]
    executor = _executor(ros_context, nodes)
    try:
        assert spin_until(executor, lambda: sim.finished, 60.0)
    finally:
        _close(executor)
    (result,) = sim.results
    assert result['end_cause'] in ('goal', 'step_cap') and result['steps'] == result['end_step']
    assert not result['collision'] and not result['off_road']
    assert result['progress_m'] > 20.0
    assert planner.health.plans >= 20 and planner.health.dropped == 0
    # Lockstep pauses /clock while the simulator works: that is not stale input.
    assert planner.health.stops == 0
    assert tracker.commands > 0


def test_stale_input_gives_stopping_path_and_error_then_recovers(ros_context, sim_frames):
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import Path
    from rclpy.node import Node

    from pair_drive_ros import ros

    frames, route = sim_frames
    # Wall clock: the sensors stop and time goes on (a live sensor failure).
    # Constant velocity: its plans have equal steps, which tells normal output from stopping.
    nodes = _graph(ros_context, ('perception_node', 'planner_node'),
                   {'perception_node': {'use_sim_time': False},
                    'planner_node': {'use_sim_time': False, 'planner': 'constant_velocity'}})
    probe = Node('probe', context=ros_context)
    sensors = _SensorPublisher(probe, route)
    paths = _collect(probe, Path, '/planner/trajectory')
    diags = _collect(probe, DiagnosticArray, '/diagnostics')
    executor = _executor(ros_context, nodes + [probe])

    def drive(n):
        for k in range(n):
            now = probe.get_clock().now().nanoseconds * 1e-9
            sensors.publish(frames[k % len(frames)], now)
            spin_until(executor, lambda: False, 0.05)

    def levels():
        return [d.status[0].level for d in diags if d.status]

    def steps(path):
        xy = np.array([[q.pose.position.x, q.pose.position.y] for q in path.poses])
        return np.linalg.norm(np.diff(xy, axis=0), axis=1)

    try:
        assert spin_until(executor, lambda: probe.count_subscribers('/carla/ego_vehicle/lidar')
                          > 0, 2.0)
        drive(6)
        assert spin_until(executor, lambda: len(paths) >= 4, 2.0)
        assert np.ptp(steps(paths[-1])) < 1e-6  # constant velocity: equal steps
        n_paths, n_diags = len(paths), len(diags)
        assert spin_until(executor, lambda: bytes([2]) in levels()[n_diags:], 0.5), \
            f'no ERROR diagnostic within 0.5 s of the last input: {nodes[1].health}'
        assert len(paths) > n_paths
        stop = paths[-1]
        assert np.all(np.diff(steps(stop)) < -0.5)  # decelerating: 2.5 m/s^2 x 0.5 s x 0.5 s
        error = [d for d in diags[n_diags:] if d.status and d.status[0].level == bytes([2])][0]
        assert 'no input' in error.status[0].message
        n_paths, n_diags = len(paths), len(diags)
        drive(4)
        assert spin_until(executor, lambda: bytes([0]) in levels()[n_diags:], 2.0)
        assert spin_until(executor, lambda: len(paths) > n_paths
                          and np.ptp(steps(paths[-1])) < 1e-6, 2.0)
        assert (ros.stamp_to_nanoseconds(paths[-1].header.stamp)
                > ros.stamp_to_nanoseconds(stop.header.stamp))
    finally:
        _close(executor)
    assert nodes[1].health.fault == ''


def test_malformed_input_and_time_jump_are_logged_and_survived(ros_context, sim_frames, capfd):
    from nav_msgs.msg import Odometry, Path
    from rclpy.node import Node
    from sensor_msgs.msg import Image, PointCloud2

    from pair_drive_ros import ros

    frames, route = sim_frames
    nodes = _graph(ros_context, ('perception_node', 'planner_node'),
                   {'perception_node': {'use_sim_time': True},
                    'planner_node': {'use_sim_time': True, 'max_input_age_s': 5.0}})
    perception, planner = nodes
    probe = Node('probe', context=ros_context)
    sensors = _SensorPublisher(probe, route)
    paths = _collect(probe, Path, '/planner/trajectory')
    executor = _executor(ros_context, nodes + [probe])
    try:
        assert spin_until(executor, lambda: probe.count_subscribers('/carla/ego_vehicle/lidar')
                          > 0, 2.0)
        # One frame per plan: the planner keeps only the newest frame while it plans, and the
        # first plan (model load, kernel compilation) takes seconds on a slow machine. The
        # waits are upper bounds (spin_until returns once the plan is in).
        for k in range(3):
            sensors.publish(frames[k], 100.0 + 0.1 * k, clock=True)
            assert spin_until(executor, lambda: len(paths) == k + 1, 10.0)
        hdr = ros.make_header(ros.seconds_to_stamp(100.35), 'ego_vehicle/rgb_front')
        bad_image = Image(header=hdr, height=10, width=10, encoding='bgra8', step=40,
                          data=bytes(12))
        bad_cloud = PointCloud2(header=hdr, height=1, width=100, point_step=16, row_step=1600,
                                data=bytes(16))
        bad_odom = Odometry(header=hdr)
        bad_odom.pose.pose.position.x = float('nan')
        for _ in range(3):
            sensors.pubs['camera'].publish(bad_image)
            sensors.pubs['lidar'].publish(bad_cloud)
            sensors.pubs['odometry'].publish(bad_odom)
            spin_until(executor, lambda: False, 0.05)
        assert spin_until(executor, lambda: perception.bad_inputs >= 9, 2.0)
        # A bag loop: /clock and stamps jump back by 50 s.
        for k in range(4):
            sensors.publish(frames[k], 50.0 + 0.1 * k, clock=True)
            spin_until(executor, lambda: False, 0.05)
        assert spin_until(executor, lambda: len(paths) >= 6, 10.0)
    finally:
        _close(executor)
    stamps = [ros.stamp_to_seconds(p.header.stamp) for p in paths]
    assert stamps[:3] == pytest.approx([100.0, 100.1, 100.2])
    assert min(stamps[3:]) >= 50.0 and max(stamps[3:]) < 51.0
    assert planner.health.stops == 0
    err = capfd.readouterr().err
    # Throttled: nine malformed messages in well under 2 s give one log line.
    assert err.count('dropping malformed') == 1
    assert 'time jumped backwards' in err


def test_tracker_follows_a_path_and_brakes_when_it_goes_stale(ros_context, sim_frames):
    from geometry_msgs.msg import Twist
    from nav_msgs.msg import Odometry, Path
    from rclpy.node import Node

    from pair_drive_ros import ros
    from pair_drive_ros.core.trajectory import Trajectory

    frames, _ = sim_frames
    # Twist whatever message packages are installed (CARLA's control type is checked elsewhere).
    (tracker,) = _graph(ros_context, ('tracker_node',),
                        {'tracker_node': {'control_type': 'twist'}})
    probe = Node('probe', context=ros_context)
    cmds = _collect(probe, Twist, '/carla/ego_vehicle/twist')
    odom_pub = probe.create_publisher(Odometry, '/carla/ego_vehicle/odometry', 10)
    path_pub = probe.create_publisher(Path, '/planner/trajectory', 1)
    executor = _executor(ros_context, [tracker, probe])
    ego = frames[0].ego
    try:
        assert spin_until(executor, lambda: probe.count_subscribers('/planner/trajectory') > 0,
                          2.0)
        stamp = ros.seconds_to_stamp(ego.stamp_s)
        odom_pub.publish(ros.ego_state_to_odometry(ego, stamp=stamp))
        plan = Trajectory(np.stack([ego.speed * 0.5 * np.arange(1, 9), np.full(8, 1.0),
                                    np.zeros(8)], -1)).to_map(ego.pose)
        plan = Trajectory(plan.poses, plan.dt_s, plan.frame, ego.stamp_s)
        path_pub.publish(ros.trajectory_to_path(plan, ros.make_header(stamp, 'map')))
        assert spin_until(executor, lambda: len(cmds) >= 3, 2.0)
        following = cmds[-1]
        n = len(cmds)
        assert spin_until(executor, lambda: len(cmds) > n and cmds[-1].linear.x == 0.0, 2.0)
    finally:
        _close(executor)
    assert following.linear.x == pytest.approx(ego.speed, rel=0.05)
    # Target 1 m to the left of the heading: turns left (heading-relative, map yaw aside).
    assert following.angular.z > 0.0
    assert tracker.kind == 'twist'


def test_non_finite_plan_gives_stopping_path_and_error(ros_context, sim_frames):
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import Path
    from rclpy.node import Node

    from pair_drive_ros import ros
    from pair_drive_ros.core.trajectory import Trajectory
    from pair_drive_ros.nodes.planner_node import PlannerNode
    from pair_drive_ros.perception.builder import FeatureBuilder
    from pair_drive_ros.policy.base import AbstractPlanner, PlanOutput

    class BrokenPlanner(AbstractPlanner):
        name = 'broken'

        def compute_plan(self, inputs):
            cands = np.full((2, 8, 3), np.nan)
            return PlanOutput(Trajectory(np.zeros((8, 3))), candidates=cands)

    frames, route = sim_frames
    frame = dataclasses.replace(frames[0], route=route)
    features = FeatureBuilder().build(frame)
    planner = PlannerNode(planner=BrokenPlanner(), context=ros_context)
    probe = Node('probe', context=ros_context)
    paths = _collect(probe, Path, '/planner/trajectory')
    diags = _collect(probe, DiagnosticArray, '/diagnostics')
    pubs = _feature_publishers(probe)
    executor = _executor(ros_context, [planner, probe])
    try:
        msgs = _publish_fresh(executor, probe, pubs, features)
        assert spin_until(executor, lambda: paths and any(
            d.status[0].level == bytes([2]) for d in diags), 2.0)
    finally:
        _close(executor)
    error = [d for d in diags if d.status[0].level == bytes([2])][0]
    assert 'non-finite' in error.status[0].message
    xy = np.array([[q.pose.position.x, q.pose.position.y] for q in paths[0].poses])
    assert np.all(np.isfinite(xy))
    assert np.all(np.diff(np.linalg.norm(np.diff(xy, axis=0), axis=1)) < 0)  # braking
    assert (ros.stamp_to_nanoseconds(paths[0].header.stamp)
            == ros.stamp_to_nanoseconds(msgs['ego'].header.stamp))


SAMPLE_BAG = Path(__file__).resolve().parent / 'data' / 'sample_bag'


@pytest.mark.skipif(not (SAMPLE_BAG / 'metadata.yaml').is_file(), reason='no sample bag')
def test_sample_bag_gives_one_path_per_lidar_frame(ros_context):
    from nav_msgs.msg import Path as PathMsg
    from rclpy.node import Node

    from pair_drive_ros import ros
    from pair_drive_ros.apps.replay import BagPlayer

    lidar = [ros.stamp_to_nanoseconds(m.header.stamp) for _, _, m in
             ros.read_bag(SAMPLE_BAG, ['/carla/ego_vehicle/lidar'])]
    nodes = _graph(ros_context, ('perception_node', 'planner_node'),
                   {'perception_node': {'use_sim_time': True},
                    'planner_node': {'use_sim_time': True, 'max_input_age_s': 5.0}})
    probe = Node('probe', context=ros_context)
    paths = _collect(probe, PathMsg, '/planner/trajectory', 100)
    executor = _executor(ros_context, nodes + [probe])
    try:
        # Half speed: the planner keeps only the newest frame, so a loaded machine must not
        # make it skip one (the point here is one Path per frame, not real-time speed).
        player = BagPlayer(probe, SAMPLE_BAG, rate=0.5)
        assert spin_until(executor, lambda: probe.count_subscribers('/carla/ego_vehicle/lidar')
                          and probe.count_publishers('/planner/trajectory'), 2.0)
        assert spin_until(executor, lambda: not player.step() and len(paths) >= len(lidar),
                          60.0)
    finally:
        _close(executor)
    assert [ros.stamp_to_nanoseconds(p.header.stamp) for p in paths] == lidar
    assert {p.header.frame_id for p in paths} == {'map'}
    assert all(len(p.poses) == 8 for p in paths)


def test_pair_planner_publishes_il_path_and_scored_candidates(ros_context, sim_frames):
    torch = pytest.importorskip('torch')
    from nav_msgs.msg import Path as PathMsg
    from rclpy.node import Node
    from visualization_msgs.msg import Marker, MarkerArray

    from pair_drive_ros import ros
    from pair_drive_ros.nodes.planner_node import PlannerNode
    from pair_drive_ros.perception.builder import FeatureBuilder
    from pair_drive_ros.policy.il_planner import build_model, TransfuserPlanner
    from pair_drive_ros.policy.pair import PaIRPlanner
    from pair_drive_ros.policy.rl_branch import RLBranch, RLBranchConfig
    from pair_drive_ros.policy.selector import Selector, SelectorConfig
    from pair_drive_ros.ros.features import feature_messages, FEATURE_TOPICS

    torch.manual_seed(0)  # untrained weights: this checks the plumbing, not the driving
    torch.set_num_threads(1)  # the executor's threads share two cores with torch here
    pair = PaIRPlanner(TransfuserPlanner(build_model('transfuser')), RLBranch(RLBranchConfig()),
                       Selector(SelectorConfig()))
    frames, route = sim_frames
    features = FeatureBuilder().build(dataclasses.replace(frames[0], route=route))
    planner = PlannerNode(planner=pair, context=ros_context)
    probe = Node('probe', context=ros_context)
    paths = _collect(probe, PathMsg, '/planner/trajectory')
    il_paths = _collect(probe, PathMsg, '/planner/il_trajectory')
    markers = _collect(probe, MarkerArray, '/planner/candidates')
    pubs = _feature_publishers(probe)
    executor = _executor(ros_context, [planner, probe])
    try:
        assert spin_until(executor, lambda: all(p.get_subscription_count() for p in
                                                pubs.values())
                          and planner.count_subscribers('/planner/candidates')
                          and planner.count_subscribers('/planner/il_trajectory'), 2.0)
        msgs = feature_messages(features, probe.get_clock().now().to_msg())
        for key in FEATURE_TOPICS:
            pubs[key].publish(msgs[key])
        assert spin_until(executor, lambda: paths and il_paths and markers, 20.0)
    finally:
        _close(executor)
    stamp = ros.stamp_to_nanoseconds(msgs['ego'].header.stamp)
    for msg in (paths[0], il_paths[0], markers[0].markers[0]):
        assert ros.stamp_to_nanoseconds(msg.header.stamp) == stamp and msg.header.frame_id == 'map'
    strips = markers[0].markers[1:]
    assert markers[0].markers[0].action == Marker.DELETEALL and len(strips) == 16
    # Candidate 0 is the IL plan: the same map-frame points as ~/il_trajectory.
    il_xy = np.array([[q.pose.position.x, q.pose.position.y] for q in il_paths[0].poses])
    c0 = np.array([[p.x, p.y] for p in strips[0].points])
    np.testing.assert_allclose(c0, il_xy, atol=1e-4)
    assert planner.health.plans == 1 and planner.health.model_ids == 'pair'


def test_a_frame_before_the_perception_config_waits_for_it(ros_context, sim_frames):
    torch = pytest.importorskip('torch')
    import json

    from nav_msgs.msg import Path as PathMsg
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from std_msgs.msg import String

    from pair_drive_ros import ros
    from pair_drive_ros.nodes.planner_node import PlannerNode
    from pair_drive_ros.perception.builder import FeatureBuilder
    from pair_drive_ros.policy.il_planner import build_model, TransfuserPlanner
    from pair_drive_ros.ros.features import feature_messages, FEATURE_TOPICS

    torch.manual_seed(0)  # untrained weights: this checks the plumbing, not the driving
    torch.set_num_threads(1)
    il = TransfuserPlanner(build_model('transfuser'))
    frames, route = sim_frames
    builder = FeatureBuilder(il.perception_config)
    features = builder.build(dataclasses.replace(frames[0], route=route))
    planner = PlannerNode(planner=il, context=ros_context,
                          parameter_overrides=[Parameter('max_input_age_s', value=5.0)])
    probe = Node('probe', context=ros_context)
    paths = _collect(probe, PathMsg, '/planner/trajectory')
    pubs = _feature_publishers(probe)
    config = probe.create_publisher(String, '/perception/perception_config', ros.latched_qos())
    executor = _executor(ros_context, [planner, probe])
    try:
        assert spin_until(executor, lambda: all(p.get_subscription_count() for p in
                                                pubs.values())
                          and config.get_subscription_count(), 2.0)
        msgs = feature_messages(features, probe.get_clock().now().to_msg())
        for key in FEATURE_TOPICS:
            pubs[key].publish(msgs[key])
        # The config's publisher is there, its message is not: the frame is held, not planned
        # (a held frame goes stale like any other: max_input_age_s is 5 s here).
        assert not spin_until(executor, lambda: paths, 1.0)
        assert planner.health.plans == 0 and planner.health.stops == 0
        config.publish(String(data=json.dumps(il.perception_config.as_dict(), sort_keys=True)))
        assert spin_until(executor, lambda: paths, 20.0)
    finally:
        _close(executor)
    # The held frame itself is planned once the config is checked.
    assert ros.stamp_to_nanoseconds(paths[0].header.stamp) == \
        ros.stamp_to_nanoseconds(msgs['ego'].header.stamp)
    assert planner.health.plans == 1 and planner.health.fault == ''


def test_planner_refuses_features_of_another_perception_config(ros_context, sim_frames,
                                                               tmp_path):
    from nav_msgs.msg import Path
    from rclpy.node import Node

    from pair_drive_ros.apps.replay import BagPlayer

    frames, route = sim_frames
    _write_bag(tmp_path / 'bag', frames, route)
    # Same 64 x 64 cells at another resolution: the shapes agree, the features do not.
    other = tmp_path / 'perception.yaml'
    other.write_text('perception: {x_min_m: -8.0, x_max_m: 24.0, y_extent_m: 16.0, '
                     'resolution_m: 0.5}\n')
    nodes = _graph(ros_context, ('perception_node', 'planner_node'),
                   {'perception_node': {'use_sim_time': True, 'perception_config': str(other)},
                    'planner_node': {'use_sim_time': True, 'max_input_age_s': 5.0,
                                     'planner': 'transfuser'}})
    planner = nodes[1]
    probe = Node('probe', context=ros_context)
    paths = _collect(probe, Path, '/planner/trajectory')
    executor = _executor(ros_context, nodes + [probe])
    try:
        player = BagPlayer(probe, tmp_path / 'bag', rate=0.5)
        assert spin_until(executor, lambda: probe.count_subscribers('/carla/ego_vehicle/lidar')
                          and probe.count_publishers('/planner/trajectory'), 2.0)
        assert spin_until(executor, lambda: not player.step() and planner.health.stops >= 3,
                          20.0)
    finally:
        _close(executor)
    assert planner.health.plans == 0 and len(paths) >= 3
    assert 'perception config mismatch' in planner.health.fault
    assert 'resolution_m' in planner.health.fault


def test_perception_takes_sensor_mounts_from_tf_static(ros_context):
    pytest.importorskip('tf2_msgs.msg')
    from geometry_msgs.msg import TransformStamped
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from tf2_msgs.msg import TFMessage

    from pair_drive_ros import ros
    from pair_drive_ros.nodes.perception_node import PerceptionNode

    def tf(parent, child, x, y, z, yaw):
        ts = TransformStamped(header=ros.make_header(ros.seconds_to_stamp(0.0), parent),
                              child_frame_id=child)
        ts.transform.translation.x, ts.transform.translation.y = x, y
        ts.transform.translation.z = z
        ts.transform.rotation.z, ts.transform.rotation.w = ros.yaw_to_quaternion(yaw)[2:]
        return ts

    probe = Node('tf_probe', context=ros_context)
    # Published before perception exists: transient local must still deliver it.
    lidar_pub = probe.create_publisher(TFMessage, '/tf_static', ros.latched_qos())
    lidar_pub.publish(TFMessage(transforms=[
        tf('map', 'ego_vehicle', 50.0, 3.0, 0.0, 1.0),
        tf('ego_vehicle', 'ego_vehicle/lidar', 0.5, -0.25, 1.75, 0.0)]))
    node = PerceptionNode(context=ros_context)
    defaults = node.params
    assert node.extrinsics.startswith('/tf_static (ego_vehicle -> ego_vehicle/lidar')
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    executor.add_node(probe)
    try:
        assert spin_until(executor, lambda: node.params.lidar_mount != defaults.lidar_mount, 5.0)
        assert node.params.lidar_mount == (0.5, -0.25, 1.75, 0.0)
        assert node.params.camera_mount == defaults.camera_mount     # not on TF yet: parameter
        assert node.extrinsics == '/tf_static (lidar_mount), parameters for the rest'
        # A second static broadcaster (its own latched message) gives the camera.
        camera_pub = probe.create_publisher(TFMessage, '/tf_static', ros.latched_qos())
        camera_pub.publish(TFMessage(transforms=[
            tf('ego_vehicle', 'ego_vehicle/rgb_front', 1.5, 0.0, 1.25, 0.0)]))
        assert spin_until(executor, lambda: node.extrinsics == '/tf_static', 5.0)
        assert node.params.camera_mount == (1.5, 0.0, 1.25, 0.0)
        assert node.params.lidar_mount == (0.5, -0.25, 1.75, 0.0)
        # A malformed transform is dropped and counted; the mounts stay.
        bad = tf('ego_vehicle', 'ego_vehicle/lidar', float('nan'), 0.0, 0.0, 0.0)
        lidar_pub.publish(TFMessage(transforms=[bad]))
        assert spin_until(executor, lambda: node.guard.monitor.stats('tf_static').dropped, 5.0)
        assert node.params.lidar_mount == (0.5, -0.25, 1.75, 0.0)
    finally:
        executor.shutdown()
        node.destroy_node()
        probe.destroy_node()


def test_speed_governor_slows_the_published_plan_to_the_speed_limit(ros_context, sim_frames):
    from nav_msgs.msg import Path
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from pair_drive_ros.core.trajectory import Trajectory
    from pair_drive_ros.nodes.planner_node import PlannerNode
    from pair_drive_ros.perception.builder import FeatureBuilder
    from pair_drive_ros.policy.base import AbstractPlanner, PlanOutput

    class FastPlanner(AbstractPlanner):
        name = 'fast'

        def compute_plan(self, inputs):
            x = 30.0 * 0.5 * np.arange(1, 9)
            return PlanOutput(Trajectory(np.stack([x, np.zeros(8), np.zeros(8)], -1)))

    frames, route = sim_frames
    features = FeatureBuilder().build(dataclasses.replace(frames[0], route=route))
    planner = PlannerNode(planner=FastPlanner(), context=ros_context, parameter_overrides=[
        Parameter('speed_governor', value=True), Parameter('speed_limit_mps', value=10.0),
        Parameter('output_frame', value='ego_vehicle')])
    probe = Node('probe', context=ros_context)
    paths = _collect(probe, Path, '/planner/trajectory')
    pubs = _feature_publishers(probe)
    executor = _executor(ros_context, [planner, probe])
    try:
        _publish_fresh(executor, probe, pubs, features)
        assert spin_until(executor, lambda: paths, 2.0)
    finally:
        _close(executor)
    xy = np.array([[q.pose.position.x, q.pose.position.y] for q in paths[0].poses])
    speeds = np.linalg.norm(np.diff(np.vstack([np.zeros(2), xy]), axis=0), axis=1) / 0.5
    assert np.allclose(speeds, 10.0, atol=0.1)   # the route here is straight: the limit binds
