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
"""

import argparse
import json
from pathlib import Path
import sys

from pair_drive_ros.evaluation.evaluate import OPEN_LOOP_METRICS


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


def tables(dirs: list) -> str:
    """Markdown tables for evaluation folders (open_loop.json, optional closed_loop.json)."""
    rows = []
    for d in dirs:
        d = Path(d)
        ol = json.loads((d / 'open_loop.json').read_text())
        cl_path = d / 'closed_loop.json'
        cl = json.loads(cl_path.read_text()) if cl_path.is_file() else None
        rows.append((ol, cl, _il_info(ol.get('il_checkpoint'))))
    cols = list(OPEN_LOOP_METRICS) + ['pdms', 'epdms']
    out = ['| planner | ' + ' | '.join(c.upper() for c in cols)
           + ' | plan ms/frame (eval, batch 32) | train time | params | size |',
           '|---|' + '---|' * (len(cols) + 4)]
    for ol, _, info in rows:
        s = ol['summary']
        extra = (f'{info["train_min"]:.1f} min ({info["epochs"]} ep) | {info["params"]:,} | '
                 f'{info["size_mb"]:.1f} MB' if info else '- | - | -')
        out.append(f'| {ol["planner"]} | ' + ' | '.join(f'{s[c]:.1f}' for c in cols)
                   + f' | {ol["inference_ms"]:.1f} | {extra} |')
    fams = sorted({f for ol, _, _ in rows for f in ol['by_family']})
    out += ['', '| planner | ' + ' | '.join(f'{f} PDMS / EPDMS' for f in fams) + ' |',
            '|---|' + '---|' * len(fams)]
    for ol, _, _ in rows:
        bf = ol['by_family']
        out.append(f'| {ol["planner"]} | ' + ' | '.join(
            f'{bf[f]["pdms"]:.1f} / {bf[f]["epdms"]:.1f}' if f in bf else '-' for f in fams)
            + ' |')
    closed = [(ol, cl) for ol, cl, _ in rows if cl is not None]
    if closed:
        out += ['', '| planner | episodes | collision rate | off-road rate | route completion | '
                'mean progress [m] | comfort violations / episode |',
                '|---|---|---|---|---|---|---|']
        for ol, cl in closed:
            s = cl['summary']
            out.append(f'| {ol["planner"]} | {s["episodes"]} | {s["collision_rate"]:.2f} | '
                       f'{s["off_road_rate"]:.2f} | {s["route_completion"]:.2f} | '
                       f'{s["progress_m"]:.1f} | {s["comfort_violations"]:.1f} |')
    frames = {ol['frames'] for ol, _, _ in rows}
    out += ['', f'Open-loop frames per planner: {sorted(frames)}.']
    return '\n'.join(out)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of `pair-drive report table`."""
    parser.add_argument('dirs', nargs='+', help='pair-drive evaluate --out folders')


def run(args: argparse.Namespace) -> int:
    """Print the tables of these evaluation folders."""
    sys.stdout.write(tables(args.dirs) + '\n')
    return 0
