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
`pair-drive score`: score trajectories on scene logs and write per-scene and summary files.

Trajectories file (NPZ, see save_trajectories): `episode` (N,) str, the episode file's path
relative to --logs (or absolute); `frame` (N,) int, the frame index in that episode; `poses`
(N, 8, 3) float, ego-frame box-centre poses x [m], y [m], yaw [rad] at 0.5 s, 1.0 s, ... 4.0 s.
A JSON file with a list of {"episode", "frame", "poses"} objects is accepted too.
Instead of a file, --baseline expert|cv|reference scores a built-in planner on every scorable
frame. EC uses the previous frame's simulated states when frame k - 5 (0.5 s earlier) of the
same episode is also scored; otherwise its weight is dropped.
"""

import argparse
import csv
from dataclasses import dataclass, replace
import json
import logging
from pathlib import Path

import numpy as np

from pair_drive_ros.core.config import add_config_arguments, config_from_args, config_text
from pair_drive_ros.core.config import save_config
from pair_drive_ros.core.trajectory import NUM_POSES
from pair_drive_ros.scoring.config import load_config, Metric, ScorerConfig, VEHICLE_PRESETS
from pair_drive_ros.scoring.metrics import prepare_scene
from pair_drive_ros.scoring.reference import (constant_velocity_trajectory, reference_plan,
                                              reference_progress)
from pair_drive_ros.scoring.scorer import score_candidates

LOGGER = logging.getLogger(__name__)
BASELINES = ('expert', 'cv', 'reference')


def save_trajectories(path: str | Path, episodes, frames, poses) -> None:
    """Write a trajectories NPZ: episodes (N,) str, frames (N,) int, poses (N, 8, 3)."""
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (NUM_POSES, 3):
        raise ValueError(f'poses must have shape (N, {NUM_POSES}, 3), got {poses.shape}')
    np.savez(path, episode=np.asarray([str(e) for e in episodes]),
             frame=np.asarray(frames, dtype=np.int64), poses=poses)


def load_trajectories(path: str | Path) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Read a trajectories NPZ or JSON file: (episodes, frames (N,), poses (N, 8, 3))."""
    path = Path(path)
    if path.suffix == '.json':
        items = json.loads(path.read_text())
        episodes = [str(it['episode']) for it in items]
        frames = np.array([int(it['frame']) for it in items], dtype=np.int64)
        poses = np.array([it['poses'] for it in items], dtype=np.float64)
        poses = poses.reshape(-1, NUM_POSES, 3)
    else:
        with np.load(path, allow_pickle=False) as data:
            missing = {'episode', 'frame', 'poses'} - set(data.files)
            if missing:
                raise ValueError(f'{path}: missing keys {sorted(missing)}')
            episodes = [str(e) for e in data['episode']]
            frames = np.asarray(data['frame'], dtype=np.int64)
            poses = np.asarray(data['poses'], dtype=np.float64)
    if poses.ndim != 3 or poses.shape[1:] != (NUM_POSES, 3) or not (
            len(episodes) == len(frames) == len(poses)):
        raise ValueError(f'{path}: expected N episodes, N frames and (N, {NUM_POSES}, 3) poses, '
                         f'got {len(episodes)}, {len(frames)}, {poses.shape}')
    return episodes, frames, poses


@dataclass(frozen=True)
class ScoreConfig:
    """Settings of `pair-drive score` (`--set key=value` or `--<key>` overrides)."""

    logs: str = ''            # scene-log root directory (required)
    split: str = ''           # sub-directory of logs (e.g. val); '': the root itself
    trajectories: str = ''    # trajectories file (.npz or .json, see module doc), or
    baseline: str = ''        # a built-in planner instead: expert, cv or reference
    out: str = ''             # output directory (required)
    scorer_config: str = ''   # ScorerConfig YAML (config/scorer.yaml); '': defaults
    navsim_version: str = ''  # '' (the scorer config's), v1 or v2
    vehicle: str = ''         # '' (the scorer config's), highway-env or pacifica
    frame_stride: int = 1     # baselines: score every n-th scorable frame
    limit: int = 0            # score at most this many scenes (0: all)


