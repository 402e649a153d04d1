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
IL dataset over scene logs: features from the FeatureBuilder, targets from the logged scene.

Features are built by `perception.FeatureBuilder` from `EpisodeLog.sensor_frame(k)` (the same
builder the perception node calls); targets come from the privileged log: the expert trajectory,
the BEV semantic raster (`sim.raster.bev_semantics`, cropped to the BEV grid) and the nearest
agent boxes. Logs converted from recordings (no agents, no lanes: `pair-drive dataset
from-bag`) give an IGNORE_CLASS BEV target and agents_known false, so those terms are skipped.
Synthesizing sensors costs ~0.15 s per frame, so every episode's features and
targets are cached on disk (one NPZ per episode, keyed by the perception config and the data
config), and later epochs and runs read the cache.
"""

from dataclasses import dataclass, replace
import hashlib
import json
import logging
import multiprocessing
from pathlib import Path
import zlib

import numpy as np
import torch
from torch.utils.data import Dataset

from pair_drive_ros.core.features import FEATURE_KEYS, Features
from pair_drive_ros.core.files import atomic_path
from pair_drive_ros.core.se2 import poses_to_global, poses_to_local, se2_compose, wrap_angle
from pair_drive_ros.core.trajectory import POSE_DT_S
from pair_drive_ros.perception.builder import FeatureBuilder
from pair_drive_ros.perception.config import PerceptionConfig
from pair_drive_ros.policy.backbone import AGENT_STATE_DIM
from pair_drive_ros.policy.losses import IGNORE_CLASS, TARGET_KEYS

LOG = logging.getLogger(__name__)

CACHE_VERSION = 1
# Storage dtypes in the cache (features are float32 when served).
_STORE = {'lidar_bev': np.float16, 'camera': np.float16, 'route_raster': np.uint8,
          'ego_status': np.float32, 'trajectory': np.float32, 'bev_semantics': np.uint8,
          'agent_states': np.float32, 'agent_mask': bool, 'agents_known': bool}
# Keys a cache written before they existed lacks, with the value they had then.
_DEFAULTS = {'agents_known': True}


class DataError(ValueError):
    """No usable frames, or a cache that does not match."""


@dataclass(frozen=True)
class DataConfig:
    """Which frames to use and how targets are built."""

    frame_stride: int = 4      # every 4th scorable frame (0.4 s apart; neighbours are near-copies)
    num_agents: int = 16       # agent boxes per frame (nearest first), as the model's queries
    max_episodes: int = 0      # 0: all episodes of the split
    # Training only: scenarios (the logs' `scenario`) whose every scorable frame is used, e.g.
    # a family that is rare in the logs and where the planners fail most.
    dense_scenarios: tuple = ()
    # Recovery copies (training only): each frame again from an ego pose shifted sideways and
    # turned, sensors synthesized there, labelled with the expert's path blended back from the
    # shifted pose within perturb_recover_s. The expert's logs never show a car off the lane
    # centre; in closed loop a planner gets there and must know the way back. Only logs whose
    # scene is known (simulated); a converted recording gets none.
    perturb_copies: int = 0
    perturb_lateral_m: float = 1.0     # lateral shift drawn from [-this, this] [m]
    perturb_yaw_rad: float = 0.15      # heading error drawn from [-this, this] [rad]
    perturb_recover_s: float = 2.0     # the label is back on the expert's path after this [s]
    # 'time': the shift fades over perturb_recover_s whatever the expert does; 'distance': over
    # the distance the expert drives in perturb_recover_s at its mean speed of the horizon, so
    # where the expert waits the label waits too (a stopped car cannot move sideways).
    perturb_recover_by: str = 'time'

    def __post_init__(self) -> None:
        if self.perturb_copies < 0 or self.perturb_lateral_m < 0 or self.perturb_yaw_rad < 0:
            raise ValueError('perturb_copies, perturb_lateral_m and perturb_yaw_rad must be >= 0')
        if self.perturb_recover_s <= 0:
            raise ValueError('perturb_recover_s must be positive')
        if self.perturb_recover_by not in ('time', 'distance'):
            raise ValueError("perturb_recover_by must be 'time' or 'distance'")

    @property
    def training_only(self) -> 'DataConfig':
        """Return the frames without the training-only copies and dense scenarios (validation)."""
        return replace(self, perturb_copies=0, dense_scenarios=())


def bev_semantic_target(scene, cfg: PerceptionConfig) -> np.ndarray:
    """(H, W) uint8 BEV semantic classes on the feature BEV grid (sim.raster classes)."""
    from pair_drive_ros.sim.raster import bev_semantics

    extent = max(abs(cfg.x_min_m), abs(cfg.x_max_m), cfg.y_extent_m)
    n = int(round(extent / cfg.resolution_m))
    full = bev_semantics(scene, extent, cfg.resolution_m)
    # Raster row i is x = extent - (i + 0.5) res, column j is y = extent - (j + 0.5) res.
    r0 = n - int(round(cfg.x_max_m / cfg.resolution_m))
    c0 = n - int(round(cfg.y_extent_m / cfg.resolution_m))
    return full[r0:r0 + cfg.bev_height, c0:c0 + cfg.bev_width]


def agent_targets(agents_ego, cfg: PerceptionConfig, num_agents: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Nearest agents inside the BEV: states (A, 5) x, y, yaw, length, width and mask (A,)."""
    states = np.zeros((num_agents, AGENT_STATE_DIM), np.float32)
    mask = np.zeros(num_agents, bool)
    if len(agents_ego) == 0:
        return states, mask
    p = agents_ego.poses
    inside = ((p[:, 0] >= cfg.x_min_m) & (p[:, 0] <= cfg.x_max_m)
              & (np.abs(p[:, 1]) <= cfg.y_extent_m))
    idx = np.flatnonzero(inside)
    idx = idx[np.argsort(np.hypot(p[idx, 0], p[idx, 1]))][:num_agents]
    states[:len(idx), :3] = p[idx]
    states[:len(idx), 3:] = agents_ego.sizes[idx]
    mask[:len(idx)] = True
    return states, mask


