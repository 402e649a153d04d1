"""The message conversions the nodes use, in one place.

Everything here delegates to pair_drive_ros.ros (the codec room) when it provides the function;
the small fallbacks below only keep the nodes running while that room is being written.
"""

import numpy as np

from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.core.route import Route
from pair_drive_ros.core.se2 import quaternion_to_yaw, yaw_to_quaternion
from pair_drive_ros.core.trajectory import MAP_FRAME, Trajectory

try:  # the codec room; optional until it lands
    from pair_drive_ros import ros as _ros
except ImportError:  # pragma: no cover - depends on the tree state
    _ros = None


def _has(name: str) -> bool:
    return _ros is not None and hasattr(_ros, name)


class MessageError(ValueError):
    """A message that cannot be decoded (wrong layout, size or values)."""


# ---- time ------------------------------------------------------------------------------------
def stamp_ns(stamp) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def stamp_s(stamp) -> float:
    """builtin_interfaces/Time -> seconds."""
    return stamp_ns(stamp) * 1e-9


def stamp_from_ns(ns: int):
    """Integer nanoseconds -> builtin_interfaces/Time."""
    from builtin_interfaces.msg import Time

    ns = int(ns)
    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def to_stamp(t_s: float):
    """Seconds -> builtin_interfaces/Time (rounded to the nanosecond)."""
    return stamp_from_ns(int(round(float(t_s) * 1e9)))


def header(stamp, frame_id: str):
    """std_msgs/Header."""
    from std_msgs.msg import Header

    return Header(stamp=stamp, frame_id=frame_id)


# ---- QoS -------------------------------------------------------------------------------------
def sensor_qos():
    """Best effort, keep last 5, volatile: accepts reliable and best-effort publishers."""
    if _has('sensor_qos'):
        return _ros.sensor_qos()
    from rclpy.qos import qos_profile_sensor_data
    return qos_profile_sensor_data


def latched_qos():
    """Reliable, depth 1, TRANSIENT_LOCAL (CARLA's waypoints, vehicle_info)."""
    if _has('latched_qos'):
        return _ros.latched_qos()
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    return QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL)


