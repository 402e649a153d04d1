"""`pair-drive generate`: record expert episodes of a scenario suite into scene logs.

Jobs are (scenario, seed) pairs: `--episodes N` is split over the split's scenarios in
proportion to their `weight` (largest remainder), taking the first seeds of each scenario's
range, so the same command always produces the same files. One process per worker; finished
episodes are skipped (resumable; files are written atomically).
Output: OUT/<split>/<scenario>/<scenario>_s<seed:06d>.npz, and OUT/<split>/MANIFEST.json once
every job of the command has finished.
"""

import argparse
from concurrent.futures import as_completed, ProcessPoolExecutor
import hashlib
import json
import logging
import os
from pathlib import Path
import time

import numpy as np

from pair_drive_ros.sim.logs import read_meta, SCHEMA_VERSION
from pair_drive_ros.sim.suite import DEFAULT_SUITE, load_suite, SPLITS

LOG = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Command-line options."""
    parser.add_argument('--suite', default=str(DEFAULT_SUITE), help='scenario suite YAML')
    parser.add_argument('--split', choices=SPLITS, default='train')
    parser.add_argument('--episodes', type=int, default=8, help='total episodes (all scenarios)')
    parser.add_argument('--scenarios', default='', help='comma-separated subset of scenarios')
    parser.add_argument('--workers', type=int, default=1, help='worker processes')
    parser.add_argument('--out', default='data/logs', help='output root directory')
    parser.add_argument('--max-steps', type=int, default=0, help='override the step cap')
    parser.add_argument('--no-progress', action='store_true', help='no progress bar')


def allot(total: int, weights: list[float]) -> list[int]:
    """Split `total` in proportion to `weights` (largest remainder, ties to the first)."""
    w = np.asarray(weights, dtype=np.float64)
    if total < 0 or len(w) == 0 or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f'cannot split {total} episodes with weights {list(weights)}')
    exact = total * w / w.sum()
    counts = np.floor(exact).astype(int)
    order = sorted(range(len(w)), key=lambda k: (-(exact[k] - counts[k]), k))
    for k in order[:total - int(counts.sum())]:
        counts[k] += 1
    return [int(c) for c in counts]


def plan_jobs(suite, split: str, episodes: int, names: list[str] | None = None
              ) -> list[tuple[str, int]]:
    """Deterministic (scenario, seed) jobs for a split."""
    names = names or [n for n in suite.names() if split in suite.get(n).seeds]
    if not names:
        raise ValueError(f'no scenario of the suite has seeds for split {split!r}')
    jobs = []
    per = allot(episodes, [suite.get(n).weight for n in names])
    for name, count in zip(names, per):
        seeds = suite.get(name).seed_range(split)
        if count > len(seeds):
            raise ValueError(f'{name}: {count} episodes requested, only {len(seeds)} seeds in '
                             f'split {split}')
        jobs.extend((name, seeds[i]) for i in range(count))
    # Interleave scenarios so that partial runs cover every family.
    order = sorted(range(len(jobs)), key=lambda j: (jobs[j][1], names.index(jobs[j][0])))
    return [jobs[j] for j in order]


def episode_path(out: Path, split: str, scenario: str, seed: int) -> Path:
    """Where an episode is written."""
    return out / split / scenario / f'{scenario}_s{seed:06d}.npz'


def record_episode(suite_path: str, split: str, scenario: str, seed: int, path: str,
                   max_steps: int = 0) -> dict:
    """Run the scenario's expert for one seed and write the log (worker entry point)."""
    from pair_drive_ros.sim.closed_loop import SimSession

    t0 = time.perf_counter()
    session = SimSession(scenario, suite=suite_path, ego_mode='expert',
                         max_steps=max_steps or None, split=split, record_past_goal=True)
    session.reset(seed)
    while not session.done:
        session.step()
    log = session.log()
    log.save(path)
    session.env.close()
    return {'path': path, 'frames': log.num_frames, 'seconds': time.perf_counter() - t0,
            'crashed': log.meta['expert_crashed']}


