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
Closed-loop pick log of a PaIR planner: what it executed at every replan, and the outcome.

Open-loop scores cannot show what PaIR's picks do over an episode; this log can. Per replan:
the executed candidate's index and kind (IL plan, tree leaf or plan variant), its 4-s
displacement relative to the IL plan's (a speed ratio), its lateral difference, and the ego
speed. Per episode: collision, off-road, steps. docs/RESULTS.md used it to find the
compounding speed-up behind PaIR's highway collisions.

    pair-drive report picks --split val --episodes 15 \
        --il-checkpoint models/diffusiondrive_lite.pt --out runs/picks_b_val.json
"""

import argparse
from dataclasses import dataclass, fields
import json
import logging
from pathlib import Path

import numpy as np

from pair_drive_ros.policy.factory import shipped

LOG = logging.getLogger(__name__)
SCENARIO_ORDER = ('highway', 'merge', 'intersection', 'roundabout')


def pick_kind(index: int, num_leaves: int) -> str:
    """'il' (candidate 0), 'tree' (the next num_leaves) or 'variant' (the plan variants)."""
    if index == 0:
        return 'il'
    return 'tree' if index <= num_leaves else 'variant'


def log_picks(planner, scenarios: list, replan_every: int = 5,
              max_steps: int | None = None) -> list[dict]:
    """Drive (scenario, seed) episodes with a PaIR planner; one row per episode with its picks."""
    from pair_drive_ros.policy.tree import resolve_group
    from pair_drive_ros.sim.closed_loop import run_episode
    from pair_drive_ros.policy.closed_loop import closed_loop_policy

    num_leaves = len(resolve_group(planner.codes))
    episodes = []
    for name, seed in scenarios:
        planner.reset()
        picks = []

        def log_pick(frame, plan, picks=picks) -> None:
            k = int(plan.info.get('selected', 0))
            end, il_end = plan.trajectory.poses[-1], plan.il_trajectory.poses[-1]
            picks.append({'t': float(frame.stamp_s), 'index': k,
                          'kind': pick_kind(k, num_leaves),
                          'speed_ratio': float(end[0] / max(1e-3, il_end[0])),
                          'lateral_m': float(end[1] - il_end[1]),
                          'ego_speed': float(np.hypot(*frame.ego.velocity[:2]))})

        policy = closed_loop_policy(planner, on_plan=log_pick)
        result = run_episode(name, int(seed), policy, max_steps=max_steps,
                             replan_every=replan_every)
        episodes.append({**result.as_dict(), 'picks': picks})
    return episodes


def summary(episodes: list) -> dict:
    """Collision and off-road rates, collisions per scenario, and the pick kinds' shares."""
    kinds = [p['kind'] for e in episodes for p in e['picks']]
    return {'episodes': len(episodes),
            'collision_rate': float(np.mean([e['collision'] for e in episodes])),
            'off_road_rate': float(np.mean([e['off_road'] for e in episodes])),
            'collisions_by_scenario': {s: sum(e['collision'] for e in episodes
                                              if e['scenario'] == s) for s in SCENARIO_ORDER},
            'pick_share': {k: kinds.count(k) / max(1, len(kinds))
                           for k in ('il', 'tree', 'variant')}}


@dataclass(frozen=True)
class PickLogConfig:
    """Settings of `pair-drive report picks` (checkpoint defaults: the shipped models/)."""

    split: str = 'val'
    episodes: int = 15             # per scenario
    il_checkpoint: str = shipped('transfuser')
    rl_checkpoint: str = shipped('rl_branch')
    selector_checkpoint: str = shipped('selector')
    out: str = 'runs/pick_log.json'   # the log (JSON; its 'config' holds these settings)


def main(cfg: PickLogConfig) -> dict:
    """Build IL + RL + selector from checkpoints, drive, write the log (JSON)."""
    from pair_drive_ros.core.config import config_to_dict
    from pair_drive_ros.policy.pair import PaIRPlanner
    from pair_drive_ros.training.common import set_threads
    from pair_drive_ros.sim.suite import split_scenarios

    set_threads(1)
    planner = PaIRPlanner.from_checkpoints(cfg.il_checkpoint, cfg.rl_checkpoint,
                                           cfg.selector_checkpoint)
    episodes = log_picks(planner, split_scenarios(cfg.split, cfg.episodes))
    out = {'summary': summary(episodes), 'episodes': episodes,
           'checkpoints': {'il': cfg.il_checkpoint, 'rl': cfg.rl_checkpoint,
                           'selector': cfg.selector_checkpoint},
           'config': config_to_dict(cfg)}
    Path(cfg.out).parent.mkdir(parents=True, exist_ok=True)
    Path(cfg.out).write_text(json.dumps(out))
    LOG.info('%s', out['summary'])
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of `pair-drive report picks`: the PickLogConfig fields."""
    from pair_drive_ros.core.config import add_config_arguments

    add_config_arguments(parser, None, tuple(f.name for f in fields(PickLogConfig)))


def run(args: argparse.Namespace) -> int:
    """Log PaIR's picks in closed loop and write the summary."""
    from pair_drive_ros.core.config import config_from_args, config_text

    cfg = config_from_args(PickLogConfig, args)
    LOG.info('pair-drive report picks config:\n%s', config_text(cfg))
    main(cfg)
    return 0
