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
Scenes for GRPO and the selector: cached features + scorer-ready scenes + batched rewards.

Features come from training.data.ILDataset (the same on-disk feature cache the IL trainers use).
The scorer is the expensive part on a CPU, so everything scorer-side that does not depend on the
candidates is computed once per scene and kept: `prepare_scene` (lane grid, agents) and EP's
normaliser `reference_progress` (15 IDM proposals simulated and scored). The normalisers are
also stored on disk (JSON keyed by scene token and the content hash of its log file) so later
runs skip them.
"""

from dataclasses import dataclass
import json
import logging
from pathlib import Path

import numpy as np
import torch

from pair_drive_ros.core.features import FEATURE_KEYS
from pair_drive_ros.core.files import write_text_atomic
from pair_drive_ros.scoring import (Metric, prepare_scene, reference_progress, score_scenes,
                                    ScorerConfig)
from pair_drive_ros.training.data import file_digest

LOG = logging.getLogger(__name__)

REWARDS = ('pdms', 'epdms')
KEY_SEPARATOR = '@'     # EP normaliser cache keys: <scene token>@<log file hash>


@dataclass
class GroupScores:
    """True scores of (B, G) candidates: pdms, epdms (B, G); table (B, len(Metric), G)."""

    pdms: np.ndarray
    epdms: np.ndarray
    table: np.ndarray

    def reward(self, name: str) -> np.ndarray:
        """(B, G) reward by name ('pdms' or 'epdms')."""
        if name not in REWARDS:
            raise ValueError(f'unknown reward {name!r}; choose one of {REWARDS}')
        return getattr(self, name)


class SceneSet:
    """Items of an ILDataset with their scenes, prepared for the scorer on first use."""

    def __init__(self, dataset, scorer_cfg: ScorerConfig = ScorerConfig(),
                 indices: np.ndarray | None = None, cache_file: str | Path | None = None,
                 keep_prepared: bool = True) -> None:
        self.dataset = dataset
        self.scorer_cfg = scorer_cfg
        self.indices = (np.arange(len(dataset)) if indices is None
                        else np.asarray(indices, dtype=np.int64))
        self._logs = {}
        self._prepared = {}
        self.keep_prepared = keep_prepared
        self._refs = {}
        self.cache_file = Path(cache_file) if cache_file else None
        if self.cache_file is not None and self.cache_file.is_file():
            saved = json.loads(self.cache_file.read_text())
            # Keys without a log hash come from before it was part of the key: not trusted.
            self._refs = {k: float(v) for k, v in saved.items() if KEY_SEPARATOR in k}
            if len(self._refs) < len(saved):
                LOG.info('%s: %d EP normalisers without a log hash dropped',
                         self.cache_file, len(saved) - len(self._refs))
        self._digests = {}

    def __len__(self) -> int:
        return len(self.indices)

    def log(self, path: str):
        """Return the EpisodeLog of an episode path (loaded once)."""
        if path not in self._logs:
            from pair_drive_ros.sim.logs import EpisodeLog
            self._logs[path] = EpisodeLog.load(path)
        return self._logs[path]

    def scene(self, j: int):
        """Return the core.Scene of item j (j indexes this set, not the dataset)."""
        path, k = self.dataset.episode_frame(int(self.indices[j]))
        return self.log(path).scene(k)

    def features(self, j: int):
        """Item j as a Features object (for planners)."""
        i = int(self.indices[j])
        path, _ = self.dataset.episode_frame(i)
        return self.dataset.features(i, self.log(path))

    def prepared(self, j: int):
        """(PreparedScene, EP normaliser [m]) of item j (kept when keep_prepared)."""
        prep = self._prepared.get(j)
        if prep is None:
            prep = prepare_scene(self.scene(j), self.scorer_cfg)
            if self.keep_prepared:
                self._prepared[j] = prep
        key = self.reference_key(j, prep.scene.token)
        if key not in self._refs:
            self._refs[key] = float(reference_progress(prep, self.scorer_cfg))
        return prep, self._refs[key]

    def reference_key(self, j: int, token: str) -> str:
        """
        Cache key of item j's EP normaliser: its scene token and its log file's hash.

        A token (scenario, seed, frame) repeats across log sets: a regenerated split, or
        rollouts of other planners on the same seeds. The token alone would hand one log's
        normaliser to another. Datasets without log files (synthetic) use the token.
        """
        episode_frame = getattr(self.dataset, 'episode_frame', None)
        if episode_frame is None:
            return token
        path, _ = episode_frame(int(self.indices[j]))
        digest = self._digests.get(path)
        if digest is None:
            digest = self._digests[path] = file_digest(path)
        return f'{token}{KEY_SEPARATOR}{digest}'

    def save_references(self) -> None:
        """Write the EP normalisers computed so far (JSON)."""
        if self.cache_file is None:
            return
        write_text_atomic(self.cache_file, json.dumps(self._refs))

    def batch(self, js, device: torch.device | str = 'cpu') -> tuple[dict, torch.Tensor]:
        """(feature tensors keyed by FEATURE_KEYS, expert trajectories (B, 8, 3)) of items js."""
        idx = self.indices[np.asarray(js, dtype=np.int64)]
        arrays = self.dataset.arrays
        feats = {k: torch.as_tensor(arrays[k][idx], dtype=torch.float32, device=device)
                 for k in FEATURE_KEYS}
        expert = torch.as_tensor(arrays['trajectory'][idx], dtype=torch.float32, device=device)
        return feats, expert

    def arrays_of(self, js, key: str) -> np.ndarray:
        """Return the data set's array `key` (e.g. a perception target) of items js."""
        arrays = self.dataset.arrays
        if key not in arrays:
            raise ValueError(f'the data set has no {key!r} (perception targets missing)')
        return arrays[key][self.indices[np.asarray(js, dtype=np.int64)]]

    def score(self, js, candidates: np.ndarray) -> GroupScores:
        """Score candidates (B, G, 8, 3) ego frame for items js (one scorer batch)."""
        preps, refs = zip(*(self.prepared(int(j)) for j in js))
        tables = score_scenes(list(preps), np.asarray(candidates, dtype=np.float64),
                              self.scorer_cfg, references=list(refs))
        return GroupScores(np.stack([t.pdms for t in tables]),
                           np.stack([t.epdms for t in tables]),
                           np.stack([t.table for t in tables]))


