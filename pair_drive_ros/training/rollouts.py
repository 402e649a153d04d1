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
On-policy rollouts: drive a planner in the simulator and keep the episodes as scene logs.

The selector learns from the expert's logs, where the ego is always where the expert put it. In
closed loop PaIR drives itself into states the expert never visits: picking a candidate a
little faster than the IL plan at every replan compounds (the next IL plan starts from the
higher speed), until the ego closes on the lead vehicle at 28-31 m/s where the expert drives
22-25. Logs of PaIR's own episodes hold those states; labelled like the expert's logs
(train_selector `extra_data_roots`), they teach the selector what its picks lead to (one
DAgger round). Only the IL-A planner drives, so IL-B stays plug-and-play.

    pair-drive train rollouts --out data/logs_onpolicy --episodes 20

Output: OUT/<split>/<scenario>/<scenario>_s<seed:06d>.npz (the generate layout; finished
episodes are skipped). The log's 'expert' is the planner's own driven future.
"""

import argparse
from dataclasses import dataclass, fields
import logging
from pathlib import Path
import time

import numpy as np

from pair_drive_ros.core.scene import SCENE_FUTURE_STEPS
from pair_drive_ros.core.trajectory import NUM_POSES
from pair_drive_ros.policy.factory import shipped
from pair_drive_ros.sim.generate import episode_path

LOG = logging.getLogger(__name__)
OUTCOME_DIR = 'candidate_outcomes'   # beside the split folders: OUT/candidate_outcomes/<split>/


@dataclass(frozen=True)
class RolloutConfig:
    """Which planner drives which seeds."""

    out: str = 'data/logs_onpolicy'
    split: str = 'train'
    episodes: int = 20                 # per scenario: the first seeds of the split's range
    skip_seeds: int = 0                # per scenario: start after this many (extend a set)
    scenarios: tuple = ()              # the suite's scenarios to drive (() : all)
    il_checkpoint: str = shipped('transfuser')
    rl_checkpoint: str = shipped('rl_branch')
    selector_checkpoint: str = shipped('selector')
    replan_every: int = 5              # steps of 0.1 s, as the closed-loop evaluation
    max_steps: int = 0                 # > 0: overrides each scenario's step cap
    # The closed-loop evaluation's rule: an episode ends off-road where the ego leaves the
    # scorer's drivable area. 'lanes' (leaving highway-env's lane strips) ends every roundabout
    # rollout at the corner where the entry lane meets the ring, so the ring is never recorded;
    # it is the shipped selector's rule (the zoo and `make selector` pass it).
    off_road: str = 'drivable_area'
    # Candidate outcomes (selector labels from closed loop, train_selector
    # `closed_loop_outcomes`): every `label_every` frames (the selector's frame_stride) each
    # of the driven planner's candidates is tracked, held unchanged, for `outcome_horizon_steps`
    # steps in a copy of the simulator; did it crash or leave the road? 0: off. Written beside
    # the logs (outcome_path); `label_scenarios` limits it to these scenarios (() : all).
    outcome_horizon_steps: int = 0
    label_every: int = 4
    label_scenarios: tuple = ()
    # DAgger: the scenario expert's plan from the driven state (SimSession.expert_plan) at the
    # same frames becomes the log's expert there (`expert_plan`); an IL planner trained on the
    # root (`train il --set extra_data_roots=...`) learns what to do where it drives itself.
    expert_relabel: bool = False
    # Who drives: 'pair' (IL-A + RL branch + selector) or 'il' (the IL checkpoint alone, for
    # DAgger on the IL planner's own states).
    driver: str = 'pair'
    threads: int = 1


def outcome_path(episode: str | Path) -> Path:
    """Where the candidate outcomes of an episode log are kept (beside its split, not in it)."""
    episode = Path(episode)
    return episode.parents[2] / OUTCOME_DIR / episode.parent.parent.name / \
        episode.parent.name / episode.name


def load_outcomes(episode: str | Path) -> dict | None:
    """
    Load an episode's candidate outcomes, or None where none were tried.

    {frame: (candidates (K, 8, 3), collision (K,), off_road (K,))}.
    """
    path = outcome_path(episode)
    if not path.is_file():
        return None
    with np.load(path) as z:
        return {int(k): (z['candidates'][i], z['collision'][i], z['off_road'][i])
                for i, k in enumerate(z['frames'])}


def outcome_summary(root: str | Path, split: str, num_leaves: int, num_stops: int = 0) -> dict:
    """
    Count, over the tried frames of a rollout root, what the candidates led to.

    Candidates are PaIR's: [IL plan, num_leaves tree leaves, plan variants, num_stops braking
    candidates]. Returns per scenario: frames tried, frames whose IL plan crashed or left the
    road ('il_failed'), and of those the frames where some leaf / some variant / only a leaf /
    only a variant / nothing was safe. With braking candidates also where some stop / only a
    stop was safe, and over all frames where a stop itself failed ('stop_failed': struck from
    behind, or already in the other car's path).
    """
    from pair_drive_ros.sim.logs import episode_paths

    keys = ('frames', 'il_failed', 'leaf_safe', 'variant_safe', 'only_leaf_safe',
            'only_variant_safe', 'none_safe')
    if num_stops:
        keys += ('stop_safe', 'only_stop_safe', 'stop_failed')
    out = {}
    for episode in episode_paths(Path(root), split):
        outcomes = load_outcomes(episode)
        if outcomes is None:
            continue
        row = out.setdefault(episode.parent.name, dict.fromkeys(keys, 0))
        for _, collision, off_road in outcomes.values():
            ok = ~(collision | off_road)
            end = len(ok) - num_stops
            row['frames'] += 1
            stop = bool(ok[end:].any())
            if num_stops:
                row['stop_failed'] += not ok[end:].all()
            if ok[0]:
                continue
            leaf, variant = bool(ok[1:1 + num_leaves].any()), bool(ok[1 + num_leaves:end].any())
            row['il_failed'] += 1
            row['leaf_safe'] += leaf
            row['variant_safe'] += variant
            row['only_leaf_safe'] += leaf and not (variant or stop)
            row['only_variant_safe'] += variant and not (leaf or stop)
            row['none_safe'] += not (leaf or variant or stop)
            if num_stops:
                row['stop_safe'] += stop
                row['only_stop_safe'] += stop and not (leaf or variant)
    return out


def drive_and_label(scenario: str, seed: int, planner, split: str, replan_every: int,
                    max_steps: int, off_road: str, every: int, horizon_steps: int,
                    relabel: bool):
    """
    Drive one episode like sim.closed_loop.run_episode, labelling every `every` frames.

    horizon_steps > 0: the planner also plans at those frames and each of its candidates is
    tried (SimSession.try_candidates); relabel: the scenario expert's plan from those frames'
    states (SimSession.expert_plan) becomes the log's `expert_plan` there. Returns
    (EpisodeLog, collided, outcomes: dict of arrays frames, candidates, collision, off_road).
    """
    from pair_drive_ros.policy.closed_loop import closed_loop_policy
    from pair_drive_ros.sim.closed_loop import SimSession

    last = {}
    policy = closed_loop_policy(planner, on_plan=lambda frame, plan: last.update(plan=plan))
    # Past a failure the log goes on for a scene's future, so the frames before it (where
    # the candidates still differ, where the expert would have acted) are scorable.
    session = SimSession(scenario, ego_mode='tracking', max_steps=max_steps or None,
                         split=split, off_road=off_road,
                         record_past_failure_steps=SCENE_FUTURE_STEPS)
    session.reset(int(seed))
    rows = {'frames': [], 'candidates': [], 'collision': [], 'off_road': []}
    plans = {}
    while not session.done:
        if session.end_cause:      # past the failure the log only records
            session.step()
            continue
        k = session.steps
        replan = k % max(1, replan_every) == 0
        label = k % every == 0
        if relabel and label:
            plans[k] = session.expert_plan()
        tries = label and horizon_steps > 0
        if replan or tries:
            traj = policy(session.sensor_frame(), session.scene())
            if tries:
                cands = last['plan'].candidates
                if cands is None:
                    raise ValueError('candidate outcomes need a planner with candidates (PaIR)')
                collision, left = session.try_candidates(cands, horizon_steps)
                for key, v in zip(rows, (k, cands.astype(np.float32), collision, left)):
                    rows[key].append(v)
            if replan:
                session.set_trajectory(traj)
        elif policy.needs_every_frame:
            # Planning every `every` and every `replan_every` frames leaves gaps where a past
            # sweep's slot falls; fed every frame, the features equal the log's (the labels').
            policy.observe(session.sensor_frame())
        session.step()
    log = session.log()
    if relabel:
        expert = np.full((log.num_frames, NUM_POSES, 3), np.nan, np.float32)
        for k, plan in plans.items():
            expert[k] = plan
        log.arrays['expert_plan'] = expert
    outcomes = {key: np.asarray(v) for key, v in rows.items()} if horizon_steps > 0 else None
    return log, session.end_cause == 'collision', outcomes


def collect(policy, planner, out: str | Path, split: str, jobs: list, replan_every: int = 5,
            max_steps: int = 0, off_road: str = 'drivable_area', outcome_horizon_steps: int = 0,
            label_every: int = 4, label_scenarios: tuple = (),
            expert_relabel: bool = False) -> list[dict]:
    """
    Drive (scenario, seed) jobs with policy(frame, scene) and write their logs.

    planner.reset() starts each episode; max_steps > 0 overrides the scenario's step cap;
    off_road: the rule that ends an episode off the road (RolloutConfig.off_road);
    outcome_horizon_steps, label_*, expert_relabel: labels (RolloutConfig; those episodes are
    driven by `planner` directly).
    Returns one summary row per episode written (existing files are skipped).
    """
    from pair_drive_ros.sim.closed_loop import run_episode

    rows = []
    for name, seed in jobs:
        path = episode_path(Path(out), split, name, int(seed))
        if path.is_file():
            continue
        t0 = time.perf_counter()
        planner.reset()
        outcomes = None
        if (outcome_horizon_steps > 0 or expert_relabel) and (
                not label_scenarios or name in label_scenarios):
            log, crashed, outcomes = drive_and_label(
                name, seed, planner, split, replan_every, max_steps, off_road, label_every,
                outcome_horizon_steps, expert_relabel)
        else:
            result = run_episode(name, int(seed), policy, max_steps=max_steps or None,
                                 replan_every=replan_every, record=True, ego_mode='tracking',
                                 split=split, off_road=off_road)
            log, crashed = result.log, result.collision
        if outcomes is not None:
            # The outcomes first: a log without them would be read as "none were tried".
            target = outcome_path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(target, **outcomes)
        path.parent.mkdir(parents=True, exist_ok=True)
        log.save(path)
        rows.append({'scenario': name, 'seed': int(seed), 'frames': log.num_frames,
                     'crashed': bool(crashed), 'seconds': time.perf_counter() - t0})
        LOG.info('%s seed %d: %d frames%s (%.1f s)', name, seed, log.num_frames,
                 ', crashed' if crashed else '', rows[-1]['seconds'])
    return rows


def main(cfg: RolloutConfig) -> list[dict]:
    """Roll out IL-A + PaIR (or the IL planner alone) on the split's first seeds."""
    from pair_drive_ros.policy.pair import PaIRPlanner
    from pair_drive_ros.training.common import set_threads
    from pair_drive_ros.policy.closed_loop import closed_loop_policy
    from pair_drive_ros.sim.suite import split_scenarios

    set_threads(cfg.threads)
    if cfg.driver == 'il':
        from pair_drive_ros.policy.il_planner import load_il_planner

        planner = load_il_planner(cfg.il_checkpoint)
    elif cfg.driver == 'pair':
        planner = PaIRPlanner.from_checkpoints(cfg.il_checkpoint, cfg.rl_checkpoint,
                                               cfg.selector_checkpoint)
    else:
        raise ValueError(f"driver must be 'pair' or 'il', got {cfg.driver!r}")
    jobs = [(name, seed) for name, seed in split_scenarios(cfg.split, cfg.episodes,
                                                           skip=cfg.skip_seeds)
            if not cfg.scenarios or name in cfg.scenarios]
    if not jobs:
        raise ValueError(f'no episodes: scenarios {list(cfg.scenarios)} are not in the suite')
    rows = collect(closed_loop_policy(planner), planner, cfg.out, cfg.split, jobs,
                   cfg.replan_every, cfg.max_steps, off_road=cfg.off_road,
                   outcome_horizon_steps=cfg.outcome_horizon_steps,
                   label_every=cfg.label_every, label_scenarios=cfg.label_scenarios,
                   expert_relabel=cfg.expert_relabel)
    crashed = sum(r['crashed'] for r in rows)
    LOG.info('%d episodes written to %s (%d crashed)', len(rows), cfg.out, crashed)
    if cfg.outcome_horizon_steps > 0 and cfg.driver == 'pair':
        from pair_drive_ros.policy.tree import resolve_group

        leaves = len(resolve_group(planner.codes))
        for name, row in outcome_summary(cfg.out, cfg.split, leaves,
                                         len(planner.stop_decels)).items():
            LOG.info('candidate outcomes, %s: %s', name, row)
    return rows


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI flags of `pair-drive train rollouts` (the RolloutConfig fields)."""
    from pair_drive_ros.core.config import add_config_arguments

    add_config_arguments(parser, None, tuple(f.name for f in fields(RolloutConfig)))


def run(args: argparse.Namespace) -> int:
    """Entry point of `pair-drive train rollouts`."""
    from pair_drive_ros.core.config import config_from_args, config_text, save_config

    cfg = config_from_args(RolloutConfig, args)
    LOG.info('pair-drive train rollouts config:\n%s', config_text(cfg))
    # Per split: runs that extend a set (skip_seeds) write to the same root.
    save_config(cfg, cfg.out, f'config_{cfg.split}.yaml')
    main(cfg)
    return 0
