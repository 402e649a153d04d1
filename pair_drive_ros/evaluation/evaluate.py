"""Open- and closed-loop evaluation of any planner: `pair-drive evaluate --planner NAME`.

Open loop: on logged scenes of a split, the planner's trajectory is scored by the PDM scorer
(every sub-metric, PDMS and EPDMS; EC's weight is dropped since frames are evaluated
independently). Closed loop: the planner drives highway-env episodes of the split's seed range
(`sim.closed_loop.run_episode`); the expert "planner" is the scenario's own expert driver there.
Outputs JSON, a Markdown table and BEV plots of chosen scenes.
"""

from dataclasses import dataclass
import json
import logging
from pathlib import Path
import time

import numpy as np

from pair_drive_ros.perception.builder import FeatureBuilder
from pair_drive_ros.policy.base import AbstractPlanner, PlannerInput
from pair_drive_ros.policy.closed_loop import closed_loop_policy, planner_perception_config
from pair_drive_ros.sim.suite import split_scenarios

LOG = logging.getLogger(__name__)

OPEN_LOOP_METRICS = ('NC', 'DAC', 'DDC', 'TLC', 'EP', 'TTC', 'C', 'LK', 'HC', 'EC')
CLOSED_LOOP_METRICS = ('collision_rate', 'off_road_rate', 'route_completion', 'progress_m',
                       'comfort_violations')


@dataclass(frozen=True)
class EvalConfig:
    """Evaluation settings (YAML: config/eval.yaml)."""

    split: str = 'test'
    frame_stride: int = 8          # every 8th scorable frame (0.8 s apart)
    max_frames: int = 0            # 0: all selected frames
    batch_size: int = 32
    closed_loop_episodes: int = 0  # per scenario; 0: open loop only
    closed_loop_max_steps: int = 0  # 0: the scenario's cap
    replan_every: int = 5          # closed loop: replan every 5 steps (0.5 s)
    plots: int = 6                 # BEV plots of this many scenes
    num_threads: int = 2


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
    """Score the planner's plans on logged frames.

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


def evaluate_closed_loop(planner: AbstractPlanner, scenarios: list, *,
                         max_steps: int | None = None, replan_every: int = 5,
                         progress: bool = False) -> dict:
    """Drive (scenario name, seed) episodes with the planner.

    The 'expert' planner cannot replay a log in closed loop: the scenario's expert drives.
    Returns {'summary': collision / off-road rates, mean route completion, progress [m] and
    comfort violations per episode, 'episodes': per-episode rows}.
    """
    from pair_drive_ros.sim.closed_loop import run_episode

    policy = None if planner.name == 'expert' else closed_loop_policy(planner)
    rows = []
    items = scenarios
    if progress:
        from tqdm import tqdm
        items = tqdm(scenarios, desc=f'closed loop {planner.name}', unit='ep')
    for name, seed in items:
        planner.reset()
        t0 = time.perf_counter()
        res = run_episode(name, int(seed), policy, max_steps=max_steps,
                          replan_every=replan_every)
        row = res.as_dict()
        row['wall_s'] = time.perf_counter() - t0
        rows.append(row)
    return {'summary': _closed_summary(rows), 'episodes': rows}


def _closed_summary(rows: list) -> dict:
    if not rows:
        return {k: float('nan') for k in CLOSED_LOOP_METRICS}
    return {'collision_rate': float(np.mean([r['collision'] for r in rows])),
            'off_road_rate': float(np.mean([r['off_road'] for r in rows])),
            'route_completion': float(np.mean([r['route_completion'] for r in rows])),
            'progress_m': float(np.mean([r['progress_m'] for r in rows])),
            'comfort_violations': float(np.mean([r['comfort_violations'] for r in rows])),
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
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


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


def add_arguments(parser) -> None:
    """Arguments of `pair-drive evaluate`."""
    from pair_drive_ros.policy.factory import PLANNERS

    parser.add_argument('--planner', required=True, choices=PLANNERS)
    parser.add_argument('--il-checkpoint')
    parser.add_argument('--rl-checkpoint')
    parser.add_argument('--selector-checkpoint')
    parser.add_argument('--data', required=True, help='scene-log root (with <split>/)')
    parser.add_argument('--split', default='test')
    parser.add_argument('--out', required=True)
    parser.add_argument('--config', help='YAML EvalConfig (config/eval.yaml)')
    parser.add_argument('--frame-stride', type=int)
    parser.add_argument('--max-frames', type=int)
    parser.add_argument('--closed-loop-episodes', type=int,
                        help='closed-loop episodes per scenario (0: none)')
    parser.add_argument('--plots', type=int)
    parser.add_argument('--cache-dir', help='feature cache (default: <data>/../cache)')
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--no-progress', action='store_true')


def run(args) -> int:
    """Entry point of `pair-drive evaluate`."""
    from dataclasses import replace

    import yaml

    from pair_drive_ros.core.config import config_from_dict, config_to_dict
    from pair_drive_ros.policy.factory import build_planner
    from pair_drive_ros.training.common import set_threads
    from pair_drive_ros.training.data import DataConfig, ILDataset

    data = yaml.safe_load(Path(args.config).read_text()) if args.config else {}
    cfg = config_from_dict(EvalConfig, data or {})
    cfg = replace(cfg, **{k: v for k, v in {
        'split': args.split, 'frame_stride': args.frame_stride, 'max_frames': args.max_frames,
        'closed_loop_episodes': args.closed_loop_episodes, 'plots': args.plots}.items()
        if v is not None})
    set_threads(cfg.num_threads)
    planner = build_planner(args.planner, il_checkpoint=args.il_checkpoint,
                            rl_checkpoint=args.rl_checkpoint,
                            selector_checkpoint=args.selector_checkpoint, device=args.device)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    progress = not args.no_progress
    frames = ILDataset(args.data, cfg.split, planner_perception_config(planner),
                       DataConfig(frame_stride=cfg.frame_stride), args.cache_dir,
                       progress=progress)
    if cfg.max_frames > 0 and cfg.max_frames < len(frames):
        from pair_drive_ros.training.data import subset
        frames = subset(frames, cfg.max_frames)
    t0 = time.perf_counter()
    open_loop = evaluate_open_loop(planner, frames, batch_size=cfg.batch_size,
                                   plot_dir=out / 'plots', plots=cfg.plots, progress=progress)
    open_loop['wall_s'] = time.perf_counter() - t0
    meta = {'planner': args.planner, 'il_checkpoint': args.il_checkpoint,
            'config': config_to_dict(cfg), 'data': str(args.data)}
    (out / 'open_loop.json').write_text(json.dumps({**meta, **open_loop}, indent=1))
    closed = None
    if cfg.closed_loop_episodes > 0:
        scenarios = split_scenarios(cfg.split, cfg.closed_loop_episodes)
        closed = evaluate_closed_loop(planner, scenarios,
                                      max_steps=cfg.closed_loop_max_steps or None,
                                      replan_every=cfg.replan_every, progress=progress)
        (out / 'closed_loop.json').write_text(json.dumps({**meta, **closed}, indent=1))
    table = markdown_table(args.planner, open_loop, closed)
    (out / 'summary.md').write_text(table + '\n')
    LOG.info('%s\n%s', args.planner, table)
    return 0
