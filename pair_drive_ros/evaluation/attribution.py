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
Attribution of PaIR-Drive's gain to its parts: `pair-drive report attribution`.

    pair-drive report attribution [--config config/rl_attribution.yaml] [--set split=val ...]

For each IL planner (IL-A Transfuser-lite, IL-B DiffusionDrive-lite, plugged in unseen) the
rows are, open loop on every `frame_stride`-th scorable frame of one split:

1. IL alone;
2. IL + selector over the non-RL candidates: the IL plan and its 14 whole-trajectory variants;
3. IL + selector over the shipped candidate set with an UNTRAINED tree (the RL trunk, decoder
   and heads at random init under each of `untrained_seeds`);
4. IL + the paper's candidate set (IL plan + leaves only) with the trained tree, and with each
   untrained tree, picked by the tree-only selector (`tree_selector_checkpoint`, if present);
5. full PaIR: IL plan + trained leaves + variants, the shipped selector;
6. the sequential baseline (the IL planner itself fine-tuned by GRPO), if its checkpoint exists;
7. for each candidate set, its oracle (the best candidate by the TRUE score; labelled "oracle,
   not deployable").

Every row reports every sub-metric, PDMS and EPDMS with an episode-level bootstrap 95 % interval
(evaluation.bootstrap), and paired differences (same frames; episodes resampled) against IL
alone and against the no-RL row (oracles against the no-RL oracle), plus trained-vs-untrained
tree comparisons. Each row also lists the scorer calls its parts used in training (the
"same budget" question of the sequential baseline). With `closed_loop_episodes > 0` the
deployable rows also drive that many episodes per scenario of the split (collision, off-road,
route completion, progress, comfort), paired by episode.

Writes attribution.json and attribution.md under `out`; both record the commit, the split, the
frames / episodes (the suite) and the command. Choose on val; run test once, at the end.
"""

import argparse
from dataclasses import dataclass, field
from functools import reduce
import json
import logging
from pathlib import Path
import shlex
import time

import numpy as np

from pair_drive_ros.core.config import add_config_arguments, config_from_args, config_to_dict
from pair_drive_ros.evaluation.bootstrap import episode_bootstrap
from pair_drive_ros.policy.base import AbstractPlanner, PlannerInput
from pair_drive_ros.policy.factory import shipped

LOG = logging.getLogger(__name__)
DEFAULT_CONFIG = 'config/rl_attribution.yaml'
# Per-frame columns of the open-loop table: the sub-metrics, then the two aggregate scores.
SUB_METRICS = ('NC', 'DAC', 'DDC', 'TLC', 'EP', 'TTC', 'C', 'LK', 'HC')
COLUMNS = SUB_METRICS + ('pdms', 'epdms')
CLOSED_COLUMNS = ('collision', 'off_road', 'route_completion', 'progress_m',
                  'comfort_violations')
ORACLE = 'oracle, not deployable'


@dataclass(frozen=True)
class AttributionConfig:
    """Settings of `pair-drive report attribution` (config/rl_attribution.yaml)."""

    data_root: str = 'data/logs'
    split: str = 'val'             # choices are made on val; test once for the final table
    frame_stride: int = 8
    max_frames: int = 0            # 0: all selected frames (>0: a fixed random subset)
    cache_dir: str = ''            # feature cache ('' : <data_root>/../cache)
    planners: tuple = ('IL-A', 'IL-B')
    il_a: str = shipped('transfuser')
    il_b: str = shipped('diffusiondrive')
    rl_checkpoint: str = shipped('rl_branch')
    selector_checkpoint: str = shipped('selector')
    tree_selector_checkpoint: str = shipped('selector_tree')   # '' or missing: oracle only
    sequential_a: str = shipped('sequential_transfuser')         # missing: row skipped
    sequential_b: str = shipped('sequential_diffusiondrive')
    untrained_seeds: tuple = (0,)  # init seeds of the untrained-tree controls
    # A wider tree whose oracle bounds what the 15-leaf sets can reach: 'all' adds two oracle
    # rows, IL plan + variants + that group's trained leaves, and the same with the untrained
    # tree of the first init seed ('': none).
    ceiling_group: str = ''
    closed_loop_episodes: int = 0  # per scenario; 0: open loop only
    closed_loop_rows: tuple = ()   # closed loop: rows whose label starts with one of these
    bootstrap: int = 2000          # bootstrap replicates
    bootstrap_seed: int = 0
    level: float = 0.95
    batch_size: int = 32
    threads: int = 1
    out: str = 'runs/attribution'


@dataclass
class Row:
    """One table row: a deployable planner or an oracle over a candidate set."""

    key: str                       # stable id, e.g. 'IL-A/pair' or 'IL-A/pair/oracle'
    label: str
    il: str                        # 'IL-A' or 'IL-B'
    oracle: bool
    candidates: int
    scorer_calls: dict             # training scorer calls of the parts: {part: calls}
    frames: np.ndarray | None = None   # (N, len(COLUMNS)) per-frame open-loop scores
    episodes: list = field(default_factory=list)    # closed loop: per-episode dicts


# -- the frames -------------------------------------------------------------------------------

class Frames:
    """The evaluation frames: planner inputs, episode ids, and the scorer on prepared scenes."""

    def __init__(self, scenes) -> None:
        self.scenes = scenes
        self.inputs = [PlannerInput(scenes.features(j), scenes.scene(j))
                       for j in range(len(scenes))]
        episode_of = getattr(scenes.dataset, 'episode_frame', None)
        if episode_of is not None:
            self.episodes = np.array([str(episode_of(int(i))[0]) for i in scenes.indices])
        else:   # datasets without logs: the token up to its frame number
            self.episodes = np.array([b.scene.token.rsplit('_', 1)[0] for b in self.inputs])

    def __len__(self) -> int:
        return len(self.inputs)

    def score(self, js: list, candidates: np.ndarray) -> np.ndarray:
        """(B, len(COLUMNS), K) true scores of candidates (B, K, 8, 3) of frames js."""
        from pair_drive_ros.scoring import Metric

        s = self.scenes.score(js, candidates)
        subs = s.table[:, [int(Metric[m]) for m in SUB_METRICS]]
        return np.concatenate([subs, s.pdms[:, None], s.epdms[:, None]], 1)


class CachedPlanner(AbstractPlanner):
    """
    An IL planner whose plans are kept by scene token: every row of one IL planner reuses them.

    Open loop only (the frames are logged; a plan depends on its frame alone). reset() is
    passed on.
    """

    def __init__(self, planner: AbstractPlanner) -> None:
        self.planner = planner
        self.name = getattr(planner, 'name', 'il')
        self._plans: dict = {}

    @property
    def perception_config(self):
        """Return the wrapped planner's features."""
        return getattr(self.planner, 'perception_config', None)

    def reset(self) -> None:
        """Reset the wrapped planner (the cache is per frame, so it stays)."""
        self.planner.reset()

    def compute_plans(self, batch: list) -> list:
        """Plans of the batch, computed once per scene token."""
        todo = [b for b in batch if b.scene.token not in self._plans]
        if todo:
            for b, plan in zip(todo, self.planner.compute_plans(todo)):
                self._plans[b.scene.token] = plan
        return [self._plans[b.scene.token] for b in batch]

    def compute_plan(self, inputs: PlannerInput):
        """Plan for one frame."""
        return self.compute_plans([inputs])[0]


def evaluate_candidates(planner: AbstractPlanner, frames: Frames, batch_size: int,
                        label: str) -> tuple[np.ndarray, np.ndarray]:
    """
    Open-loop scores of a planner's selected plan and of its candidates' oracle.

    Returns (selected (N, C), oracle (N, C)), C = len(COLUMNS). The oracle is the candidate with
    the best true PDMS (first on ties); a planner without candidates is its own oracle.
    """
    from tqdm import tqdm

    selected, oracle = [], []
    t0 = time.perf_counter()
    for start in tqdm(range(0, len(frames), batch_size), desc=label[:40], unit='batch'):
        batch = frames.inputs[start:start + batch_size]
        plans = planner.compute_plans(batch)
        # Only a PaIR-type planner's candidates form a set; an IL planner's own modes
        # (DiffusionDrive) are not what it deploys, so it is scored on its plan alone.
        if hasattr(planner, 'candidates_per_frame'):
            cands = np.stack([p.candidates for p in plans])
            pick = np.array([int(p.info.get('selected', 0)) for p in plans])
        else:
            cands = np.stack([p.trajectory.poses for p in plans])[:, None]
            pick = np.zeros(len(plans), dtype=np.int64)
        table = frames.score(list(range(start, start + len(batch))), cands)
        rows = np.arange(len(batch))
        best = table[:, COLUMNS.index('pdms')].argmax(-1)
        selected.append(table[rows, :, pick])
        oracle.append(table[rows, :, best])
    LOG.info('%s: %.0f s', label, time.perf_counter() - t0)
    return np.concatenate(selected), np.concatenate(oracle)


# -- the rows ---------------------------------------------------------------------------------

def build_rows(cfg: AttributionConfig, il_planners: dict, rl, selector, tree_selector,
               sequential: dict, budgets: dict) -> list[tuple[Row, AbstractPlanner, Row | None]]:
    """
    Return (selected row, planner, oracle row) of every candidate set of every IL planner.

    The selected row is None where no selector can pick (paper set without a tree selector);
    the oracle row is None for single-plan planners.

    il_planners / sequential: {'IL-A': planner}; budgets: {'rl', 'selector', 'tree_selector',
    'IL-A/sequential', ...: scorer calls or None}.
    """
    from pair_drive_ros.policy.ablations import VariantsOnlyPaIR
    from pair_drive_ros.policy.pair import PaIRPlanner
    from pair_drive_ros.policy.rl_branch import untrained_tree
    from pair_drive_ros.policy.tree import resolve_group

    untrained = {s: untrained_tree(rl, s) for s in cfg.untrained_seeds}
    sel_budget = {'selector': budgets.get('selector')}
    out = []
    for name, il in il_planners.items():
        def add(key, label, planner, calls, deployable=True, oracle=True):
            k = planner.candidates_per_frame() if hasattr(planner, 'candidates_per_frame') else 1
            sel = Row(f'{name}/{key}', f'{name} + {label}', name, False, k, calls)
            ora = (Row(f'{name}/{key}/oracle', f'{ORACLE}: {name}, {label.split(": ", 1)[-1]}',
                       name, True, k, calls) if oracle else None)
            out.append((sel if deployable else None, planner, ora))

        out.append((Row(f'{name}/il', f'{name} alone', name, False, 1, {}), il, None))
        add('no_rl', 'selector: IL plan + variants (no RL)',
            VariantsOnlyPaIR(il, rl, selector), sel_budget)
        for s, tree in untrained.items():
            add(f'untrained{s}',
                f'selector: IL plan + untrained leaves (init seed {s}) + variants',
                PaIRPlanner(il, tree, selector), sel_budget)
        tree_sel_budget = {'tree_selector': budgets.get('tree_selector')}
        add('tree', 'tree selector: IL plan + trained leaves (paper set)',
            PaIRPlanner(il, rl, tree_selector, variants=False),
            {'rl': budgets.get('rl'), **tree_sel_budget}, deployable=tree_selector is not None)
        for s, tree in untrained.items():
            add(f'tree_untrained{s}',
                f'tree selector: IL plan + untrained leaves (init seed {s}) (paper set)',
                PaIRPlanner(il, tree, tree_selector, variants=False), tree_sel_budget,
                deployable=tree_selector is not None)
        add('pair', 'PaIR: IL plan + trained leaves + variants',
            PaIRPlanner(il, rl, selector), {'rl': budgets.get('rl'), **sel_budget})
        if cfg.ceiling_group:
            n = len(resolve_group(cfg.ceiling_group))
            add('ceiling', f'ceiling: IL plan + {n} trained leaves + variants',
                PaIRPlanner(il, rl, selector, codes=cfg.ceiling_group),
                {'rl': budgets.get('rl')}, deployable=False)
            for s in cfg.untrained_seeds[:1]:
                add(f'ceiling_untrained{s}',
                    f'ceiling: IL plan + {n} untrained leaves (init seed {s}) + variants',
                    PaIRPlanner(il, untrained[s], selector, codes=cfg.ceiling_group), {},
                    deployable=False)
        if name in sequential:
            out.append((Row(f'{name}/sequential', f'{name} + sequential GRPO', name, False, 1,
                            {'sequential': budgets.get(f'{name}/sequential')}),
                        sequential[name], None))
    return out


def comparisons_of(rows: list[Row], seeds: tuple) -> list[tuple[str, str]]:
    """(row key, baseline key) pairs of the paired-difference table."""
    keys = {r.key for r in rows}
    pairs = []
    for r in rows:
        base = r.key.split('/')[0]
        if r.key.endswith('/il'):
            continue
        pairs.append((r.key, f'{base}/il'))
        no_rl = f'{base}/no_rl/oracle' if r.oracle else f'{base}/no_rl'
        if r.key != no_rl and not r.key.startswith(f'{base}/no_rl'):
            pairs.append((r.key, no_rl))
    for il in sorted({r.il for r in rows}):
        for s in seeds:
            for trained, control in ((f'{il}/tree', f'{il}/tree_untrained{s}'),
                                     (f'{il}/tree/oracle', f'{il}/tree_untrained{s}/oracle'),
                                     (f'{il}/pair', f'{il}/untrained{s}'),
                                     (f'{il}/pair/oracle', f'{il}/untrained{s}/oracle'),
                                     (f'{il}/ceiling/oracle',
                                      f'{il}/ceiling_untrained{s}/oracle')):
                pairs.append((trained, control))
    return [(a, b) for a, b in pairs if a in keys and b in keys]


# -- closed loop ------------------------------------------------------------------------------

def closed_loop_rows(rows_planners: list, cfg: AttributionConfig) -> list:
    """Drive the deployable rows' planners; fill Row.episodes; return the scenario list."""
    from pair_drive_ros.evaluation.evaluate import evaluate_closed_loop
    from pair_drive_ros.sim.suite import split_scenarios

    scenarios = split_scenarios(cfg.split, cfg.closed_loop_episodes)
    for row, planner in rows_planners:
        # The per-token cache of the open loop would be wrong here: states are new every run.
        live = planner.planner if isinstance(planner, CachedPlanner) else planner
        if hasattr(live, 'il_planner') and isinstance(live.il_planner, CachedPlanner):
            live.il_planner = live.il_planner.planner
        res = evaluate_closed_loop(live, scenarios, progress=True)
        row.episodes = [{'scenario': e['scenario'], 'seed': e['seed'],
                         **{k: float(e[k]) for k in CLOSED_COLUMNS}} for e in res['episodes']]
    return scenarios


# -- statistics -------------------------------------------------------------------------------

def summarise(rows: list[Row], frames_episodes: np.ndarray, cfg: AttributionConfig,
              pairs: list[tuple[str, str]]) -> tuple[dict, list]:
    """
    Return per-row intervals and the paired differences of `pairs`.

    Open-loop columns are x 100; closed-loop metrics are per episode. Differences cover PDMS and
    EPDMS (and every closed-loop metric when both rows drove).
    """
    by_key = {r.key: r for r in rows}
    boot = dict(n_boot=cfg.bootstrap, seed=cfg.bootstrap_seed, level=cfg.level)
    stats = {}
    for r in rows:
        entry = {}
        if r.frames is not None:
            entry['open_loop'] = {c: episode_bootstrap(r.frames[:, i], frames_episodes,
                                                       **boot).scaled(100.0).as_dict()
                                  for i, c in enumerate(COLUMNS)}
        if r.episodes:
            ids = np.arange(len(r.episodes))
            entry['closed_loop'] = {c: episode_bootstrap([e[c] for e in r.episodes], ids,
                                                         **boot).as_dict()
                                    for c in CLOSED_COLUMNS}
        stats[r.key] = entry
    diffs = []
    for a, b in pairs:
        ra, rb = by_key[a], by_key[b]
        item = {'row': a, 'baseline': b}
        if ra.frames is not None and rb.frames is not None:
            for c in ('pdms', 'epdms'):
                i = COLUMNS.index(c)
                item[c] = episode_bootstrap(ra.frames[:, i] - rb.frames[:, i], frames_episodes,
                                            **boot).scaled(100.0).as_dict()
        if ra.episodes and rb.episodes:
            ids = np.arange(len(ra.episodes))
            for c in CLOSED_COLUMNS:
                item[f'closed_{c}'] = episode_bootstrap(
                    [x[c] - y[c] for x, y in zip(ra.episodes, rb.episodes)], ids,
                    **boot).as_dict()
        diffs.append(item)
    return stats, diffs


# -- output -----------------------------------------------------------------------------------

def _ci(d: dict, digits: int = 1) -> str:
    return f'{d["mean"]:.{digits}f} [{d["low"]:.{digits}f}, {d["high"]:.{digits}f}]'


def _calls(calls: dict) -> str:
    if not calls:
        return '0'
    if any(v is None for v in calls.values()):
        return 'unknown'
    return f'{sum(calls.values()):,}'


def markdown(res: dict) -> str:
    """Render the report as Markdown tables."""
    meta = res['meta']
    level = int(round(100 * meta['level']))
    lines = [f'Command: `{meta["command"]}`', '',
             f'Commit `{meta["commit"]}`; split `{meta["split"]}`; {meta["frames"]} frames of '
             f'{meta["episodes"]} episodes (every {meta["frame_stride"]}th scorable frame); '
             f'{level} % intervals: episode bootstrap, {meta["bootstrap"]} replicates. Scores x '
             '100. Oracle rows pick by the true score: upper bounds, never deployable.', '']
    diffs = {(d['row'], d['baseline']): d for d in res['comparisons']}
    for il in meta['planners']:
        rows = [r for r in res['rows'] if r['il'] == il]
        lines += [f'### {il}', '',
                  '| row | K | training scorer calls | ' + ' | '.join(SUB_METRICS)
                  + ' | PDMS | EPDMS | ΔPDMS vs IL | ΔPDMS vs no-RL |',
                  '|---|---|---|' + '---|' * len(SUB_METRICS) + '---|---|---|---|']
        for r in rows:
            s = res['stats'][r['key']].get('open_loop')
            if s is None:
                continue
            no_rl = f'{il}/no_rl/oracle' if r['oracle'] else f'{il}/no_rl'
            d_il = diffs.get((r['key'], f'{il}/il'))
            d_no = diffs.get((r['key'], no_rl))
            lines.append(
                f'| {r["label"]} | {r["candidates"]} | {_calls(r["scorer_calls"])} | '
                + ' | '.join(f'{s[c]["mean"]:.1f}' for c in SUB_METRICS)
                + f' | {_ci(s["pdms"])} | {_ci(s["epdms"])} | '
                f'{_ci(d_il["pdms"]) if d_il else "–"} | {_ci(d_no["pdms"]) if d_no else "–"} |')
        lines.append('')
    lines += ['Paired differences (same frames; episodes resampled), row minus baseline:', '',
              '| row | baseline | ΔPDMS | ΔEPDMS |', '|---|---|---|---|']
    labels = {r['key']: r['label'] for r in res['rows']}
    for d in res['comparisons']:
        if 'pdms' in d:
            lines.append(f'| {labels[d["row"]]} | {labels[d["baseline"]]} | {_ci(d["pdms"])} | '
                         f'{_ci(d["epdms"])} |')
    closed = [r for r in res['rows'] if res['stats'][r['key']].get('closed_loop')]
    if closed:
        lines += ['', f'Closed loop: {meta["closed_loop_episodes"]} episodes per scenario of '
                  f'`{meta["split"]}` ({len(meta["scenarios"])} episodes).', '',
                  '| row | ' + ' | '.join(CLOSED_COLUMNS) + ' | Δcollision vs IL | '
                  'Δcollision vs no-RL |', '|---|' + '---|' * (len(CLOSED_COLUMNS) + 2)]
        for r in closed:
            s = res['stats'][r['key']]['closed_loop']
            d_il = diffs.get((r['key'], f'{r["il"]}/il'), {}).get('closed_collision')
            d_no = diffs.get((r['key'], f'{r["il"]}/no_rl'), {}).get('closed_collision')
            lines.append(f'| {r["label"]} | ' + ' | '.join(_ci(s[c], 2) for c in CLOSED_COLUMNS)
                         + f' | {_ci(d_il, 2) if d_il else "–"} | '
                         f'{_ci(d_no, 2) if d_no else "–"} |')
    return '\n'.join(lines) + '\n'


# -- the command ------------------------------------------------------------------------------

def report(cfg: AttributionConfig, command: str, scenes=None, il_planners: dict | None = None,
           rl=None, selector=None, tree_selector=None, sequential: dict | None = None) -> dict:
    """
    Evaluate every row, write attribution.{json,md} under cfg.out, return the results.

    The keyword arguments replace what is otherwise loaded from cfg (tests pass tiny models and
    a synthetic SceneSet).
    """
    from pair_drive_ros.policy.closed_loop import planner_perception_config
    from pair_drive_ros.policy.il_planner import load_il_planner
    from pair_drive_ros.policy.checkpoint import CheckpointError
    from pair_drive_ros.perception.config import feature_union, PerceptionConfigError
    from pair_drive_ros.policy.pair import FeaturePart, load_rl_branch, load_selector
    from pair_drive_ros.training.common import git_hash, set_threads
    from pair_drive_ros.training.rl_data import scorer_calls

    set_threads(cfg.threads)
    paths = {'IL-A': (cfg.il_a, 'transfuser', cfg.sequential_a),
             'IL-B': (cfg.il_b, 'diffusiondrive', cfg.sequential_b)}
    unknown = sorted(set(cfg.planners) - set(paths))
    if unknown:
        raise ValueError(f'planners {unknown}: choose from {sorted(paths)}')
    if il_planners is None:
        il_planners = {n: load_il_planner(paths[n][0], expect_model=paths[n][1])
                       for n in cfg.planners}
    if sequential is None:
        sequential = {n: load_il_planner(paths[n][2], expect_model=paths[n][1])
                      for n in cfg.planners if paths[n][2] and Path(paths[n][2]).is_file()}
    rl = rl if rl is not None else load_rl_branch(cfg.rl_checkpoint)
    # Every row reads the features of one frame, built for all the models of the report (the
    # union of what each was trained on); each model reads its part (policy.pair.FeaturePart).
    try:
        features = reduce(feature_union, [planner_perception_config(p) for p in (
            *il_planners.values(), *sequential.values(), rl)])
    except PerceptionConfigError as e:
        raise CheckpointError(f'the models of one report need features of one frame: {e}; '
                              'run one report per planner') from e
    il_planners = {n: FeaturePart(p, features) for n, p in il_planners.items()}
    sequential = {n: FeaturePart(p, features) for n, p in sequential.items()}
    if scenes is None:
        from pair_drive_ros.training.rl_data import load_scene_set
        scenes = load_scene_set(cfg.data_root, cfg.split, cfg.frame_stride,
                                max_scenes=cfg.max_frames, workers=1,
                                cache_dir=cfg.cache_dir or None, perception_cfg=features)
    frames = Frames(scenes)
    selector = selector if selector is not None else load_selector(cfg.selector_checkpoint)
    if tree_selector is None and cfg.tree_selector_checkpoint \
            and Path(cfg.tree_selector_checkpoint).is_file():
        tree_selector = load_selector(cfg.tree_selector_checkpoint)
    if tree_selector is None:
        LOG.warning('no tree-only selector: the paper-set rows are oracles only')
    budgets = {'rl': scorer_calls(cfg.rl_checkpoint),
               'selector': scorer_calls(cfg.selector_checkpoint),
               'tree_selector': scorer_calls(cfg.tree_selector_checkpoint)}
    budgets.update({f'{n}/sequential': scorer_calls(paths[n][2]) for n in sequential})
    cached = {n: CachedPlanner(p) for n, p in il_planners.items()}

    triples = build_rows(cfg, cached, rl, selector, tree_selector, sequential, budgets)
    rows, deployable = [], []
    for sel, planner, ora in triples:
        label = (sel or ora).label
        selected, oracle = evaluate_candidates(planner, frames, cfg.batch_size, label)
        if sel is not None:
            sel.frames = selected
            rows.append(sel)
            deployable.append((sel, planner))
        if ora is not None:
            ora.frames = oracle
            rows.append(ora)
    if cfg.closed_loop_rows:
        deployable = [(row, p) for row, p in deployable
                      if any(row.label.startswith(s) for s in cfg.closed_loop_rows)]
    scenarios = closed_loop_rows(deployable, cfg) if cfg.closed_loop_episodes > 0 else []
    pairs = comparisons_of(rows, cfg.untrained_seeds)
    stats, diffs = summarise(rows, frames.episodes, cfg, pairs)
    res = {'meta': {'command': command, 'commit': git_hash(), 'split': cfg.split,
                    'data_root': cfg.data_root, 'frame_stride': cfg.frame_stride,
                    'frames': len(frames), 'episodes': int(len(np.unique(frames.episodes))),
                    'planners': list(cfg.planners), 'level': cfg.level,
                    'bootstrap': cfg.bootstrap, 'closed_loop_episodes': cfg.closed_loop_episodes,
                    'scenarios': [list(s) for s in scenarios], 'config': config_to_dict(cfg),
                    'budgets': budgets},
           # Per-frame PDMS / EPDMS and the frames' episodes: rows of two reports (e.g. two
           # trees, each with its own selector) can be compared frame by frame (compare_rows).
           'frame_episodes': frames.episodes.tolist(),
           'frame_tokens': [b.scene.token for b in frames.inputs],
           'rows': [{'key': r.key, 'label': r.label, 'il': r.il, 'oracle': r.oracle,
                     'candidates': r.candidates, 'scorer_calls': r.scorer_calls,
                     'pdms': r.frames[:, COLUMNS.index('pdms')].tolist(),
                     'epdms': r.frames[:, COLUMNS.index('epdms')].tolist(),
                     'episodes': r.episodes}
                    for r in rows],
           'stats': stats, 'comparisons': diffs}
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / 'attribution.json').write_text(json.dumps(res, indent=1))
    (out / 'attribution.md').write_text(markdown(res))
    LOG.info('wrote %s/attribution.{json,md}', out)
    return res


