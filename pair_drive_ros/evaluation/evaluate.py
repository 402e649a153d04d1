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
Open- and closed-loop evaluation of any planner: `pair-drive evaluate --planner NAME`.

Open loop: on logged scenes of a split, the planner's trajectory is scored by the PDM scorer
(every sub-metric, PDMS and EPDMS; EC's weight is dropped since frames are evaluated
independently). Closed loop: the planner drives highway-env episodes of the split's seed range
(`sim.closed_loop.run_episode`); the expert "planner" is the scenario's own expert driver there.
Outputs JSON, a Markdown table and BEV plots of chosen scenes.
"""

from dataclasses import dataclass, field
import json
import logging
from pathlib import Path
import time

import numpy as np

from pair_drive_ros.evaluation.episode_plot import (PlanTrace, plot_episode, save_figure,
                                                    wants_plot)
from pair_drive_ros.perception.builder import FeatureBuilder
from pair_drive_ros.policy.base import AbstractPlanner, PlannerInput
from pair_drive_ros.policy.closed_loop import closed_loop_policy, planner_perception_config
from pair_drive_ros.runtime.speed_governor import SpeedGovernorConfig
from pair_drive_ros.sim.suite import split_scenarios

LOG = logging.getLogger(__name__)

OPEN_LOOP_METRICS = ('NC', 'DAC', 'DDC', 'TLC', 'EP', 'TTC', 'C', 'LK', 'HC', 'EC')
CLOSED_LOOP_METRICS = ('collision_rate', 'off_road_rate', 'route_completion', 'progress_m',
                       'comfort_violations')


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings (YAML: config/eval.yaml; `--set key=value` or `--<key>` overrides)."""

    planner: str = ''              # one of policy.factory.PLANNERS
    il_checkpoint: str = ''        # '': the shipped one (IL planners and PaIR's IL branch)
    rl_checkpoint: str = ''        # PaIR only; '': shipped
    selector_checkpoint: str = ''  # PaIR only; '': shipped
    # PaIR only: the selector's guard (pick only candidates whose predicted safety_metrics are
    # each at least the IL plan's minus safety_tolerance; negative: off); null keeps the
    # checkpoint's
    safety_tolerance: float | None = None
    safety_metrics: list | None = None     # e.g. [NC, TTC, DAC]
    # PaIR only: keep the IL plan unless a candidate's predicted score beats it by this much;
    # null keeps the checkpoint's (chosen on val open loop by train_selector)
    fallback_margin: float | None = None
    select_by: str | None = None   # PaIR only: its ranking score (selector.SELECT_BY)
    # PaIR only: a candidate replaces the IL plan only if its path is at most this many metres
    # longer than the IL plan's (negative: any); null keeps the checkpoint's
    progress_tolerance_m: float | None = None
    # PaIR only: braking candidates added to the set, one per deceleration [m/s^2] ([]: none);
    # null keeps the checkpoint's
    stop_decels_mps2: list | None = None
    data: str = 'data/logs'        # scene-log root holding <split>/ (open loop)
    split: str = 'test'
    suite: str = ''                # closed loop: scenario suite YAML ('': config/scenarios.yaml)
    seeds: str = ''                # closed loop: seed spec (sim.suite.parse_seeds), else the split
    out: str = ''                  # output folder (required)
    cache_dir: str = ''            # feature cache ('': <data>/../cache)
    device: str = 'cpu'
    progress: bool = True
    frame_stride: int = 8          # every 8th scorable frame (0.8 s apart)
    max_frames: int = 0            # 0: all selected frames
    batch_size: int = 32
    closed_loop_episodes: int = 0  # per scenario; 0: open loop only
    closed_loop_max_steps: int = 0  # 0: the scenario's cap
    # Per scenario, start after this many seeds of the split's range: a shard of a larger
    # evaluation (seeds [skip, skip + episodes) of each scenario; `pair-drive report merge`).
    closed_loop_skip: int = 0
    replan_every: int = 5          # closed loop: replan every 5 steps (0.5 s)
    # closed loop: what ends an episode off the road (sim.closed_loop.OFF_ROAD_RULES); 'lanes'
    # is the rule before closed loop used the scorer's drivable area
    off_road: str = 'drivable_area'
    plots: int = 6                 # BEV plots of this many scenes
    # closed loop: map-frame plots of episodes (episode_plot.EPISODE_PLOTS: none, failed, all)
    # under <out>/episodes/
    episode_plots: str = 'failed'
    num_threads: int = 2
    # closed loop: the speed governor between planner and tracker (as on the planner node)
    speed_governor: SpeedGovernorConfig = field(default_factory=SpeedGovernorConfig)


