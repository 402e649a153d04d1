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
sim_bridge_node: the embedded simulator behind the CARLA ROS bridge's topics.

Runs the scenarios of `scenarios` ('name:seed,...') one after the other with sim.SimSession and
publishes, per 0.1-s tick, what the CARLA bridge would: /clock, the front camera (bgra8 Image +
CameraInfo), the LiDAR (PointCloud2 x, y, z, intensity), odometry (map -> ego_vehicle), the
speedometer, the route (carla/<role>/waypoints, TRANSIENT_LOCAL), other vehicles as a
MarkerArray on carla/markers, and, when tf2_msgs is importable, map -> <role> on /tf every tick
and the sensor mounts once on /tf_static. Topic names are relative (a namespace moves them);
/clock, /tf and /tf_static are global. The ego follows the planner's
Path with the simulator's own tracking controller (the one used in training). Synchronous mode:
'lockstep' ticks once the planner has answered the current frame (or after `answer_timeout_s`),
'rate' ticks at `tick_rate_hz`. At the end of each episode its metrics are published as JSON on
~/episode_metrics (latched) and kept in `results`.

Start-up: the first frame goes out once a consumer subscribes to the LiDAR and the planner's
Path has a publisher; a frame that gets no answer within `answer_timeout_s` (lost while the
graph was still matching) is sent again, at most MAX_RESENDS times, then the simulator ticks
anyway, so no start order stalls the loop. Callbacks and timers are guarded (runtime/guard.py).
"""

import json
import time

import numpy as np
from rclpy.clock import Clock, ClockType
from rclpy.node import Node

from pair_drive_ros import ros
from pair_drive_ros.core.se2 import yaw_to_quaternion
from pair_drive_ros.core.shipped import shipped_path
from pair_drive_ros.core.trajectory import MAP_FRAME, Trajectory
from pair_drive_ros.nodes.guarding import NodeGuard
from pair_drive_ros.nodes.params import read_params, SimBridgeParams
from pair_drive_ros.ros.carla import carla_topics, sensor_messages
from pair_drive_ros.ros.executor import spin_node_process
from pair_drive_ros.ros.markers import agent_markers
from pair_drive_ros.runtime import safety, validate
from pair_drive_ros.runtime.guard import Dropped
from pair_drive_ros.sim.closed_loop import SimSession
from pair_drive_ros.sim.sensors import CameraConfig, LidarConfig
from pair_drive_ros.sim.suite import load_suite

THROTTLE_S = 2.0
EPISODE_GAP_S = 1.0
MAX_RESENDS = 3
START_WAIT_S = 30.0   # wait this long for the planner's Path publisher, then start anyway


def parse_scenarios(text: str) -> list[tuple[str, int]]:
    """'highway:11000, merge:11001' -> [('highway', 11000), ('merge', 11001)]."""
    out = []
    for item in (t.strip() for t in text.split(',')):
        if not item:
            continue
        name, _, seed = item.partition(':')
        try:
            out.append((name.strip(), int(seed) if seed.strip() else 0))
        except ValueError as err:
            raise ValueError(f'bad scenario entry {item!r}; expected name:seed') from err
    if not out:
        raise ValueError('no scenarios given')
    return out


def tf_message(stamp, transforms: list[tuple[str, str, np.ndarray]]):
    """tf2_msgs/TFMessage from (parent, child, (x, y, z, yaw)) triples; None without tf2_msgs."""
    try:
        from tf2_msgs.msg import TFMessage
    except ImportError:
        return None
    from geometry_msgs.msg import TransformStamped

    msg = TFMessage()
    for parent, child, xyzyaw in transforms:
        ts = TransformStamped(header=ros.make_header(stamp, parent), child_frame_id=child)
        ts.transform.translation.x, ts.transform.translation.y, ts.transform.translation.z = (
            float(v) for v in xyzyaw[:3])
        q = yaw_to_quaternion(xyzyaw[3])
        ts.transform.rotation.z, ts.transform.rotation.w = float(q[2]), float(q[3])
        msg.transforms.append(ts)
    return msg


class SimBridgeNode(Node):
    """Publish the simulator like the CARLA bridge; step it when the planner has answered."""

    def __init__(self, **kwargs) -> None:
        super().__init__('sim_bridge', **kwargs)
        from nav_msgs.msg import Odometry, Path
        from rosgraph_msgs.msg import Clock as ClockMsg
        from sensor_msgs.msg import CameraInfo, Image, PointCloud2
        from std_msgs.msg import Float32, String
        from visualization_msgs.msg import MarkerArray

        self.params = p = read_params(self, SimBridgeParams)
        validate.validate_params(p)
        self.guard = NodeGuard(self, status=self._status)
        guard = self.guard.monitor
        self.episodes = parse_scenarios(p.scenarios)
        self._suite = load_suite(p.suite or shipped_path('config', 'scenarios.yaml'))
        for name, _ in self.episodes:
            self._suite.get(name)  # fail early on an unknown scenario
        self._lidar_cfg = LidarConfig()
        self._camera_cfg = CameraConfig(width=p.camera_width, height=p.camera_height)
        self._frames = {'map': 'map', 'ego': p.role_name, 'lidar': f'{p.role_name}/lidar',
                        'camera': f'{p.role_name}/rgb_front'}
        topics = carla_topics(p.role_name, relative=True)
        sensor = ros.reliable_qos(10)  # what the CARLA bridge offers
        self._pubs = {
            'clock': self.create_publisher(ClockMsg, '/clock', ros.reliable_qos(10)),
            'camera': self.create_publisher(Image, topics['camera'], sensor),
            'camera_info': self.create_publisher(CameraInfo, topics['camera_info'], sensor),
            'lidar': self.create_publisher(PointCloud2, topics['lidar'], sensor),
            'odometry': self.create_publisher(Odometry, topics['odometry'], sensor),
            'speedometer': self.create_publisher(Float32, topics['speedometer'], sensor),
            'route': self.create_publisher(Path, topics['route'], ros.latched_qos()),
            'markers': self.create_publisher(MarkerArray, topics['markers'], sensor),
            'metrics': self.create_publisher(String, '~/episode_metrics', _metrics_qos()),
        }
        self._tf_ok = p.publish_tf and tf_message(None, []) is not None
        if self._tf_ok:
            from tf2_msgs.msg import TFMessage
            self._pubs['tf'] = self.create_publisher(TFMessage, '/tf', ros.reliable_qos(100))
            # The sensor mounts never move: once on /tf_static (latched), as
            # robot_state_publisher does for fixed joints.
            self._pubs['tf_static'] = self.create_publisher(TFMessage, '/tf_static',
                                                            ros.latched_qos())
            self._pubs['tf_static'].publish(tf_message(self.get_clock().now().to_msg(), [
                (self._frames['ego'], self._frames['lidar'],
                 np.asarray(self._lidar_cfg.mount, dtype=np.float64)),
                (self._frames['ego'], self._frames['camera'],
                 np.asarray(self._camera_cfg.mount, dtype=np.float64)),
            ]))
        self.create_subscription(Path, p.path_topic, guard.guard('path', self._path_callback),
                                 ros.reliable_qos(1))
        self.results: list[dict] = []
        self.finished = False
        self.ticks = 0
        self._episode = -1
        self._offset_s = p.start_time_s
        self._session = None
        self._pending_path = None
        self._answered = False
        self._answers = 0
        self._sent_wall = None
        self._resends = 0
        self.resends_total = 0
        self.unanswered_ticks = 0
        self._created_wall = time.monotonic()
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._wake = self.create_guard_condition(guard.guard_timer('tick', self._tick_callback))
        period = 1.0 / p.tick_rate_hz if p.tick_mode == 'rate' else 0.05
        self.create_timer(period, guard.guard_timer('tick_timer', self._timer_callback),
                          clock=self._steady)
        self.get_logger().info(
            f'{len(self.episodes)} episode(s) {p.scenarios}, {p.tick_mode} ticks, '
            f'/tf {"on" if self._tf_ok else "off (tf2_msgs not importable)"}')

    # ---- episodes ----------------------------------------------------------------------------
    def _start_next(self) -> bool:
        self._episode += 1
        if self._episode >= len(self.episodes):
            if not self.params.loop:
                self.finished = True
                self.get_logger().info('all episodes done')
                return False
            self._episode = 0
        name, seed = self.episodes[self._episode]
        if self._session is not None:
            self._offset_s = self.stamp_s() + EPISODE_GAP_S
        p = self.params
        self._session = SimSession(self._suite.get(name), ego_mode='tracking',
                                   lidar_cfg=self._lidar_cfg, camera_cfg=self._camera_cfg,
                                   max_steps=p.max_steps or None, split=p.split)
        self._session.reset(seed)
        self._pending_path = None
        self._answers = 0
        self._resends = 0
        self.get_logger().info(f'episode {self._episode + 1}/{len(self.episodes)}: {name} '
                               f'seed {seed}')
        self._publish_route()
        return True

    def stamp_s(self) -> float:
        """ROS time [s] of the current frame."""
        return self._offset_s + (self._session.time_s if self._session else 0.0)

    def _finish_episode(self) -> None:
        s = self._session
        m = dict(s.metrics(), scenario=s.spec.name, seed=s.seed, episode=self._episode)
        self.results.append(m)
        from std_msgs.msg import String
        self._pubs['metrics'].publish(String(data=json.dumps(m)))
        self.get_logger().info(
            f'episode {s.spec.name}:{s.seed} done: collision={m["collision"]} '
            f'off_road={m["off_road"]} route_completion={m["route_completion"]:.2f} '
            f'progress={m["progress_m"]:.1f} m in {m["steps"]} steps')

    # ---- ticking -----------------------------------------------------------------------------
    def _status(self) -> tuple[int, str, dict]:
        level = safety.OK if self._session is not None else safety.WARN
        message = 'finished' if self.finished else (
            'simulating' if self._session is not None else 'waiting for the graph')
        return level, message, {'ticks': str(self.ticks), 'episode': str(self._episode + 1),
                                'resends': str(self.resends_total),
                                'unanswered_ticks': str(self.unanswered_ticks)}

    def _path_callback(self, msg) -> None:
        traj = ros.path_to_trajectory(msg)
        if len(traj) == 0 or not np.all(np.isfinite(traj.poses)):
            raise Dropped('empty_or_non_finite_path')
        if traj.frame != MAP_FRAME:
            raise Dropped('wrong_frame', f'Path in {traj.frame!r}; the simulator follows map '
                          'paths only')
        if np.any(np.abs(traj.poses[:, :2]) > validate.LIMITS.max_position_m):
            raise Dropped('implausible_path', 'poses outside the map bounds')
        if self._session is None:
            raise Dropped('no_episode', malformed=False)
        stamp_ns = ros.stamp_to_nanoseconds(msg.header.stamp)
        if stamp_ns < ros.stamp_to_nanoseconds(ros.seconds_to_stamp(self._offset_s)):
            return  # planned for a previous episode
        answer = stamp_ns == ros.stamp_to_nanoseconds(ros.seconds_to_stamp(self.stamp_s()))
        lockstep = self.params.tick_mode == 'lockstep'
        if lockstep and not answer:
            # Lockstep is request/response: only the answer to the current frame (its stamp)
            # is followed; e.g. a watchdog stop sent across an episode change is not.
            return
        # Back to session time, where the tracking controller lives.
        self._pending_path = Trajectory(traj.poses, traj.dt_s, MAP_FRAME,
                                        traj.t0_s - self._offset_s)
        if answer and not self._answered:
            self._answered = True
            self._answers += 1
            if lockstep:
                self._wake.trigger()

    def _timer_callback(self) -> None:
        if self.finished:
            return
        p = self.params
        if self._session is None:
            # Wait for a consumer so that the first frame is not lost; in lockstep also for the
            # planner (its Path publisher appears once it is active, after its subscriptions).
            if self._pubs['lidar'].get_subscription_count() == 0 or (
                    p.tick_mode == 'lockstep' and self.count_publishers(p.path_topic) == 0):
                return
            if self.count_publishers(p.path_topic) == 0 \
                    and time.monotonic() - self._created_wall < START_WAIT_S:
                return
            if self._start_next():
                self._publish_frame()
            return
        if p.tick_mode == 'rate':
            self._tick_callback()
        elif time.monotonic() - self._sent_wall > p.answer_timeout_s:
            if self._answers == 0 and self._resends < MAX_RESENDS:
                # The first exchange of an episode can be lost while the graph is matching;
                # the same frame again is answered (perception re-matches equal stamps).
                self._resends += 1
                self.resends_total += 1
                self.get_logger().warning(
                    f'no answer from the planner yet; resending the frame '
                    f'({self._resends}/{MAX_RESENDS})', throttle_duration_sec=THROTTLE_S)
                self._publish_frame()
            else:
                self.unanswered_ticks += 1
                self.get_logger().warning('planner did not answer in time; ticking anyway',
                                          throttle_duration_sec=THROTTLE_S)
                self._tick_callback()

    def _tick_callback(self) -> None:
        s = self._session
        if self.finished or s is None:
            return
        if self._pending_path is not None:
            s.set_trajectory(self._pending_path)
            self._pending_path = None
        s.step()
        self.ticks += 1
        if s.done:
            self._finish_episode()
            if not self._start_next():
                return
        self._publish_frame()

    # ---- publishing --------------------------------------------------------------------------
    def _publish_route(self) -> None:
        stamp = ros.seconds_to_stamp(self.stamp_s())
        self._pubs['route'].publish(ros.route_to_path(self._session.route,
                                                      ros.make_header(stamp, 'map')))

    def _publish_frame(self) -> None:
        from rosgraph_msgs.msg import Clock as ClockMsg

        s = self._session
        stamp = ros.seconds_to_stamp(self.stamp_s())
        frame = s.sensor_frame()
        msgs = sensor_messages(frame, stamp, self.params.role_name)
        self._pubs['clock'].publish(ClockMsg(clock=stamp))
        if self._tf_ok:
            ego = frame.ego.pose
            self._pubs['tf'].publish(tf_message(stamp, [
                ('map', self._frames['ego'], np.array([ego[0], ego[1], 0.0, ego[2]])),
            ]))
        for key in ('camera', 'camera_info', 'odometry', 'speedometer'):
            self._pubs[key].publish(msgs[key])
        agents = s.log().agents(s.steps)
        self._pubs['markers'].publish(agent_markers(ros.make_header(stamp, 'map'), agents))
        # LiDAR last: perception anchors its frame on the LiDAR stamp.
        self._pubs['lidar'].publish(msgs['lidar'])
        self._answered = False
        self._sent_wall = time.monotonic()


def _metrics_qos():
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    return QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def main(args=None) -> None:
    # Spins until every episode is done, then exits (the launch file's on_exit shuts down).
    spin_node_process(SimBridgeNode, args, until=lambda node: node.finished, period_s=0.1)


if __name__ == '__main__':
    main()