def _init_worker() -> None:
    # One BLAS thread per worker: the machine's cores are the workers.
    os.environ.setdefault('OMP_NUM_THREADS', '1')
    logging.getLogger('highway_env').setLevel(logging.ERROR)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(out: Path, split: str, suite_path: str, jobs: list[tuple[str, int]]) -> Path:
    """MANIFEST.json of a finished split: episodes with frame counts, outcome and hashes."""
    base = out / split
    episodes = []
    for name, seed in jobs:
        path = episode_path(out, split, name, seed)
        meta = read_meta(path)
        episodes.append({
            'file': str(path.relative_to(base)), 'scenario': name, 'family': meta['family'],
            'seed': seed, 'num_frames': meta['num_frames'],
            'scorable_frames': max(0, meta['num_frames'] - 40),
            'expert_crashed': meta['expert_crashed'], 'route_completion':
            meta['route_completion'], 'sha256': _sha256(path)})
    manifest = {
        'schema_version': SCHEMA_VERSION, 'split': split, 'suite': suite_path,
        'episodes': episodes, 'num_episodes': len(episodes),
        'num_frames': sum(e['num_frames'] for e in episodes),
        'num_scorable_frames': sum(e['scorable_frames'] for e in episodes),
        'expert_crashes': sum(e['expert_crashed'] for e in episodes),
    }
    path = base / 'MANIFEST.json'
    tmp = path.with_suffix('.tmp')
    tmp.write_text(json.dumps(manifest, indent=1, sort_keys=True))
    tmp.replace(path)
    return path


def run(args: argparse.Namespace) -> int:
    """Generate the requested episodes; returns 0 when all succeeded."""
    suite = load_suite(args.suite)
    names = [n for n in args.scenarios.split(',') if n] or None
    jobs = plan_jobs(suite, args.split, args.episodes, names)
    out = Path(args.out)
    todo = [(n, s) for n, s in jobs if not episode_path(out, args.split, n, s).is_file()]
    LOG.info('%d episodes planned, %d already done, %d to run on %d worker(s)',
             len(jobs), len(jobs) - len(todo), len(todo), args.workers)
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover - tqdm is a dependency
        tqdm = None
    bar = None if (tqdm is None or args.no_progress) else tqdm(total=len(todo), unit='ep')
    t0 = time.perf_counter()
    frames = 0
    failures = 0
    results = []

    def done(res: dict) -> None:
        nonlocal frames
        frames += res['frames']
        results.append(res)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(frames=frames, fps=f'{frames / (time.perf_counter() - t0):.0f}')

    if args.workers <= 1:
        _init_worker()
        for name, seed in todo:
            done(record_episode(args.suite, args.split, name, seed,
                                str(episode_path(out, args.split, name, seed)), args.max_steps))
    else:
        with ProcessPoolExecutor(max_workers=args.workers, initializer=_init_worker) as pool:
            futures = {pool.submit(record_episode, args.suite, args.split, name, seed,
                                   str(episode_path(out, args.split, name, seed)),
                                   args.max_steps): (name, seed) for name, seed in todo}
            for fut in as_completed(futures):
                try:
                    done(fut.result())
                except Exception:  # noqa: BLE001 - report and continue with other episodes
                    failures += 1
                    LOG.exception('episode %s failed', futures[fut])
    if bar is not None:
        bar.close()
    wall = time.perf_counter() - t0
    if todo:
        LOG.info('%d frames in %.1f s: %.1f frames/s total, %.1f frames/s per worker', frames,
                 wall, frames / wall, frames / wall / max(1, args.workers))
    if failures:
        LOG.error('%d episodes failed; MANIFEST.json not written', failures)
        return 1
    path = write_manifest(out, args.split, args.suite, jobs)
    LOG.info('wrote %s', path)
    return 0