def history_frames(stamps: np.ndarray, k: int, cfg: PerceptionConfig) -> list[int]:
    """
    Earlier frames of an episode whose sweeps fill frame k's past slots, oldest first.

    Slot j takes the frame nearest to stamps[k] - j * history_dt_s (the history then drops it
    if it is farther than history_tolerance_s: a gap in the log).
    """
    out = set()
    for j in range(1, cfg.history_sweeps + 1):
        target = stamps[k] - j * cfg.history_dt_s
        i = int(np.searchsorted(stamps[:k], target))
        near = [m for m in (i - 1, i) if 0 <= m < k]
        if near:
            out.add(min(near, key=lambda m: abs(stamps[m] - target)))
    return sorted(out)


def frame_features(log, k: int, builder: FeatureBuilder,
                   offset: np.ndarray | None = None) -> Features:
    """
    Features of frame k alone, its sweep history rebuilt from the episode's earlier frames.

    For random access to frames (open-loop evaluation of a list of frames); iterating an
    episode in order is cheaper with one history (episode_samples). offset: a body-frame
    (dx, dy, dyaw) applied to the logged ego pose of frame k and of every frame of its history
    (a recovery copy: the ego drove a path parallel to the logged one, so the ego motion
    between the sweeps is the logged motion); the sensors are synthesized there.
    """
    def frame(m: int):
        if offset is None:
            return log.sensor_frame(m)
        pose = se2_compose(np.asarray(log.ego_state(m).pose, np.float64), offset)
        return log.sensor_frame(m, ego_pose=pose)

    history = None
    if builder.cfg.history_sweeps > 0:
        history = builder.new_history()
        for m in history_frames(np.asarray(log.arrays['t'], np.float64), k, builder.cfg):
            builder.observe(frame(m), history)
    return builder.build(frame(k), history)


