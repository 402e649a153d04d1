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
`pair-drive generate`: record expert episodes of a scenario suite into scene logs.

Jobs are (scenario, seed) pairs (sim.suite.resolve_jobs): either `--seeds` (explicit seeds,
optionally per scenario; the split is then just the output label) or `--episodes N`, split over
the split's scenarios in proportion to their `weight` (largest remainder), taking the first
seeds of each scenario's range. Either way the same command produces the same files, and an
episode file depends only on (suite entry, seed, step cap), so runs shard by seed range:
`--seeds 0-9` plus `--seeds 10-19` write exactly the files of `--seeds 0-19`. One process per
worker; finished episodes are skipped (resumable; files are written atomically). A failing
episode is logged and skipped; the run goes on.
Output: OUT/<split>/<scenario>/<scenario>_s<seed:06d>.npz, and OUT/<split>/MANIFEST.json at the
end of every run: the episodes present (of this run and of earlier runs into the same split,
made with the same suite file), the failures with their error, and the suite's sha256.
"""

import argparse
from concurrent.futures import as_completed, ProcessPoolExecutor
from dataclasses import dataclass
import hashlib
import json
import logging
import os
from pathlib import Path
import time

from pair_drive_ros.core.config import add_config_arguments, config_from_args, config_text
from pair_drive_ros.core.config import config_to_dict
from pair_drive_ros.core.files import write_text_atomic
from pair_drive_ros.sim.logs import LogFormatError, read_meta, SCHEMA_VERSION
from pair_drive_ros.sim.suite import allot, check_split_name, DEFAULT_SUITE, load_suite
from pair_drive_ros.sim.suite import resolve_jobs, SuiteError

LOG = logging.getLogger(__name__)

__all__ = ['allot', 'plan_jobs', 'record_episode', 'write_manifest', 'run']

SEEDS_HELP = (
    'explicit seeds instead of --episodes: "11000-11019" (inclusive), "3", "0-9,20,30-31" for '
    'every selected scenario, or per scenario "highway=0-9;merge=100-104" (scenarios not named '
    'get none). Shard a data set by running disjoint ranges, possibly on several machines: '
    '--seeds 0-9 and --seeds 10-19 write the same files as --seeds 0-19')


@dataclass(frozen=True)
class GenerateConfig:
    """Settings of `pair-drive generate` (`--set key=value` or `--<key>` overrides)."""

    suite: str = str(DEFAULT_SUITE)   # scenario suite YAML
    split: str = 'train'   # picks the suite's seed ranges (with episodes) and names the folder
    episodes: int = 0      # total episodes over the split's scenarios (0: 8, unless seeds)
    seeds: str = ''        # seed spec instead of episodes (SEEDS_HELP); split is then a label
    scenarios: str = ''    # comma-separated subset of scenarios
    workers: int = 1       # worker processes
    out: str = 'data/logs'  # output root directory
    max_steps: int = 0     # override the step cap (0: the scenario's)
    progress: bool = True  # progress bar


GENERATE_FLAGS = ('suite', 'split', 'episodes', 'seeds', 'scenarios', 'workers', 'out',
                  'max_steps')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options: the GenerateConfig fields."""
    add_config_arguments(parser, None, GENERATE_FLAGS)
    parser.epilog = 'seeds: ' + SEEDS_HELP


def plan_jobs(suite, split: str, episodes: int, names: list[str] | None = None
              ) -> list[tuple[str, int]]:
    """Deterministic (scenario, seed) jobs for `episodes` of a split (see resolve_jobs)."""
    return resolve_jobs(suite, split, episodes=episodes, scenarios=names)


def episode_path(out: Path, split: str, scenario: str, seed: int) -> Path:
    """Where an episode is written."""
    return out / split / scenario / f'{scenario}_s{seed:06d}.npz'