SCORE_FLAGS = ('logs', 'split', 'trajectories', 'baseline', 'out', 'scorer_config',
               'navsim_version', 'vehicle', 'frame_stride', 'limit')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `pair-drive score`: the ScoreConfig fields."""
    add_config_arguments(parser, None, SCORE_FLAGS)


def _check(args: ScoreConfig) -> None:
    if not args.logs or not args.out:
        raise ValueError('--logs and --out are required')
    if bool(args.trajectories) == bool(args.baseline):
        raise ValueError('give exactly one of --trajectories FILE or --baseline NAME')
    if args.baseline and args.baseline not in BASELINES:
        raise ValueError(f'--baseline must be one of {BASELINES}, got {args.baseline!r}')
    if args.navsim_version not in ('', 'v1', 'v2'):
        raise ValueError(f'--navsim-version must be v1 or v2, got {args.navsim_version!r}')
    if args.vehicle and args.vehicle not in VEHICLE_PRESETS:
        raise ValueError(f'--vehicle must be one of {sorted(VEHICLE_PRESETS)}')


def _config(args) -> ScorerConfig:
    cfg = load_config(args.scorer_config) if args.scorer_config else ScorerConfig()
    changes = {}
    if args.navsim_version:
        changes['navsim_version'] = args.navsim_version
    if args.vehicle:
        changes['vehicle'] = VEHICLE_PRESETS[args.vehicle]
    return replace(cfg, **changes)


def _jobs(args, root: Path):
    """[(episode key, frame, poses or None)] in episode, frame order."""
    if args.trajectories:
        episodes, frames, poses = load_trajectories(args.trajectories)
        jobs = list(zip(episodes, frames.tolist(), poses))
    else:
        from pair_drive_ros.sim.logs import list_frames
        base = root / args.split if args.split else root
        jobs = [(str(Path(p).relative_to(base)) if Path(p).is_relative_to(base) else str(p),
                 k, None) for p, k in list_frames(root, args.split)
                if k % max(args.frame_stride, 1) == 0]
    jobs.sort(key=lambda j: (j[0], j[1]))
    return jobs[:args.limit] if args.limit else jobs


def run(args) -> int:
    """Score and write scores.csv, scores.json and summary.json into --out."""
    from pair_drive_ros.sim.logs import EpisodeLog
    try:
        args = config_from_args(ScoreConfig, args)
        LOGGER.info('pair-drive score config:\n%s', config_text(args))
        _check(args)
    except (OSError, ValueError) as exc:
        LOGGER.error('%s', exc)
        return 2
    root = Path(args.logs)
    base = root / args.split if args.split else root
    try:
        cfg = _config(args)
        jobs = _jobs(args, root)
    except (OSError, ValueError) as exc:
        LOGGER.error('cannot read the trajectories: %s', exc)
        return 2
    if not jobs:
        LOGGER.error('nothing to score under %s', base)
        return 2
    rows = []
    episode, log = None, None
    prev_states: dict = {}
    for key, k, poses in jobs:
        if key != episode:
            path = Path(key) if Path(key).is_absolute() else base / key
            try:
                log = EpisodeLog.load(path)
            except (OSError, ValueError, KeyError) as exc:
                LOGGER.error('cannot load episode %s: %s', path, exc)
                return 2
            episode, prev_states = key, {}
        scene = log.scene(int(k))
        prep = prepare_scene(scene, cfg)
        if poses is None:
            poses = _baseline(args.baseline, prep, cfg)
            if poses is None:
                continue
        ref = reference_progress(prep, cfg)
        prev = prev_states.get(int(k) - cfg.ec_frame_offset_steps)
        table = score_candidates(prep, poses[None], cfg, reference=ref, prev_states=prev)
        prev_states[int(k)] = table.states[0]
        row = {'episode': key, 'frame': int(k), 'token': scene.token}
        row.update({m.name: float(table[m][0]) for m in Metric})
        row.update(pdms=float(table.pdms[0]), epdms=float(table.epdms[0]),
                   progress_m=float(table.progress_m[0]),
                   reference_progress_m=table.reference_progress_m, ec_used=table.ec_used)
        rows.append(row)
    return _write(rows, Path(args.out), cfg, args)


def _baseline(name: str, prep, cfg: ScorerConfig):
    scene = prep.scene
    if name == 'expert':
        return None if scene.expert is None else scene.expert.poses
    if name == 'cv':
        return constant_velocity_trajectory(scene.ego).poses
    return reference_plan(prep, cfg).poses


def vars_of(obj) -> dict:
    """Dataclass fields as a plain dict (for the summary)."""
    return dict(vars(obj))


def _write(rows: list, out: Path, cfg: ScorerConfig, args) -> int:
    out.mkdir(parents=True, exist_ok=True)
    if not rows:
        LOGGER.error('no scene was scored')
        return 2
    with open(out / 'scores.csv', 'w', newline='') as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (out / 'scores.json').write_text(json.dumps(rows, indent=1))
    means = {name: float(np.mean([r[name] for r in rows]))
             for name in [m.name for m in Metric] + ['pdms', 'epdms']}
    ec_rows = [r['EC'] for r in rows if r['ec_used']]
    means['EC'] = float(np.mean(ec_rows)) if ec_rows else float('nan')
    summary = {'num_scenes': len(rows), 'means': means,
               'num_scenes_with_previous_frame': len(ec_rows),
               'source': args.trajectories or f'baseline:{args.baseline}',
               'logs': str(args.logs), 'split': args.split or None,
               'navsim_version': cfg.navsim_version, 'vehicle': vars_of(cfg.vehicle)}
    (out / 'summary.json').write_text(json.dumps(summary, indent=1))
    save_config(args, out)
    LOGGER.info('scored %d scenes: PDMS %.4f, EPDMS %.4f -> %s', len(rows), means['pdms'],
                means['epdms'], out)
    return 0