class ConcatSceneSet:
    """Several SceneSets as one (e.g. the expert's logs and on-policy rollouts)."""

    def __init__(self, parts: list) -> None:
        if not parts:
            raise ValueError('ConcatSceneSet needs at least one scene set')
        self.parts = list(parts)
        self._offsets = np.cumsum([0] + [len(p) for p in self.parts])

    def __len__(self) -> int:
        return int(self._offsets[-1])

    def _split(self, js) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """(part, positions in js, local indices) for every part that js touches."""
        js = np.asarray(js, dtype=np.int64)
        part = np.searchsorted(self._offsets, js, side='right') - 1
        return [(k, np.flatnonzero(part == k), js[part == k] - self._offsets[k])
                for k in np.unique(part)]

    def batch(self, js, device: torch.device | str = 'cpu') -> tuple[dict, torch.Tensor]:
        """Features and expert trajectories of items js, in the order of js."""
        feats, experts, order = [], [], []
        for k, pos, local in self._split(js):
            f, e = self.parts[k].batch(local, device)
            feats.append(f)
            experts.append(e)
            order.append(pos)
        inv = torch.as_tensor(np.argsort(np.concatenate(order)), device=experts[0].device)
        return ({key: torch.cat([f[key] for f in feats])[inv] for key in feats[0]},
                torch.cat(experts)[inv])

    def arrays_of(self, js, key: str) -> np.ndarray:
        """Array `key` of items js, in the order of js."""
        out, order = [], []
        for k, pos, local in self._split(js):
            out.append(self.parts[k].arrays_of(local, key))
            order.append(pos)
        return np.concatenate(out)[np.argsort(np.concatenate(order))]

    def score(self, js, candidates: np.ndarray) -> GroupScores:
        """Scores of candidates (B, G, 8, 3) of items js, in the order of js."""
        candidates = np.asarray(candidates)
        parts, order = [], []
        for k, pos, local in self._split(js):
            parts.append(self.parts[k].score(local, candidates[pos]))
            order.append(pos)
        inv = np.argsort(np.concatenate(order))
        return GroupScores(*(np.concatenate([getattr(g, f) for g in parts])[inv]
                             for f in ('pdms', 'epdms', 'table')))

    def save_references(self) -> None:
        """Write every part's EP normalisers."""
        for part in self.parts:
            part.save_references()