def frame_sample(log, k: int, builder: FeatureBuilder, data_cfg: DataConfig,
                 history=None) -> dict:
    """
    Features and targets of frame k of an EpisodeLog, as numpy arrays.

    history: the episode's SweepHistory, already fed with frame k's history_frames (see
    episode_samples); None for models without motion channels.
    """
    feats = builder.build(log.sensor_frame(k), history)
    scene = log.scene(k)
    if scene.expert is None:
        raise DataError(f'frame {k} of {log.path} has no expert (not scorable)')
    return _sample(log, feats, scene, log.agents(k, frame='ego'), scene.expert.poses,
                   builder.cfg, data_cfg)


def _sample(log, feats: Features, scene, agents_ego, trajectory: np.ndarray,
            cfg: PerceptionConfig, data_cfg: DataConfig) -> dict:
    """Return the cached arrays of one sample: features, targets in the frame of scene.ego."""
    states, mask = agent_targets(agents_ego, cfg, data_cfg.num_agents)
    if log.map_known:
        bev = bev_semantic_target(scene, cfg)
    else:
        # A recording without lanes: no BEV-semantic target (the loss skips these cells).
        bev = np.full((cfg.bev_height, cfg.bev_width), IGNORE_CLASS, np.uint8)
    out = {key: getattr(feats, key) for key in FEATURE_KEYS}
    out.update(trajectory=trajectory.astype(np.float32), bev_semantics=bev,
               agent_states=states, agent_mask=mask, agents_known=log.agents_known)
    return out


def recovery_trajectory(expert_map: np.ndarray, start_pose: np.ndarray, shifted_pose: np.ndarray,
                        recover_s: float, by_distance: bool = False) -> np.ndarray:
    """
    (8, 3) label from a shifted ego pose, in its ego frame: the expert's path, blended back.

    expert_map: the expert's (8, 3) future in the map frame, from start_pose (map). The shift
    d = shifted - start position fades out with a smoothstep over recover_s, so the label starts
    where the shifted ego stands and rejoins the expert's path; each pose's yaw turns with the
    direction change the blend adds (none where the ego hardly moves). by_distance: the blend
    runs on the distance the expert has driven, over recover_s at its mean speed of the
    horizon: the same as by time at a constant speed, but where the expert stands still the
    label keeps the shift and the shifted heading.
    """
    t = POSE_DT_S * np.arange(1, len(expert_map) + 1)
    progress = t / recover_s
    if by_distance:
        steps = np.linalg.norm(np.diff(np.vstack([start_pose[:2], expert_map[:, :2]]), axis=0),
                               axis=1)
        driven = np.cumsum(steps)
        span = recover_s * driven[-1] / t[-1]            # mean speed x recover_s [m]
        progress = driven / span if span > 1e-6 else np.zeros_like(t)
    u = np.clip(1.0 - progress, 0.0, 1.0)
    w = u * u * (3.0 - 2.0 * u)
    d = shifted_pose[:2] - start_pose[:2]
    xy = expert_map[:, :2] + w[:, None] * d
    seg_new = np.diff(np.vstack([shifted_pose[:2], xy]), axis=0)
    seg_old = np.diff(np.vstack([start_pose[:2], expert_map[:, :2]]), axis=0)
    moving = (np.linalg.norm(seg_new, axis=1) > 0.2) & (np.linalg.norm(seg_old, axis=1) > 0.2)
    turn = wrap_angle(np.arctan2(seg_new[:, 1], seg_new[:, 0])
                      - np.arctan2(seg_old[:, 1], seg_old[:, 0]))
    # Standing still, the heading error fades with the same blend (by time: it is dropped).
    still = w * wrap_angle(shifted_pose[2] - start_pose[2]) if by_distance else 0.0
    yaw = expert_map[:, 2] + np.where(moving, turn, still)
    return poses_to_local(shifted_pose, np.column_stack([xy, yaw])).astype(np.float32)