def compare_rows(res_a: dict, key_a: str, res_b: dict, key_b: str, metric: str = 'pdms',
                 n_boot: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """
    Paired difference (x 100) of row key_a of report res_a minus row key_b of report res_b.

    Both reports must cover the same frames (same split, stride and subset): checked by token.
    """
    if res_a['frame_tokens'] != res_b['frame_tokens']:
        raise ValueError('the two reports cover different frames; compare on the same split '
                         'and frame subset')
    rows_a = {r['key']: r for r in res_a['rows']}
    rows_b = {r['key']: r for r in res_b['rows']}
    diff = np.asarray(rows_a[key_a][metric]) - np.asarray(rows_b[key_b][metric])
    return episode_bootstrap(diff, np.asarray(res_a['frame_episodes']), n_boot, seed,
                             level).scaled(100.0).as_dict()


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """--config and --set of `pair-drive report attribution`."""
    add_config_arguments(parser, DEFAULT_CONFIG)


def command_line(args: argparse.Namespace) -> str:
    """Return the command that reproduces this report."""
    parts = ['pair-drive', 'report', 'attribution', '--config', str(args.config)]
    for item in args.set:
        parts += ['--set', item]
    return shlex.join(parts)


def run(args: argparse.Namespace) -> int:
    """Entry point of `pair-drive report attribution`."""
    report(config_from_args(AttributionConfig, args), command_line(args))
    return 0
