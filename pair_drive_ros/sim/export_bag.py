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
`pair-drive export-bag`: write a scene-log episode as a rosbag2 (MCAP) with CARLA-bridge topics.

Topics (types): /clock (rosgraph_msgs/Clock), /carla/ego_vehicle/odometry (nav_msgs/Odometry,
frame 'map', child 'ego_vehicle'), /carla/ego_vehicle/lidar (sensor_msgs/PointCloud2, frame
'ego_vehicle/lidar', float32 x, y, z, intensity), /carla/ego_vehicle/rgb_front/image
(sensor_msgs/Image bgra8, frame 'ego_vehicle/rgb_front') and .../camera_info
(sensor_msgs/CameraInfo, plumb_bob, zero distortion), /carla/ego_vehicle/waypoints (nav_msgs/Path,
the episode route, once at the start with transient-local QoS). All header stamps, /clock and the
bag log times are `--start-time` (seconds since the epoch, default 2026-01-01T00:00:00Z, so the
output stays deterministic) plus the simulation time of the frame (frame k at k * 0.1 s): tools
such as Foxglove show a real date, not 1970.
"""

import argparse
from dataclasses import dataclass, replace
from datetime import datetime, timezone
import logging
from pathlib import Path

from pair_drive_ros.core.config import add_config_arguments, config_from_args, config_text
from pair_drive_ros.core.config import save_config
from pair_drive_ros.ros.carla import CarlaTopics
from pair_drive_ros.sim.logs import EpisodeLog
from pair_drive_ros.sim.sensors import CameraConfig, LidarConfig

LOG = logging.getLogger(__name__)

# 2026-01-01T00:00:00Z: a fixed real date, so that exports are byte-identical run to run.
DEFAULT_START_TIME_S = int(datetime(2026, 1, 1, tzinfo=timezone.utc).timestamp())


@dataclass(frozen=True)
class ExportBagConfig:
    """Settings of `pair-drive export-bag` (`--set key=value` or `--<key>` overrides)."""

    log: str = ''          # scene-log episode (.npz); also the positional argument
    out: str = ''          # bag directory to create (must not exist); the config is saved in it
    frames: str = ''       # frame range a:b (Python slice; '': all)
    width: int = CameraConfig.width                   # camera width [px]
    height: int = CameraConfig.height                 # camera height [px]
    lidar_azimuths: int = LidarConfig.horizontal_samples   # LiDAR azimuth samples per channel
    storage: str = 'mcap'  # mcap or sqlite3
    # Time of the first simulation tick (t = 0) [s since the epoch]; default 2026-01-01T00:00:00Z.
    start_time: float = DEFAULT_START_TIME_S


EXPORT_FLAGS = ('out', 'frames', 'width', 'height', 'lidar_azimuths', 'storage', 'start_time')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options: the ExportBagConfig fields, the episode as a positional."""
    parser.add_argument('log', nargs='?', help='scene-log episode (.npz); same as --set log=LOG')
    add_config_arguments(parser, None, EXPORT_FLAGS)


def resolve_config(args: argparse.Namespace) -> ExportBagConfig:
    """Return the command's config; an invalid setting is a ValueError naming it."""
    cfg = config_from_args(ExportBagConfig, args)
    if args.log:
        cfg = replace(cfg, log=args.log)
    if not cfg.log or not cfg.out:
        raise ValueError('export-bag needs a scene-log episode (LOG) and --out')
    if cfg.storage not in ('mcap', 'sqlite3'):
        raise ValueError(f'--storage must be mcap or sqlite3, got {cfg.storage!r}')
    return cfg


def parse_frames(spec: str, num_frames: int) -> range:
    """Frame range of an 'a:b' slice spec (empty: all frames)."""
    if not spec:
        return range(num_frames)
    try:
        parts = [int(p) if p else None for p in spec.split(':')]
    except ValueError:
        raise ValueError(f'--frames must look like a:b, got {spec!r}') from None
    if len(parts) != 2:
        raise ValueError(f'--frames must look like a:b, got {spec!r}')
    return range(num_frames)[slice(*parts)]


def export_episode(log: EpisodeLog, out: str | Path, frames: range | None = None,
                   lidar_cfg: LidarConfig = LidarConfig(),
                   camera_cfg: CameraConfig = CameraConfig(), storage: str = 'mcap',
                   topics: CarlaTopics = CarlaTopics(),
                   start_time_s: float = DEFAULT_START_TIME_S) -> int:
    """
    Write the frames of `log` to a new bag directory; returns the number of frames.

    Stamps and log times are `start_time_s` (seconds since the epoch) plus the simulation time.
    """
    from rosgraph_msgs.msg import Clock

    from pair_drive_ros.ros.bag import BagWriter
    from pair_drive_ros.ros.carla import sensor_messages
    from pair_drive_ros.ros.geometry import route_to_path
    from pair_drive_ros.ros.stamps import nanoseconds_to_stamp, seconds_to_nanoseconds

    frames = range(log.num_frames) if frames is None else frames
    if len(frames) == 0:
        raise ValueError('no frames to export')
    # Integer nanoseconds throughout: a float sum at epoch magnitude would lose ~0.2 us.
    t0_ns = seconds_to_nanoseconds(start_time_s)
    if t0_ns < 0:
        raise ValueError(f'--start-time must not be before 1970, got {start_time_s}')
    nanoseconds_to_stamp(t0_ns)   # raises CodecError past 2038 (int32 seconds)
    with BagWriter(out, storage=storage) as bag:
        first = True
        for k in frames:
            frame = log.sensor_frame(k, lidar_cfg, camera_cfg)
            t_ns = t0_ns + seconds_to_nanoseconds(frame.stamp_s)
            stamp = nanoseconds_to_stamp(t_ns)
            if first:
                path = route_to_path(log.episode_route())
                path.header.stamp = stamp
                bag.write(topics.route, path, t_ns, latched=True)
                first = False
            bag.write(topics.clock, Clock(clock=stamp), t_ns)
            msgs = sensor_messages(frame, stamp)
            for key in ('odometry', 'lidar', 'camera', 'camera_info'):
                bag.write(getattr(topics, key), msgs[key], t_ns)
    return len(frames)


def run(args: argparse.Namespace) -> int:
    """Export one episode."""
    cfg = resolve_config(args)
    LOG.info('pair-drive export-bag config:\n%s', config_text(cfg))
    log = EpisodeLog.load(cfg.log)
    frames = parse_frames(cfg.frames, log.num_frames)
    n = export_episode(log, cfg.out, frames,
                       LidarConfig(horizontal_samples=cfg.lidar_azimuths),
                       CameraConfig(width=cfg.width, height=cfg.height), cfg.storage,
                       start_time_s=cfg.start_time)
    # Beside metadata.yaml: rosbag2 readers open only the files the metadata lists.
    save_config(cfg, cfg.out)
    size = sum(f.stat().st_size for f in Path(cfg.out).rglob('*') if f.is_file())
    LOG.info('wrote %d frames to %s (%.1f MB)', n, cfg.out, size / 1e6)
    return 0
