"""The PaIR-Drive result tables of docs/RESULTS.md, from checkpoints, on one split.

    pair-drive report attribution --out runs/pair/results [--closed-loop 2]

Open loop (every `frame_stride`-th scorable frame of the split, evaluate_open_loop): IL-A,
IL-A + sequential GRPO, IL-A + PaIR, IL-B, IL-B + sequential GRPO, IL-B + PaIR (plug-and-play:
RL branch and selector trained with IL-A only; with --tree-only-selector also PaIR rows without
plan variants, as in the paper), oracle best-of-N over the PaIR candidates (UPPER BOUND: true
scores), expert and the privileged reference planner; the expert as the IL policy (all scenes
and the 20% where the expert scores lowest); group-size ablation (5, 9, 12, 15 codes), tree only
and no tree.
Writes results.json and results.md (Markdown tables) under --out.
"""

import argparse
import json
import logging
from pathlib import Path
import time

import numpy as np

from pair_drive_ros.policy.ablations import NoTreePaIR
from pair_drive_ros.policy.pair import OracleBestOfN, PaIRPlanner

LOG = logging.getLogger(__name__)
TREE_ONLY = ', tree only (paper candidate set, its own selector)'
# The sequential baselines' rows (GRPO fine-tuning of the IL planner itself): label, the main
# table row they follow, the IL model name, the argument holding the checkpoint.
SEQUENTIAL_ROWS = (('IL-A + sequential GRPO', 'IL-A (Transfuser-lite)', 'transfuser',
                    'sequential'),
                   ('IL-B + sequential GRPO', 'IL-B (DiffusionDrive-lite)', 'diffusiondrive',
                    'sequential_b'))
COLS = ('NC', 'DAC', 'DDC', 'TLC', 'EP', 'TTC', 'C', 'LK', 'HC', 'pdms', 'epdms')


class Frames:
    """The evaluation frames: cached features, scenes prepared for the scorer once.

    Scores exactly as training.evaluate.evaluate_open_loop (score_scenes, human filter, no
    previous frame so EC's weight is dropped), but reuses each scene's prepare_scene and EP
    normaliser across the ~20 planners of the tables.
    """

    def __init__(self, scenes) -> None:
        self.scenes = scenes
        self.inputs = None
        self._token_index = {}

    def planner_inputs(self) -> list:
        from pair_drive_ros.policy.base import PlannerInput

        if self.inputs is None:
            self.inputs = []
            for j in range(len(self.scenes)):
                scene = self.scenes.scene(j)
                self._token_index[scene.token] = j
                self.inputs.append(PlannerInput(self.scenes.features(j), scene))
        return self.inputs

    def true_scores(self, batch: list, cands: np.ndarray, metric: str = 'pdms') -> np.ndarray:
        """(B, K) true scores of candidates for PlannerInputs of these frames."""
        js = [self._token_index[b.scene.token] for b in batch]
        return self.scenes.score(js, cands).reward(metric)


def _open(planner, frames: Frames, label: str, batch_size: int) -> dict:
    """Open-loop scores of one planner: summary (x 100) and per-scene PDMS / EPDMS."""
    from pair_drive_ros.scoring import Metric
    from tqdm import tqdm

    inputs = frames.planner_inputs()
    t0 = time.perf_counter()
    plan_s, rows, fallback = 0.0, [], []
    for start in tqdm(range(0, len(inputs), batch_size), desc=label[:30], unit='batch'):
        batch = inputs[start:start + batch_size]
        t1 = time.perf_counter()
        plans = planner.compute_plans(batch)
        plan_s += time.perf_counter() - t1
        js = list(range(start, start + len(batch)))
        scores = frames.scenes.score(js, np.stack([p.trajectory.poses for p in plans])[:, None])
        for i, (b, plan) in enumerate(zip(batch, plans)):
            row = {'token': b.scene.token, 'pdms': float(scores.pdms[i, 0]),
                   'epdms': float(scores.epdms[i, 0])}
            row.update({m.name: float(scores.table[i, int(m), 0]) for m in Metric})
            rows.append(row)
            if 'fallback_to_il' in plan.info:
                fallback.append(plan.info['fallback_to_il'])
    summary = {k: 100.0 * float(np.mean([r[k] for r in rows])) for k in COLS}
    LOG.info('%s: PDMS %.2f EPDMS %.2f (%.0f s)', label, summary['pdms'], summary['epdms'],
             time.perf_counter() - t0)
    return {'label': label, 'summary': summary, 'frames': len(rows),
            'inference_ms': 1e3 * plan_s / max(1, len(rows)),
            'rows': [{k: r[k] for k in ('token', 'pdms', 'epdms')} for r in rows],
            'il_fallback_rate': float(np.mean(fallback)) if fallback else None}


