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
`pair-drive dataset from-bag BAG... --out DIR`: rosbag2 recordings -> scene logs for training.

Reads CARLA-bridge topics (LiDAR, front camera, odometry, route; see ros.carla.CarlaTopics) with
`sim.bags.frames_from_bag`, keeps one frame per 0.1 s (the scene-log rate; a faster recording is
thinned, a frame may be up to `slot_tolerance_s` off its slot) and writes each stretch of frames
as one scene-log episode (sim.logs format, schema 1) under DIR/<split>/bag/, with the recorded
LiDAR points and camera images stored in it. The ego's logged future (odometry) is the expert
trajectory. A recording has no agent boxes and no lanes: the episodes say so in their meta
(agents_known, map_known false), the route comes from the recorded route message
(route_points), and the IL trainer skips the agent and BEV-semantic losses on them.

Bad or partial recordings: a bag without one of the needed topics is an error naming it; frames
whose stamp does not increase are dropped (counted); a gap longer than one frame period plus the
tolerance, or a new route, ends an episode; an episode shorter than `min_frames` (a 4-s expert
future needs 41 frames) is skipped with a log line. Everything is written to a temporary folder
next to DIR that is renamed to DIR only when all bags are converted, so a failure leaves no
half-written dataset; an existing DIR is never overwritten.
"""

import argparse
from dataclasses import dataclass, field, replace
import json
import logging
import os
from pathlib import Path
import shutil

import numpy as np

from pair_drive_ros.core.scene import SCENE_FUTURE_STEPS
from pair_drive_ros.ros.carla import CarlaTopics
from pair_drive_ros.sim.bags import frames_from_bag
from pair_drive_ros.sim.logs import (EpisodeLog, FRAME_DT_S, lanes_to_arrays, SCHEMA_VERSION,
                                     write_npz)

LOG = logging.getLogger(__name__)

# CARLA's default ego (vehicle.lincoln.mkz_2020) box [m].
EGO_LENGTH_M, EGO_WIDTH_M, EGO_HEIGHT_M = 4.9, 2.1, 1.5


class DatasetError(ValueError):
    """A recording cannot be converted (missing topics, no usable frames, existing output)."""


@dataclass(frozen=True)
class BagConversion:
    """How recordings become episodes."""

    slot_tolerance_s: float = 0.02      # a frame may be this far from its 0.1-s slot
    min_frames: int = SCENE_FUTURE_STEPS   # a 4-s future (40 steps) for at least one frame
    max_frames: int = 300               # longer stretches are cut into 30-s episodes
    val_fraction: float = 0.2           # share of episodes (the last ones) written to val/
    split: str = 'auto'                 # 'train' / 'val': every episode there; 'auto': fraction


@dataclass
class _Stats:
    frames: int = 0
    kept: int = 0
    unsorted: int = 0
    thinned: int = 0
    gaps: int = 0
    short: int = 0
    no_route: int = 0


def check_topics(path: str | Path, topics: CarlaTopics) -> None:
    """Raise DatasetError naming the needed topics a bag lacks."""
    from pair_drive_ros.ros.bag import bag_topics

    try:
        have = bag_topics(path)
    except Exception as err:  # noqa: B902  (rosbags raises several types for a bad bag)
        raise DatasetError(f'{path}: cannot read the bag: {err}') from err
    needed = {'LiDAR': topics.lidar, 'camera': topics.camera, 'odometry': topics.odometry,
              'route': topics.route}
    missing = [f'{name} ({topic})' for name, topic in needed.items() if topic not in have]
    if missing:
        raise DatasetError(f'{path}: the bag lacks the topics {", ".join(missing)}; '
                           f'it has {sorted(have)}')


def segments(frames, conv: BagConversion, stats: _Stats):
    """Yield lists of SensorFrames at 10 Hz, split at gaps, new routes and max_frames."""
    current: list = []
    last_stamp = None
    for frame in frames:
        stats.frames += 1
        t = float(frame.stamp_s)
        if last_stamp is not None and t <= last_stamp:
            stats.unsorted += 1
            continue
        if frame.route is None:
            stats.no_route += 1  # before the first route message: no route to learn from
            continue
        if current:
            due = current[-1].stamp_s + FRAME_DT_S
            if t < due - conv.slot_tolerance_s:
                stats.thinned += 1
                continue
            new_route = frame.route is not current[-1].route and not np.array_equal(
                frame.route.points, current[-1].route.points)
            if t > due + conv.slot_tolerance_s or new_route:
                stats.gaps += t > due + conv.slot_tolerance_s
                yield current
                current = []
        last_stamp = t
        current.append(frame)
        stats.kept += 1
        if len(current) >= conv.max_frames:
            yield current
            current = []
    if current:
        yield current


def episode_arrays(frames: list, meta: dict) -> dict:
    """Scene-log arrays of one episode of SensorFrames (no agents, no lanes; sensors stored)."""
    t_abs = np.array([f.stamp_s for f in frames], dtype=np.float64)
    n = len(frames)
    ego = [f.ego for f in frames]
    velocity = np.array([e.velocity for e in ego])
    sizes = [len(f.lidar_points) for f in frames]
    images = [np.asarray(f.camera_image, dtype=np.uint8) for f in frames]
    shapes = {im.shape for im in images}
    if len(shapes) != 1:
        raise DatasetError(f'camera images change size within a recording: {sorted(shapes)}')
    arrays = {
        # Float seconds since the epoch resolve ~0.2 us: round that noise off the relative times.
        't': np.round(t_abs - t_abs[0], 6),
        'ego_pose': np.array([e.pose for e in ego]),
        'ego_speed': np.linalg.norm(velocity, axis=1),
        'ego_velocity': velocity,
        'ego_accel': np.array([e.acceleration for e in ego]),
        'ego_yaw_rate': np.array([e.yaw_rate for e in ego]),
        'ego_action': np.zeros((n, 2)),            # the driver's commands are not recorded
        'ego_lane': np.full(n, -1, np.int64),
        'ego_crashed': np.zeros(n, bool),
        'ego_on_road': np.ones(n, bool),           # unknown without a map: assumed
        'agent_ids': np.zeros(0, np.int64), 'agent_sizes': np.zeros((0, 2)),
        'agent_heights': np.zeros(0), 'agent_poses': np.zeros((n, 0, 3)),
        'agent_velocities': np.zeros((n, 0, 2)), 'agent_valid': np.zeros((n, 0), bool),
        'route_lanes': np.zeros(0, dtype=str),
        'route_points': np.asarray(frames[0].route.points, dtype=np.float64),
        'lidar_offsets': np.r_[0, np.cumsum(sizes)].astype(np.int64),
        'lidar_points': (np.concatenate([np.asarray(f.lidar_points, np.float32)[:, :4]
                                         for f in frames])
                         if sum(sizes) else np.zeros((0, 4), np.float32)),
        'camera': np.stack(images),
    }
    arrays.update(lanes_to_arrays([]))
    path_m = float(np.sum(np.linalg.norm(np.diff(arrays['ego_pose'][:, :2], axis=0), axis=1)))
    meta = dict(meta, schema_version=SCHEMA_VERSION, num_frames=n, stamp0_s=float(t_abs[0]),
                agents_known=False, map_known=False, expert='recorded', expert_crashed=False,
                crash_step=-1, terminated=False, truncated=True, arrived=False, off_road=False,
                progress_m=path_m,
                route_completion=None, ego_length=EGO_LENGTH_M, ego_width=EGO_WIDTH_M,
                ego_height=EGO_HEIGHT_M, family='bag', env_id='')
    arrays['meta'] = np.array(json.dumps(meta, sort_keys=True))
    EpisodeLog(arrays)   # the reader accepts it (raises LogFormatError otherwise)
    return arrays


def convert_bags(bags: list, out: str | Path, conv: BagConversion = BagConversion(),
                 topics: CarlaTopics = CarlaTopics()) -> dict:
    """
    Convert recordings into scene logs under out/<split>/bag/; returns a summary dict.

    Raises DatasetError (nothing written) for a missing topic, an existing `out`, or when no
    episode is long enough.
    """
    out = Path(out)
    if out.exists():
        raise DatasetError(f'{out} exists; choose a new folder (nothing is overwritten)')
    for bag in bags:
        check_topics(bag, topics)
    tmp = out.with_name(f'.{out.name}.partial-{os.getpid()}')
    if tmp.exists():
        shutil.rmtree(tmp)
    try:
        written = []       # episode files in tmp/train, in recording order
        summary = {'bags': [], 'episodes': 0, 'frames': 0}
        for b, bag in enumerate(bags):
            stats = _Stats()
            name = Path(bag).name or Path(bag).resolve().name
            count = 0
            for seg in segments(frames_from_bag(bag, topics), conv, stats):
                if len(seg) < conv.min_frames:
                    stats.short += 1
                    LOG.warning('%s: skipped %d frames from %.2f s (shorter than %d frames)',
                                bag, len(seg), seg[0].stamp_s, conv.min_frames)
                    continue
                meta = {'scenario': f'bag_{name}', 'seed': 1000 * b + count, 'split': 'train',
                        'source_bag': str(name), 'source_index': count}
                path = tmp / 'train' / 'bag' / f'bag{b:03d}_{name}_e{count:03d}.npz'
                write_npz(path, episode_arrays(seg, meta))
                written.append(path)
                summary['frames'] += len(seg)
                count += 1
            LOG.info('%s: %d frames read, %d kept in %d episodes; %d out of order dropped, '
                     '%d thinned, %d before the first route, %d gaps, %d short stretches '
                     'skipped', bag, stats.frames, stats.kept, count, stats.unsorted,
                     stats.thinned, stats.no_route, stats.gaps, stats.short)
            summary['bags'].append({'bag': str(bag), **vars(stats), 'episodes': count})
        if not written:
            raise DatasetError(f'no stretch of at least {conv.min_frames} frames at 10 Hz in '
                               f'{[str(b) for b in bags]}')
        summary['episodes'] = len(written)
        n_val = int(round(conv.val_fraction * len(written))) if len(written) > 1 else 0
        n_val = {'train': 0, 'val': len(written)}.get(conv.split, n_val)
        for path in written[len(written) - n_val:]:
            log = EpisodeLog.load(path)
            log.meta['split'] = 'val'
            log.save(tmp / 'val' / 'bag' / path.name)
            path.unlink()
        for split in ('train', 'val'):
            files = sorted((tmp / split).rglob('*.npz'))
            if files:
                episodes = [{'file': str(f.relative_to(tmp / split)),
                             'num_frames': json.loads(str(np.load(f)['meta']))['num_frames']}
                            for f in files]
                (tmp / split / 'MANIFEST.json').write_text(json.dumps(
                    {'schema_version': SCHEMA_VERSION, 'split': split, 'source': 'bags',
                     'episodes': episodes, 'num_episodes': len(episodes)}, indent=1))
        if n_val == 0:
            LOG.warning('no episode in val/; training needs one: convert several recordings '
                        'together, or a held-out one with --split val and move its val/ here')
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


@dataclass(frozen=True)
class FromBagConfig:
    """Settings of `pair-drive dataset from-bag` (`--set key=value` or `--<key>` overrides)."""

    bags: tuple = ()       # rosbag2 directories; also the positional arguments
    out: str = ''          # dataset folder to create (must not exist); the config is saved in it
    # --val-fraction, --split and --max-frames (longer stretches are cut into episodes of this
    # many frames, held in memory with their sensor data while converting) set these fields.
    conversion: BagConversion = field(default_factory=BagConversion)
    topics: CarlaTopics = field(default_factory=CarlaTopics)   # --<lidar|camera|...>-topic


FROM_BAG_ALIASES = {'val-fraction': 'conversion.val_fraction', 'split': 'conversion.split',
                    'max-frames': 'conversion.max_frames', 'lidar-topic': 'topics.lidar',
                    'camera-topic': 'topics.camera', 'odometry-topic': 'topics.odometry',
                    'route-topic': 'topics.route'}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `pair-drive dataset`: the action, then the FromBagConfig fields."""
    from pair_drive_ros.core.config import add_config_arguments

    parser.add_argument('action', choices=('from-bag',), help='from-bag: rosbag2 recordings '
                        '(CARLA-bridge topics) -> scene logs')
    parser.add_argument('bags', nargs='*', help='rosbag2 directories (same as --set bags=[...])')
    add_config_arguments(parser, None, ('out',), aliases=FROM_BAG_ALIASES)


