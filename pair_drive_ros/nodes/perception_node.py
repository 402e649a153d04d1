"""perception_node: camera + LiDAR + odometry (+ route) -> model features, one stamp per frame.

Subscribes to the CARLA bridge topics (sensor-data QoS, the route TRANSIENT_LOCAL), matches
camera, LiDAR and odometry by stamp within `sync_slop_s` (the LiDAR stamp is the frame's stamp),
runs the perception room's FeatureBuilder and publishes the features on private topics
(~/lidar_bev, ~/camera, ~/route_raster, ~/ego_status as 32FC1 Images, ~/ego Odometry, ~/route
Path), all with the frame's stamp. With history_sweeps > 0 in the perception config, the node
keeps one SweepHistory that every published frame feeds (it clears itself when time jumps back;
sweeps lost to gaps become zero channels flagged missing in the ego status).
"""

import numpy as np
from rclpy.node import Node

from pair_drive_ros import ros
from pair_drive_ros.core.sensor_frame import SensorFrame
from pair_drive_ros.nodes.params import PERCEPTION_OUTPUTS, PerceptionParams, read_params
from pair_drive_ros.perception.builder import FeatureBuilder
from pair_drive_ros.perception.config import load_perception_config, PerceptionConfig
from pair_drive_ros.ros.executor import spin_node_process
from pair_drive_ros.ros.features import feature_messages
from pair_drive_ros.runtime.sync import StampSync, TimeJump

THROTTLE_S = 2.0


class PerceptionNode(Node):
    """Synchronize sensors and publish features."""

    def __init__(self, **kwargs) -> None:
        super().__init__('perception', **kwargs)
        from nav_msgs.msg import Odometry, Path
        from sensor_msgs.msg import Image, PointCloud2

        self.params = p = read_params(self, PerceptionParams)
        cfg = load_perception_config(p.perception_config) if p.perception_config \
            else PerceptionConfig()
        self._builder = FeatureBuilder(cfg)
        self._history = self._builder.new_history()
        self._sync = StampSync(('lidar', 'camera', 'odometry'), anchor='lidar',
                               slop_ns=int(p.sync_slop_s * 1e9), queue_size=p.sync_queue)
        self._route = None
        self.frames = 0
        self.bad_inputs = 0
        self._pubs = {}
        for name in PERCEPTION_OUTPUTS:
            msg_type = {'ego': Odometry, 'route': Path}.get(name, Image)
            # The route changes rarely: latched, republished only when a new one arrives.
            qos = ros.latched_qos() if name == 'route' else ros.reliable_qos(2)
            self._pubs[name] = self.create_publisher(msg_type, f'~/{name}', qos)
        self._route_published = None
        qos = ros.sensor_qos()
        self.create_subscription(Image, p.camera_topic, self._camera_callback, qos)
        self.create_subscription(PointCloud2, p.lidar_topic, self._lidar_callback, qos)
        self.create_subscription(Odometry, p.odometry_topic, self._odometry_callback, qos)
        self.create_subscription(Path, p.route_topic, self._route_callback,
                                 ros.latched_qos())
        # tf2_ros is optional and the mounts rarely change: parameters are the source here.
        self.get_logger().info(
            f'sensor extrinsics from parameters (lidar {p.lidar_mount}, camera {p.camera_mount});'
            f' BEV {cfg.bev_height}x{cfg.bev_width}, camera tensor '
            f'{cfg.camera_height}x{cfg.camera_width}')

    # ---- inputs ------------------------------------------------------------------------------
    def _bad(self, what: str, err: Exception) -> None:
        self.bad_inputs += 1
        self.get_logger().warning(f'dropping malformed {what}: {err}',
                                  throttle_duration_sec=THROTTLE_S)

    def _camera_callback(self, msg) -> None:
        try:
            image = ros.image_to_rgb(msg)
        except (ros.CodecError, ValueError) as err:
            return self._bad('camera image', err)
        self._add('camera', msg.header.stamp, image)

    def _lidar_callback(self, msg) -> None:
        try:
            points = ros.pointcloud_to_xyzi(msg)
        except (ros.CodecError, ValueError) as err:
            return self._bad('point cloud', err)
        self._add('lidar', msg.header.stamp, points)

    def _odometry_callback(self, msg) -> None:
        try:
            ego = ros.odometry_to_ego_state(msg)
        except (ros.CodecError, ValueError) as err:
            return self._bad('odometry', err)
        self._add('odometry', msg.header.stamp, ego)

    def _route_callback(self, msg) -> None:
        try:
            self._route = ros.path_to_route(msg)
        except (ros.CodecError, ValueError) as err:
            self._bad('route', err)

    def _add(self, key: str, stamp, item) -> None:
        try:
            matched = self._sync.add(key, ros.stamp_to_nanoseconds(stamp), item)
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
        except ValueError as err:
            return self._bad('sensor frame', err)
        if 'route' in msgs:
            self._route_published = self._route
        for name in ('route', 'lidar_bev', 'camera', 'route_raster', 'ego_status', 'ego'):
            if name in msgs:
                self._pubs[name].publish(msgs[name])
        self.frames += 1


def main(args=None) -> None:
    spin_node_process(PerceptionNode, args)


if __name__ == '__main__':
    main()