def _frame_inputs(frames, planner: AbstractPlanner):
    """Yield (path, k, log, features) for (path, k) pairs or an ILDataset (cached features)."""
    from pair_drive_ros.sim.logs import EpisodeLog
    from pair_drive_ros.training.data import frame_features, ILDataset

    logs: dict = {}

    def log_of(path):
        key = str(path)
        if key not in logs:
            logs.clear()  # frames come grouped by episode; keep one log in memory
            logs[key] = EpisodeLog.load(path)
        return logs[key]

    if isinstance(frames, ILDataset):
        for i in range(len(frames)):
            path, k = frames.episode_frame(i)
            log = log_of(path)
            yield path, k, log, frames.features(i, log)
        return
    builder = FeatureBuilder(planner_perception_config(planner))
    for path, k in frames:
        log = log_of(path)
        yield path, k, log, frame_features(log, k, builder)


def evaluate_open_loop(planner: AbstractPlanner, frames, *, scorer_cfg=None,
                       batch_size: int = 32, plot_dir: str | Path | None = None,
                       plots: int = 0, progress: bool = False) -> dict:
    """
    Score the planner's plans on logged frames.

    frames: (episode path, frame index) pairs, or a training.data.ILDataset (cached features
    of the same FeatureBuilder). Returns {'summary': means x 100 of every sub-metric, PDMS and
    EPDMS, 'by_family': the same per scenario family, 'scenes': per-scene rows,
    'inference_ms': mean planner time per frame}.
    """
    from pair_drive_ros.scoring import Metric, score_scenes, ScorerConfig

    cfg = scorer_cfg or ScorerConfig()
    rows: list = []
    plotted = 0
    pending: list = []
    plan_s = 0.0
    n_total = len(frames)
    plot_every = max(1, n_total // max(1, plots)) if plots else 0
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=n_total, desc=f'open loop {planner.name}', unit='frame')

    def flush():
        nonlocal plan_s, plotted
        if not pending:
            return
        inputs = [PlannerInput(f, scene) for _, _, _, f, scene in pending]
        t0 = time.perf_counter()
        plans = planner.compute_plans(inputs)
        plan_s += time.perf_counter() - t0
        cands = np.stack([p.trajectory.poses for p in plans])[:, None]
        tables = score_scenes([x[4] for x in pending], cands, cfg)
        for (path, k, log, _, scene), plan, table in zip(pending, plans, tables):
            row = {'token': scene.token, 'episode': str(path), 'frame': int(k),
                   'family': log.meta.get('family', log.meta.get('scenario', '')),
                   'pdms': float(table.pdms[0]), 'epdms': float(table.epdms[0])}
            row.update({m: float(table[Metric[m]][0]) for m in OPEN_LOOP_METRICS})
            rows.append(row)
            if plot_dir is not None and plot_every and plotted < plots \
                    and (len(rows) - 1) % plot_every == 0:
                plot_bev(scene, plan, Path(plot_dir) / f'{planner.name}_{scene.token}.png',
                         title=f'{planner.name} {scene.token} PDMS {row["pdms"]:.2f}')
                plotted += 1
        if bar is not None:
            bar.update(len(pending))
        pending.clear()

    for path, k, log, feats in _frame_inputs(frames, planner):
        pending.append((path, k, log, feats, log.scene(k)))
        if len(pending) >= batch_size:
            flush()
    flush()
    if bar is not None:
        bar.close()
    return {'summary': _means(rows), 'by_family': _by_family(rows), 'scenes': rows,
            'frames': len(rows), 'inference_ms': 1e3 * plan_s / max(1, len(rows))}


def _means(rows: list) -> dict:
    keys = list(OPEN_LOOP_METRICS) + ['pdms', 'epdms']
    if not rows:
        return {k: float('nan') for k in keys}
    return {k: 100.0 * float(np.mean([r[k] for r in rows])) for k in keys}


def _by_family(rows: list) -> dict:
    fams = sorted({r['family'] for r in rows})
    return {f: dict(_means([r for r in rows if r['family'] == f]),
                    frames=sum(r['family'] == f for r in rows)) for f in fams}


