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
Fuzz the running graph through real DDS: malformed messages of many kinds between good frames.

perception, planner and tracker run in one process, spun as `pair-drive run` spins them
(callback errors survived). Asserts: no node dies, every published Path is finite and plausible,
the malformed inputs are counted in /diagnostics (the planner's bad_inputs included), a stopping
trajectory follows stale input within 0.5 s, and good input brings planning back.

The test plays the simulator: it publishes /clock (the nodes use sim time) and runs in lockstep,
moving the clock on once a good frame is planned. Time bounds are asserted on that clock, the one
the planner's watchdog measures; wall-clock time-outs only bound the waiting, so a loaded machine
makes the test slower, never wrong.
"""

import copy
import time

import numpy as np
import pytest

pytest.importorskip('rclpy')

pytestmark = pytest.mark.ros

ROUNDS = 16             # every kind is sent this many times (67 kinds: 1,072 messages)
GOOD_EVERY = 3          # a good frame after this many malformed messages
FRAME_DT_S = 0.1
PACE_S = 0.5            # wall time to wait for a good frame's plan before going on
STARTUP_S = 20.0        # discovery and the first plans, however loaded the machine
ROUTES_USED = {'route/poses_10000'}   # resampled to LIMITS.max_route_poses, not refused


@pytest.fixture(scope='module')
def frames():
    from pair_drive_ros.core.trajectory import Trajectory
    from pair_drive_ros.sim.closed_loop import SimSession

    session = SimSession('highway', ego_mode='tracking', split='test')
    session.reset(11000)
    out = []
    for _ in range(6):
        out.append(session.sensor_frame())
        v = out[-1].ego.speed
        session.set_trajectory(Trajectory(np.stack([v * 0.5 * np.arange(1, 9), np.zeros(8),
                                                    np.zeros(8)], -1)))
        session.step()
    return out, session.route


def _stamp(t_s):
    from pair_drive_ros import ros
    return ros.seconds_to_stamp(t_s)


def _raw_stamp(sec, nanosec):
    from builtin_interfaces.msg import Time
    return Time(sec=sec, nanosec=nanosec)


def malformed_kinds(good: dict, features: dict, route_path):
    """{kind: (topic key, builder(t_s) -> message)}: each builder corrupts a good message."""
    def edit(key, fn, stamp=True):
        def build(t_s):
            msg = copy.deepcopy(good[key] if key in good else features[key[2:]])
            if stamp:
                msg.header.stamp = _stamp(t_s)
            fn(msg)
            return msg
        return build

    def setattrs(**kw):
        def fn(msg):
            for k, v in kw.items():
                obj = msg
                *path, last = k.split('__')
                for p in path:
                    obj = getattr(obj, p)
                setattr(obj, last, v)
        return fn

    def header(**kw):
        return setattrs(**{f'header__{k}': v for k, v in kw.items()})

    big = 2 ** 31 - 1
    kinds = {}
    # Camera (sensor_msgs/Image).
    for name, fn in {
        'height_0': setattrs(height=0), 'width_0': setattrs(width=0),
        'size_0x0': setattrs(height=0, width=0, step=0, data=b''),
        'step_short': setattrs(step=3), 'data_short': setattrs(data=b'\x00' * 10),
        'data_empty': setattrs(data=b''), 'encoding_unknown': setattrs(encoding='yuv422x'),
        'encoding_empty': setattrs(encoding=''), 'encoding_mono16': setattrs(encoding='mono16'),
        'height_huge': setattrs(height=big), 'width_huge': setattrs(width=big, step=big),
        'frame_empty': header(frame_id=''), 'frame_map': header(frame_id='map'),
        'nanosec_2e9': header(stamp=_raw_stamp(10, 2_000_000_000)),
        'stamp_zero': header(stamp=_raw_stamp(0, 0)),
        'stamp_future': lambda m: None,  # stamped below
        'stamp_negative': header(stamp=_raw_stamp(-5, 0)),
        'bigendian': setattrs(is_bigendian=1),
    }.items():
        kinds[f'camera/{name}'] = ('camera', edit('camera', fn))
    kinds['camera/stamp_future'] = ('camera', lambda t: edit('camera', lambda m: None)(t + 1e3))
    # LiDAR (sensor_msgs/PointCloud2).
    for name, fn in {
        'fields_empty': setattrs(fields=[]), 'point_step_0': setattrs(point_step=0),
        'width_huge': setattrs(width=big), 'data_short': setattrs(data=b'\x00' * 7),
        'row_step_0': setattrs(row_step=0), 'frame_map': header(frame_id='map'),
        'frame_empty': header(frame_id=''),
        'nanosec_2e9': header(stamp=_raw_stamp(10, 2_000_000_000)),
        'stamp_zero': header(stamp=_raw_stamp(0, 0)),
        'height_0': setattrs(height=0),
    }.items():
        kinds[f'lidar/{name}'] = ('lidar', edit('lidar', fn))

    def cloud_values(value):
        def fn(msg):
            pts = np.frombuffer(bytes(msg.data), np.float32).copy()
            pts[:] = value
            msg.data = pts.tobytes()
        return fn
    kinds['lidar/all_nan'] = ('lidar', edit('lidar', cloud_values(np.nan)))
    kinds['lidar/all_inf'] = ('lidar', edit('lidar', cloud_values(np.inf)))
    kinds['lidar/coords_1e30'] = ('lidar', edit('lidar', cloud_values(1e30)))

    def field_attr(attr, value):
        def fn(msg):
            msg.fields[0].__setattr__(attr, value)
        return fn
    kinds['lidar/field_datatype_99'] = ('lidar', edit('lidar', field_attr('datatype', 99)))
    kinds['lidar/field_offset_out'] = ('lidar', edit('lidar', field_attr('offset', 4000)))
    kinds['lidar/field_count_0'] = ('lidar', edit('lidar', field_attr('count', 0)))
    # Odometry.
    for name, fn in {
        'speed_1e30': setattrs(twist__twist__linear__x=1e30),
        'speed_inf': setattrs(twist__twist__linear__x=float('inf')),
        'speed_nan': setattrs(twist__twist__linear__x=float('nan')),
        'speed_1e3': setattrs(twist__twist__linear__x=1e3),
        'speed_jump': setattrs(twist__twist__linear__x=95.0),
        'position_1e308': setattrs(pose__pose__position__x=1e308),
        'position_nan': setattrs(pose__pose__position__y=float('nan')),
        'quaternion_zero': setattrs(pose__pose__orientation__w=0.0),
        'quaternion_nan': setattrs(pose__pose__orientation__z=float('nan')),
        'yaw_rate_1e9': setattrs(twist__twist__angular__z=1e9),
        'frame_empty': header(frame_id=''), 'frame_ego': header(frame_id='ego_vehicle'),
        'nanosec_2e9': header(stamp=_raw_stamp(10, 2_000_000_000)),
        'stamp_zero': header(stamp=_raw_stamp(0, 0)),
    }.items():
        kinds[f'odometry/{name}'] = ('odometry', edit('odometry', fn))
    kinds['odometry/stamp_future'] = ('odometry',
                                      lambda t: edit('odometry', lambda m: None)(t + 1e3))

    # Route (nav_msgs/Path, latched).
    def route_edit(fn):
        built = []

        def build(t_s):  # no stamp to vary: built once
            if not built:
                built.append(copy.deepcopy(route_path))
                fn(built[0])
            return built[0]
        return build

    def route_nan(msg):
        msg.poses[3].pose.position.x = float('nan')

    def route_far(msg):
        msg.poses[3].pose.position.x = 1e308

    def route_long(msg):
        from geometry_msgs.msg import PoseStamped
        xs = np.linspace(0.0, 5000.0, 10_000)
        msg.poses = [PoseStamped() for _ in xs]
        for p, x in zip(msg.poses, xs):
            p.pose.position.x = float(x)
            p.pose.orientation.w = 1.0
    kinds['route/empty'] = ('route', route_edit(setattrs(poses=[])))
    kinds['route/one_pose'] = ('route', route_edit(lambda m: setattr(m, 'poses', m.poses[:1])))
    kinds['route/nan_pose'] = ('route', route_edit(route_nan))
    kinds['route/coords_1e308'] = ('route', route_edit(route_far))
    kinds['route/frame_ego'] = ('route', route_edit(header(frame_id='ego_vehicle')))
    kinds['route/poses_10000'] = ('route', route_edit(route_long))
    # /clock.
    from rosgraph_msgs.msg import Clock
    kinds['clock/negative'] = ('clock', lambda t: Clock(clock=_raw_stamp(-100, 0)))
    kinds['clock/nanosec_2e9'] = ('clock', lambda t: Clock(clock=_raw_stamp(int(t),
                                                                            2_000_000_000)))
    # The planner's feature inputs, published directly (a second publisher on its topics).
    kinds['f_camera/wrong_shape'] = ('f_camera', edit('f_camera', setattrs(
        height=1, width=1, step=4, data=b'\x00' * 4)))
    kinds['f_camera/encoding_rgb8'] = ('f_camera', edit('f_camera', setattrs(encoding='rgb8')))
    kinds['f_camera/frame_map'] = ('f_camera', edit('f_camera', header(frame_id='map')))
    kinds['f_lidar_bev/height_0'] = ('f_lidar_bev', edit('f_lidar_bev', setattrs(height=0)))
    kinds['f_ego_status/data_short'] = ('f_ego_status', edit('f_ego_status',
                                                             setattrs(data=b'\x00' * 4)))
    kinds['f_ego/position_1e308'] = ('f_ego', edit('f_ego', setattrs(
        pose__pose__position__x=1e308)))
    kinds['f_ego/nanosec_2e9'] = ('f_ego', edit('f_ego', header(
        stamp=_raw_stamp(10, 2_000_000_000))))
    kinds['f_route/frame_ego'] = ('f_route', route_edit(header(frame_id='ego_vehicle')))
    # A complete feature frame whose ego is 1e308 m away (each part decodes on its own).
    kinds['f_frame/ego_1e308'] = ('f_frame', None)
    kinds['f_frame/ego_speed_1e30'] = ('f_frame', None)
    return kinds


def _path_ok(path) -> bool:
    xy = np.array([[q.pose.position.x, q.pose.position.y] for q in path.poses]).reshape(-1, 2)
    if len(xy) == 0 or not np.all(np.isfinite(xy)) or np.any(np.abs(xy) > 1e6):
        return False
    return bool(np.all(np.hypot(*np.diff(xy, axis=0).T) < 60.0))


def test_fuzzed_graph_keeps_running_plans_sanely_and_stops_on_stale_input(ros_context, frames,
                                                                          capfd):
    from diagnostic_msgs.msg import DiagnosticArray
    from nav_msgs.msg import Odometry, Path
    from rclpy.executors import MultiThreadedExecutor
    from rclpy.node import Node
    from rosgraph_msgs.msg import Clock
    from sensor_msgs.msg import Image, PointCloud2

    from pair_drive_ros import ros
    from pair_drive_ros.apps.run import make_nodes
    from pair_drive_ros.ros.carla import carla_topics
    from pair_drive_ros.nodes.sim_bridge_node import sensor_messages
    from pair_drive_ros.ros.executor import SpinErrors, spin_once_resilient

    sim_frames, route = frames
    exes = ('perception_node', 'planner_node', 'tracker_node')
    nodes = make_nodes(exes, overrides={
        'perception_node': {'use_sim_time': True},
        'planner_node': {'use_sim_time': True, 'planner': 'constant_velocity'},
        'tracker_node': {'use_sim_time': True, 'control_type': 'twist'}}, context=ros_context)
    perception, planner, tracker = nodes
    probe = Node('attacker', context=ros_context)
    t = carla_topics()
    pubs = {'camera': probe.create_publisher(Image, t['camera'], 10),
            'lidar': probe.create_publisher(PointCloud2, t['lidar'], 10),
            'odometry': probe.create_publisher(Odometry, t['odometry'], 10),
            'route': probe.create_publisher(Path, t['route'], ros.latched_qos()),
            'clock': probe.create_publisher(Clock, '/clock', 10)}
    for key in ('lidar_bev', 'camera', 'route_raster', 'ego_status'):
        pubs[f'f_{key}'] = probe.create_publisher(Image, f'/perception/{key}', 5)
    pubs['f_ego'] = probe.create_publisher(Odometry, '/perception/ego', 5)
    pubs['f_route'] = probe.create_publisher(Path, '/perception/route', ros.latched_qos())
    # The test is the simulator: it owns /clock, which the three nodes run on (use_sim_time).
    # Every time bound below is measured on this clock, the one the planner's watchdog uses,
    # so a loaded machine (slow spins, garbage-collector pauses) cannot break them.
    clock = {'t': 100.0}
    paths, diags, features = [], [], {}
    arrivals = []           # (Path stamp [ns], sim time [s] at its receipt), in receipt order
    path_stamps = set()

    def on_path(msg) -> None:
        stamp_ns = ros.stamp_to_nanoseconds(msg.header.stamp)
        arrivals.append((stamp_ns, clock['t']))
        path_stamps.add(stamp_ns)
        paths.append(msg)

    probe.create_subscription(Path, '/planner/trajectory', on_path, 100)
    probe.create_subscription(DiagnosticArray, '/diagnostics', diags.append, 100)
    for key in ('lidar_bev', 'camera', 'route_raster', 'ego_status', 'ego'):
        probe.create_subscription(Odometry if key == 'ego' else Image, f'/perception/{key}',
                                  lambda m, k=key: features.__setitem__(k, m), 5)
    executor = MultiThreadedExecutor(num_threads=4, context=ros_context)
    for node in nodes + [probe]:
        executor.add_node(node)
    errors = SpinErrors()
    route_path = ros.route_to_path(route, ros.make_header(_stamp(1.0), 'map'))

    def spin(seconds):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            spin_once_resilient(executor, 0.005, errors)

    def wait_for(done, timeout_s) -> bool:
        # Wall-clock time-outs only bound how long the test waits for an event; a slow
        # machine makes them take longer, it does not change what is asserted.
        end = time.monotonic() + timeout_s
        while not done() and time.monotonic() < end:
            spin_once_resilient(executor, 0.005, errors)
        return done()

    def good_frame(k) -> int:
        clock['t'] += FRAME_DT_S
        stamp = _stamp(clock['t'])
        pubs['clock'].publish(Clock(clock=stamp))
        msgs = sensor_messages(sim_frames[k % len(sim_frames)], stamp)
        for key in ('camera', 'odometry', 'lidar'):
            pubs[key].publish(msgs[key])
        return ros.stamp_to_nanoseconds(stamp)

    def planned_frame(k, timeout_s) -> int | None:
        """Send good frame k; its stamp once the planner has planned on it, else None."""
        plans = planner.health.plans
        stamp_ns = good_frame(k)
        # A stopping trajectory may carry the same stamp (the node clock): a plan is counted.
        ok = wait_for(lambda: stamp_ns in path_stamps and planner.health.plans > plans
                      and not planner.health.fault, timeout_s)
        return stamp_ns if ok else None

    def latest_values(prefix: str) -> dict:
        for d in reversed(diags):
            for s in d.status:
                if s.name.startswith(prefix):
                    return {kv.key: kv.value for kv in s.values}
        return {}

    tried, plans_before, unanswered, routes_missed = {}, 0, 0, {}
    try:
        pubs['route'].publish(route_path)
        # Start-up: good frames until the graph has matched and planned (discovery on a
        # loaded machine takes as long as it takes; lost first frames are not the test).
        deadline = time.monotonic() + STARTUP_S
        k = 0
        while not (len(paths) >= 3 and len(features) == 5) and time.monotonic() < deadline:
            planned_frame(k, 0.5)
            k += 1
        assert len(paths) >= 3 and len(features) == 5, 'the graph never planned'
        good = sensor_messages(sim_frames[0], _stamp(clock['t']))
        kinds = malformed_kinds(good, features, route_path)
        assert len(kinds) >= 50
        names = sorted(kinds)
        n_good = 0
        sent = 0
        plans_before = planner.health.plans
        t_fuzz = time.monotonic()
        for r in range(ROUNDS):
            for name in names:
                key, build = kinds[name]
                t_bad = clock['t'] + 0.05
                if key == 'f_frame':
                    stamp = _stamp(t_bad)
                    for fk in ('lidar_bev', 'camera', 'route_raster', 'ego_status', 'ego'):
                        msg = copy.deepcopy(features[fk])
                        msg.header.stamp = stamp
                        if fk == 'ego' and name.endswith('1e308'):
                            msg.pose.pose.position.x = 1e308
                        elif fk == 'ego':
                            msg.twist.twist.linear.x = 1e30
                        pubs[f'f_{fk}'].publish(msg)
                elif key in ('route', 'f_route'):
                    # Latched, keep-last-1 topics: the bad route is taken before the good one
                    # goes back (else the newer sample replaces it unread).
                    st = (perception if key == 'route' else planner).guard.monitor.stats('route')
                    n, d = st.received, st.dropped
                    pubs[key].publish(build(t_bad))
                    if name in ROUTES_USED:
                        wait_for(lambda: st.received > n, PACE_S)
                    elif not wait_for(lambda: st.dropped > d, PACE_S):
                        # Refused routes are waited for by their drop (a late good route
                        # does not count); one not seen in time may be replaced unread.
                        routes_missed[key] = routes_missed.get(key, 0) + 1
                    pubs[key].publish(route_path if key == 'route'
                                      else features_route(route_path))
                else:
                    pubs[key].publish(build(t_bad))
                tried[name] = tried.get(name, 0) + 1
                sent += 1
                # Deliver what is ready without waiting: at most GOOD_EVERY malformed messages
                # and one good one queue per topic (sensor readers keep 5) before the wait for
                # the good frame's plan below drains them.
                spin_once_resilient(executor, 0.0, errors)
                if sent % GOOD_EVERY == 0:
                    # Lockstep, as the simulator bridge runs: the clock moves on once the
                    # frame is planned (or given up on), so a slow machine does not turn good
                    # frames into stale ones.
                    unanswered += planned_frame(n_good, PACE_S) is None
                    n_good += 1
        spin(0.2)
        fuzz_s = time.monotonic() - t_fuzz
        good_plans = planner.health.plans - plans_before
        fuzz_stops = planner.health.stops
        # Stale input: the last good frame planned, then the clock keeps going (the simulator
        # runs) while the sensors are silent.
        last_good = next((s for s in (planned_frame(k, 2.0) for k in range(10)) if s), None)
        assert last_good is not None, 'no plan after the fuzzing'
        n_seen = len(arrivals)
        sim_start = clock['t']
        wall_end = time.monotonic() + 30.0
        stop = None
        while clock['t'] - sim_start < 1.5 and time.monotonic() < wall_end and stop is None:
            clock['t'] += 0.02
            pubs['clock'].publish(Clock(clock=_stamp(clock['t'])))
            spin(0.02)
            # The stopping trajectory is stamped with the node clock, after the last frame.
            stop = next((i for i in range(n_seen, len(arrivals)) if arrivals[i][0] > last_good),
                        None)
        assert stop is not None, 'no stopping trajectory within 1.5 s of stale input'
        assert planner.health.fault.startswith('no input')
        # From the last plan received (a late frame planned meanwhile restarts the wait):
        # max_input_age_s (0.3 s) + one watchdog period + delivery, within 0.5 s.
        quiet_from = max(t_s for s, t_s in arrivals[:stop] if s <= last_good)
        stop_s = arrivals[stop][1] - quiet_from
        assert stop_s < 0.5, f'stopping trajectory {stop_s:.3f} s after the last plan'
        # Recovery: good frames bring plans back.
        t_recover = time.monotonic()
        recovered = next((k + 1 for k in range(5) if planned_frame(k, 2.0)), None)
        assert recovered is not None, 'no plan after 5 good frames'
        recovery_s = time.monotonic() - t_recover
        # Diagnostics report the final counts (they come every second, steady clock).
        assert wait_for(lambda: latest_values('planner').get('bad_inputs')
                        == str(planner.guard.monitor.malformed)
                        and latest_values('perception').get('bad_inputs')
                        == str(perception.bad_inputs), 5.0), 'diagnostics lag the counters'
    finally:
        executor.shutdown()
        for node in nodes + [probe]:
            node.destroy_node()

    n_bad = sum(tried.values())
    assert n_bad >= 1000 and len(tried) >= 50
    assert all(_path_ok(p) for p in paths), 'a published Path is not finite and plausible'
    # No callback error escaped a node's guard (rclpy's /clock subscription included).
    assert errors.count == 0
    assert perception.guard.monitor.errors == 0 and planner.guard.monitor.errors == 0
    assert tracker.guard.monitor.errors == 0
    # Malformed input counted as malformed, in the planner's bad_inputs too.
    assert perception.bad_inputs >= 30 * ROUNDS
    assert planner.health.bad_inputs >= 5 * ROUNDS
    assert tracker.guard.monitor.malformed >= 10 * ROUNDS
    values = latest_values('planner')
    assert int(values['bad_inputs']) >= 5 * ROUNDS
    # Complete frames with an impossible ego (some are overwritten by newer frames unplanned).
    assert int(values['frame dropped.implausible_position']) >= 1
    assert int(values['frame dropped.implausible_speed']) >= 1
    pvalues = latest_values('perception')
    assert int(pvalues['camera dropped.empty_image']) >= 2 * ROUNDS  # best-effort QoS
    assert int(pvalues['odometry dropped.implausible_speed']) >= ROUNDS
    # Five route kinds are refused; the 10,000-pose route is resampled and used.
    assert 5 * ROUNDS - routes_missed.get('route', 0) <= int(pvalues['route dropped']) \
        <= 5 * ROUNDS
    assert int(values['route dropped.wrong_frame']) >= ROUNDS - routes_missed.get('f_route', 0)
    print(f'\nfuzz: {n_bad} malformed messages of {len(tried)} kinds, {n_good} good frames, '
          f'{good_plans} plans ({unanswered} unanswered within {PACE_S} s), {len(paths)} '
          f'paths all finite; spin errors {errors.count}; stop {stop_s:.2f} s (sim time) after '
          f'the last plan; recovery after {recovered} good frame(s), {recovery_s:.3f} s; '
          f'stops during the fuzzing {fuzz_stops}; fuzzing took {fuzz_s:.1f} s; routes not '
          f'seen in time {routes_missed}')
    for key in sorted(values):
        if 'dropped.' in key:
            print(f'  planner {key}: {values[key]}')
    for key in sorted(pvalues):
        if 'dropped.' in key:
            print(f'  perception {key}: {pvalues[key]}')
    # Nearly every good frame was planned on: in lockstep none goes stale while it waits, and
    # the malformed messages, stamped between good frames, must not spoil them.
    assert good_plans >= 0.9 * n_good


def features_route(route_path):
    """Return the route as perception republishes it (same message)."""
    return route_path
