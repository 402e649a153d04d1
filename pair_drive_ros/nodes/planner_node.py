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
planner_node: features (joined by exact stamp) -> ~/trajectory (nav_msgs/Path).

Subscriptions only join and park the newest complete frame (never a queue); inference runs in
its own callback group, woken by a guard condition, so a MultiThreadedExecutor (`pair-drive run`)
keeps receiving while the model runs. The node's own entry point spins single-threaded: the
inputs then wait in their DDS queues during inference, and no executor thread competes with
the model for the GIL (docs/RESULTS.md, ROS 2 graph).

Outputs: ~/trajectory (Path, `output_frame`, stamped with the input stamp, pose k stamped with
its own future time), ~/il_trajectory (the same for the IL plan) and ~/candidates
(MarkerArray), both built only when subscribed, /diagnostics (1 Hz and on every change of
health).

Safety: every input is validated at receipt (stamp, frame, size, plausibility) and every
callback is guarded (runtime/guard.py): what the node cannot use is counted in /diagnostics and
dropped, never raised. No usable frame for `max_input_age_s`, measured from its receipt on the
steady clock (on the node clock under use_sim_time, so a stopped /clock (paused simulator,
finished bag) is not stale input, while a future or frozen stamp cannot hide silence), or a
non-finite or implausible plan -> a bounded stopping trajectory and an ERROR diagnostic, until
good input returns. A complete frame that is already too old when inference reaches it is
dropped as stale (data still flowing is not a reason to stop).
"""

import sys
import threading
import time

import numpy as np
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup
from rclpy.clock import Clock, ClockType
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from pair_drive_ros import ros
from pair_drive_ros.core.trajectory import EGO_FRAME, MAP_FRAME, Trajectory
from pair_drive_ros.nodes.lifecycle import activate
from pair_drive_ros.nodes.params import PERCEPTION_CONFIG_TOPIC, PlannerParams, read_params
from pair_drive_ros.perception.builder import obstacle_cells
from pair_drive_ros.perception.config import PerceptionConfig
from pair_drive_ros.policy.base import AbstractPlanner, PlannerInput, PlanOutput
from pair_drive_ros.ros.executor import spin_node_process
from pair_drive_ros.ros.features import FEATURE_TOPICS, features_from_messages
from pair_drive_ros.nodes.guarding import NodeGuard
from pair_drive_ros.ros.markers import candidate_markers
from pair_drive_ros.runtime import safety, validate
from pair_drive_ros.runtime.speed_governor import SpeedGovernor
from pair_drive_ros.runtime.sync import ExactJoin, LatestSlot

THROTTLE_S = 2.0
LATENCY_WINDOW = 200


def make_planner(p: PlannerParams) -> AbstractPlanner:
    """Build the planner named by the parameters (policy.factory), with its checkpoints."""
    from pair_drive_ros.policy.factory import build_planner

    if p.torch_threads > 0:
        import torch
        torch.set_num_threads(p.torch_threads)
    if p.gil_switch_interval_s > 0:
        sys.setswitchinterval(p.gil_switch_interval_s)
    planner = build_planner(p.planner, il_checkpoint=p.il_checkpoint or None,
                            rl_checkpoint=p.rl_checkpoint or None,
                            selector_checkpoint=p.selector_checkpoint or None, device=p.device)
    if planner.requires_scene:
        raise ValueError(f'planner {p.planner!r} needs privileged scene data, which a ROS '
                         'graph does not carry; use a sensor-based planner')
    return planner


def warm_up(planner: AbstractPlanner) -> float:
    """
    Run one inference on empty features of the planner's perception config; seconds taken.

    Model planners pay one-off costs (allocations, kernel selection) on their first call; paying
    them here keeps the first real frame from going stale.
    """
    from pair_drive_ros.core.ego import EgoState
    from pair_drive_ros.core.sensor_frame import SensorFrame
    from pair_drive_ros.perception.builder import FeatureBuilder

    cfg = model_perception_config(planner) or PerceptionConfig()
    features = FeatureBuilder(cfg).build(SensorFrame(0.0, EgoState(np.zeros(3))))
    start = time.perf_counter()
    planner.compute_plan(PlannerInput(features=features))
    planner.reset()
    return time.perf_counter() - start


def model_perception_config(planner: AbstractPlanner):
    """Return the perception config the planner's model was trained with (None: no model)."""
    inner = getattr(planner, 'il_planner', planner)
    return getattr(inner, 'perception_config', None)


