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
Combine `pair-drive evaluate` output folders into the RESULTS.md tables.

Usage: pair-drive report table runs/eval/constant_velocity ...
Prints a NAVSIM-style table (every sub-metric x 100, PDMS, EPDMS), a per-family PDMS table and a
closed-loop table; IL rows add training time, parameters, checkpoint size and inference time.
Every closed-loop run (also `pair-drive evaluate --suite config/heldout.yaml --seeds ..`, which
has no open loop) then gets collision, off-road and route-completion rates with episode-bootstrap
95 % intervals, paired differences against the first folder, and per-family mean / p95 speed
against the expert's.
"""

import argparse
import json
from pathlib import Path
import sys

import numpy as np

from pair_drive_ros.evaluation.evaluate import OPEN_LOOP_METRICS, per_family_summary
from pair_drive_ros.runtime.speed_governor import SpeedGovernorConfig


def _il_info(path: str | None) -> dict:
    if not path:
        return {}
    from pair_drive_ros.policy.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    params = sum(v.numel() for k, v in ckpt['state_dict'].items()
                 if not k.endswith(('running_mean', 'running_var', 'num_batches_tracked',
                                    'anchors', 'alphas_cumprod')))
    return {'train_min': ckpt.get('train_time_s', float('nan')) / 60.0, 'params': params,
            'size_mb': Path(path).stat().st_size / 1e6, 'epochs': ckpt.get('epoch')}


def _row_name(result: dict) -> str:
    """
    Return the planner name of an evaluation, with its IL checkpoint's file name.

    '+ speed governor' marks a run with one, followed by what it keeps a gap to, if anything
    (', adaptive cruise', ', gap, lane apart', ', gap, lane apart, keeps the lane' or ', gap':
    SpeedGovernorConfig.describe).
    """
    ckpt = result.get('il_checkpoint')
    name = f'{result["planner"]} ({Path(ckpt).name})' if ckpt else result['planner']
    governor = SpeedGovernorConfig.from_dict(
        (result.get('config') or {}).get('speed_governor') or {})
    mode = governor.describe()
    if mode != 'off':
        name += ' + speed governor' + ('' if mode == 'limits' else f', {mode}')
    return name


def closed_loop_tables(results: list, n_boot: int = 2000, seed: int = 0) -> list:
    """
    Markdown lines: closed-loop rates with episode-bootstrap 95 % intervals, and speeds.

    results: closed_loop.json dicts. Failed = the episode collided or left the road. Rows that
    drove the same (scenario, seed) episodes also get paired differences against the first row
    (same resampled episodes). Speeds are per family,
    mean and p95 over episodes, with the ratio to the expert's row where there is one.
    """
    from pair_drive_ros.evaluation.bootstrap import episode_bootstrap, paired_difference

    def keyed(r: dict) -> dict:
        return {(e['scenario'], e['seed']): e for e in r['episodes']}

    def ci(values, ids) -> str:
        iv = episode_bootstrap(values, ids, n_boot, seed)
        return f'{iv.mean:.2f} [{iv.low:.2f}, {iv.high:.2f}]'

    base = keyed(results[0])

    def failed(e: dict) -> float:
        return float(bool(e['collision']) or bool(e['off_road']))

    lines = ['| planner | suite | episodes | collision rate | off-road rate | failed rate '
             '| route completion | Δ collision vs first row | Δ off-road vs first row '
             '| Δ failed vs first row |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for r in results:
        eps = r['episodes']
        ids = np.arange(len(eps))
        col = np.array([e['collision'] for e in eps], dtype=float)
        off = np.array([e['off_road'] for e in eps], dtype=float)
        fail = np.array([failed(e) for e in eps], dtype=float)
        rc = np.array([e['route_completion'] for e in eps], dtype=float)
        deltas = ['', '', '']
        mine = keyed(r)
        if r is not results[0] and set(mine) == set(base):
            keys = sorted(base)
            for i, value in enumerate((lambda e: float(e['collision']),
                                       lambda e: float(e['off_road']), failed)):
                iv = paired_difference([value(mine[k]) for k in keys],
                                       [value(base[k]) for k in keys],
                                       np.arange(len(keys)), n_boot, seed)
                deltas[i] = f'{iv.mean:+.2f} [{iv.low:+.2f}, {iv.high:+.2f}]'
        suite = Path(r.get('suite', {}).get('path', '')).name
        lines.append(f'| {_row_name(r)} | {suite} | {len(eps)} | {ci(col, ids)} | '
                     f'{ci(off, ids)} | {ci(fail, ids)} | {ci(rc, ids)} | '
                     + ' | '.join(deltas) + ' |')
    fams = sorted({e['scenario'] for r in results for e in r['episodes']})

    def speeds(r: dict) -> dict:
        """Family -> (mean, p95) speed over its episodes."""
        by_fam = {}
        for e in r['episodes']:
            by_fam.setdefault(e['scenario'], []).append((e['mean_speed_mps'],
                                                         e['p95_speed_mps']))
        return {f: tuple(float(v) for v in np.mean(v, axis=0)) for f, v in by_fam.items()}

    expert = next((r for r in results if r['planner'] == 'expert'), None)
    ref = speeds(expert) if expert is not None else {}
    lines += ['', '| planner | ' + ' | '.join(f'{f}: mean / p95 [m/s]' for f in fams) + ' |',
              '|---|' + '---|' * len(fams)]
    for r in results:
        row, cells = speeds(r), []
        for fam in fams:
            if fam not in row:
                cells.append('-')
                continue
            mean, p95 = row[fam]
            cell = f'{mean:.1f} / {p95:.1f}'
            if ref.get(fam, (0.0,))[0] and r is not expert:
                cell += f' ({mean / ref[fam][0]:.2f} × expert)'
            cells.append(cell)
        lines.append(f'| {_row_name(r)} | ' + ' | '.join(cells) + ' |')
    # Failures per family: where a planner collides or leaves the road (and, for the record,
    # how often its centre left highway-env's lane strips without leaving the drivable area).
    lines += ['', '| planner | ' + ' | '.join(f'{f}: collision / off-road / off lanes'
                                              for f in fams) + ' |',
              '|---|' + '---|' * len(fams)]
    for r in results:
        cells, per_family = [], per_family_summary(r['episodes'])
        for fam in fams:
            if fam not in per_family:
                cells.append('-')
                continue
            f = per_family[fam]
            rates = (f['collision_rate'], f['off_road_rate'], f['off_lanes_rate'])
            cells.append(' / '.join(f'{v:.2f}' for v in rates) + f' ({f["episodes"]})')
        lines.append(f'| {_row_name(r)} | ' + ' | '.join(cells) + ' |')
    lines += crash_kind_table(results)
    return lines


def crash_kind_table(results: list) -> list:
    """
    Markdown lines: each row's collisions by kind (sim.closed_loop.CRASH_KINDS) and speeds.

    Empty when no row recorded crash geometry (results written before it existed); collided
    episodes without it count as 'unrecorded'.
    """
    from pair_drive_ros.sim.closed_loop import CRASH_KINDS

    crashes = [[e.get('crash') or {} for e in r['episodes'] if e['collision']] for r in results]
    if not any(c for row in crashes for c in row):
        return []
    lines = ['', '| planner | collisions | ' + ' | '.join(k.replace('_', ' ') for k in CRASH_KINDS)
             + ' | unrecorded | ego / other speed at the crash, mean [m/s] |',
             '|---|---|' + '---|' * (len(CRASH_KINDS) + 2)]
    for r, row in zip(results, crashes):
        known = [c for c in row if c]
        counts = [sum(c['kind'] == k for c in known) for k in CRASH_KINDS]
        speed = (f'{np.mean([c["ego_speed_mps"] for c in known]):.1f} / '
                 f'{np.mean([c["other_speed_mps"] for c in known]):.1f}' if known else '-')
        lines.append(f'| {_row_name(r)} | {len(row)} | ' + ' | '.join(map(str, counts))
                     + f' | {len(row) - len(known)} | {speed} |')
    return lines


def tables(dirs: list) -> str:
    """Markdown tables for evaluation folders (open_loop.json and/or closed_loop.json)."""
    rows, closed_only = [], []
    for d in dirs:
        d = Path(d)
        cl_path = d / 'closed_loop.json'
        cl = json.loads(cl_path.read_text()) if cl_path.is_file() else None
        if not (d / 'open_loop.json').is_file():
            if cl is None:
                raise FileNotFoundError(f'{d}: neither open_loop.json nor closed_loop.json')
            closed_only.append(cl)
            continue
        ol = json.loads((d / 'open_loop.json').read_text())
        rows.append((ol, cl, _il_info(ol.get('il_checkpoint'))))
    if not rows:
        return '\n'.join(closed_loop_tables(closed_only))
    cols = list(OPEN_LOOP_METRICS) + ['pdms', 'epdms']
    out = ['| planner | ' + ' | '.join(c.upper() for c in cols)
           + ' | plan ms/frame (eval, batch 32) | train time | params | size |',
           '|---|' + '---|' * (len(cols) + 4)]
    for ol, _, info in rows:
        s = ol['summary']
        extra = (f'{info["train_min"]:.1f} min ({info["epochs"]} ep) | {info["params"]:,} | '
                 f'{info["size_mb"]:.1f} MB' if info else '- | - | -')
        out.append(f'| {_row_name(ol)} | ' + ' | '.join(f'{s[c]:.1f}' for c in cols)
                   + f' | {ol["inference_ms"]:.1f} | {extra} |')
    fams = sorted({f for ol, _, _ in rows for f in ol['by_family']})
    out += ['', '| planner | ' + ' | '.join(f'{f} PDMS / EPDMS' for f in fams) + ' |',
            '|---|' + '---|' * len(fams)]
    for ol, _, _ in rows:
        bf = ol['by_family']
        out.append(f'| {_row_name(ol)} | ' + ' | '.join(
            f'{bf[f]["pdms"]:.1f} / {bf[f]["epdms"]:.1f}' if f in bf else '-' for f in fams)
            + ' |')
    closed = [(ol, cl) for ol, cl, _ in rows if cl is not None]
    if closed:
        out += ['', '| planner | episodes | collision rate | off-road rate | route completion | '
                'mean progress [m] | comfort violations / episode |',
                '|---|---|---|---|---|---|---|']
        for ol, cl in closed:
            s = cl['summary']
            out.append(f'| {_row_name(ol)} | {s["episodes"]} | {s["collision_rate"]:.2f} | '
                       f'{s["off_road_rate"]:.2f} | {s["route_completion"]:.2f} | '
                       f'{s["progress_m"]:.1f} | {s["comfort_violations"]:.1f} |')
    frames = {ol['frames'] for ol, _, _ in rows}
    out += ['', f'Open-loop frames per planner: {sorted(frames)}.']
    # Intervals and paired differences for every closed-loop run, with or without open loop.
    closed_only = [cl for _, cl in closed] + closed_only
    if closed_only:
        out += [''] + closed_loop_tables(closed_only)
    return '\n'.join(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of `pair-drive report table`."""
    parser.add_argument('dirs', nargs='+', help='pair-drive evaluate --out folders')


def run(args: argparse.Namespace) -> int:
    """Print the tables of these evaluation folders."""
    sys.stdout.write(tables(args.dirs) + '\n')
    return 0
