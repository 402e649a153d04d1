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
Closed-loop evaluation split over processes or machines by seed range, merged back into one.

Each shard is an ordinary `pair-drive evaluate` with `--closed-loop-skip`: shard k of a run of
E episodes per scenario in n shards of E / n drives seeds [k E / n, (k + 1) E / n) of every
scenario's range. `pair-drive report merge` puts the shards' closed_loop.json together in the
order one run drives them (scenarios in suite order, seeds ascending) and recomputes the
summary, so the merged file equals the one-process run's (but for wall times):

    pair-drive evaluate ... --closed-loop-episodes 5 --out runs/e/0
    pair-drive evaluate ... --closed-loop-episodes 5 --closed-loop-skip 5 --out runs/e/1
    pair-drive report merge runs/e/0 runs/e/1 --out runs/e/all
"""

import argparse
import json
import logging
from pathlib import Path

from pair_drive_ros.evaluation.evaluate import closed_loop_summary, markdown_table
from pair_drive_ros.sim.suite import load_suite

LOG = logging.getLogger(__name__)
# Settings that differ between shards by design; every other setting must agree.
SHARD_KEYS = ('closed_loop_episodes', 'closed_loop_skip', 'seeds', 'out')


class ShardError(ValueError):
    """The shards do not belong to one evaluation (other planner or settings, overlapping)."""


def merge_closed_loop(parts: list, suite=None) -> dict:
    """
    Merge closed-loop results ({'episodes': rows, ...}) of shards into one result.

    Rows are ordered as one run drives them (suite order of the scenarios, then seed);
    an episode in two shards is an error. The summary is recomputed from the merged rows.
    """
    suite = suite or load_suite()
    order = {name: i for i, name in enumerate(suite.names())}
    rows, seen = [], set()
    for part in parts:
        for row in part['episodes']:
            key = (row['scenario'], int(row['seed']))
            if key in seen:
                raise ShardError(f'episode {key} is in more than one shard')
            if row['scenario'] not in order:
                raise ShardError(f'scenario {row["scenario"]!r} is not in the suite')
            seen.add(key)
            rows.append(row)
    rows.sort(key=lambda r: (order[r['scenario']], int(r['seed'])))
    return {'summary': closed_loop_summary(rows), 'episodes': rows}


def _meta(data: dict) -> dict:
    meta = {k: v for k, v in data.items() if k not in ('summary', 'episodes')}
    meta['config'] = {k: v for k, v in (meta.get('config') or {}).items()
                      if k not in SHARD_KEYS}
    return meta


def merge_folders(folders: list, out: str | Path) -> dict:
    """Merge the closed_loop.json of `pair-drive evaluate` shard folders into out/."""
    parts = []
    for folder in folders:
        path = Path(folder) / 'closed_loop.json'
        if not path.is_file():
            raise ShardError(f'{path} does not exist (run the shard with '
                             '--closed-loop-episodes > 0)')
        parts.append(json.loads(path.read_text()))
    metas = [_meta(p) for p in parts]
    for folder, meta in zip(folders[1:], metas[1:]):
        if meta != metas[0]:
            raise ShardError(f'{folder} is not a shard of {folders[0]}: planner, checkpoints, '
                             'data or settings differ')
    suite_path = (parts[0].get('suite') or {}).get('path')
    suite = load_suite(suite_path) if suite_path else None
    merged = {**metas[0], 'shards': [str(f) for f in folders],
              **merge_closed_loop(parts, suite)}
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / 'closed_loop.json.tmp'
    tmp.write_text(json.dumps(merged, indent=1))
    tmp.replace(out / 'closed_loop.json')
    (out / 'summary.md').write_text(markdown_table(merged.get('planner', ''), None, merged)
                                    + '\n')
    return merged


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI flags of `pair-drive report merge`."""
    parser.add_argument('folders', nargs='+', help='`pair-drive evaluate --out` folders')
    parser.add_argument('--out', required=True, help='folder for the merged closed_loop.json')


def run(args: argparse.Namespace) -> int:
    """Entry point of `pair-drive report merge`."""
    try:
        merged = merge_folders(args.folders, args.out)
    except ShardError as err:
        LOG.error('%s', err)
        return 2
    LOG.info('%d episodes from %d shards -> %s', len(merged['episodes']), len(args.folders),
             args.out)
    return 0