def load_training_scenes(data_root: str | Path, extra_data_roots: tuple, split: str,
                         frame_stride: int, max_scenes: int, seed: int, workers: int = 1,
                         cache_dir: str | Path | None = None, perception_cfg=None):
    """data_root's split, plus every frame of each extra root's split (e.g. on-policy logs)."""
    main = load_scene_set(data_root, split, frame_stride, max_scenes, seed, workers,
                          cache_dir=cache_dir, perception_cfg=perception_cfg)
    if not extra_data_roots:
        return main
    parts = [main]
    for root in extra_data_roots:
        if not (Path(root) / split).is_dir():
            raise FileNotFoundError(f'extra_data_roots: {Path(root) / split} does not exist; '
                                    'make it with `pair-drive train rollouts`')
        parts.append(load_scene_set(root, split, frame_stride, 0, seed, workers,
                                    cache_dir=cache_dir, perception_cfg=perception_cfg))
    return ConcatSceneSet(parts)


def steps_for_budget(scorer_budget: int, calls_per_step: int, total_steps: int) -> int:
    """Return the steps that spend `scorer_budget` scorer calls (rounded up); 0: total_steps."""
    if scorer_budget <= 0:
        return total_steps
    return -(-int(scorer_budget) // int(calls_per_step))


def scorer_calls(path: str) -> int | None:
    """
    Scorer calls a checkpoint's training used (None: unknown).

    Checkpoints written since the budget was recorded store `scorer_calls`; older ones are
    counted from their train_config: GRPO runs score steps x scenes x (group + 1 reference),
    the sequential baseline steps x scenes x group, a selector scenes x references x candidates
    per reference (the reference, its leaves and, with plan variants, its 14 variants).
    """
    from pair_drive_ros.policy.selector import candidates_per_reference
    from pair_drive_ros.policy.tree import resolve_group

    if not path or not Path(path).is_file():
        return None
    ckpt = torch.load(path, map_location='cpu', weights_only=False)
    if 'scorer_calls' in ckpt:
        return int(ckpt['scorer_calls'])
    tc = ckpt.get('train_config') or {}
    model = ckpt.get('model')
    if model == 'pair_rl_branch' and 'total_steps' in tc:
        return tc['total_steps'] * tc['scenes_per_step'] * (len(resolve_group(tc['group'])) + 1)
    if model == 'pair_selector' and 'num_scenes' in ckpt and 'references' in tc:
        per_ref = candidates_per_reference(tc.get('group', '15'),
                                           bool((tc.get('model') or {}).get('plan_variants')))
        return int(ckpt['num_scenes']) * len(tc['references']) * per_ref
    if 'group_size' in tc and 'total_steps' in tc:
        return tc['total_steps'] * tc['scenes_per_step'] * tc['group_size']
    return None


def budget_of(checkpoints) -> int:
    """
    Return the scorer calls the trainings of `checkpoints` spent together.

    E.g. the RL branch and the final selector: the budget of an equal-budget sequential run.
    """
    calls = {str(p): scorer_calls(str(p)) for p in checkpoints}
    unknown = [p for p, n in calls.items() if n is None]
    if unknown:
        raise ValueError(f'scorer_budget_of: no scorer-call count in {unknown} '
                         '(missing file or a checkpoint without training config)')
    return int(sum(calls.values()))


def load_scene_set(data_root: str | Path, split: str, frame_stride: int = 4,
                   max_scenes: int = 0, seed: int = 0, workers: int = 1,
                   scorer_cfg: ScorerConfig = ScorerConfig(), keep_prepared: bool = True,
                   cache_dir: str | Path | None = None, perception_cfg=None) -> SceneSet:
    """
    Build a SceneSet over a split's feature cache (max_scenes > 0: a fixed random subset).

    perception_cfg: the features the models read (None: the default PerceptionConfig); each
    configuration has its own feature cache.
    """
    from pair_drive_ros.perception.config import PerceptionConfig
    from pair_drive_ros.training.data import DataConfig, ILDataset

    dataset = ILDataset(data_root, split, perception_cfg or PerceptionConfig(),
                        data_cfg=DataConfig(frame_stride=frame_stride),
                        cache_dir=cache_dir, workers=workers, progress=True)
    indices = np.arange(len(dataset))
    if 0 < max_scenes < len(dataset):
        rng = np.random.default_rng(seed)
        indices = np.sort(rng.choice(len(dataset), max_scenes, replace=False))
    cache = (Path(cache_dir) if cache_dir else Path(data_root).parent / 'cache') \
        / f'ep_reference_{split}.json'
    return SceneSet(dataset, scorer_cfg, indices, cache, keep_prepared)


METRIC_NAMES = tuple(m.name for m in Metric)