def perturbed_frame_sample(log, k: int, builder: FeatureBuilder, data_cfg: DataConfig,
                           copy: int) -> dict:
    """
    frame_sample of frame k seen from a shifted ego pose (a recovery copy; see DataConfig).

    The shift is drawn from a generator seeded by the scene token (scenario, seed, frame) and
    the copy, so a cache rebuild gives the same samples.
    """
    seed = zlib.crc32(f'{log.token(k)}:{int(copy)}'.encode())
    rng = np.random.default_rng(seed)
    dy = rng.uniform(-data_cfg.perturb_lateral_m, data_cfg.perturb_lateral_m)
    dyaw = rng.uniform(-data_cfg.perturb_yaw_rad, data_cfg.perturb_yaw_rad)
    scene = log.scene(k)
    if scene.expert is None:
        raise DataError(f'frame {k} of {log.path} has no expert (not scorable)')
    if not (log.map_known and log.agents_known):
        raise DataError(f'{log.path}: a recording without lanes or agents cannot be seen from '
                        'another pose (no recovery copies)')
    offset = np.array([0.0, dy, dyaw])
    start = np.asarray(scene.ego.pose, np.float64)
    shifted = se2_compose(start, offset)
    feats = frame_features(log, k, builder, offset)
    label = recovery_trajectory(poses_to_global(start, scene.expert.poses), start, shifted,
                                data_cfg.perturb_recover_s,
                                by_distance=data_cfg.perturb_recover_by == 'distance')
    return _sample(log, feats, replace(scene, ego=feats.ego),
                   log.agents(k).to_frame(shifted), label, builder.cfg, data_cfg)


def cache_key(perception_cfg: PerceptionConfig, data_cfg: DataConfig) -> str:
    """Short hash naming a cache folder (changes whenever features or targets would)."""
    key = {'v': CACHE_VERSION, 'perception': perception_cfg.as_dict(),
           'stride': data_cfg.frame_stride, 'agents': data_cfg.num_agents}
    if data_cfg.dense_scenarios:
        key['dense'] = sorted(data_cfg.dense_scenarios)
    if data_cfg.perturb_copies:
        # Only with recovery copies, so the caches of earlier configs keep their names.
        key['perturb'] = [data_cfg.perturb_copies, data_cfg.perturb_lateral_m,
                          data_cfg.perturb_yaw_rad, data_cfg.perturb_recover_s]
        if data_cfg.perturb_recover_by != 'time':
            key['perturb'].append(data_cfg.perturb_recover_by)
    blob = json.dumps(key, sort_keys=True)
    return hashlib.sha1(blob.encode()).hexdigest()[:12]


def file_digest(path: Path) -> str:
    """Short content hash of a file (scene logs are ~100 kB: cheap)."""
    return hashlib.sha1(Path(path).read_bytes()).hexdigest()[:10]


def episode_samples(log, frames, builder: FeatureBuilder, data_cfg: DataConfig) -> list:
    """
    frame_sample of each frame (ascending) of one episode, feeding its sweep history.

    The history sees exactly what the perception node's would have at each frame: the earlier
    sweeps of the same episode, in time order.
    """
    cfg = builder.cfg
    frames = sorted(int(k) for k in frames)
    if cfg.history_sweeps == 0:
        return [frame_sample(log, k, builder, data_cfg) for k in frames]
    history = builder.new_history()
    stamps = np.asarray(log.arrays['t'], dtype=np.float64)
    wanted = set(frames)
    extra = {m for k in frames for m in history_frames(stamps, k, cfg)} - wanted
    samples = []
    for k in sorted(wanted | extra):
        if k in wanted:
            samples.append(frame_sample(log, k, builder, data_cfg, history))
        else:
            builder.observe(log.sensor_frame(k), history)
    return samples