def resolve_config(args: argparse.Namespace) -> FromBagConfig:
    """Return the command's config; an invalid setting is a ValueError naming it."""
    from pair_drive_ros.core.config import config_from_args

    cfg = config_from_args(FromBagConfig, args)
    if args.bags:
        cfg = replace(cfg, bags=tuple(args.bags))
    if not cfg.bags or not cfg.out:
        raise ValueError('dataset from-bag needs at least one BAG and --out')
    if cfg.conversion.split not in ('auto', 'train', 'val'):
        raise ValueError(f'--split must be auto, train or val, got {cfg.conversion.split!r}')
    return cfg


def run(args: argparse.Namespace) -> int:
    """Entry point of `pair-drive dataset`."""
    from pair_drive_ros.core.config import config_text, save_config

    try:
        cfg = resolve_config(args)
        LOG.info('pair-drive dataset from-bag config:\n%s', config_text(cfg))
        summary = convert_bags(list(cfg.bags), cfg.out, cfg.conversion, cfg.topics)
    except ValueError as err:   # DatasetError, or a bad setting
        LOG.error('%s', err)
        return 2
    save_config(cfg, cfg.out)
    LOG.info('wrote %d episodes (%d frames) to %s', summary['episodes'], summary['frames'],
             cfg.out)
    return 0