def _row(entry: dict) -> str:
    s = entry['summary']
    return (f'| {entry["label"]} | ' + ' | '.join(f'{s[c]:.1f}' for c in COLS) + ' |')


def _table(entries: list) -> list:
    head = '| planner | ' + ' | '.join(c.upper() for c in COLS) + ' |'
    return [head, '|---|' + '---|' * len(COLS)] + [_row(e) for e in entries] + ['']


def _subset_mean(entry: dict, tokens: set, key: str) -> float:
    vals = [r[key] for r in entry['rows'] if r['token'] in tokens]
    return 100.0 * float(np.mean(vals)) if vals else float('nan')


def closed_loop(args: argparse.Namespace) -> dict:
    """Closed-loop rates of IL-A, + sequential, + PaIR, IL-B, + sequential, + PaIR.

    Writes closed_loop.{json,md} under --out. With --rows only the planners whose label
    contains one of the given substrings (or equals one) run; their rows are merged into an
    existing closed_loop.json of --out (same scenarios required), the other rows kept.
    """
    from pair_drive_ros.policy.il_planner import load_il_planner
    from pair_drive_ros.policy.pair import load_rl_branch, load_selector
    from pair_drive_ros.training.common import set_threads
    from pair_drive_ros.evaluation.evaluate import evaluate_closed_loop
    from pair_drive_ros.sim.suite import split_scenarios

    set_threads(args.threads)
    rl = load_rl_branch(args.rl_checkpoint)
    selector = load_selector(args.selector_checkpoint)
    il_a = load_il_planner(args.il_a, expect_model='transfuser')
    il_b = load_il_planner(args.il_b, expect_model='diffusiondrive')
    sequential = load_il_planner(args.sequential, expect_model='transfuser')
    scenarios = split_scenarios(args.split, args.closed_loop)
    res = {'command': args.command_line, 'scenarios': scenarios, 'closed_loop': {}}
    out_dir = Path(args.out)
    if args.rows and (out_dir / 'closed_loop.json').is_file():
        res = json.loads((out_dir / 'closed_loop.json').read_text())
        if [list(s) for s in res['scenarios']] != [list(s) for s in scenarios]:
            raise ValueError(f'{out_dir}/closed_loop.json has other scenarios than '
                             f'--closed-loop {args.closed_loop} on {args.split}; use another '
                             '--out')
    planners = [('IL-A', il_a), ('IL-A + sequential GRPO', sequential),
                ('IL-A + PaIR', PaIRPlanner(il_a, rl, selector)), ('IL-B', il_b)]
    if args.sequential_b and Path(args.sequential_b).is_file():
        planners.append(('IL-B + sequential GRPO',
                         load_il_planner(args.sequential_b, expect_model='diffusiondrive')))
    planners.append(('IL-B + PaIR', PaIRPlanner(il_b, rl, selector)))
    if args.tree_only_selector:
        tree_sel = load_selector(args.tree_only_selector)
        planners += [(f'IL-A + PaIR{TREE_ONLY}', PaIRPlanner(il_a, rl, tree_sel)),
                     (f'IL-B + PaIR{TREE_ONLY}', PaIRPlanner(il_b, rl, tree_sel))]
    planners += [(f'IL-A + PaIR, consistency {w:g}',
                  PaIRPlanner(il_a, rl, selector, consistency_weight=w))
                 for w in args.consistency]
    if args.rows:
        # A value equal to a whole label selects only it ('IL-B'), others every label they are in.
        labels = {label for label, _ in planners}
        subs = [r for r in args.rows if r not in labels]
        planners = [(label, p) for label, p in planners
                    if label in args.rows or any(r in label for r in subs)]
        if not planners:
            raise ValueError(f'--rows {args.rows} match no closed-loop planner label')
    for label, planner in planners:
        if args.rows:
            res.setdefault('row_commands', {})[label] = args.command_line
        out = evaluate_closed_loop(planner, scenarios, progress=True)
        res['closed_loop'][label] = out['summary']
        res.setdefault('episodes', {})[label] = [
            {k: e[k] for k in ('scenario', 'seed', 'collision', 'off_road', 'route_completion')}
            for e in out['episodes']]
        LOG.info('closed loop %s: %s', label, out['summary'])
    lines = [f'Command: `{res["command"]}`', '']
    if 'command_sequential' in res:
        lines += [f'Sequential row: `{res["command_sequential"]}`', '']
    for label, command in res.get('row_commands', {}).items():
        lines += [f'Row {label}: `{command}`', '']
    lines += [
             '| closed loop | episodes | collision rate | off-road rate | route completion '
             '| progress [m] | comfort violations |', '|---|---|---|---|---|---|---|']
    for label, s in res['closed_loop'].items():
        lines.append(f'| {label} | {s.get("episodes", 0)} | {s["collision_rate"]:.2f} | '
                     f'{s["off_road_rate"]:.2f} | {s["route_completion"]:.2f} | '
                     f'{s["progress_m"]:.1f} | {s["comfort_violations"]:.1f} |')
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / 'closed_loop.json').write_text(json.dumps(res, indent=1))
    (out_dir / 'closed_loop.md').write_text('\n'.join(lines) + '\n')
    return res


