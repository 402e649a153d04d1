"""The message conversions the nodes use, in one place: thin adapters over pair_drive_ros.ros.

Every codec lives in the ros room; this module only fixes the call shapes the nodes need (the
stamp passed explicitly, RGB out of any colour encoding) and re-exports the error type.
"""

import numpy as np

from pair_drive_ros import ros
from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.core.route import Route
from pair_drive_ros.core.trajectory import MAP_FRAME, Trajectory

# Every decoding failure the nodes catch (a ValueError subclass).
MessageError = ros.CodecError

stamp_ns = ros.stamp_to_nanoseconds
stamp_s = ros.stamp_to_seconds
stamp_from_ns = ros.nanoseconds_to_stamp
to_stamp = ros.seconds_to_stamp
sensor_qos = ros.sensor_qos
latched_qos = ros.latched_qos
reliable_qos = ros.reliable_qos
image_array = ros.image_to_numpy
cloud_xyzi = ros.pointcloud_to_xyzi
route_from_path = ros.path_to_route


def header(stamp, frame_id: str):
    """Build a std_msgs/Header."""
    from std_msgs.msg import Header

    return Header(stamp=stamp, frame_id=frame_id)


# Colour encodings whose RGB channels are a strided view of the message (channel order).
_RGB_VIEWS = {'rgb8': slice(0, 3), 'rgba8': slice(0, 3), 'bgr8': slice(2, None, -1),
              'bgra8': slice(2, None, -1)}


def rgb_array(msg) -> np.ndarray:
    """Colour Image (rgb8, bgr8, rgba8, bgra8, mono8) -> (H, W, 3) uint8 RGB.

    A view of `msg.data` (do not write into it) for the rgb/bgr(a) encodings (CARLA's bgra8
    included): copying a 800x600 frame into a contiguous RGB array costs ~0.5 ms per frame,
    and the feature builder only samples it. mono8 is converted (a new array).
    """
    channels = _RGB_VIEWS.get(getattr(msg, 'encoding', None))
    if channels is None:
        return ros.image_to_numpy(msg, 'rgb8')
    return ros.image_to_numpy(msg)[:, :, channels]


def image_msg(arr: np.ndarray, encoding: str, hdr):
    """(H, W[, C]) array -> sensor_msgs/Image with this encoding and header."""
    return ros.numpy_to_image(arr, encoding, hdr)


def cloud_msg(points: np.ndarray, frame_id: str, stamp):
    """(N, 4) float32 x, y, z, intensity -> PointCloud2."""
    return ros.numpy_to_pointcloud(np.asarray(points, dtype=np.float32), frame_id, stamp)


def odom_msg(ego: EgoState, stamp, frame_id: str = MAP_FRAME,
             child_frame_id: str = 'ego_vehicle'):
    """Encode an EgoState as nav_msgs/Odometry with this stamp."""
    msg = ros.ego_state_to_odometry(ego, frame_id, child_frame_id)
    msg.header.stamp = stamp
    return msg


def ego_from_odom(msg, acceleration=None) -> EgoState:
    """Decode nav_msgs/Odometry into an EgoState, optionally with a known acceleration."""
    ego = ros.odometry_to_ego_state(msg)
    if acceleration is not None:
        try:
            ego = EgoState(ego.pose, ego.velocity, np.asarray(acceleration, dtype=np.float64),
                           ego.yaw_rate, ego.stamp_s)
        except ValueError as err:
            raise MessageError(f'bad acceleration {acceleration!r}: {err}') from None
    return ego


def path_msg(traj: Trajectory, hdr):
    """Trajectory -> nav_msgs/Path; pose k stamped t0 + (k + 1) dt with t0 = header stamp."""
    return ros.trajectory_to_path(traj, hdr)


def trajectory_from_path(msg) -> Trajectory:
    """Decode a nav_msgs/Path into a Trajectory ('map' frame -> MAP_FRAME)."""
    traj = ros.path_to_trajectory(msg)
    if len(traj) == 0:
        raise MessageError('empty Path')
    return traj


def path_poses(msg) -> tuple[np.ndarray, np.ndarray]:
    """nav_msgs/Path -> (N, 3) poses x, y, yaw and (N,) pose times [s]."""
    traj = trajectory_from_path(msg)
    return traj.poses, traj.times_s


def route_msg(route: Route, hdr):
    """Encode a Route as a nav_msgs/Path with this header."""
    return ros.route_to_path(route, hdr)
