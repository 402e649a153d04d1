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
Supervised training of the PaIR candidate selector on PDM-scorer labels.

1. Labels: for every training scene, candidates = for each reference in `references` (the IL-A
   plan 'il', the expert 'expert', or 'expert_sampled': a sampled tree around the expert) the
   reference itself and the RL tree's leaves around it (and, with model.plan_variants, its speed
   x lateral variants, as PaIRPlanner adds them at inference); each is scored by the PDM scorer
   (sub-metrics, PDMS, EPDMS). The RL branch is frozen; its context tokens are the selector's
   scene input (context_source 'rl_branch'). With `extra_il_checkpoints`, the IL references
   are made once per IL planner (IL-A first), so the selector sees several IL styles.
2. Training: BCE on every target + listwise ranking cross-entropy, AdamW + cosine decay.
3. Validation (every epoch, on `val_split`): candidates exactly as at inference ([IL plan, tree
   leaves around it], per IL planner); mean true PDMS of the selected candidate vs the IL plan
   vs the oracle, averaged over the IL planners and reported per planner.

Under torchrun the labelling (the PDM scorer, the expensive part) is split: each rank labels a
contiguous share of the scenes (its own random stream for the sampled leaves and perturbations)
and the shares are gathered in order on every rank. Training then splits each batch over the
ranks and averages the gradients weighted by the rows each rank holds (exact for an uneven last
batch); every rank validates on the same labels and uses rank 0's fallback margin. Rank 0 alone
writes the run folder, labels.pt and the checkpoint.

    pair-drive train selector --config config/selector.yaml
    torchrun --nproc_per_node 2 -m pair_drive_ros.cli train selector --config config/selector.yaml
