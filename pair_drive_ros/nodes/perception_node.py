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
perception_node: camera + LiDAR + odometry (+ route) -> model features, one stamp per frame.

Subscribes to the CARLA bridge topics (sensor-data QoS, the route TRANSIENT_LOCAL), matches
camera, LiDAR and odometry by stamp within `sync_slop_s` (the LiDAR stamp is the frame's stamp),
runs the perception room's FeatureBuilder and publishes the features on private topics
(~/lidar_bev, ~/camera, ~/route_raster, ~/ego_status as 32FC1 Images, ~/ego Odometry, ~/route
Path), all with the frame's stamp. With history_sweeps > 0 in the perception config, the node
keeps one SweepHistory that every published frame feeds (it clears itself when time jumps back;
sweeps lost to gaps become zero channels flagged missing in the ego status).

Inputs are validated at receipt (stamp, frame, size, odometry plausibility) and every callback is
guarded: what cannot be used is counted per topic and reason in /diagnostics and dropped.

Sensor extrinsics: where tf2_msgs is importable, the node subscribes to /tf_static
(transient local, so a late start still gets the mounts) and, once the transforms
ego_frame -> lidar_frame / camera_frame arrive, uses them instead of its lidar_mount /
camera_mount parameters (x, y, z, yaw; roll and pitch dropped). The parameters stand until then
and for a frame /tf_static does not carry. No tf2_ros buffer: static mounts need no lookups.
"""

from dataclasses import replace
import json

import numpy as np
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn

from pair_drive_ros import ros
from pair_drive_ros.core.sensor_frame import SensorFrame
from pair_drive_ros.core.trajectory import MAP_FRAME
from pair_drive_ros.nodes.guarding import NodeGuard
from pair_drive_ros.nodes.lifecycle import activate
from pair_drive_ros.nodes.params import (PERCEPTION_CONFIG_TOPIC, PERCEPTION_OUTPUTS,
                                         PerceptionParams, read_params)
from pair_drive_ros.perception.builder import FeatureBuilder
from pair_drive_ros.perception.config import load_perception_config, PerceptionConfig
from pair_drive_ros.ros.executor import spin_node_process
from pair_drive_ros.ros.features import feature_messages
from pair_drive_ros.runtime import safety, validate
from pair_drive_ros.runtime.guard import Dropped
from pair_drive_ros.runtime.sync import StampSync, TimeJump

THROTTLE_S = 2.0


class PerceptionNode(LifecycleNode):
    """
    Synchronize sensors and publish features.

    A managed (lifecycle) node: configure loads the perception config and builds the feature
    builder, activate subscribes to the sensors and starts publishing, deactivate stops both.
    With `autostart` (the Python API's default; the `autostart` parameter for `ros2 run`) it
    configures and activates itself.
    """

    def __init__(self, *, autostart: bool | None = True, **kwargs) -> None:
        super().__init__('perception', **kwargs)
        self.params = read_params(self, PerceptionParams)
        validate.validate_params(self.params)
        self.guard = NodeGuard(self, status=self._status)
        self._accel = validate.AccelerationCheck()
        self._sync = None
        self.frames = 0
        self.extrinsics = 'parameters'
        self._tf_static_cls = None
        self._tf_mounts = {}
        self._active_handles = []
        self._pubs = {}
        if self.params.autostart if autostart is None else autostart:
            activate(self)

    # ---- lifecycle ---------------------------------------------------------------------------
    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        from nav_msgs.msg import Odometry, Path
        from sensor_msgs.msg import Image

        p = self.params
        try:
            cfg = load_perception_config(p.perception_config) if p.perception_config \
                else PerceptionConfig()
        except (OSError, ValueError) as err:
            self.get_logger().error(f'cannot load perception config: {err}')
            return TransitionCallbackReturn.FAILURE
        self._builder = FeatureBuilder(cfg)
        self._history = self._builder.new_history()
        self._sync = StampSync(('lidar', 'camera', 'odometry'), anchor='lidar',
                               slop_ns=int(p.sync_slop_s * 1e9), queue_size=p.sync_queue)
        self._route = None
        self._pubs = {}
        for name in PERCEPTION_OUTPUTS:
            msg_type = {'ego': Odometry, 'route': Path}.get(name, Image)
            # The route changes rarely: latched, republished only when a new one arrives.
            qos = ros.latched_qos() if name == 'route' else ros.reliable_qos(2)
            self._pubs[name] = self.create_lifecycle_publisher(msg_type, f'~/{name}', qos)
        self._route_published = None
        from std_msgs.msg import String

        self._config_msg = String(data=json.dumps(cfg.as_dict(), sort_keys=True))
        self._pubs['config'] = self.create_lifecycle_publisher(
            String, f'~/{PERCEPTION_CONFIG_TOPIC}', ros.latched_qos())
        self._start_tf()
        self.get_logger().info(
            f'sensor extrinsics from {self.extrinsics} (lidar {p.lidar_mount}, camera '
            f'{p.camera_mount}); BEV {cfg.bev_height}x{cfg.bev_width}, camera tensor '
            f'{cfg.camera_height}x{cfg.camera_width}')
        return TransitionCallbackReturn.SUCCESS

    def _start_tf(self) -> None:
        """Listen to /tf_static where tf2_msgs is importable (else the parameters stand)."""
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError:
            self.extrinsics = 'parameters (tf2_msgs is not installed)'
            return
        self._tf_static_cls = TFMessage
        p = self.params
        self.extrinsics = (f'/tf_static ({p.ego_frame} -> {p.lidar_frame}, {p.camera_frame}) '
                           'when published, parameters until then')

    def _tf_static_callback(self, msg) -> None:
        p = self.params
        mounts = ros.mounts_from_tf(msg, p.ego_frame, {'lidar_mount': p.lidar_frame,
                                                       'camera_mount': p.camera_frame})
        changed = {k: v for k, v in mounts.items() if self._tf_mounts.get(k) != v}
        if not changed:
            return
        self._tf_mounts.update(changed)
        self.params = replace(p, **changed)
        self.extrinsics = '/tf_static' if len(self._tf_mounts) == 2 else \
            f'/tf_static ({", ".join(sorted(self._tf_mounts))}), parameters for the rest'
        self.get_logger().info(f'sensor extrinsics from {self.extrinsics}: {changed}')

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        from nav_msgs.msg import Odometry, Path
        from sensor_msgs.msg import Image, PointCloud2

        p = self.params
        qos = ros.sensor_qos()
        guard = self.guard.monitor
        self._active_handles = [
            self.create_subscription(Image, p.camera_topic,
                                     guard.guard('camera', self._camera_callback), qos),
            self.create_subscription(PointCloud2, p.lidar_topic,
                                     guard.guard('lidar', self._lidar_callback), qos),
            self.create_subscription(Odometry, p.odometry_topic,
                                     guard.guard('odometry', self._odometry_callback), qos),
            self.create_subscription(Path, p.route_topic,
                                     guard.guard('route', self._route_callback),
                                     ros.latched_qos()),
        ]
        if self._tf_static_cls is not None:
            # Transient local: the bridge's one-off static transforms reach a later subscriber.
            self._active_handles.append(self.create_subscription(
                self._tf_static_cls, '/tf_static',
                guard.guard('tf_static', self._tf_static_callback), ros.latched_qos(depth=100)))
        result = super().on_activate(state)
        # Latched: a planner that starts later still learns which config built the features.
        self._pubs['config'].publish(self._config_msg)
        return result

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._drop_active()
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        for pub in self._pubs.values():
            self.destroy_lifecycle_publisher(pub)
        self._pubs = {}
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._drop_active()
        return TransitionCallbackReturn.SUCCESS

    def _drop_active(self) -> None:
        for handle in self._active_handles:
            if type(handle).__name__ == 'Timer':
                self.destroy_timer(handle)
            else:
                self.destroy_subscription(handle)
        self._active_handles = []

    # ---- inputs ------------------------------------------------------------------------------
    @property
    def bad_inputs(self) -> int:
        """Malformed inputs dropped so far (every topic)."""
        return self.guard.monitor.malformed

    def _status(self) -> tuple[int, str, dict]:
        level = safety.OK if self.frames else safety.WARN
        return level, 'publishing features' if self.frames else 'waiting for input', {
            'frames': str(self.frames), 'bad_inputs': str(self.bad_inputs),
            'sync_buffered': str(self._sync.buffered if self._sync is not None else 0)}

    def _camera_callback(self, msg) -> None:
        stamp_ns = self.guard.stamp_ns(msg.header, 'camera')
        validate.check_sensor_frame(msg.header.frame_id, 'camera image')
        validate.check_image_size(msg.height, msg.width, msg.step, len(msg.data))
        self._add('camera', stamp_ns, ros.image_to_rgb(msg))

    def _lidar_callback(self, msg) -> None:
        stamp_ns = self.guard.stamp_ns(msg.header, 'lidar')
        validate.check_sensor_frame(msg.header.frame_id, 'point cloud')
        validate.check_cloud_size(msg.height, msg.width, msg.point_step, len(msg.data))
        points = ros.pointcloud_to_xyzi(msg)
        # Non-finite points carry no range; the feature builder must not see them.
        if not np.isfinite(points).all():
            points = points[np.isfinite(points).all(axis=1)]
        self._add('lidar', stamp_ns, points)

    def _odometry_callback(self, msg) -> None:
        stamp_ns = self.guard.stamp_ns(msg.header, 'odometry')
        validate.check_frame(msg.header.frame_id, MAP_FRAME, 'odometry')
        ego = ros.odometry_to_ego_state(msg)
        validate.check_ego(ego.pose, ego.velocity, ego.yaw_rate)
        self._accel.check(stamp_ns * 1e-9, ego.velocity_map)
        self._add('odometry', stamp_ns, ego)

    def _route_callback(self, msg) -> None:
        # A route in another frame would be silently misplaced: rejected (no tf here).
        validate.check_frame(msg.header.frame_id, MAP_FRAME, 'route')
        self._route = validate.cap_route(ros.path_to_route(msg))

    def _add(self, key: str, stamp_ns: int, item) -> None:
        try:
            matched = self._sync.add(key, stamp_ns, item)
        except TimeJump as err:
            self.get_logger().warning(f'time jumped backwards, resynchronizing: {err}',
                                      throttle_duration_sec=THROTTLE_S)
            self._history.reset()
            return
        if matched is not None:
            self._publish(ros.nanoseconds_to_stamp(matched[0]), matched[1])

    # ---- output ------------------------------------------------------------------------------
    def _publish(self, stamp, parts: dict) -> None:
        p = self.params
        frame = SensorFrame(stamp_s=ros.stamp_to_seconds(stamp), ego=parts['odometry'],
                            lidar_points=parts['lidar'], camera_image=parts['camera'],
                            route=self._route, lidar_mount=np.asarray(p.lidar_mount),
                            camera_mount=np.asarray(p.camera_mount),
                            camera_fov_deg=p.camera_fov_deg)
        try:
            features = self._builder.build(frame, self._history)
            msgs = feature_messages(features, stamp, ego_frame=p.ego_frame,
                                    with_route=self._route is not self._route_published)
        except (ValueError, IndexError, FloatingPointError) as err:
            raise Dropped('unusable_frame', str(err)) from None
        if 'route' in msgs:
            self._route_published = self._route
        for name in ('route', 'lidar_bev', 'camera', 'route_raster', 'ego_status', 'ego'):
            if name in msgs:
                self._pubs[name].publish(msgs[name])
        self.frames += 1


def main(args=None) -> None:
    spin_node_process(lambda: PerceptionNode(autostart=None), args)


if __name__ == '__main__':
    main()