def record_episode(suite_path: str, split: str, scenario: str, seed: int, path: str,
                   max_steps: int = 0) -> dict:
    """
    Run the scenario's expert for one seed and write the log (worker entry point).

    The log goes on past the goal (record_past_goal) so that the frames before it have a logged
    future; its meta holds the episode's outcome as decided (sim.closed_loop.SimSession).
    """
    from pair_drive_ros.sim.closed_loop import SimSession

    t0 = time.perf_counter()
    session = SimSession(scenario, suite=suite_path, ego_mode='expert',
                         max_steps=max_steps or None, split=split, record_past_goal=True)
    try:
        session.reset(seed)
        while not session.done:
            session.step()
        log = session.log()
        log.save(path)
    finally:
        if session.env is not None:
            session.env.close()
    return {'path': path, 'frames': log.num_frames, 'seconds': time.perf_counter() - t0,
            'crashed': log.meta['expert_crashed'], 'end_cause': log.meta['end_cause']}


def _init_worker() -> None:
    # One BLAS thread per worker: the machine's cores are the workers.
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    logging.getLogger('highway_env').setLevel(logging.ERROR)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _episode_entry(base: Path, path: Path, name: str, seed: int) -> dict:
    meta = read_meta(path)
    return {
        'file': path.relative_to(base).as_posix(), 'scenario': name, 'family': meta['family'],
        'seed': seed, 'num_frames': meta['num_frames'],
        'scorable_frames': max(0, meta['num_frames'] - 40),
        'expert_crashed': meta['expert_crashed'],
        'route_completion': meta['route_completion'],
        'end_cause': meta.get('end_cause', ''), 'sha256': _sha256(path)}


def write_manifest(out: Path, split: str, suite_path: str, jobs: list[tuple[str, int]],
                   failures: dict | None = None, config: dict | None = None) -> Path:
    """
    Write OUT/<split>/MANIFEST.json: the episodes and failures of `jobs` and earlier runs.

    failures: (scenario, seed) -> error text of this run. Entries of an existing manifest of the
    same suite file (same sha256) are kept unless this run redid them (shards of a data set
    written into one folder add up); a manifest of another suite file is an error, not
    overwritten. Episodes and failures are sorted by (scenario, seed). `config`, the run's
    resolved GenerateConfig, is added to the manifest's `configs` (one entry per distinct run).
    """
    out = Path(out)
    base = out / split
    base.mkdir(parents=True, exist_ok=True)
    suite_file = Path(suite_path)
    suite_sha = _sha256(suite_file) if suite_file.is_file() else ''
    path = base / 'MANIFEST.json'
    episodes: dict = {}
    failed: dict = {}
    configs: list = []
    if path.is_file():
        old = json.loads(path.read_text())
        if old.get('suite_sha256', suite_sha) != suite_sha:
            raise SuiteError(f'{path} was written for another suite file (sha256 '
                             f'{old.get("suite_sha256")}); write to another --out or --split')
        for e in old.get('episodes', []):
            if (base / e['file']).is_file():
                episodes[(e['scenario'], int(e['seed']))] = e
        for e in old.get('failures', []):
            failed[(e['scenario'], int(e['seed']))] = e
        configs = list(old.get('configs', []))
    if config is not None and config not in configs:
        configs.append(config)
    failures = failures or {}
    for name, seed in jobs:
        key = (name, int(seed))
        ep = episode_path(out, split, name, seed)
        if key in failures:
            failed[key] = {'scenario': name, 'seed': int(seed), 'error': failures[key]}
            episodes.pop(key, None)
        elif ep.is_file():
            episodes[key] = _episode_entry(base, ep, name, int(seed))
            failed.pop(key, None)
    rows = [episodes[k] for k in sorted(episodes)]
    manifest = {
        'schema_version': SCHEMA_VERSION, 'split': split, 'suite': suite_path,
        'suite_sha256': suite_sha, 'episodes': rows, 'num_episodes': len(rows),
        'num_frames': sum(e['num_frames'] for e in rows),
        'num_scorable_frames': sum(e['scorable_frames'] for e in rows),
        'expert_crashes': sum(e['expert_crashed'] for e in rows),
        'failures': [failed[k] for k in sorted(failed)], 'num_failures': len(failed),
        'configs': configs,
    }
    return write_text_atomic(path, json.dumps(manifest, indent=1, sort_keys=True))