"""

import argparse
from dataclasses import dataclass, field, replace
import logging
from pathlib import Path

import numpy as np
import torch

from pair_drive_ros.core.config import config_to_dict
from pair_drive_ros.policy.checkpoint import save_checkpoint
from pair_drive_ros.policy.factory import shipped
from pair_drive_ros.policy.closed_loop import planner_perception_config
from pair_drive_ros.policy.pair import (load_rl_branch, rl_features, selector_batch,
                                        shared_features)
from pair_drive_ros.policy.selector import (candidates_per_reference, MODEL_NAME,
                                            pick_with_margin, reference_alternatives,
                                            Selector, selector_loss, SelectorConfig, TARGETS)
from pair_drive_ros.policy.tree import resolve_group
from pair_drive_ros.scoring import Metric
from pair_drive_ros.training.common import (add_trainer_arguments, average_gradients,
                                            broadcast_object, broadcast_parameters, DistInfo,
                                            export_copy, finish_distributed, gather_concat,
                                            init_distributed, pick_device, rank_seed, run_log,
                                            run_trainer, seed_everything, set_threads, shard_of,
                                            sync_references)
from pair_drive_ros.training.grpo import cosine_lr
from pair_drive_ros.training.references import perturb_reference

LOG = logging.getLogger(__name__)
DEFAULT_CONFIG = 'config/selector.yaml'
REFERENCES = ('il', 'il_perturbed', 'expert', 'expert_perturbed', 'expert_sampled')
IL_REFERENCES = ('il', 'il_perturbed')        # the references made from the IL-A plan
RASTER_KEYS = ('lidar_bev', 'route_raster')   # feature tensors kept with the labels
# Closed-loop outcomes label a frame's IL block only where the candidates tried in the rollout
# are the ones labelled here (features rebuilt from the log may differ in float rounding) [m].
OUTCOME_MATCH_M = 0.05


@dataclass(frozen=True)
class SelectorTrainConfig:
    """Selector run settings (config/selector.yaml uses the same names)."""

    exp: str = 'selector'
    data_root: str = 'data/logs'
    split: str = 'train'
    frame_stride: int = 4
    max_scenes: int = 0
    # More training logs, labelled like data_root's (all their `split` frames at frame_stride):
    # e.g. on-policy PaIR rollouts (training/rollouts.py), which hold the states PaIR itself
    # drives into (faster, closer to the lead vehicle) that the expert's logs never show.
    extra_data_roots: tuple = ()
    # Where a rollout tried its candidates in closed loop (`train rollouts --set
    # outcome_horizon_steps=...`), those that crashed or left the road score 0 there.
    closed_loop_outcomes: bool = False
    cache_dir: str = ''            # feature cache and EP normalisers ('' : <data_root>/../cache)
    val_split: str = 'val'
    val_frame_stride: int = 8
    val_max_scenes: int = 300
    rl_checkpoint: str = shipped('rl_branch')
    il_checkpoint: str = shipped('transfuser')   # IL-A: its plans are references
    # Further IL planners whose plans are references too (each gets the IL references); the
    # plug-and-play result uses a selector trained without them.
    extra_il_checkpoints: tuple = ()
    references: tuple = ('il', 'expert', 'expert_sampled')
    group: str = '15'
    sample_sigma: float = 0.6      # offsets of 'expert_sampled'
    # 'il_perturbed' / 'expert_perturbed': the IL-A plan / the expert scaled in speed by
    # U(1 +- perturb_speed), shifted sideways by a ramp up to U(+-perturb_lateral_m) and jittered
    # by N(0, perturb_jitter_m) per waypoint. On the training split IL-A's plans are better than
    # on unseen scenes (it was trained there), and other IL planners err differently (a plug-in
    # IL planner is never seen in training); perturbed plans show the selector bad references.
    perturb_speed: float = 0.4
    perturb_lateral_m: float = 1.5
    perturb_jitter_m: float = 0.0
    model: SelectorConfig = field(default_factory=SelectorConfig)
    epochs: int = 30
    batch_size: int = 32
    lr: float = 1e-3
    weight_decay: float = 1e-4
    rank_weight: float = 1.0
    rank_temperature: float = 0.05
    margins: tuple = (0.0, 0.01, 0.02, 0.05, 0.1, 0.2)   # fallback margins tried on val
    labels: str = ''               # a labels.pt of an earlier run (same RL branch): skip scoring
    relabel_il: bool = False       # with labels: re-score only the IL part (a new IL-A) and val
    seed: int = 0                  # weights and batch order
    label_seed: int = 0            # the labels: scene subset, perturbations, sampled leaves
    device: str = 'cpu'
    threads: int = 2
    workers: int = 1
    runs_root: str = 'runs'
    out: str = ''

    def __post_init__(self) -> None:
        bad = [r for r in self.references if r not in REFERENCES]
        if bad:
            raise ValueError(f'unknown references {bad}; choose from {REFERENCES}')


def target_array(scores) -> np.ndarray:
    """(B, G, len(TARGETS)) labels from GroupScores (sub-metrics, then PDMS, EPDMS)."""
    rows = [scores.table[:, int(Metric[name]), :] for name in TARGETS[:-2]]
    rows += [scores.pdms, scores.epdms]
    return np.clip(np.stack(rows, -1), 0.0, 1.0).astype(np.float32)


def reference_layout(references, num_il: int) -> list[tuple[str, int | None]]:
    """
    Candidate blocks of a label row in order: (reference name, IL planner index or None).

    Each IL reference ('il', 'il_perturbed') appears once per IL planner, IL-A first.
    """
    return [(name, k) for name in references
            for k in (range(num_il) if name in IL_REFERENCES else (None,))]


def build_labels(scenes, rl, il_planners, cfg: SelectorTrainConfig, device, desc: str,
                 references=None, dist: DistInfo = DistInfo()) -> dict:
    """
    Labels of every scene (label_scenes); under torchrun each rank labels a contiguous share.

    The shares are gathered in rank order on every rank, so the rows follow the scene order.
    """
    mine = shard_of(np.arange(len(scenes)), dist)
    part = label_scenes(scenes, rl, il_planners, cfg, device, desc, references, mine,
                        rank_seed(cfg.label_seed, dist.rank))
    sync_references(scenes, dist)
    return gather_concat(part, dist, concat_all_labels)


def concat_all_labels(parts: list) -> dict:
    """Labels of consecutive scene shares as one (empty shares skipped)."""
    full = [p for p in parts if len(p['candidates'])]
    out = full[0] if full else parts[0]
    for p in full[1:]:
        out = concat_labels(out, p)
    return out


def scene_outcomes(scenes) -> dict:
    """{episode path: its candidate outcomes (training.rollouts.load_outcomes)} of a scene set."""
    from pair_drive_ros.training.rollouts import load_outcomes

    found = {p: load_outcomes(p) for p in scenes.dataset.episodes}
    return {p: o for p, o in found.items() if o is not None}


def apply_outcomes(target: np.ndarray, cands: np.ndarray, scenes, js, outcomes: dict,
                   layout: list, cfg: SelectorTrainConfig) -> np.ndarray:
    """
    Lower the labels of candidates that crashed or left the road in closed loop (in place).

    The first IL block of a frame is the candidate set the rollout's PaIR planner offered there
    (the same IL-A, RL branch and variants); where its outcomes were tried and the candidates
    match (within OUTCOME_MATCH_M), NC, DAC and the scores of those that failed drop to 0.
    target (B, K, len(TARGETS)), cands (B, K, 8, 3). Returns [frames applied, not matching].
    """
    size = candidates_per_reference(cfg.group, cfg.model.plan_variants,
                                    len(cfg.model.stop_decels_mps2))
    first = layout.index(('il', 0)) * size
    block = slice(first, first + size)
    tally = np.zeros(2, dtype=np.int64)
    for row, j in enumerate(js):
        path, k = scenes.dataset.episode_frame(int(scenes.indices[int(j)]))
        found = outcomes.get(str(path), {}).get(int(k))
        if found is None:
            continue
        tried, collision, off_road = found
        if tried.shape != cands[row, block].shape or \
                np.abs(tried[..., :2] - cands[row, block, :, :2]).max() > OUTCOME_MATCH_M:
            tally[1] += 1
            continue
        t = target[row, block]
        t[:, TARGETS.index('NC')] = np.minimum(t[:, TARGETS.index('NC')], ~collision)
        t[:, TARGETS.index('DAC')] = np.minimum(t[:, TARGETS.index('DAC')], ~off_road)
        failed = collision | off_road
        for name in ('pdms', 'epdms'):
            t[failed, TARGETS.index(name)] = 0.0
        tally[0] += 1
    return tally


def label_features(rl, il_planners: list) -> tuple:
    """
    Return (feature config, the RL trunk's part, each IL planner's part) of a selector's scenes.

    The scenes' features are built with that config; each part is as in
    policy.pair.shared_features.

    An IL planner may read more than the RL trunk (past sweeps), as it may plug into PaIR;
    all IL planners of one selector must be built from the same features (one that names no
    perception config reads them whole).
    """
    from pair_drive_ros.policy.checkpoint import CheckpointError

    parts = [shared_features(il, rl) for il in il_planners]
    known = [p for p in parts if p[0] is not None]
    if any(p[0] != known[0][0] for p in known[1:]):
        raise CheckpointError('the IL planners of one selector must read the same features '
                              '(history_sweeps, road_speed)')
    if not known:
        return planner_perception_config(il_planners[0]), None, [None] * len(parts)
    return known[0][0], known[0][2], [p[1] for p in parts]


@torch.no_grad()
def label_scenes(scenes, rl, il_planners, cfg: SelectorTrainConfig, device, desc: str,
                 references=None, indices=None, seed: int | None = None) -> dict:
    """
    Context (N, T, d) float16, candidates (N, K, 8, 3), targets (N, K, len(TARGETS)).

    il_planners: ILPlanners whose plans are the IL references (reference_layout's order).
    Also the scenes' BEV rasters (RASTER_KEYS, float16) for selectors with raster_features,
    and il_blocks: the number of IL planners. indices: the scenes to label (default all);
    seed: the stream of the sampled leaves and perturbations (default label_seed).
    """
    from tqdm import tqdm

    codes = resolve_group(cfg.group)
    references = cfg.references if references is None else references
    layout = reference_layout(references, len(il_planners))
    seed = cfg.label_seed if seed is None else seed
    gen = torch.Generator().manual_seed(seed)
    rng = np.random.default_rng(seed)
    indices = np.arange(len(scenes)) if indices is None else np.asarray(indices)
    outcomes = scene_outcomes(scenes) if cfg.closed_loop_outcomes else None
    tally = np.zeros(2, dtype=np.int64)      # frames with outcomes: applied, not matching
    ctxs, cands, targets = [], [], []
    rasters = {k: [] for k in RASTER_KEYS}
    _, rl_index, il_indices = label_features(rl, il_planners)
    for start in tqdm(range(0, len(indices), cfg.batch_size), desc=desc, unit='batch'):
        js = indices[start:start + cfg.batch_size]
        built, expert = scenes.batch(js, device)
        feats = rl_features(built, rl_index)        # what the trunk and the selector read
        context = rl.encode(feats)
        il_plans = ([p.plan_tensors(rl_features(built, i))['trajectory'].float()
                     for p, i in zip(il_planners, il_indices)]
                    if any(k is not None for _, k in layout) else [])
        parts = []
        for ref_name, k in layout:
            ref = expert if k is None else il_plans[k]
            if ref_name in ('il_perturbed', 'expert_perturbed'):
                ref = perturb_reference(ref, rng, 1.0, cfg.perturb_speed, cfg.perturb_lateral_m,
                                        cfg.perturb_jitter_m)
            if ref_name != 'expert_sampled':
                tree = rl.expand(context, ref, codes)
            else:
                tree = rl.expand(context, ref, codes, sigma=cfg.sample_sigma, generator=gen)
            # the candidate set at inference (PaIRPlanner)
            parts += [ref[:, None], tree.paths, *reference_alternatives(
                ref, cfg.model.plan_variants, cfg.model.stop_decels_mps2)]
        c = torch.cat(parts, 1).cpu().numpy()
        scores = scenes.score(js, c)
        target = target_array(scores)
        if outcomes is not None:
            tally += apply_outcomes(target, c, scenes, js, outcomes, layout, cfg)
        ctxs.append(context.cpu().half())
        cands.append(torch.as_tensor(c, dtype=torch.float32))
        targets.append(torch.as_tensor(target))
        # The rasters as PaIRPlanner gives them to the selector; of the sweeps only the current
        # one and the past ones it samples.
        given = selector_batch(cfg.model, built, feats)
        for k in RASTER_KEYS:
            kept = given[k][:, :2 + cfg.model.raster_past_sweeps] if k == 'lidar_bev' else given[k]
            rasters[k].append(kept.cpu().half())
    if outcomes:
        LOG.info('%s: closed-loop outcomes applied to %d frames (%d skipped: other candidates)',
                 desc, tally[0], tally[1])
    if not ctxs:    # an empty share (fewer scenes than ranks)
        return {'context': torch.zeros(0), 'candidates': torch.zeros(0),
                'targets': torch.zeros(0), **{k: torch.zeros(0) for k in RASTER_KEYS},
                'il_blocks': torch.tensor(len(il_planners))}
    return {'context': torch.cat(ctxs), 'candidates': torch.cat(cands),
            'targets': torch.cat(targets), **{k: torch.cat(v) for k, v in rasters.items()},
            'il_blocks': torch.tensor(len(il_planners))}


def raster_batch(data: dict, idx=None, device='cpu') -> dict | None:
    """Rasters of labelled scenes idx (None: all) as a feature batch, if the labels have them."""
    if not all(k in data for k in RASTER_KEYS):
        return None
    return {k: (data[k] if idx is None else data[k][idx]).float().to(device)
            for k in RASTER_KEYS}


def evaluate(selector: Selector, data: dict, margin: float | None = None) -> dict:
    """
    Mean true PDMS / EPDMS x 100 of the selected, the IL (index 0) and the oracle candidate.

    Validation rows hold one block [IL plan, leaves] per IL planner (il_blocks); each block is
    selected from on its own, as at inference. The plain keys average the blocks; keys ending in
    _il<i> are per IL planner.
    """
    selector.eval()
    margin = selector.cfg.fallback_margin if margin is None else margin
    n_il = int(data.get('il_blocks', 1))
    cands = data['candidates']
    n, k = cands.shape[:2]
    # (N, n_il * b, ...) -> (N * n_il, b, ...): block i of scene j is row j * n_il + i
    blocks = cands.reshape(n * n_il, k // n_il, *cands.shape[2:])
    rasters = raster_batch(data)
    if rasters is not None:
        rasters = {key: v.repeat_interleave(n_il, 0) for key, v in rasters.items()}
    with torch.no_grad():
        logits = selector(blocks, data['context'].float().repeat_interleave(n_il, 0), rasters)
        pick = pick_with_margin(selector.selection_score(logits), margin).reshape(n, n_il)
    targets = data['targets'].reshape(n, n_il, k // n_il, -1)
    pdms = targets[..., TARGETS.index('pdms')]
    epdms = targets[..., TARGETS.index('epdms')]
    chosen = torch.gather(pdms, 2, pick[..., None])[..., 0]
    chosen_e = torch.gather(epdms, 2, pick[..., None])[..., 0]
    per_block = {'sel/val_pdms_selected': 100 * chosen.mean(0),
                 'sel/val_epdms_selected': 100 * chosen_e.mean(0),
                 'sel/val_pdms_il': 100 * pdms[..., 0].mean(0),
                 'sel/val_pdms_oracle': 100 * pdms.max(-1).values.mean(0),
                 'sel/val_fallback_rate': (pick == 0).float().mean(0)}
    out = {key: v.mean().item() for key, v in per_block.items()}
    if n_il > 1:
        out.update({f'{key}_il{i}': v[i].item() for key, v in per_block.items()
                    for i in range(n_il)})
    return out


def _load_scenes(cfg: SelectorTrainConfig, val: bool, rl, il_planners: list):
    """Load the training or validation scene set named by the config (the models' features)."""
    from pair_drive_ros.training.rl_data import load_scene_set

    perception = label_features(rl, il_planners)[0]
    if val:
        return load_scene_set(cfg.data_root, cfg.val_split, cfg.val_frame_stride,
                              cfg.val_max_scenes, cfg.label_seed, cfg.workers,
                              keep_prepared=False, cache_dir=cfg.cache_dir or None,
                              perception_cfg=perception)
    return load_scene_set(cfg.data_root, cfg.split, cfg.frame_stride, cfg.max_scenes,
                          cfg.label_seed, cfg.workers, keep_prepared=False,
                          cache_dir=cfg.cache_dir or None, perception_cfg=perception)


def concat_labels(first: dict, second: dict) -> dict:
    """Labels of two scene sets as one (same candidate layout and IL planners)."""
    if int(first.get('il_blocks', 1)) != int(second.get('il_blocks', 1)) or \
            first['candidates'].shape[1:] != second['candidates'].shape[1:]:
        raise ValueError('labels to concatenate must have the same candidate layout')
    return {k: v if k == 'il_blocks' else torch.cat([v, second[k]]) for k, v in first.items()}


def make_labels(cfg: SelectorTrainConfig, rl, il_planners, device, train_scenes=None,
                val_scenes=None, dist: DistInfo = DistInfo()) -> tuple[dict, dict]:
    """Scored candidates of the training (data_root, then extra_data_roots) and val scenes."""
    from pair_drive_ros.training.rl_data import load_scene_set

    if train_scenes is None:
        train_scenes = _load_scenes(cfg, val=False, rl=rl, il_planners=il_planners)
    train = build_labels(train_scenes, rl, il_planners, cfg, device, 'labels train', dist=dist)
    if dist.is_main:
        train_scenes.save_references()
    for root in cfg.extra_data_roots:
        if not (Path(root) / cfg.split).is_dir():
            raise FileNotFoundError(f'extra_data_roots: {Path(root) / cfg.split} does not '
                                    'exist; make it with `pair-drive train rollouts` (or '
                                    '`make selector`)')
        extra_scenes = load_scene_set(root, cfg.split, cfg.frame_stride, 0, cfg.label_seed,
                                      cfg.workers, keep_prepared=False,
                                      cache_dir=cfg.cache_dir or None,
                                      perception_cfg=label_features(rl, il_planners)[0])
        extra = build_labels(extra_scenes, rl, il_planners, cfg, device, f'labels {root}',
                             dist=dist)
        if dist.is_main:
            extra_scenes.save_references()
        LOG.info('%s: %d extra training scenes', root, len(extra_scenes))
        train = concat_labels(train, extra)
    if val_scenes is None:
        val_scenes = _load_scenes(cfg, val=True, rl=rl, il_planners=il_planners)
    val = build_labels(val_scenes, rl, il_planners, cfg, device, 'labels val',
                       references=('il',), dist=dist)
    if dist.is_main:
        val_scenes.save_references()
    return train, val


def relabel_il(cfg: SelectorTrainConfig, rl, il_planners, device, train: dict,
               train_scenes=None, val_scenes=None,
               dist: DistInfo = DistInfo()) -> tuple[dict, dict]:
    """
    Replace the IL blocks of saved training labels (new IL planners) and rebuild val labels.

    Every reference made from an IL plan ('il', 'il_perturbed') is re-made and re-scored; the
    saved labels must come from the same number of IL planners.
    """
    il_refs = tuple(r for r in cfg.references if r in IL_REFERENCES)
    if not il_refs:
        raise ValueError(f'relabel_il needs one of {IL_REFERENCES} in references')
    if int(train.get('il_blocks', 1)) != len(il_planners):
        raise ValueError(f'saved labels hold {int(train.get("il_blocks", 1))} IL planners, '
                         f'the config names {len(il_planners)}')
    if train_scenes is None:
        train_scenes = _load_scenes(cfg, val=False, rl=rl, il_planners=il_planners)
    fresh = build_labels(train_scenes, rl, il_planners, cfg, device, 'relabel il',
                         references=il_refs, dist=dist)
    fresh_layout = reference_layout(il_refs, len(il_planners))
    full_layout = reference_layout(cfg.references, len(il_planners))
    block = fresh['candidates'].shape[1] // len(fresh_layout)
    train = {k: v.clone() for k, v in train.items()}
    for i, slot in enumerate(fresh_layout):
        start = full_layout.index(slot) * block
        for key in ('candidates', 'targets'):
            train[key][:, start:start + block] = fresh[key][:, i * block:(i + 1) * block]
    if dist.is_main:
        train_scenes.save_references()
    if val_scenes is None:
        val_scenes = _load_scenes(cfg, val=True, rl=rl, il_planners=il_planners)
    val = build_labels(val_scenes, rl, il_planners, cfg, device, 'labels val',
                       references=('il',), dist=dist)
    return train, val


def main(cfg: SelectorTrainConfig, train_scenes=None, val_scenes=None) -> Path:
    """Train; return the final checkpoint path (scenes: SceneSets, default: cfg's splits)."""
    from tqdm import tqdm

    from pair_drive_ros.policy.il_planner import load_il_planner

    # -- setup ---------------------------------------------------------------------------------
    seed_everything(cfg.seed)
    set_threads(cfg.threads)
    device = pick_device(cfg.device)
    dist = init_distributed(device)
    rl = load_rl_branch(cfg.rl_checkpoint, str(device))
    il_planners = [load_il_planner(path, str(device))
                   for path in (cfg.il_checkpoint, *cfg.extra_il_checkpoints)]
    label_features(rl, il_planners)   # one feature set per scene feeds the IL plans and trunk
    log = run_log(cfg.exp, cfg.seed, cfg, cfg.runs_root, dist)

    # -- labels: candidates scored by the PDM scorer (saved as labels.pt for later runs) ---------
    if cfg.labels:
        saved = torch.load(cfg.labels, weights_only=True)
        train, val = saved['train'], saved['val']
        if cfg.relabel_il:
            train, val = relabel_il(cfg, rl, il_planners, device, train, train_scenes,
                                    val_scenes, dist)
            if dist.is_main:
                torch.save({'train': train, 'val': val}, log.run_dir / 'labels.pt')
    else:
        train, val = make_labels(cfg, rl, il_planners, device, train_scenes, val_scenes, dist)
        if dist.is_main:
            torch.save({'train': train, 'val': val}, log.run_dir / 'labels.pt')
    LOG.info('labels: %d train scenes x %d candidates, %d val scenes x %d',
             *train['candidates'].shape[:2], *val['candidates'].shape[:2])

    # -- supervised training -------------------------------------------------------------------
    selector = Selector(cfg.model).to(device)
    broadcast_parameters(selector, dist)
    optimizer = torch.optim.AdamW(selector.parameters(), lr=cfg.lr,
                                  weight_decay=cfg.weight_decay)
    n = len(train['candidates'])
    steps_per_epoch = (n + cfg.batch_size - 1) // cfg.batch_size
    total = cfg.epochs * steps_per_epoch
    rng = np.random.default_rng(cfg.seed)
    step, best = 0, None
    for epoch in tqdm(range(cfg.epochs), desc='selector', unit='epoch',
                      disable=not dist.is_main):
        selector.train()
        order = rng.permutation(n)      # the same order on every rank (seed, not rank)
        for start in range(0, n, cfg.batch_size):
            idx = torch.as_tensor(shard_of(order[start:start + cfg.batch_size], dist))
            for group in optimizer.param_groups:
                group['lr'] = cosine_lr(step, total, cfg.lr, steps_per_epoch)
            optimizer.zero_grad(set_to_none=True)
            if len(idx):
                logits = selector(train['candidates'][idx].to(device),
                                  train['context'][idx].float().to(device),
                                  raster_batch(train, idx, device))
                losses = selector_loss(logits, train['targets'][idx].to(device),
                                       cfg.rank_weight, cfg.rank_temperature)
                losses['loss'].backward()
            # The losses are means over rows: weighting each rank by its rows gives the
            # gradient of the whole batch's mean.
            average_gradients(selector.parameters(), dist, weight=len(idx))
            optimizer.step()
            step += 1
        stats = {f'sel/{k}': v.item() for k, v in losses.items()}
        stats.update(evaluate(selector, val))
        log.scalars(epoch, stats)
        LOG.info('epoch %d: loss %.4f, val PDMS selected %.2f (IL %.2f, oracle %.2f)', epoch,
                 stats['sel/loss'], stats['sel/val_pdms_selected'], stats['sel/val_pdms_il'],
                 stats['sel/val_pdms_oracle'])
        best = stats

    # -- fallback margin: the one with the best validation PDMS ---------------------------------
    tried = {m: evaluate(selector, val, m)['sel/val_pdms_selected'] for m in cfg.margins}
    margin = broadcast_object(max(tried, key=tried.get), dist)   # one choice on every rank
    model_cfg = replace(cfg.model, fallback_margin=float(margin))
    selector.cfg = model_cfg
    best = {**best, **evaluate(selector, val)}
    best['sel/margins_tried'] = {str(k): v for k, v in tried.items()}
    LOG.info('fallback margin %.2f (val PDMS by margin: %s)', margin, tried)
    path = log.run_dir / 'selector.pt'
    if dist.is_main:
        save_checkpoint(path, selector, model_name=MODEL_NAME, model_config=model_cfg,
                        extra={'train_config': config_to_dict(cfg), 'val': best,
                               'train_seconds': log.elapsed_s, 'num_scenes': n,
                               'world_size': dist.world_size})
        export_copy(path, cfg.out)
        LOG.info('selector saved to %s (%.0f s)', path, log.elapsed_s)
    log.close()
    finish_distributed(dist)
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI flags of `pair-drive train selector`."""
    add_trainer_arguments(parser, DEFAULT_CONFIG)


def run(args: argparse.Namespace) -> int:
    """Entry point of `pair-drive train selector`."""
    return run_trainer(args, SelectorTrainConfig, main)