def _build_episode(args: tuple) -> str:
    path, out_path, perception_cfg, data_cfg = args
    from pair_drive_ros.sim.logs import EpisodeLog

    log = EpisodeLog.load(path)
    builder = FeatureBuilder(perception_cfg)
    scorable = log.scorable_frames()
    relabel = log.arrays.get('expert_plan')
    if relabel is not None:
        # An on-policy rollout relabelled by the expert (DAgger): only the frames the expert
        # planned for; elsewhere the logged future is the planner's own driving.
        frames = scorable[np.isfinite(relabel[scorable]).all(axis=(1, 2))]
    else:
        dense = log.meta.get('scenario') in data_cfg.dense_scenarios
        frames = scorable[::1 if dense else data_cfg.frame_stride]
    samples = episode_samples(log, frames, builder, data_cfg)
    # Sensors can be rendered from another pose only where the scene is known: a converted
    # recording (no agents or no lanes) gets no recovery copies.
    copies = data_cfg.perturb_copies if log.map_known and log.agents_known else 0
    for copy in range(copies):
        samples += [perturbed_frame_sample(log, k, builder, data_cfg, copy) for k in frames]
    frames = list(frames) * (1 + copies)
    arrays = {'frames': np.asarray(frames, np.int64)}
    for key, dtype in _STORE.items():
        arrays[key] = (np.stack([s[key] for s in samples]).astype(dtype) if samples
                       else np.zeros((0,), dtype))
    # Two trainings building the same cache at once each write a whole file and the last
    # rename wins (both files hold the same features).
    with atomic_path(out_path, suffix='.tmp.npz') as tmp:
        np.savez(tmp, **arrays)
    return str(out_path)