def _jobs(cfg: GenerateConfig, suite) -> list[tuple[str, int]]:
    names = [n for n in str(cfg.scenarios).split(',') if n] or None
    if cfg.seeds and cfg.episodes:
        raise SuiteError('give --seeds or --episodes, not both')
    if cfg.seeds:
        return resolve_jobs(suite, cfg.split, seeds=str(cfg.seeds), scenarios=names)
    return resolve_jobs(suite, cfg.split, episodes=cfg.episodes or 8, scenarios=names)


def run(args: argparse.Namespace) -> int:
    """Generate the requested episodes; 0 when all succeeded, 1 when some failed (skipped)."""
    try:
        args = config_from_args(GenerateConfig, args)
        LOG.info('pair-drive generate config:\n%s', config_text(args))
        check_split_name(args.split)
        suite = load_suite(args.suite)
        jobs = _jobs(args, suite)
    except (SuiteError, ValueError, FileNotFoundError) as err:
        LOG.error('%s', err)
        return 2
    out = Path(args.out)
    todo = [(n, s) for n, s in jobs if not episode_path(out, args.split, n, s).is_file()]
    LOG.info('%d episodes planned, %d already done, %d to run on %d worker(s)',
             len(jobs), len(jobs) - len(todo), len(todo), args.workers)
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        tqdm = None
    bar = None if (tqdm is None or not args.progress) else tqdm(total=len(todo), unit='ep')
    t0 = time.perf_counter()
    frames = 0
    failures: dict = {}

    def done(job: tuple[str, int], res: dict | None, err: BaseException | None) -> None:
        nonlocal frames
        if err is not None:
            # The job's error, logged with its traceback, is recorded and the run goes on.
            failures[job] = f'{type(err).__name__}: {err}'
            LOG.error('episode %s seed %d failed: %s', job[0], job[1], failures[job],
                      exc_info=err)
        else:
            frames += res['frames']
        if bar is not None:
            bar.update(1)
            bar.set_postfix(frames=frames, failed=len(failures),
                            fps=f'{frames / (time.perf_counter() - t0):.0f}')

    def args_of(name: str, seed: int) -> tuple:
        return (args.suite, args.split, name, seed,
                str(episode_path(out, args.split, name, seed)), args.max_steps)

    if args.workers <= 1:
        _init_worker()
        for job in todo:
            try:
                res = record_episode(*args_of(*job))
            except Exception as err:  # noqa: BLE001 - any episode error is recorded
                done(job, None, err)
            else:
                done(job, res, None)
    else:
        with ProcessPoolExecutor(max_workers=args.workers, initializer=_init_worker) as pool:
            futures = {pool.submit(record_episode, *args_of(*job)): job for job in todo}
            for fut in as_completed(futures):
                try:
                    res = fut.result()
                except Exception as err:  # noqa: BLE001 - any episode error is recorded
                    done(futures[fut], None, err)
                else:
                    done(futures[fut], res, None)
    if bar is not None:
        bar.close()
    wall = time.perf_counter() - t0
    if todo and wall > 0:
        LOG.info('%d frames in %.1f s: %.1f frames/s total, %.1f frames/s per worker', frames,
                 wall, frames / wall, frames / wall / max(1, args.workers))
    try:
        path = write_manifest(out, args.split, args.suite, jobs, failures,
                              config_to_dict(args))
    except (SuiteError, LogFormatError) as err:
        LOG.error('MANIFEST.json not written: %s', err)
        return 1
    LOG.info('wrote %s', path)
    if failures:
        LOG.error('%d of %d episodes failed (listed in %s)', len(failures), len(jobs), path)
        return 1
    return 0