def evaluate_closed_loop(planner: AbstractPlanner, scenarios: list, *, suite=None,
                         max_steps: int | None = None, replan_every: int = 5,
                         progress: bool = False, off_road: str = 'drivable_area',
                         governor: SpeedGovernorConfig | None = None,
                         plot_dir: str | Path | None = None, episode_plots: str = 'none'
                         ) -> dict:
    """
    Drive (scenario name, seed) episodes with the planner.

    The 'expert' planner cannot replay a log in closed loop: the scenario's expert drives.
    suite: the scenario suite the names come from (None: the default suite). governor: the
    speed governor applied to every plan (None: off). episode_plots: which episodes get a
    map-frame plot (episode_plot.EPISODE_PLOTS) in plot_dir as <scenario>_<seed>.png.
    Returns {'summary': collision / off-road rates, mean route completion, progress [m] and
    comfort violations per episode, 'episodes': per-episode rows}.
    """
    from pair_drive_ros.sim.closed_loop import run_episode

    wants_plot(episode_plots, {})  # a wrong mode fails before the first episode
    plotting = plot_dir is not None and episode_plots != 'none'
    trace = PlanTrace()

    def record_plan(frame, plan) -> None:
        trace.add(frame.stamp_s, plan.trajectory.to_map(frame.ego.pose).xy)

    policy = None if planner.name == 'expert' else closed_loop_policy(
        planner, on_plan=record_plan if plotting else None, governor=governor)
    rows = []
    items = scenarios
    if progress:
        from tqdm import tqdm
        items = tqdm(scenarios, desc=f'closed loop {planner.name}', unit='ep')
    for name, seed in items:
        planner.reset()
        trace.clear()
        t0 = time.perf_counter()
        res = run_episode(name, int(seed), policy, max_steps=max_steps,
                          replan_every=replan_every, suite=suite, off_road=off_road,
                          record=plotting)
        row = res.as_dict()
        row['wall_s'] = time.perf_counter() - t0
        rows.append(row)
        if plotting and wants_plot(episode_plots, row):
            plot_episode(res.log, trace, row, Path(plot_dir) / f'{name}_{int(seed)}.png')
    return {'summary': _closed_summary(rows), 'episodes': rows}


def closed_loop_summary(rows: list) -> dict:
    """Return the summary of closed-loop episode rows (what evaluate_closed_loop reports)."""
    return _closed_summary(rows)


def _off_lanes_rate(rows: list) -> float:
    """Share of episodes whose ego centre left highway-env's lane strips at some step."""
    return float(np.mean([r.get('off_lanes_step', -1) >= 0 for r in rows]))


def per_family_summary(rows: list) -> dict:
    """Closed-loop rates and speeds per scenario name (overspeeding shows per family)."""
    out = {}
    for fam in sorted({r['scenario'] for r in rows}):
        sub = [r for r in rows if r['scenario'] == fam]
        out[fam] = {'episodes': len(sub),
                    'collision_rate': float(np.mean([r['collision'] for r in sub])),
                    'off_road_rate': float(np.mean([r['off_road'] for r in sub])),
                    'off_lanes_rate': _off_lanes_rate(sub),
                    'route_completion': float(np.mean([r['route_completion'] for r in sub])),
                    'mean_speed_mps': float(np.mean([r.get('mean_speed_mps', np.nan)
                                                     for r in sub])),
                    'p95_speed_mps': float(np.mean([r.get('p95_speed_mps', np.nan)
                                                    for r in sub]))}
    return out


def _closed_summary(rows: list) -> dict:
    if not rows:
        return {k: float('nan') for k in CLOSED_LOOP_METRICS}
    return {'collision_rate': float(np.mean([r['collision'] for r in rows])),
            'off_road_rate': float(np.mean([r['off_road'] for r in rows])),
            'off_lanes_rate': _off_lanes_rate(rows),
            'route_completion': float(np.mean([r['route_completion'] for r in rows])),
            'progress_m': float(np.mean([r['progress_m'] for r in rows])),
            'comfort_violations': float(np.mean([r['comfort_violations'] for r in rows])),
            'goal_rate': float(np.mean([r.get('goal_reached', False) for r in rows])),
            'mean_speed_mps': float(np.mean([r.get('mean_speed_mps', np.nan) for r in rows])),
            'per_family': per_family_summary(rows),
            'end_causes': {c: sum(r.get('end_cause') == c for r in rows)
                           for c in sorted({str(r.get('end_cause')) for r in rows})},
            'episodes': len(rows)}