def perception_config_mismatch(model_cfg, features_json: str) -> str:
    """Say how the features' perception config differs from the model's ('' when equal)."""
    import json

    from pair_drive_ros.core.config import config_diff

    if model_cfg is None:
        return ''
    try:
        got = json.loads(features_json)
    except ValueError as err:
        return f'unreadable perception config: {err}'
    diffs = config_diff(model_cfg.as_dict(), got)
    return '; '.join(diffs[:4]) + (' ...' if len(diffs) > 4 else '')


def model_ids(planner: AbstractPlanner, p: PlannerParams) -> str:
    """Short identification of the loaded models for diagnostics."""
    parts = [getattr(planner, 'name', type(planner).__name__)]
    for ckpt in (p.il_checkpoint, p.rl_checkpoint, p.selector_checkpoint):
        if ckpt:
            parts.append(ckpt.rsplit('/', 1)[-1])
    return ','.join(parts)


class PlannerNode(LifecycleNode):
    """
    Plan once per feature frame; stop safely on stale or broken input.

    A managed (lifecycle) node: configure builds the planner from its checkpoints and checks it
    with one warm-up inference, activate subscribes to the features and starts publishing,
    deactivate publishes a final stopping trajectory and stops, cleanup drops the model. With
    `autostart` (the Python API's default; the `autostart` parameter for `ros2 run`) it
    configures and activates itself.
    """

    def __init__(self, planner: AbstractPlanner | None = None, *,
                 autostart: bool | None = True, **kwargs) -> None:
        super().__init__('planner', **kwargs)
        self.params = read_params(self, PlannerParams)
        validate.validate_params(self.params)
        self.guard = NodeGuard(self, publish=False)
        self._injected = planner
        self.planner = None
        self.health = None
        self.latencies_ms: list[float] = []
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._active_handles = []
        self._configured_handles = []
        if self.params.autostart if autostart is None else autostart:
            activate(self)

    # ---- lifecycle ---------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        from diagnostic_msgs.msg import DiagnosticArray

        p = self.params
        try:
            self.planner = self._injected if self._injected is not None else make_planner(p)
        except (OSError, ValueError, RuntimeError, ImportError) as err:
            self.get_logger().error(f'cannot build planner {p.planner!r}: {err}')
            return TransitionCallbackReturn.FAILURE
        self.health = safety.PlannerHealth(planner=getattr(self.planner, 'name', p.planner),
                                           device=p.device,
                                           model_ids=model_ids(self.planner, p))
        self.latencies_ms = []
        if p.warmup:
            try:
                self.get_logger().info(f'warm-up inference: {warm_up(self.planner):.2f} s')
            except (ValueError, RuntimeError) as err:
                self.get_logger().error(f'warm-up inference failed: {err}')
                self.planner = None
                return TransitionCallbackReturn.FAILURE
        self._join = ExactJoin(FEATURE_TOPICS, max_pending=p.pending_frames)
        self._slot = LatestSlot()
        self._sim_time = bool(self.get_parameter('use_sim_time').value)
        self._last_good = None           # (steady ns, node-clock ns) at receipt of a used frame
        self._last_stamp_ns = None
        self._config_mismatch = ''
        self._config_seen = False        # a perception config message came since activation
        self._config_topic = ''
        self._config_lock = threading.Lock()
        self._held = None                # the frame that waits for the perception config
        self._last_ego = None
        self._last_plan_map = None
        self._route = None
        self._governor = SpeedGovernor(p.governor())
        # The BEV geometry of the obstacle cells the governor keeps its gap to.
        self._bev_config = model_perception_config(self.planner) or PerceptionConfig()
        self._work = MutuallyExclusiveCallbackGroup()
        self._path_pub = None  # the outputs appear on activation (see on_activate)
        self._diag_pub = self.create_publisher(DiagnosticArray, '/diagnostics',
                                               ros.reliable_qos(10))
        guard = self.guard.monitor
        self._wake = self.create_guard_condition(
            guard.guard_timer('inference', self._infer_callback), callback_group=self._work)
        diag = self.create_timer(p.diagnostics_period_s,
                                 guard.guard_timer('diagnostics', self._diagnostics_callback),
                                 callback_group=self._work, clock=self._steady)
        self._configured_handles = [self._diag_pub, self._wake, diag]
        self.get_logger().info(f'planner {self.health.model_ids} on {p.device}; output frame '
                               f'{p.output_frame}; inputs under {p.features_ns}')
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        from nav_msgs.msg import Odometry, Path
        from sensor_msgs.msg import Image
        from std_msgs.msg import String
        from visualization_msgs.msg import MarkerArray

        p = self.params
        inputs = MutuallyExclusiveCallbackGroup()
        qos = ros.reliable_qos(5)
        guard = self.guard.monitor
        handles = []
        self._config_seen = False
        self._config_topic = f'{p.features_ns}/{PERCEPTION_CONFIG_TOPIC}'
        for key in FEATURE_TOPICS:
            msg_type = Odometry if key == 'ego' else Image
            handles.append(self.create_subscription(
                msg_type, f'{p.features_ns}/{key}',
                guard.guard(key, lambda msg, k=key: self._feature_callback(k, msg)), qos,
                callback_group=inputs))
        handles.append(self.create_subscription(Path, f'{p.features_ns}/route',
                                                guard.guard('route', self._route_callback),
                                                ros.latched_qos(), callback_group=inputs))
        handles.append(self.create_subscription(
            String, self._config_topic,
            guard.guard('perception_config', self._perception_config_callback),
            ros.latched_qos(), callback_group=inputs))
        handles.append(self.create_timer(p.watchdog_period_s, self._watchdog_guarded,
                                         callback_group=self._work, clock=self._steady))
        self._active_handles = handles
        if self._path_pub is None:
            # Created after the subscriptions: a lockstep simulator that waits for a Path
            # publisher then knows that the planner also listens.
            self._path_pub = self.create_lifecycle_publisher(Path, '~/trajectory',
                                                             ros.reliable_qos(1))
            self._il_pub = self.create_lifecycle_publisher(Path, '~/il_trajectory',
                                                           ros.reliable_qos(1))
            self._cand_pub = self.create_lifecycle_publisher(MarkerArray, '~/candidates',
                                                             ros.reliable_qos(1))
            self._configured_handles += [self._path_pub, self._il_pub, self._cand_pub]
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy(self._active_handles)
        self._active_handles = []
        self._publish_final_stop()
        self._slot.take()  # a parked frame is not planned once inactive
        self._held = None
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._destroy(self._configured_handles)
        self._configured_handles = []
        self._path_pub = None
        self.planner = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        if self._active_handles:
            self._publish_final_stop()
        self._destroy(self._active_handles + self._configured_handles)
        self._active_handles, self._configured_handles = [], []
        return TransitionCallbackReturn.SUCCESS

    def _destroy(self, handles: list) -> None:
        for handle in handles:
            kind = type(handle).__name__
            if kind == 'LifecyclePublisher':
                self.destroy_lifecycle_publisher(handle)
            elif kind == 'Publisher':
                self.destroy_publisher(handle)
            elif kind == 'Subscription':
                self.destroy_subscription(handle)
            elif kind == 'Timer':
                self.destroy_timer(handle)
            else:
                self.destroy_guard_condition(handle)

    def _publish_final_stop(self) -> None:
        """Leave the ego with a stopping trajectory from its last pose (deactivate, shutdown)."""
        ego = getattr(self, '_last_ego', None)
        pub = getattr(self, '_path_pub', None)
        if ego is None or pub is None or not pub.is_activated():
            return
        path_xy = None
        if self._last_plan_map is not None:
            path_xy = self._last_plan_map.to_ego(ego.pose).xy
        stop = safety.stopping_trajectory(ego.speed, self.params.stop_decel_mps2, path_xy)
        stamp = self.get_clock().now().to_msg()
        self._path_pub.publish(self._path(stop, ego.pose, stamp, ros.stamp_to_seconds(stamp)))
        self.get_logger().info('deactivated: published a stopping trajectory')

    # ---- inputs (subscription group) ---------------------------------------------------------
    def _feature_callback(self, key: str, msg) -> None:
        stamp_ns = self.guard.stamp_ns(msg.header, key)
        validate.check_frame(msg.header.frame_id,
                             MAP_FRAME if key == 'ego' else self.params.ego_frame, key)
        if key != 'ego':
            validate.check_image_size(msg.height, msg.width, msg.step, len(msg.data))
        done = self._join.add(key, stamp_ns, msg)
        if done is not None:
            self._slot.put((done[0], done[1], self._steady.now().nanoseconds,
                            self.get_clock().now().nanoseconds))
            self._wake.trigger()

    def _perception_config_callback(self, msg) -> None:
        why = perception_config_mismatch(model_perception_config(self.planner), msg.data)
        if why and why != self._config_mismatch:
            self.get_logger().error(
                'the features come from another perception config than the model was trained '
                f'with ({why}); not planning: give the perception node the planner checkpoint '
                'as its perception_config')
        with self._config_lock:
            self._config_mismatch = why
            self._config_seen = True
            held, self._held = self._held, None
        if held is not None and self._slot.offer(held):   # a newer frame in the slot wins
            self._wake.trigger()

    def _route_callback(self, msg) -> None:
        validate.check_frame(msg.header.frame_id, MAP_FRAME, 'route')
        self._route = validate.cap_route(ros.path_to_route(msg))

    # ---- inference (work group) --------------------------------------------------------------
    def _infer_callback(self) -> None:
        item = self._slot.take()
        if item is None:
            return
        with self._config_lock:
            # The features' perception config (latched, on its own subscription) can arrive
            # after the first frames: a frame waits for it while its publisher is there, and
            # the config callback hands the frame back.
            wait = not self._config_seen and self.count_publishers(self._config_topic) > 0
            if wait:
                self._held = item
        if wait:
            self.get_logger().info('waiting for the perception config before planning',
                                   throttle_duration_sec=THROTTLE_S)
            return
        stamp_ns, parts, steady_ns, node_ns = item
        h = self.health
        h.frames += 1
        h.dropped = self._join.dropped + self._slot.overwritten
        if self._last_stamp_ns is not None and stamp_ns < self._last_stamp_ns:
            self.get_logger().warning('input time jumped backwards; resetting the planner',
                                      throttle_duration_sec=THROTTLE_S)
            self.planner.reset()
            self._governor.reset()
            self._last_plan_map = None
        features = self.guard.monitor.call('frame', self._decode_frame, parts)
        if features is None:
            h.bad_inputs = self.guard.monitor.malformed
            return
        if self._config_mismatch:
            self._last_ego = features.ego
            return self._stop(f'perception config mismatch: {self._config_mismatch}',
                              ros.nanoseconds_to_stamp(stamp_ns))
        stamp = ros.nanoseconds_to_stamp(stamp_ns)
        age_s = (self.get_clock().now().nanoseconds - stamp_ns) * 1e-9
        h.last_input_age_s = age_s
        if age_s > self.params.max_input_age_s:
            # Data is still flowing, only this frame is late (the watchdog stops the car when
            # no usable frame comes in time).
            h.stale_frames += 1
            self.guard.monitor.drop('frame', 'stale', f'{age_s:.3f} s old', malformed=False)
            return
        self._last_stamp_ns = stamp_ns
        self._last_ego = features.ego
        self._last_good = (steady_ns, node_ns)
        t_start = time.perf_counter()
        try:
            out = self.planner.compute_plan(PlannerInput(features=features))
            finite = safety.plan_is_finite(out.trajectory.poses, out.candidates)
        except (ValueError, FloatingPointError, RuntimeError) as err:
            self.get_logger().error(f'planner failed: {err}', throttle_duration_sec=THROTTLE_S)
            return self._stop(f'planner failed: {err}', stamp)
        h.last_latency_ms = (time.perf_counter() - t_start) * 1e3
        self.latencies_ms = (self.latencies_ms + [h.last_latency_ms])[-LATENCY_WINDOW:]
        if not finite:
            return self._stop('planner returned non-finite values', stamp)
        why = validate.plan_is_plausible(out.trajectory.poses)
        if why:
            h.implausible_plans += 1
            return self._stop(f'implausible plan: {why}', stamp)
        self._govern(out, features)
        self._publish_plan(out, features.ego.pose, stamp_ns)

    def _govern(self, out: PlanOutput, features) -> None:
        """Apply the speed governor (its parameters may change at run time) to the plan."""
        p = self.params
        if not p.speed_governor:
            return
        cfg = p.governor()
        if cfg != self._governor.cfg:
            self._governor = SpeedGovernor(cfg)
        cells = obstacle_cells(self._bev_config, features.lidar_bev) if cfg.keep_gap else None
        out.trajectory = self._governor(out.trajectory, features.ego.pose, features.stamp_s,
                                        features.route, p.speed_limit_mps or None, cells)

    def _decode_frame(self, parts: dict):
        features = features_from_messages(parts, route=self._route)
        ego = features.ego
        validate.check_ego(ego.pose, ego.velocity, ego.yaw_rate)
        return features

    def _publish_plan(self, out: PlanOutput, ego_pose: np.ndarray, stamp_ns: int) -> None:
        p = self.params
        stamp = ros.nanoseconds_to_stamp(stamp_ns)
        t0 = stamp_ns * 1e-9
        # The plan first: it is what the latency is measured to; the debug outputs follow,
        # built only for a subscriber (each costs a message build and a publish per frame).
        self._path_pub.publish(self._path(out.trajectory, ego_pose, stamp, t0))
        if out.il_trajectory is not None and self._il_pub.get_subscription_count() > 0:
            self._il_pub.publish(self._path(out.il_trajectory, ego_pose, stamp, t0))
        if out.candidates is not None and self._cand_pub.get_subscription_count() > 0:
            cands = np.asarray(out.candidates, dtype=np.float64)
            if p.output_frame == 'map':
                cands = np.stack([Trajectory(c).to_map(ego_pose).poses for c in cands])
            self._cand_pub.publish(candidate_markers(ros.make_header(stamp, p.output_frame),
                                                     cands, out.candidate_scores))
        self._last_plan_map = out.trajectory.to_map(ego_pose)
        self.health.plans += 1
        if self.health.fault:
            self.get_logger().info(f'recovered from: {self.health.fault}')
            self.health.fault = ''
            self._diagnostics_callback()

    def _path(self, traj: Trajectory, ego_pose: np.ndarray, stamp, t0_s: float):
        p = self.params
        if p.output_frame == 'map':
            out = traj.to_map(ego_pose)
        else:
            out = traj.to_ego(ego_pose, EGO_FRAME)
        out = Trajectory(out.poses, out.dt_s, out.frame, t0_s)
        return ros.trajectory_to_path(out, ros.make_header(stamp, p.output_frame))

    # ---- safety ------------------------------------------------------------------------------
    def _stop(self, reason: str, stamp) -> None:
        h = self.health
        ego = self._last_ego
        if ego is None:
            return
        h.stops += 1
        newly = not h.fault
        h.fault = reason
        try:
            path_xy = None
            if self._last_plan_map is not None:
                path_xy = self._last_plan_map.to_ego(ego.pose).xy
            stop = safety.stopping_trajectory(ego.speed, self.params.stop_decel_mps2, path_xy)
            msg = self._path(stop, ego.pose, stamp, ros.stamp_to_seconds(stamp))
        except (ValueError, FloatingPointError, OverflowError) as err:
            # The stop itself must not fail: hold the last (validated) ego pose.
            self.get_logger().error(f'stopping trajectory failed ({err}); holding position',
                                    throttle_duration_sec=THROTTLE_S)
            msg = self._path(safety.standstill_trajectory(), ego.pose, stamp,
                             ros.stamp_to_seconds(stamp))
        self._path_pub.publish(msg)
        if newly:
            self.get_logger().error(f'publishing a stopping trajectory: {reason}',
                                    throttle_duration_sec=THROTTLE_S)
            self._diagnostics_callback()

    def quiet_s(self) -> float | None:
        """
        Seconds since the last usable frame was received (None before the first one).

        Measured from receipt, never from header stamps (a future or frozen stamp cannot hide
        silence): on the steady clock, or under use_sim_time on the node clock, where a paused
        simulator (lockstep) or a finished bag stops the clock too, which is not stale input.
        """
        if self._last_good is None:
            return None
        steady_ns, node_ns = self._last_good
        if not self._sim_time:
            return (self._steady.now().nanoseconds - steady_ns) * 1e-9
        now_ns = self.get_clock().now().nanoseconds
        if now_ns < node_ns:
            # /clock jumped back (bag loop, simulator reset): count from the jump.
            self._last_good = (steady_ns, now_ns)
            return 0.0
        return (now_ns - node_ns) * 1e-9

    def _watchdog_guarded(self) -> None:
        try:
            self._watchdog_callback()
        except Exception as err:  # noqa: B902  the watchdog must outlive any error
            self.guard.monitor.errors += 1
            self.get_logger().error(f'watchdog: {type(err).__name__}: {err}',
                                    throttle_duration_sec=THROTTLE_S)

    def _watchdog_callback(self) -> None:
        quiet_s = self.quiet_s()
        if quiet_s is None or quiet_s <= self.params.max_input_age_s:
            return
        self.health.last_input_age_s = quiet_s
        now_ns = self.get_clock().now().nanoseconds
        stamp_ns = now_ns if now_ns > 0 else (self._last_stamp_ns or 0)
        self._stop(f'no input for {quiet_s:.2f} s', ros.nanoseconds_to_stamp(stamp_ns))

    def _diagnostics_callback(self) -> None:
        self.health.bad_inputs = self.guard.monitor.malformed
        payload = safety.planner_status(self.health, self.latencies_ms)
        payload['values'].update(self.guard.monitor.values())
        status = safety.diagnostic_status(payload, f'{self.get_name()}: planner',
                                          hardware_id=self.params.device)
        self._diag_pub.publish(safety.diagnostic_array([status],
                                                       self.get_clock().now().to_msg()))


def main(args=None) -> None:
    spin_node_process(lambda: PlannerNode(autostart=None), args)


if __name__ == '__main__':
    main()