def main(args: argparse.Namespace) -> dict:
    """Compute every table; write results.json and results.md; return the results dict."""
    from pair_drive_ros.policy.baselines import ExpertPlanner, ReferencePlanner
    from pair_drive_ros.policy.il_planner import load_il_planner
    from pair_drive_ros.policy.pair import load_rl_branch, load_selector
    from pair_drive_ros.training.common import set_threads
    from pair_drive_ros.training.rl_data import load_scene_set

    set_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frames = Frames(load_scene_set(args.data, args.split, args.frame_stride,
                                   max_scenes=args.max_frames, workers=2,
                                   cache_dir=args.cache_dir))
    rl = load_rl_branch(args.rl_checkpoint)
    selector = load_selector(args.selector_checkpoint)
    il_a = load_il_planner(args.il_a, expect_model='transfuser')
    il_b = load_il_planner(args.il_b, expect_model='diffusiondrive')
    bs = args.batch_size
    res = {'command': args.command_line, 'split': args.split, 'frame_stride': args.frame_stride,
           'checkpoints': {'il_a': args.il_a, 'il_b': args.il_b, 'sequential': args.sequential,
                           'sequential_b': args.sequential_b,
                           'rl': args.rl_checkpoint, 'selector': args.selector_checkpoint,
                           'tree_only_selector': args.tree_only_selector}}

    # -- 1. main table ----------------------------------------------------------------------------
    pair_a = PaIRPlanner(il_a, rl, selector)
    pair_b = PaIRPlanner(il_b, rl, selector)
    main_rows = [_open(il_a, frames, 'IL-A (Transfuser-lite)', bs)]
    if args.sequential and Path(args.sequential).is_file():
        seq = load_il_planner(args.sequential, expect_model='transfuser')
        main_rows.append(_open(seq, frames, 'IL-A + sequential GRPO', bs))
    main_rows += [_open(pair_a, frames, 'IL-A + PaIR', bs),
                  _open(il_b, frames, 'IL-B (DiffusionDrive-lite)', bs)]
    if args.sequential_b and Path(args.sequential_b).is_file():
        seq_b = load_il_planner(args.sequential_b, expect_model='diffusiondrive')
        main_rows.append(_open(seq_b, frames, 'IL-B + sequential GRPO', bs))
    main_rows += [_open(pair_b, frames, 'IL-B + PaIR', bs)]
    if args.tree_only_selector:
        tree_sel = load_selector(args.tree_only_selector)
        main_rows += [_open(PaIRPlanner(il, rl, tree_sel), frames, f'{name} + PaIR{TREE_ONLY}',
                            bs) for name, il in (('IL-A', il_a), ('IL-B', il_b))]
    variants = pair_a.variants          # the selector's candidate set (plan variants or not)
    k = pair_a.candidates_per_frame()
    kind = 'tree + variants' if variants else 'tree'
    oracle_a = f'UPPER BOUND: oracle best-of-{k}, IL-A + {kind}'
    main_rows += [_open(OracleBestOfN(pair_a, score_fn=frames.true_scores), frames, oracle_a, bs),
                  _open(OracleBestOfN(pair_b, score_fn=frames.true_scores), frames,
                        f'UPPER BOUND: oracle best-of-{k}, IL-B + {kind}', bs),
                  _open(ExpertPlanner(), frames, 'expert (logged, privileged)', bs),
                  _open(ReferencePlanner(), frames, 'PDM reference planner (privileged)', bs)]
    res['main'] = main_rows

    # -- 2. expert as the IL policy -------------------------------------------------------------
    expert = next(e for e in main_rows if e['label'].startswith('expert'))
    pair_expert = _open(PaIRPlanner(ExpertPlanner(), rl, selector), frames,
                        'expert + PaIR', bs)
    oracle = OracleBestOfN(PaIRPlanner(ExpertPlanner(), rl, None, variants=variants),
                           score_fn=frames.true_scores)
    oracle_expert = _open(oracle, frames, f'UPPER BOUND: oracle best-of-{k}, expert + {kind}',
                          bs)
    order = sorted(expert['rows'], key=lambda r: r['pdms'])
    worst = {r['token'] for r in order[:max(1, len(order) // 5)]}
    res['expert_as_il'] = {
        'all': {e['label']: {'pdms': e['summary']['pdms'], 'epdms': e['summary']['epdms']}
                for e in (expert, pair_expert, oracle_expert)},
        'worst20': {e['label']: {'pdms': _subset_mean(e, worst, 'pdms'),
                                 'epdms': _subset_mean(e, worst, 'epdms')}
                    for e in (expert, pair_expert, oracle_expert)},
        'worst_scenes': len(worst)}

    # -- 3. group size, tree only and no tree (same selector) -------------------------------------
    ablation = []
    by_label = {e['label']: e for e in main_rows}

    def candidate_set(label: str, planner: PaIRPlanner, oracle_planner: PaIRPlanner) -> dict:
        sel = _open(planner, frames, f'IL-A + PaIR, {label}', bs)
        ora = _open(OracleBestOfN(oracle_planner, score_fn=frames.true_scores), frames,
                    f'oracle, {label}', bs)
        return {'label': label, 'candidates': planner.candidates_per_frame(),
                'selector': sel['summary'], 'oracle': ora['summary']}

    for group in ('5', '9', '12', '15'):
        label = f'{kind}, G = {group}'
        if group == '15':   # the main table's rows
            ablation.append({'label': label, 'candidates': k,
                             'selector': by_label['IL-A + PaIR']['summary'],
                             'oracle': by_label[oracle_a]['summary']})
            continue
        ablation.append(candidate_set(
            label, PaIRPlanner(il_a, rl, selector, codes=group),
            PaIRPlanner(il_a, rl, None, codes=group, variants=variants)))
    if variants:
        ablation.append(candidate_set('tree only, G = 15 (no variants)',
                                      PaIRPlanner(il_a, rl, selector, variants=False),
                                      PaIRPlanner(il_a, rl, None)))
    ablation.append(candidate_set('no tree (15 whole-trajectory variants)',
                                  NoTreePaIR(il_a, rl, selector), NoTreePaIR(il_a, rl, None)))
    res['ablation'] = ablation

    for entry in main_rows + [pair_expert, oracle_expert]:
        entry.pop('rows', None)
    (out / 'results.json').write_text(json.dumps(res, indent=1))
    (out / 'results.md').write_text(markdown(res))
    return res


def add_sequential(args: argparse.Namespace) -> dict:
    """Evaluate only sequential-GRPO IL planners and insert their rows into a results.json.

    --add-sequential: IL-A's (--sequential); --add-sequential-b: IL-B's (--sequential-b). Each
    row goes right after its IL planner's row (replacing an earlier row of the same label).
    """
    from pair_drive_ros.policy.il_planner import load_il_planner
    from pair_drive_ros.training.common import set_threads
    from pair_drive_ros.training.rl_data import load_scene_set

    set_threads(args.threads)
    out = Path(args.out)
    res = json.loads((out / 'results.json').read_text())
    frames = Frames(load_scene_set(args.data, res['split'], res['frame_stride'],
                                   max_scenes=args.max_frames, workers=2,
                                   cache_dir=args.cache_dir))
    wanted = {'sequential': args.add_sequential, 'sequential_b': args.add_sequential_b}
    for label, after, model, key in SEQUENTIAL_ROWS:
        if not wanted[key]:
            continue
        path = getattr(args, key)
        row = _open(load_il_planner(path, expect_model=model), frames, label, args.batch_size)
        row.pop('rows', None)
        res['main'] = [r for r in res['main'] if r['label'] != row['label']]
        labels = [r['label'] for r in res['main']]
        res['main'].insert(labels.index(after) + 1 if after in labels else 1, row)
        res['checkpoints'][key] = path
        res['command_' + key] = args.command_line
    (out / 'results.json').write_text(json.dumps(res, indent=1))
    (out / 'results.md').write_text(markdown(res))
    return res


def markdown(res: dict) -> str:
    """Markdown tables of a results dict."""
    lines = [f'Command: `{res["command"]}`', '']
    if 'command_sequential' in res:
        lines += [f'Sequential row: `{res["command_sequential"]}`', '']
    if 'command_sequential_b' in res:
        lines += [f'IL-B sequential row: `{res["command_sequential_b"]}`', '']
    lines += [
             f'Split `{res["split"]}`, every {res["frame_stride"]}th scorable frame; open-loop '
             'scores x 100.', '']
    lines += _table(res['main'])
    lines += ['Inference ms per frame (batched, 2 shared cores): ' + ', '.join(
        f'{e["label"]} {e["inference_ms"]:.1f}' for e in res['main']), '']
    if 'closed_loop' in res:
        lines += ['| closed loop | episodes | collision rate | off-road rate | route completion '
                  '| progress [m] |', '|---|---|---|---|---|---|']
        for label, s in res['closed_loop'].items():
            lines.append(f'| {label} | {s.get("episodes", 0)} | {s["collision_rate"]:.2f} | '
                         f'{s["off_road_rate"]:.2f} | {s["route_completion"]:.2f} | '
                         f'{s["progress_m"]:.1f} |')
        lines.append('')
    ex = res['expert_as_il']
    lines += [f'Expert as the IL policy (all scenes; the {ex["worst_scenes"]} scenes where the '
              'expert PDMS is lowest):', '',
              '| planner | PDMS all | EPDMS all | PDMS worst 20% | EPDMS worst 20% |',
              '|---|---|---|---|---|']
    for label, s in ex['all'].items():
        w = ex['worst20'][label]
        lines.append(f'| {label} | {s["pdms"]:.1f} | {s["epdms"]:.1f} | {w["pdms"]:.1f} | '
                     f'{w["epdms"]:.1f} |')
    lines += ['', '| candidates (IL-A reference) | selector PDMS | selector EPDMS | '
              'oracle PDMS (upper bound) | oracle EPDMS |', '|---|---|---|---|---|']
    for a in res['ablation']:
        lines.append(f'| {a["label"]} ({a["candidates"]} candidates) | '
                     f'{a["selector"]["pdms"]:.1f} | {a["selector"]["epdms"]:.1f} | '
                     f'{a["oracle"]["pdms"]:.1f} | {a["oracle"]["epdms"]:.1f} |')
    return '\n'.join(lines) + '\n'


def curve_summary(run_dir: str | Path, tags: tuple, parts: int = 5) -> str:
    """Markdown table of a run's scalars.csv: the mean of each tag over `parts` equal chunks."""
    values: dict = {}
    for line in (Path(run_dir) / 'scalars.csv').read_text().splitlines():
        _, key, value = line.split(',')
        values.setdefault(key, []).append(float(value))
    head = '| tag | ' + ' | '.join(f'steps {i + 1}/{parts}' for i in range(parts)) + ' |'
    lines = [f'Run `{run_dir}`:', '', head, '|---|' + '---|' * parts]
    for tag in tags:
        v = np.asarray(values.get(tag, []))
        if len(v) == 0:
            continue
        chunks = np.array_split(v, parts)
        lines.append(f'| {tag} | ' + ' | '.join(f'{c.mean():.3f}' for c in chunks) + ' |')
    return '\n'.join(lines) + '\n'


def build_parser() -> argparse.ArgumentParser:
    """Arguments (checkpoint defaults: the shipped models/)."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--data', default='data/logs')
    p.add_argument('--split', default='test')
    p.add_argument('--frame-stride', type=int, default=8)
    p.add_argument('--il-a', default='models/transfuser_lite.pt')
    p.add_argument('--il-b', default='models/diffusiondrive_lite.pt')
    p.add_argument('--sequential', default='models/transfuser_lite_seq_grpo.pt')
    p.add_argument('--sequential-b', default='models/diffusiondrive_lite_seq_grpo.pt',
                   help='IL-B fine-tuned by sequential GRPO (row skipped if the file is missing)')
    p.add_argument('--rl-checkpoint', default='models/pair_rl_branch.pt')
    p.add_argument('--selector-checkpoint', default='models/pair_selector.pt')
    p.add_argument('--tree-only-selector', default='',
                   help='a selector trained without plan variants: adds IL-A / IL-B + PaIR rows '
                        'with the candidate set of the paper, [IL plan, tree leaves] (open and '
                        'closed loop)')
    p.add_argument('--closed-loop', type=int, default=0,
                   help='closed loop only: this many episodes per scenario (no open loop)')
    p.add_argument('--consistency', type=float, nargs='*', default=[], metavar='W',
                   help='closed loop: also IL-A + PaIR with these previous-plan consistency '
                        'weights')
    p.add_argument('--max-frames', type=int, default=0, help='0: all (a fixed random subset)')
    p.add_argument('--cache-dir', default=None,
                   help='feature cache folder (default: <data>/../cache); use a fresh one after '
                        'the logs were regenerated, the cache key does not cover log contents')
    p.add_argument('--batch-size', type=int, default=32)
    p.add_argument('--threads', type=int, default=1)
    p.add_argument('--out', default='runs/pair/results')
    p.add_argument('--add-sequential', action='store_true',
                   help='only evaluate --sequential and add its row to --out/results.json')
    p.add_argument('--add-sequential-b', action='store_true',
                   help='only evaluate --sequential-b and add its row to --out/results.json '
                        '(with --add-sequential: both rows)')
    p.add_argument('--rows', nargs='*', default=[], metavar='SUBSTRING',
                   help='closed loop: only the planners whose label contains one of these '
                        '(e.g. "IL-B + sequential"; a whole label, e.g. "IL-B", selects only '
                        'that row); merged into --out/closed_loop.json')
    p.add_argument('--curves', nargs='*', default=[],
                   help='run folders whose training curves to summarise (no evaluation)')
    return p


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of `pair-drive report attribution`."""
    for action in build_parser()._actions:
        if action.dest != 'help':
            parser._add_action(action)


def run(args: argparse.Namespace) -> int:
    """Run the tables, the closed-loop rows, the sequential rows or the curve summary."""
    import shlex
    import sys
    # shlex.join: arguments with spaces (--rows labels) stay quoted, the command reruns as is.
    args.command_line = 'pair-drive report attribution ' + shlex.join(sys.argv[3:])
    if args.closed_loop > 0:
        closed_loop(args)
    elif args.add_sequential or args.add_sequential_b:
        add_sequential(args)
    elif args.curves:
        tags = ('rl/reward_mean', 'rl/reward_best', 'rl/reward_expert', 'rl/kl', 'rl/clip_frac',
                'rl/beta', 'seq/reward_mean', 'seq/reward_best', 'seq/kl', 'seq/clip_frac',
                'sel/loss', 'sel/val_pdms_selected', 'sel/val_pdms_il', 'sel/val_pdms_oracle')
        text = '\n'.join(curve_summary(r, tags) for r in args.curves)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / 'curves.md').write_text(text)
        sys.stdout.write(text)
    else:
        main(args)
    return 0