def plot_bev(scene, plan, path: str | Path, title: str = '', extent=(-16.0, 64.0, 32.0)
             ) -> Path:
    """Ego-frame BEV PNG: lanes, route, agents at t = 0, expert, plan and candidates."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    from pair_drive_ros.core.se2 import inverse_transform_points

    pose = scene.ego.pose
    fig, ax = plt.subplots(figsize=(5, 6), dpi=90)
    for lane in scene.road.lanes:
        for line in (lane.left_boundary, lane.right_boundary):
            xy = inverse_transform_points(pose, line)
            ax.plot(-xy[:, 1], xy[:, 0], color='0.6', lw=0.6)
    route = inverse_transform_points(pose, scene.route.points)
    ax.plot(-route[:, 1], route[:, 0], color='tab:green', lw=2, alpha=0.4, label='route')
    agents = scene.agents.at(0).to_frame(pose)
    for corners in agents.corners():
        c = np.vstack([corners, corners[:1]])
        ax.fill(-c[:, 1], c[:, 0], color='tab:blue', alpha=0.5)
    ax.fill([-1, 1, 1, -1], [-2.5, -2.5, 2.5, 2.5], color='k', alpha=0.7)
    if plan.candidates is not None:
        for cand in plan.candidates:
            ax.plot(-cand[:, 1], cand[:, 0], color='tab:orange', lw=0.6, alpha=0.4)
    if scene.expert is not None:
        e = scene.expert.poses
        ax.plot(-e[:, 1], e[:, 0], 'k--', lw=1.2, label='expert')
    p = plan.trajectory.poses
    ax.plot(-p[:, 1], p[:, 0], 'r.-', lw=1.8, label='plan')
    ax.set_xlim(-extent[2], extent[2])
    far = max([extent[1]] + [float(np.max(t[:, 0])) + 5.0 for t in
                             ([p] if scene.expert is None else [p, scene.expert.poses])])
    ax.set_ylim(extent[0], far)
    ax.set_aspect('equal')
    ax.set_xlabel('-y [m] (right)')
    ax.set_ylabel('x [m] (forward)')
    ax.legend(loc='lower right', fontsize=7)
    ax.set_title(title, fontsize=8)
    return save_figure(fig, path)


def markdown_table(name: str, open_loop: dict | None, closed_loop: dict | None) -> str:
    """One-planner Markdown table (open-loop metrics x 100, closed-loop rates)."""
    lines = []
    if open_loop is not None:
        s = open_loop['summary']
        cols = list(OPEN_LOOP_METRICS) + ['pdms', 'epdms']
        lines += ['| planner | frames | ' + ' | '.join(c.upper() for c in cols) + ' |',
                  '|---|---|' + '---|' * len(cols),
                  f'| {name} | {open_loop["frames"]} | '
                  + ' | '.join(f'{s[c]:.1f}' for c in cols) + ' |', '']
    if closed_loop is not None:
        s = closed_loop['summary']
        lines += ['| planner | episodes | collision | off-road | route completion | '
                  'progress [m] | comfort violations |', '|---|---|---|---|---|---|---|',
                  f'| {name} | {s.get("episodes", 0)} | {s["collision_rate"]:.2f} | '
                  f'{s["off_road_rate"]:.2f} | {s["route_completion"]:.2f} | '
                  f'{s["progress_m"]:.1f} | {s["comfort_violations"]:.1f} |', '']
    return '\n'.join(lines)


EVAL_FLAGS = ('planner', 'il_checkpoint', 'rl_checkpoint', 'selector_checkpoint', 'data',
              'split', 'suite', 'seeds', 'out', 'frame_stride', 'max_frames',
              'closed_loop_episodes', 'closed_loop_skip', 'plots', 'cache_dir', 'device')


def add_arguments(parser) -> None:
    """Arguments of `pair-drive evaluate`: the EvalConfig fields (config/eval.yaml)."""
    from pair_drive_ros.core.config import add_config_arguments

    add_config_arguments(parser, 'config/eval.yaml', EVAL_FLAGS)
    parser.add_argument('--force', action='store_true',
                        help='write into a non-empty --out folder')


def closed_loop_jobs(cfg: EvalConfig) -> tuple[list, object]:
    """(scenario, seed) episodes of the closed-loop evaluation, and the suite they come from."""
    from pair_drive_ros.sim.suite import DEFAULT_SUITE, load_suite, resolve_jobs

    suite = load_suite(cfg.suite or DEFAULT_SUITE)
    if cfg.seeds:
        return resolve_jobs(suite, cfg.split, seeds=str(cfg.seeds)), suite
    if cfg.closed_loop_episodes > 0:
        return split_scenarios(cfg.split, cfg.closed_loop_episodes, skip=cfg.closed_loop_skip,
                               suite=suite), suite
    return [], suite


def run(args) -> int:
    """Entry point of `pair-drive evaluate`."""
    from pair_drive_ros.core.config import config_from_args, config_text, config_to_dict
    from pair_drive_ros.core.config import save_config
    from pair_drive_ros.policy.factory import build_planner, PAIR_PLANNERS, PLANNERS
    from pair_drive_ros.training.common import refuse_overwrite, set_threads
    from pair_drive_ros.training.data import DataConfig, ILDataset

    cfg = config_from_args(EvalConfig, args)
    if cfg.planner not in PLANNERS:
        raise ValueError(f'--planner must be one of {PLANNERS}, got {cfg.planner!r}')
    if not cfg.out:
        raise ValueError('--out is required')
    refuse_overwrite(cfg.out, getattr(args, 'force', False), 'evaluation folder')
    LOG.info('pair-drive evaluate config:\n%s', config_text(cfg))
    set_threads(cfg.num_threads)
    selector_keys = ('safety_tolerance', 'safety_metrics', 'fallback_margin', 'select_by',
                     'progress_tolerance_m', 'stop_decels_mps2')
    extra = {key: getattr(cfg, key) for key in selector_keys if getattr(cfg, key) is not None}
    if extra and cfg.planner not in PAIR_PLANNERS:
        raise ValueError(f'{", ".join(extra)} is a setting of the pair and pair_variants '
                         f'planners, not of {cfg.planner!r}')
    planner = build_planner(cfg.planner, il_checkpoint=cfg.il_checkpoint or None,
                            rl_checkpoint=cfg.rl_checkpoint or None,
                            selector_checkpoint=cfg.selector_checkpoint or None,
                            device=cfg.device, **extra)
    out = Path(cfg.out)
    save_config(cfg, out)
    meta = {'planner': cfg.planner, 'il_checkpoint': cfg.il_checkpoint,
            'config': config_to_dict(cfg), 'data': cfg.data}
    open_loop = None
    if Path(cfg.data, cfg.split).is_dir():
        frames = ILDataset(cfg.data, cfg.split, planner_perception_config(planner),
                           DataConfig(frame_stride=cfg.frame_stride), cfg.cache_dir or None,
                           progress=cfg.progress)
        if cfg.max_frames > 0 and cfg.max_frames < len(frames):
            from pair_drive_ros.training.data import subset
            frames = subset(frames, cfg.max_frames)
        t0 = time.perf_counter()
        open_loop = evaluate_open_loop(planner, frames, batch_size=cfg.batch_size,
                                       plot_dir=out / 'plots', plots=cfg.plots,
                                       progress=cfg.progress)
        open_loop['wall_s'] = time.perf_counter() - t0
        (out / 'open_loop.json').write_text(json.dumps({**meta, **open_loop}, indent=1))
    else:
        LOG.info('no scene logs at %s: open loop skipped', Path(cfg.data, cfg.split))
    closed = None
    scenarios, suite = closed_loop_jobs(cfg)
    if scenarios:
        closed = evaluate_closed_loop(planner, scenarios, suite=suite,
                                      max_steps=cfg.closed_loop_max_steps or None,
                                      replan_every=cfg.replan_every, progress=cfg.progress,
                                      off_road=cfg.off_road, governor=cfg.speed_governor,
                                      plot_dir=out / 'episodes',
                                      episode_plots=cfg.episode_plots)
        closed['off_road_rule'] = cfg.off_road
        closed['suite'] = {'path': suite.path, 'sha256': suite.sha256}
        (out / 'closed_loop.json').write_text(json.dumps({**meta, **closed}, indent=1))
    if open_loop is None and closed is None:
        raise ValueError(f'nothing to evaluate: no logs at {Path(cfg.data, cfg.split)} and no '
                         'closed-loop episodes (--closed-loop-episodes N or --seeds SPEC)')
    table = markdown_table(cfg.planner, open_loop, closed)
    (out / 'summary.md').write_text(table + '\n')
    LOG.info('%s\n%s', cfg.planner, table)
    return 0
