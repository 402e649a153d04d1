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
Scene logs and rosbag2 recordings -> the same in-memory SensorFrames.

`frames_from_bag(path)` reads CARLA-bridge topics (the names `export_bag` writes, or your own):
each LiDAR cloud is paired with the camera image of the same header stamp (the CARLA bridge
stamps both with the simulation tick), the latest odometry at or before that stamp and the latest
route. The sensor mounts come from the CARLA bridge defaults (core.sensor_frame); the camera's
field of view from its CameraInfo (fx) when recorded. `frames_from_log(path)` synthesizes the
frames of a scene-log episode. `load_frames(path)` picks one by the path.
"""

import logging
from pathlib import Path
from typing import Iterator

import numpy as np

from pair_drive_ros.core.sensor_frame import SensorFrame
from pair_drive_ros.ros.carla import CarlaTopics

LOG = logging.getLogger(__name__)


def frames_from_bag(path: str | Path, topics: CarlaTopics = CarlaTopics(),
                    max_stamp_gap_s: float = 0.051) -> Iterator[SensorFrame]:
    """
    Yield a SensorFrame per LiDAR/camera pair with equal stamps (see module docstring).

    Frames without an odometry message within `max_stamp_gap_s` before them are skipped (logged).
    """
    from pair_drive_ros.ros.bag import read_bag
    from pair_drive_ros.ros.geometry import odometry_to_ego_state, path_to_route
    from pair_drive_ros.ros.image import image_to_numpy
    from pair_drive_ros.ros.pointcloud import pointcloud_to_xyzi
    from pair_drive_ros.ros.stamps import stamp_to_nanoseconds

    wanted = [topics.lidar, topics.camera, topics.camera_info, topics.odometry, topics.route]
    route = None
    fov = None
    odom: list = []          # (stamp_ns, EgoState), time ordered
    clouds: dict = {}
    images: dict = {}
    previous = None
    skipped = 0
    for topic, _, msg in read_bag(path, wanted):
        if topic == topics.route:
            route = path_to_route(msg) if len(msg.poses) >= 2 else None
            continue
        if topic == topics.camera_info:
            fx = float(msg.k[0])
            if fx > 0:
                fov = float(np.degrees(2.0 * np.arctan(msg.width / (2.0 * fx))))
            continue
        stamp = stamp_to_nanoseconds(msg.header.stamp)
        if topic == topics.odometry:
            previous = odometry_to_ego_state(msg, previous)
            odom.append((stamp, previous))
            continue
        if topic == topics.lidar:
            clouds[stamp] = pointcloud_to_xyzi(msg, skip_nans=True)
        else:
            images[stamp] = image_to_numpy(msg, 'rgb8')
        if stamp in clouds and stamp in images:
            ego = _odometry_at(odom, stamp, max_stamp_gap_s)
            points, image = clouds.pop(stamp), images.pop(stamp)
            # Older unmatched messages can no longer be paired: drop them.
            for buf in (clouds, images):
                for old in [s for s in buf if s < stamp]:
                    del buf[old]
            if ego is None:
                skipped += 1
                continue
            frame = SensorFrame(stamp_s=stamp * 1e-9, ego=ego, lidar_points=points,
                                camera_image=image, route=route)
            if fov is not None:
                frame.camera_fov_deg = fov
            yield frame
    if skipped:
        LOG.warning('%s: %d sensor frames had no odometry within %.3f s and were skipped',
                    path, skipped, max_stamp_gap_s)


def _odometry_at(odom: list, stamp_ns: int, max_gap_s: float):
    best = None
    for t, ego in reversed(odom):
        if t <= stamp_ns:
            if (stamp_ns - t) * 1e-9 <= max_gap_s:
                best = ego
            break
    if best is None:
        return None
    from dataclasses import replace
    return replace(best, stamp_s=stamp_ns * 1e-9)


def frames_from_log(log_or_path, lidar_cfg=None, camera_cfg=None,
                    frames: range | None = None) -> Iterator[SensorFrame]:
    """Yield the (synthesized or stored) SensorFrames of a scene-log episode."""
    from pair_drive_ros.sim.logs import EpisodeLog

    log = log_or_path if isinstance(log_or_path, EpisodeLog) else EpisodeLog.load(log_or_path)
    for k in (frames if frames is not None else range(log.num_frames)):
        yield log.sensor_frame(k, lidar_cfg, camera_cfg)


def load_frames(path: str | Path) -> Iterator[SensorFrame]:
    """Return the SensorFrames of a scene log (.npz) or a rosbag2 directory (or .mcap file)."""
    p = Path(path)
    if p.suffix == '.npz':
        return frames_from_log(p)
    if p.is_dir() or p.suffix in ('.mcap', '.db3'):
        return frames_from_bag(p if p.is_dir() else p.parent)
    raise ValueError(f'{path}: expected a scene log (.npz) or a rosbag2 directory')