class ILDataset(Dataset):
    """Frames of one split: (features dict, targets dict) of numpy arrays per item."""

    def __init__(self, root: str | Path, split: str | None,
                 perception_cfg: PerceptionConfig = PerceptionConfig(),
                 data_cfg: DataConfig = DataConfig(), cache_dir: str | Path | None = None,
                 workers: int = 1, progress: bool = False, extra_roots: tuple = (),
                 extra_scenarios: tuple = ()) -> None:
        """
        Index (and cache on first use) the frames of `split` under root and extra_roots.

        extra_roots: more scene-log roots whose same split joins this one (e.g. on-policy
        rollouts relabelled by the expert); their features share root's cache.
        extra_scenarios: only these scenario folders (<root>/<split>/<scenario>/) of the extra
        roots join (empty: all).
        """
        from pair_drive_ros.sim.logs import episode_paths

        self.root = Path(root)
        self.perception_cfg = perception_cfg
        self.data_cfg = data_cfg
        roots = [self.root] + [Path(r) for r in extra_roots]
        paths = episode_paths(root, split)
        if data_cfg.max_episodes > 0:
            paths = paths[:data_cfg.max_episodes]
        if not paths:
            raise DataError(f'no scene logs under {self.root / (split or "")}')
        owners = [self.root] * len(paths)
        for extra in roots[1:]:
            more = episode_paths(extra, split)
            if extra_scenarios:
                base = extra / split if split else extra
                more = [p for p in more if p.relative_to(base).parts[0] in extra_scenarios]
            if not more:
                raise DataError(f'no scene logs under {extra / (split or "")}'
                                + (f' of {list(extra_scenarios)}' if extra_scenarios else ''))
            paths, owners = paths + more, owners + [extra] * len(more)
        base = Path(cache_dir) if cache_dir else self.root.parent / 'cache'
        self.cache_dir = base / f'il_{cache_key(perception_cfg, data_cfg)}'
        jobs, files = [], []
        for path, owner in zip(paths, owners):
            split_root = owner / split if split else owner
            rel = path.relative_to(split_root).with_suffix('')
            # The log's content hash is part of the name: a regenerated log never reuses a
            # stale cache entry.
            name = '__'.join(rel.parts) + f'__{file_digest(path)}.npz'
            out = self.cache_dir / (split or 'all') / name
            files.append(out)
            if not out.is_file():
                jobs.append((path, out, perception_cfg, data_cfg))
        if jobs:
            LOG.info('building the feature cache for %d of %d episodes in %s (%d workers)',
                     len(jobs), len(paths), self.cache_dir, workers)
            self._build(jobs, workers, progress)
        self.episodes = [str(p) for p in paths]
        parts = {key: [] for key in _STORE}
        index = []
        for e, f in enumerate(files):
            with np.load(f) as data:
                n = len(data['frames'])
                for key in _STORE:
                    parts[key].append(data[key] if key in data.files
                                      else np.full(n, _DEFAULTS[key], _STORE[key]))
                index.extend((e, int(k)) for k in data['frames'])
        self.arrays = {key: np.concatenate([p for p in parts[key] if p.size] or parts[key][:1])
                       for key in _STORE}
        self.index = index
        if not index:
            raise DataError(f'no scorable frames under {self.root / (split or "")}')
        LOG.info('dataset %s/%s: %d frames from %d episodes', self.root, split, len(index),
                 len(paths))

    @staticmethod
    def _build(jobs: list, workers: int, progress: bool) -> None:
        bar = None
        if progress:
            from tqdm import tqdm
            bar = tqdm(total=len(jobs), desc='feature cache', unit='ep')
        if workers > 1:
            ctx = multiprocessing.get_context('fork')
            with ctx.Pool(workers) as pool:
                for _ in pool.imap_unordered(_build_episode, jobs):
                    if bar is not None:
                        bar.update()
        else:
            for job in jobs:
                _build_episode(job)
                if bar is not None:
                    bar.update()
        if bar is not None:
            bar.close()

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> tuple[dict, dict]:
        feats = {k: self.arrays[k][i].astype(np.float32) for k in FEATURE_KEYS}
        targets = {k: self.arrays[k][i] for k in TARGET_KEYS + ('agents_known',)}
        return feats, targets

    def episode_frame(self, i: int) -> tuple[str, int]:
        """(episode path, frame index) of item i."""
        e, k = self.index[i]
        return self.episodes[e], k

    def features(self, i: int, log=None) -> Features:
        """Item i as a Features object (ego and route from the log, for planners)."""
        path, k = self.episode_frame(i)
        if log is None:
            from pair_drive_ros.sim.logs import EpisodeLog
            log = EpisodeLog.load(path)
        f, _ = self[i]
        ego = log.ego_state(k)
        return Features(lidar_bev=f['lidar_bev'], camera=f['camera'],
                        route_raster=f['route_raster'], ego_status=f['ego_status'], ego=ego,
                        route=log.route(k), stamp_s=ego.stamp_s)

    def trajectories(self) -> np.ndarray:
        """(N, 8, 3) expert trajectories of all items (for K-means anchors)."""
        return self.arrays['trajectory']


def collate(samples: list) -> tuple[dict, dict]:
    """Stack (features, targets) items into tensors (float32 features, typed targets)."""
    feats = {k: torch.from_numpy(np.stack([s[0][k] for s in samples])) for k in FEATURE_KEYS}
    targets = {}
    for k in TARGET_KEYS + ('agents_known',):
        if k not in samples[0][1]:
            continue
        arr = np.stack([s[1][k] for s in samples])
        if k == 'bev_semantics':
            arr = arr.astype(np.int64)
        targets[k] = torch.from_numpy(arr)
    return feats, targets


def to_device(batch: dict, device: torch.device) -> dict:
    """Move a dict of tensors to a device."""
    return {k: v.to(device, non_blocking=True) for k, v in batch.items()}


def subset(dataset: ILDataset, count: int) -> ILDataset:
    """Restrict the dataset to `count` items spread evenly over it (shares the arrays)."""
    import copy

    idx = np.linspace(0, len(dataset) - 1, count).round().astype(np.int64)
    out = copy.copy(dataset)
    out.arrays = {k: v[idx] for k, v in dataset.arrays.items()}
    out.index = [dataset.index[i] for i in idx]
    return out