def reliable_qos(depth: int = 1):
    """Reliable, volatile, keep last `depth`."""
    if _has('reliable_qos'):
        return _ros.reliable_qos(depth)
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    return QoSProfile(depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


# ---- images ----------------------------------------------------------------------------------
_ENCODINGS = {'rgb8': ('u1', 3), 'bgr8': ('u1', 3), 'rgba8': ('u1', 4), 'bgra8': ('u1', 4),
              'mono8': ('u1', 1), 'mono16': ('u2', 1), '16UC1': ('u2', 1), '32FC1': ('f4', 1)}


def image_array(msg) -> np.ndarray:
    """Image -> (H, W, C) or (H, W) array in its native encoding (zero-copy when possible)."""
    if _has('image_to_numpy'):
        return _ros.image_to_numpy(msg)
    if msg.encoding not in _ENCODINGS:
        raise MessageError(f'unsupported image encoding {msg.encoding!r}')
    kind, ch = _ENCODINGS[msg.encoding]
    dt = np.dtype(kind).newbyteorder('>' if msg.is_bigendian else '<')
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h * step > len(msg.data) or step < w * ch * dt.itemsize or step % dt.itemsize:
        raise MessageError(f'image data of {len(msg.data)} bytes does not fit {h}x{w} '
                           f'{msg.encoding} with step {step}')
    arr = np.frombuffer(msg.data, dt, count=h * step // dt.itemsize)
    arr = arr.reshape(h, step // dt.itemsize)[:, :w * ch].reshape(h, w, ch)
    arr = arr.astype(dt.newbyteorder('='), copy=False)
    return arr[..., 0] if ch == 1 else arr


def rgb_array(msg) -> np.ndarray:
    """Color Image (rgb8, bgr8, rgba8, bgra8) -> (H, W, 3) uint8 RGB."""
    arr = image_array(msg)
    enc = msg.encoding
    if arr.ndim != 3 or arr.shape[2] < 3 or enc not in ('rgb8', 'bgr8', 'rgba8', 'bgra8'):
        raise MessageError(f'expected a color image, got encoding {enc!r} shape {arr.shape}')
    return arr[..., 2::-1] if enc.startswith('bgr') else arr[..., :3]


def image_msg(arr: np.ndarray, encoding: str, hdr):
    """(H, W[, C]) array -> sensor_msgs/Image with this encoding and header."""
    if _has('numpy_to_image'):
        msg = _ros.numpy_to_image(arr, encoding)
        msg.header = hdr
        return msg
    from sensor_msgs.msg import Image

    arr = np.ascontiguousarray(arr)
    h, w = arr.shape[:2]
    msg = Image(header=hdr, height=h, width=w, encoding=encoding, is_bigendian=0)
    msg.step = arr.nbytes // max(h, 1)
    msg.data = arr.tobytes()  # assigning bytes is ~1000x faster than a numpy array
    return msg


# ---- point clouds ----------------------------------------------------------------------------
def cloud_msg(points: np.ndarray, frame_id: str, stamp):
    """(N, 4) float32 x, y, z, intensity -> PointCloud2."""
    if _has('numpy_to_pointcloud'):
        return _ros.numpy_to_pointcloud(points, frame_id, stamp)
    from sensor_msgs.msg import PointCloud2, PointField

    pts = np.ascontiguousarray(points, dtype=np.float32).reshape(-1, 4)
    fields = [PointField(name=n, offset=4 * i, datatype=PointField.FLOAT32, count=1)
              for i, n in enumerate(('x', 'y', 'z', 'intensity'))]
    msg = PointCloud2(header=header(stamp, frame_id), height=1, width=len(pts), fields=fields,
                      is_bigendian=False, point_step=16, row_step=16 * len(pts), is_dense=True)
    msg.data = pts.tobytes()
    return msg


def cloud_xyzi(msg) -> np.ndarray:
    """PointCloud2 with float32 x, y, z (and optional intensity) -> (N, 4) float32."""
    if _has('pointcloud_to_xyzi'):
        return _ros.pointcloud_to_xyzi(msg)
    offsets = {f.name: f.offset for f in msg.fields if f.datatype == 7}
    if not {'x', 'y', 'z'} <= set(offsets):
        raise MessageError(f'PointCloud2 needs float32 x, y, z fields, has '
                           f'{[f.name for f in msg.fields]}')
    n = int(msg.width) * int(msg.height)
    step = int(msg.point_step)
    if n * step > len(msg.data) or step < 12:
        raise MessageError(f'PointCloud2 data of {len(msg.data)} bytes is too small for {n} '
                           f'points of {step} bytes')
    raw = np.frombuffer(msg.data, np.uint8, count=n * step).reshape(n, step)
    out = np.zeros((n, 4), np.float32)
    for i, name in enumerate(('x', 'y', 'z', 'intensity')):
        if name in offsets:
            o = offsets[name]
            out[:, i] = raw[:, o:o + 4].copy().view('>f4' if msg.is_bigendian else '<f4')[:, 0]
    return out


# ---- odometry, paths -------------------------------------------------------------------------
def odom_msg(ego: EgoState, stamp, frame_id: str = 'map', child_frame_id: str = 'ego_vehicle'):
    """Convert an EgoState to nav_msgs/Odometry (pose in `frame_id`, twist in the car frame)."""
    from nav_msgs.msg import Odometry

    msg = Odometry(header=header(stamp, frame_id), child_frame_id=child_frame_id)
    p = msg.pose.pose
    p.position.x, p.position.y = float(ego.pose[0]), float(ego.pose[1])
    q = yaw_to_quaternion(ego.pose[2])
    p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w = (float(v) for v in q)
    msg.twist.twist.linear.x, msg.twist.twist.linear.y = (float(v) for v in ego.velocity)
    msg.twist.twist.angular.z = float(ego.yaw_rate)
    return msg


def ego_from_odom(msg, acceleration=(0.0, 0.0)) -> EgoState:
    """nav_msgs/Odometry -> EgoState (stamp from the header)."""
    p, o = msg.pose.pose.position, msg.pose.pose.orientation
    yaw = float(quaternion_to_yaw(np.array([o.x, o.y, o.z, o.w])))
    t = msg.twist.twist
    try:
        return EgoState(pose=np.array([p.x, p.y, yaw]),
                        velocity=np.array([t.linear.x, t.linear.y]),
                        acceleration=np.asarray(acceleration, dtype=np.float64),
                        yaw_rate=t.angular.z, stamp_s=stamp_s(msg.header.stamp))
    except ValueError as err:
        raise MessageError(f'bad odometry: {err}') from err


def path_msg(traj: Trajectory, hdr):
    """Trajectory -> nav_msgs/Path; pose k stamped with its own time t0 + (k + 1) dt."""
    if _has('trajectory_to_path'):
        return _ros.trajectory_to_path(traj, hdr)
    from geometry_msgs.msg import PoseStamped
    from nav_msgs.msg import Path

    q = yaw_to_quaternion(traj.poses[:, 2])
    poses = []
    for (x, y, _), qk, t in zip(traj.poses, q, traj.times_s):
        ps = PoseStamped(header=header(to_stamp(t), hdr.frame_id))
        ps.pose.position.x, ps.pose.position.y = float(x), float(y)
        (ps.pose.orientation.x, ps.pose.orientation.y, ps.pose.orientation.z,
         ps.pose.orientation.w) = (float(v) for v in qk)
        poses.append(ps)
    return Path(header=hdr, poses=poses)


def path_poses(msg) -> tuple[np.ndarray, np.ndarray]:
    """nav_msgs/Path -> (N, 3) poses x, y, yaw and (N,) pose stamps [s]."""
    n = len(msg.poses)
    poses = np.zeros((n, 3))
    times = np.zeros(n)
    quats = np.zeros((n, 4))
    for k, ps in enumerate(msg.poses):
        p, o = ps.pose.position, ps.pose.orientation
        poses[k, :2] = p.x, p.y
        quats[k] = o.x, o.y, o.z, o.w
        times[k] = stamp_s(ps.header.stamp)
    if n:
        poses[:, 2] = quaternion_to_yaw(quats)
    return poses, times


def trajectory_from_path(msg) -> Trajectory:
    """nav_msgs/Path with per-pose stamps -> Trajectory (frame from the header, 'map' -> MAP)."""
    poses, times = path_poses(msg)
    if len(poses) == 0:
        raise MessageError('empty Path')
    t0 = stamp_s(msg.header.stamp)
    dt = float(times[1] - times[0]) if len(times) > 1 else float(times[0] - t0)
    if not dt > 0:
        dt = 0.5
    frame = MAP_FRAME if msg.header.frame_id == 'map' else msg.header.frame_id
    try:
        return Trajectory(poses, dt_s=dt, frame=frame, t0_s=t0)
    except ValueError as err:
        raise MessageError(f'bad Path: {err}') from err


def route_msg(route: Route, hdr):
    """Route -> nav_msgs/Path (poses along the centreline, unstamped poses)."""
    if _has('route_to_path'):
        return _ros.route_to_path(route, hdr)
    from geometry_msgs.msg import PoseStamped
    from nav_msgs.msg import Path

    yaw = np.r_[route.headings, route.headings[-1:]]
    q = yaw_to_quaternion(yaw)
    poses = []
    for (x, y), qk in zip(route.points, q):
        ps = PoseStamped(header=header(hdr.stamp, hdr.frame_id))
        ps.pose.position.x, ps.pose.position.y = float(x), float(y)
        ps.pose.orientation.z, ps.pose.orientation.w = float(qk[2]), float(qk[3])
        poses.append(ps)
    return Path(header=hdr, poses=poses)


def route_from_path(msg) -> Route:
    """nav_msgs/Path -> Route (x, y of the poses)."""
    if _has('path_to_route'):
        return _ros.path_to_route(msg)
    poses, _ = path_poses(msg)
    try:
        return Route(poses[:, :2])
    except ValueError as err:
        raise MessageError(f'bad route Path: {err}') from err
