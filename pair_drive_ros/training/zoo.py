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
`pair-drive zoo`: rebuild every shipped model from HEAD with one command.

    pair-drive zoo --config config/zoo.yaml --out models [--resume | --force]

Stages, in order; each runs ordinary `pair-drive` commands (the card records them) with a
resolved config written to WORK/configs/<stage>.yaml:

    data          generate the train and val splits of config/scenarios.yaml (the expert)
    il_a          train IL-A (Transfuser-lite)
    il_b          train IL-B (DiffusionDrive-lite)
    il_a_motion   train IL-A with motion (past sweeps, recovery copies), an IL planner that
                  plugs into PaIR like IL-B: nothing of the chain is trained around it
    rl            GRPO of the RL tree branch; its trunk is a copy of il_a's (this run's)
    selector_0    selector on the expert's logs only (DAgger round 0)
    rollouts      IL-A + PaIR driven by selector_0 on train seeds (on-policy scene logs)
    selector      the final selector: expert logs + the rollouts
    selector_tree the same for the paper's candidate set (IL plan + leaves, no variants)
    sequential_a  sequential IL -> GRPO baseline of IL-A: the selector's data (expert logs +
                  rollouts) and the scorer calls of rl + selector
    sequential_b  the same for IL-B
    evaluate      open loop (and closed loop if configured) on val: every model, both IL planners
    test_data     optional: generate the test split
    test          optional: evaluate on it, last (never used for a choice)
    publish       copy the checkpoints to OUT with a model card each, and OUT/zoo.json

Every stage seeds its trainer with the zoo's seed. Resumable: a finished stage leaves
WORK/stages/<stage>.json with a digest of its inputs (resolved config, commands, the digests of
the upstream outputs) and the sha256 of its outputs; a later run skips it when both still hold,
and re-runs it (and, through the digests, whatever depends on it) when they do not.
Checkpoints are compared by their weights, so a bit-identical re-run of a stage does not re-run
the stages after it. An interrupted stage keeps the episodes it has written (data, rollouts
and the test split resume episode by episode) and restarts its training from scratch, which
keeps runs deterministic.
"""

import argparse
from dataclasses import dataclass, field, fields
from datetime import datetime, timezone
import hashlib
import json
import logging
import math
import os
from pathlib import Path
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Callable

import yaml

from pair_drive_ros.core.config import add_config_arguments, config_from_args, config_to_dict, \
    load_config
from pair_drive_ros.core.files import write_text_atomic

LOG = logging.getLogger(__name__)
DEFAULT_CONFIG = 'config/zoo.yaml'
ROOT = Path(__file__).resolve().parents[2]
STAGES = ('data', 'il_a', 'il_b', 'il_a_motion', 'dagger', 'il_a_motion_dagger',
          'il_b_motion_dagger', 'rl',
          'selector_0', 'rollouts', 'selector', 'selector_tree', 'sequential_a', 'sequential_b',
          'evaluate', 'test_data', 'test', 'publish')
SPLITS = ('train', 'val', 'test')


class ZooError(RuntimeError):
    """The zoo cannot run as asked (it would overwrite files, a stage failed, bad config)."""


# -- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DataStage:
    """Expert episodes per split (`pair-drive generate`), split over the scenarios by weight."""

    train_episodes: int = 140
    val_episodes: int = 28
    test_episodes: int = 28
    scenarios: tuple = ()          # subset of config/scenarios.yaml; empty: every scenario
    max_steps: int = 0             # 0: each scenario's cap
    workers: int = 2               # generate processes


@dataclass(frozen=True)
class TrainStage:
    """A trainer's YAML config plus KEY=VALUE overrides of its fields."""

    config: str = ''
    overrides: tuple = ()


@dataclass(frozen=True)
class DaggerTrainStage(TrainStage):
    """An IL recipe trained on the expert logs plus every DAgger round (stage dagger)."""

    scenarios: tuple = ()          # the rounds' scenario folders it reads (empty: all)


@dataclass(frozen=True)
class RolloutStage:
    """
    On-policy IL-A + PaIR episodes (one DAgger round), driven by the round-0 selector.

    chunks: episodes per scenario of each rollout set, on consecutive train seeds; each set
    is its own data root (labelled with its own label_seed generator, as `make selector` does
    with its two roots).
    """

    chunks: tuple = (20, 20)
    max_steps: int = 0             # 0: each scenario's cap
    replan_every: int = 5
    off_road: str = 'lanes'        # the rule ending an episode off the road (RolloutConfig)


@dataclass(frozen=True)
class DaggerStage:
    """
    DAgger rounds of IL-A motion, the expert relabelling the states the IL planner drove into.

    Round r lets the IL-A motion of round r-1 (round 1: stage il_a_motion's) drive alone on
    train seeds (`train rollouts --set driver=il --set expert_relabel=true`); every
    `label_every`-th frame the scenario's expert plans from the state it reached, and that plan
    is the frame's label. IL-A motion's recipe and seed then train again on the expert logs
    plus every round so far. rounds: per round, {scenario: episodes}; a scenario's seeds
    continue after those of earlier rounds. Each round's episodes are split over `workers`
    processes by seed range.
    """

    rounds: tuple = ({'intersection': 32},
                     {'intersection': 24, 'roundabout': 24, 'highway': 16, 'merge': 16})
    label_every: int = 8
    max_steps: int = 0             # 0: each scenario's cap
    workers: int = 2               # rollout processes per round


@dataclass(frozen=True)
class EvalStage:
    """`pair-drive evaluate` settings of one split (rows: every model of the zoo)."""

    enabled: bool = True
    frame_stride: int = 4
    max_frames: int = 0            # 0: every selected frame
    closed_loop_episodes: int = 0  # per scenario; 0: open loop only
    closed_loop_max_steps: int = 0
    batch_size: int = 32
    plots: int = 0
    workers: int = 1               # rows evaluated at once, each in its own process


@dataclass(frozen=True)
class ZooConfig:
    """The whole rebuild (YAML: config/zoo.yaml, config/zoo_gpu.yaml)."""

    seed: int = 0                  # every stage's seed (IL, GRPO, selector weights and labels)
    device: str = 'cpu'            # 'auto': CUDA when present
    threads: int = 1               # torch threads per trainer
    workers: int = 1               # feature-cache processes per trainer
    work_dir: str = 'runs/zoo'     # data, run folders, stage markers (--work overrides)
    data: DataStage = field(default_factory=DataStage)
    il_a: TrainStage = TrainStage('config/il_transfuser.yaml')
    il_b: TrainStage = TrainStage('config/il_diffusiondrive.yaml')
    il_a_motion: TrainStage = TrainStage('config/il_transfuser_motion.yaml')
    dagger: DaggerStage = field(default_factory=DaggerStage)   # trains il_a_motion's recipe
    # IL-B with motion, trained on the expert logs and the DAgger rounds of IL-A motion.
    il_b_motion_dagger: DaggerTrainStage = DaggerTrainStage(
        'config/il_diffusiondrive_motion.yaml')
    rl: TrainStage = TrainStage('config/rl_grpo.yaml')
    selector: TrainStage = TrainStage('config/selector.yaml')
    # The NC/TTC guard of the deployed selector (pair_selector.pt: SelectorConfig.
    # safety_tolerance); negative keeps the recipe's. Inference only: the weights do not
    # change, and selector_0 (which drives the rollouts) and selector_tree keep the recipe's.
    selector_guard: float = -1.0
    rollouts: RolloutStage = field(default_factory=RolloutStage)
    sequential_a: TrainStage = TrainStage('config/rl_sequential.yaml')
    sequential_b: TrainStage = TrainStage('config/rl_sequential_b.yaml')
    evaluate: EvalStage = field(default_factory=EvalStage)
    test: EvalStage = field(default_factory=EvalStage)


# What the zoo builds: file name in OUT, producing stage, card title.
MODELS = {
    'transfuser_lite.pt': ('il_a', 'IL planner A (Transfuser-lite)'),
    'diffusiondrive_lite.pt': ('il_b', 'IL planner B (DiffusionDrive-lite)'),
    'transfuser_lite_motion.pt': ('il_a_motion', 'IL planner A with motion (Transfuser-lite, '
                                  'past LiDAR sweeps)'),
    'transfuser_lite_motion_dagger.pt': ('il_a_motion_dagger', 'IL planner A with motion, '
                                         'DAgger rounds (Transfuser-lite, past LiDAR sweeps)'),
    'diffusiondrive_lite_motion_dagger.pt': ('il_b_motion_dagger', 'IL planner B with motion, '
                                             "trained with IL-A motion's DAgger rounds "
                                             '(DiffusionDrive-lite, past LiDAR sweeps)'),
    'pair_rl_branch.pt': ('rl', 'PaIR RL tree branch'),
    'pair_selector.pt': ('selector', 'PaIR candidate selector (one DAgger round)'),
    'pair_selector_tree.pt': ('selector_tree', "PaIR selector for the paper's candidate set "
                              '(IL plan + tree leaves)'),
    'transfuser_lite_seq_grpo.pt': ('sequential_a', 'sequential baseline of IL-A (IL -> GRPO)'),
    'diffusiondrive_lite_seq_grpo.pt': ('sequential_b',
                                        'sequential baseline of IL-B (IL -> GRPO)'),
}
SELECTOR_0 = 'pair_selector_round0.pt'
# Evaluation rows: (key, label, planner, il model file, uses the PaIR branch).
ROWS = (('expert', 'expert (logged)', 'expert', None, False),
        ('il_a', 'IL-A', 'transfuser', 'transfuser_lite.pt', False),
        ('il_b', 'IL-B', 'diffusiondrive', 'diffusiondrive_lite.pt', False),
        ('pair_a', 'IL-A + PaIR', 'pair', 'transfuser_lite.pt', True),
        ('pair_b', 'IL-B + PaIR', 'pair', 'diffusiondrive_lite.pt', True),
        ('il_a_motion', 'IL-A motion', 'transfuser', 'transfuser_lite_motion.pt', False),
        ('pair_a_motion', 'IL-A motion + PaIR', 'pair', 'transfuser_lite_motion.pt', True),
        ('il_a_motion_dagger', 'IL-A motion + DAgger', 'transfuser',
         'transfuser_lite_motion_dagger.pt', False),
        ('pair_a_motion_dagger', 'IL-A motion + DAgger + PaIR', 'pair',
         'transfuser_lite_motion_dagger.pt', True),
        ('il_b_motion_dagger', 'IL-B motion + DAgger', 'diffusiondrive',
         'diffusiondrive_lite_motion_dagger.pt', False),
        ('pair_b_motion_dagger', 'IL-B motion + DAgger + PaIR', 'pair',
         'diffusiondrive_lite_motion_dagger.pt', True),
        ('seq_a', 'IL-A + sequential GRPO', 'transfuser', 'transfuser_lite_seq_grpo.pt', False),
        ('seq_b', 'IL-B + sequential GRPO', 'diffusiondrive', 'diffusiondrive_lite_seq_grpo.pt',
         False))
# Which evaluation rows a card reports.
CARD_ROWS = {'transfuser_lite.pt': ('il_a', 'pair_a'),
             'diffusiondrive_lite.pt': ('il_b', 'pair_b'),
             'transfuser_lite_motion.pt': ('il_a', 'il_a_motion', 'pair_a_motion'),
             'transfuser_lite_motion_dagger.pt': ('il_a_motion', 'pair_a_motion',
                                                  'il_a_motion_dagger', 'pair_a_motion_dagger'),
             'diffusiondrive_lite_motion_dagger.pt': ('il_b', 'pair_b', 'il_b_motion_dagger',
                                                      'pair_b_motion_dagger'),
             'pair_rl_branch.pt': ('pair_a', 'pair_b', 'pair_a_motion', 'pair_a_motion_dagger',
                                   'pair_b_motion_dagger'),
             'pair_selector.pt': ('pair_a', 'pair_b', 'pair_a_motion', 'pair_a_motion_dagger',
                                  'pair_b_motion_dagger'),
             'pair_selector_tree.pt': ('il_a', 'il_b'),
             'transfuser_lite_seq_grpo.pt': ('il_a', 'seq_a'),
             'diffusiondrive_lite_seq_grpo.pt': ('il_b', 'seq_b')}


# -- digests and atomic files ------------------------------------------------------------------


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


def tree_digest(root: str | Path) -> str:
    """Sha256 over the sorted relative paths and contents of every file under root."""
    root = Path(root)
    h = hashlib.sha256()
    for path in sorted(p for p in root.rglob('*') if p.is_file()):
        h.update(str(path.relative_to(root)).encode() + b'\0' + sha256_file(path).encode())
    return h.hexdigest()


def weights_digest(path: str | Path) -> str:
    """Sha256 of a checkpoint's model name, model config and tensors (not its timings)."""
    import torch

    from pair_drive_ros.policy.checkpoint import load_checkpoint

    ckpt = load_checkpoint(path)
    h = hashlib.sha256(json.dumps([ckpt.get('model'), ckpt.get('model_config')],
                                  sort_keys=True, default=str).encode())
    for key in sorted(ckpt['state_dict']):
        tensor = ckpt['state_dict'][key]
        h.update(key.encode() + str(tuple(tensor.shape)).encode() + str(tensor.dtype).encode())
        h.update(tensor.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy()
                 .tobytes())
    return h.hexdigest()


def json_digest(value) -> str:
    """Sha256 of a JSON-serialisable value (keys sorted)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def as_json(value):
    """Return `value` as JSON stores it (a marker, a digest): tuples as lists, others as str."""
    return json.loads(json.dumps(value, default=str))


def git_state() -> dict:
    """Commit of the source tree and whether it has uncommitted changes."""
    def git(*args) -> str:
        return subprocess.run(['git', *args], cwd=ROOT, capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
    try:
        return {'commit': git('rev-parse', 'HEAD'),
                'dirty': bool(git('status', '--porcelain', '--untracked-files=no'))}
    except (OSError, subprocess.SubprocessError):
        return {'commit': 'unknown', 'dirty': False}


def resolve_path(path: str) -> str:
    """Return a config path as given when it exists, else relative to the source tree."""
    if not path or Path(path).exists() or not (ROOT / path).exists():
        return path
    return str(ROOT / path)


# -- running commands ------------------------------------------------------------------------


def run_in_process(argv: list) -> int:
    """Run a `pair-drive` command in this process (the CLI's own dispatch)."""
    import importlib

    # The zoo drives the other rooms' commands through the command line, as a user would;
    # the CLI table is looked up at run time, like cli.py looks up its sub-commands.
    return int(importlib.import_module('pair_drive_ros.cli').main(list(argv)) or 0)


def run_subprocess(argv: list) -> int:
    """Run a `pair-drive` command in a fresh Python process."""
    return subprocess.run([sys.executable, '-m', 'pair_drive_ros.cli', *argv]).returncode


RUNNERS = {'inprocess': run_in_process, 'subprocess': run_subprocess}


def command_text(argv: list) -> str:
    """Shell text of a `pair-drive` command."""
    return 'pair-drive ' + shlex.join([str(a) for a in argv])


# -- stages --------------------------------------------------------------------------------


@dataclass
class Stage:
    """One step of the rebuild: commands, inputs (digested), outputs (checked), estimate."""

    name: str
    title: str
    commands: list = field(default_factory=list)   # `pair-drive` argv lists
    inputs: dict = field(default_factory=dict)     # anything the outputs depend on
    outputs: dict = field(default_factory=dict)    # label -> path (file or folder)
    keep_partial: tuple = ()                       # outputs resumed after an interruption
    estimate_s: float = 0.0
    action: Callable | None = None                 # custom work instead of `commands`
    configs: dict = field(default_factory=dict)    # config path -> resolved config (YAML)
    config_defaults: dict = field(default_factory=dict)   # config path -> its class defaults

    def input_digest(self) -> str:
        """Digest of everything the stage's outputs depend on."""
        return json_digest(self.digested())

    def digested(self) -> dict:
        """Return what `input_digest` hashes (commands, inputs, configs) as JSON stores it."""
        return as_json({'commands': self.commands, 'inputs': self.inputs,
                        'configs': self.configs})

    def set_config(self, path: Path, cfg) -> None:
        """Record a resolved trainer config (a dataclass) and its class defaults (as JSON)."""
        self.configs[str(path)] = config_to_dict(cfg)
        self.config_defaults[str(path)] = as_json(config_to_dict(type(cfg)()))


def fields_added_at_defaults(old: dict, new: dict, defaults: dict,
                             prefix: str = '') -> list[str] | None:
    """
    Keys of `new` that `old` lacks and whose values are their defaults, or None.

    None when anything else differs (a value changed, a key removed, a key added with a value
    other than its default). A trainer field added after a stage ran, at its default, keeps
    the behaviour the stage ran with (new fields default to the old behaviour), so the
    stage's outputs still hold.
    """
    added = []
    if set(old) - set(new):
        return None
    for key, value in new.items():
        name = f'{prefix}{key}'
        if key not in old:
            if not isinstance(defaults, dict) or key not in defaults or defaults[key] != value:
                return None
            added.append(name)
        elif isinstance(value, dict) and isinstance(old[key], dict):
            inner = fields_added_at_defaults(old[key], value, (defaults or {}).get(key, {}),
                                             f'{name}.')
            if inner is None:
                return None
            added += inner
        elif old[key] != value:
            return None
    return added


def output_digests(path: Path) -> dict:
    """{'sha256': file or tree checksum, 'digest': the content downstream stages depend on}."""
    if path.is_dir():
        digest = tree_digest(path)
        return {'sha256': digest, 'digest': digest}
    sha = sha256_file(path)
    return {'sha256': sha, 'digest': weights_digest(path) if path.suffix == '.pt' else sha}


class Zoo:
    """The stages of one rebuild over a work folder, with their markers."""

    def __init__(self, cfg: ZooConfig, out: str | Path, work: str | Path | None = None,
                 runner: Callable = run_in_process, command: str = '') -> None:
        from pair_drive_ros.sim.suite import load_suite
        from pair_drive_ros.training.common import pick_device

        self.cfg = cfg
        self.suite = load_suite()      # config/scenarios.yaml: what generate and rollouts use
        self.out = Path(out)
        self.work = Path(work or cfg.work_dir)
        self.runner = runner
        self.command = command
        self.device = str(pick_device(cfg.device))
        self.data_root = self.work / 'data' / 'logs'
        self.models = self.work / 'models'
        self.markers = self.work / 'stages'
        self.git = git_state()
        self._validate()

    # -- configuration checks and paths ----------------------------------------------------

    def _validate(self) -> None:
        suite = self.suite
        unknown = [n for n in self.cfg.data.scenarios if n not in suite.names()]
        if unknown:
            raise ZooError(f'data.scenarios: unknown scenarios {unknown}; the suite has '
                           f'{suite.names()}')
        if not self.cfg.rollouts.chunks or min(self.cfg.rollouts.chunks) <= 0:
            raise ZooError('rollouts.chunks must list positive episode counts per scenario')
        if not self.cfg.evaluate.enabled:
            raise ZooError('evaluate.enabled: the val evaluation always runs (the cards report '
                           'it); only test.enabled may be false')
        if self.cfg.data.train_episodes <= 0 or self.cfg.data.val_episodes <= 0:
            raise ZooError('data.train_episodes and data.val_episodes must be positive')
        rounds = self.cfg.dagger.rounds
        if not rounds or not all(isinstance(r, dict) and r for r in rounds):
            raise ZooError('dagger.rounds must list at least one round of {scenario: episodes}')
        for spec in rounds:
            unknown = sorted(n for n in spec if n not in suite.names())
            if unknown or min(int(n) for n in spec.values()) <= 0:
                raise ZooError(f'dagger.rounds: {spec}: scenarios of the suite '
                               f'{suite.names()} with positive episode counts')

    def scenario_names(self) -> list:
        """Return the scenarios the zoo uses (config/scenarios.yaml order)."""
        names = self.suite.names()
        return [n for n in names if not self.cfg.data.scenarios or n in self.cfg.data.scenarios]

    def rollout_roots(self) -> list:
        """One on-policy data root per rollout chunk."""
        return [self.work / 'data' / f'onpolicy_{k}' for k in range(len(self.cfg.rollouts.chunks))]

    def marker_path(self, name: str) -> Path:
        """Return the path of a stage's done-marker."""
        return self.markers / f'{name}.json'

    def read_marker(self, name: str) -> dict | None:
        """Return a stage's done-marker, or None."""
        path = self.marker_path(name)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def upstream(self, *names: str) -> dict:
        """Output digests of finished upstream stages (part of a stage's inputs)."""
        out = {}
        for name in names:
            marker = self.read_marker(name)
            out[name] = ({k: v['digest'] for k, v in marker['outputs'].items()}
                         if marker else None)
        return out

    # -- trainer configs -----------------------------------------------------------------------

    def trainer_config(self, stage: str, cls, forced: dict, seeded: tuple = ('seed',)):
        """
        Resolve a trainer config: YAML, zoo seed/device/threads, overrides, zoo paths.

        In that order; the paths come last because the zoo decides where data and models are.
        """
        spec: TrainStage = getattr(self.cfg, stage)
        names = {f.name for f in fields(cls)}
        common = {'device': self.device}
        common.update({k: self.cfg.seed for k in seeded})
        for key in ('threads', 'num_threads'):
            if key in names:
                common[key] = self.cfg.threads
        for key in ('workers', 'cache_workers'):
            if key in names:
                common[key] = self.cfg.workers
        sets = [f'{k}={json.dumps(v)}' for k, v in common.items()]
        sets += list(spec.overrides)
        sets += [f'{k}={json.dumps(v)}' for k, v in forced.items()]
        return load_config(cls, resolve_path(spec.config), sets)

    def write_config(self, stage: Stage, cfg) -> Path:
        """Return the path of a stage's resolved trainer config (written when it runs)."""
        path = self.work / 'configs' / f'{stage.name}.yaml'
        stage.set_config(path, cfg)
        return path

    # -- the stages ----------------------------------------------------------------------------

    def stages(self) -> list:
        """Every stage in order (inputs read the upstream markers as they are now)."""
        from pair_drive_ros.training import train_il, train_rl, train_selector, train_sequential

        c, w, m = self.cfg, self.work, self.models
        scen = ','.join(self.scenario_names()) if c.data.scenarios else ''
        stages = []

        def generate(split: str, episodes: int) -> list:
            argv = ['generate', '--split', split, '--episodes', str(episodes),
                    '--workers', str(c.data.workers), '--out', str(self.data_root)]
            if scen:
                argv += ['--scenarios', scen]
            if c.data.max_steps:
                argv += ['--max-steps', str(c.data.max_steps)]
            return argv

        s = Stage('data', 'expert scene logs: train and val splits',
                  commands=[generate('train', c.data.train_episodes),
                            generate('val', c.data.val_episodes)],
                  outputs={'train': self.data_root / 'train', 'val': self.data_root / 'val'},
                  keep_partial=('train', 'val'))
        stages.append(s)

        for name, model, file in (('il_a', 'transfuser', 'transfuser_lite.pt'),
                                  ('il_b', 'diffusiondrive', 'diffusiondrive_lite.pt'),
                                  ('il_a_motion', 'transfuser', 'transfuser_lite_motion.pt')):
            s = Stage(name, f'train {model} (IL)', inputs={'upstream': self.upstream('data')},
                      outputs={'model': m / file})
            tcfg = self.trainer_config(name, train_il.ILTrainConfig, {'model': model})
            path = self.write_config(s, tcfg)
            export = w / 'runs' / name / 'export' / file
            s.commands = [['train', 'il', '--model', model, '--data', str(self.data_root),
                           '--config', str(path), '--out', str(w / 'runs' / name),
                           '--runs', str(w / 'runs'), '--export', str(export),
                           '--force']]   # the zoo's own work folder: a re-run starts afresh
            s.action = self._runner_then_move(export, m / file)
            stages.append(s)

        runs = str(w / 'runs')
        stages += self.dagger_stages(runs)
        s = Stage('rl', 'GRPO of the RL tree branch (trunk: a copy of il_a)',
                  inputs={'upstream': self.upstream('data', 'il_a')},
                  outputs={'model': m / 'pair_rl_branch.pt'})
        tcfg = self.trainer_config('rl', train_rl.RLTrainConfig, {
            'data_root': str(self.data_root), 'init_trunk': str(m / 'transfuser_lite.pt'),
            'il_checkpoint': str(m / 'transfuser_lite.pt'), 'runs_root': runs,
            'out': str(m / 'pair_rl_branch.pt'), 'resume': ''})
        s.commands = [['train', 'rl', '--config',
                       str(self.write_config(s, tcfg)), '--force']]
        stages.append(s)

        sel_paths = {'data_root': str(self.data_root),
                     'rl_checkpoint': str(m / 'pair_rl_branch.pt'),
                     'il_checkpoint': str(m / 'transfuser_lite.pt'), 'runs_root': runs,
                     'labels': '', 'extra_il_checkpoints': []}
        s = Stage('selector_0', 'selector on the expert logs only (DAgger round 0)',
                  inputs={'upstream': self.upstream('data', 'il_a', 'rl')},
                  outputs={'model': m / SELECTOR_0})
        tcfg = self.trainer_config('selector', train_selector.SelectorTrainConfig, {
            **sel_paths, 'extra_data_roots': [], 'out': str(m / SELECTOR_0)},
            seeded=('seed', 'label_seed'))
        s.commands = [['train', 'selector', '--config',
                       str(self.write_config(s, tcfg)), '--force']]
        stages.append(s)

        roots = self.rollout_roots()
        s = Stage('rollouts', 'IL-A + PaIR (round-0 selector) on train seeds',
                  inputs={'upstream': self.upstream('il_a', 'rl', 'selector_0'),
                          'rollouts': config_to_dict(c.rollouts),
                          'jobs': [self.rollout_jobs(k) for k in range(len(roots))]},
                  outputs={f'onpolicy_{k}': root / 'train' for k, root in enumerate(roots)},
                  keep_partial=tuple(f'onpolicy_{k}' for k in range(len(roots))))
        skip = 0
        for k, (chunk, root) in enumerate(zip(c.rollouts.chunks, roots)):
            # The equivalent command (it drives every scenario of the suite at its own cap).
            s.commands.append(['train', 'rollouts', '--out', str(root), '--episodes', str(chunk),
                               '--skip-seeds', str(skip), '--il-checkpoint',
                               str(m / 'transfuser_lite.pt'), '--rl-checkpoint',
                               str(m / 'pair_rl_branch.pt'), '--selector-checkpoint',
                               str(m / SELECTOR_0), '--replan-every',
                               str(c.rollouts.replan_every), '--threads', str(c.threads)])
            skip += chunk
        s.action = self._rollouts
        stages.append(s)

        # The final selector, and the one of the paper's candidate set (IL plan + leaves, for
        # the attribution's tree-only rows): the same data and recipe.
        for name, title, file, extra in (
                ('selector', 'final selector: expert logs + on-policy rollouts',
                 'pair_selector.pt', ({'model.safety_tolerance': c.selector_guard}
                                      if c.selector_guard >= 0 else {})),
                ('selector_tree', "selector for the paper's candidate set (IL plan + leaves)",
                 'pair_selector_tree.pt', {'model.plan_variants': False})):
            s = Stage(name, title, inputs={'upstream': self.upstream('data', 'il_a', 'rl',
                                                                     'rollouts')},
                      outputs={'model': m / file})
            tcfg = self.trainer_config('selector', train_selector.SelectorTrainConfig, {
                **sel_paths, 'extra_data_roots': [str(r) for r in roots], **extra,
                'out': str(m / file)}, seeded=('seed', 'label_seed'))
            s.commands = [['train', 'selector', '--config',
                           str(self.write_config(s, tcfg)), '--force']]
            stages.append(s)

        for name, il_stage, il_file, file in (
                ('sequential_a', 'il_a', 'transfuser_lite.pt', 'transfuser_lite_seq_grpo.pt'),
                ('sequential_b', 'il_b', 'diffusiondrive_lite.pt',
                 'diffusiondrive_lite_seq_grpo.pt')):
            # Equal data and budget: the on-policy rollouts the selector saw, and as many scorer
            # calls as the RL branch and the final selector spent together (the PaIR row's).
            s = Stage(name, f'sequential GRPO of {il_stage} (the budget of rl + selector)',
                      inputs={'upstream': self.upstream('data', il_stage, 'rl', 'rollouts',
                                                        'selector')},
                      outputs={'model': m / file})
            tcfg = self.trainer_config(name, train_sequential.SequentialConfig, {
                'data_root': str(self.data_root), 'il_checkpoint': str(m / il_file),
                'extra_data_roots': [str(r) for r in roots],
                'scorer_budget_of': [str(m / 'pair_rl_branch.pt'), str(m / 'pair_selector.pt')],
                'runs_root': runs, 'out': str(m / file)})
            s.commands = [['train', 'sequential', '--config',
                           str(self.write_config(s, tcfg)), '--force']]
            stages.append(s)

        model_stages = ('il_a', 'il_b', 'il_a_motion', 'il_a_motion_dagger',
                        'il_b_motion_dagger', 'rl', 'selector',
                        'sequential_a', 'sequential_b')
        s = Stage('evaluate', 'open-loop (and closed-loop) evaluation on val',
                  inputs={'upstream': self.upstream('data', *model_stages)},
                  outputs={'val': w / 'eval' / 'val'})
        s.commands = self.eval_commands(s, 'val', c.evaluate)
        s.action = self._parallel(c.evaluate.workers)
        stages.append(s)

        if c.test.enabled:
            stages.append(Stage('test_data', 'expert scene logs: test split',
                                commands=[generate('test', c.data.test_episodes)],
                                outputs={'test': self.data_root / 'test'},
                                keep_partial=('test',)))
            s = Stage('test', 'evaluation on test (reported, never chosen on)',
                      inputs={'upstream': self.upstream('test_data', *model_stages)},
                      outputs={'test': w / 'eval' / 'test'})
            s.commands = self.eval_commands(s, 'test', c.test)
            s.action = self._parallel(c.test.workers)
            stages.append(s)

        evals = ('data', 'evaluate') + (('test_data', 'test') if c.test.enabled else ())
        s = Stage('publish', f'checkpoints and model cards to {self.out}',
                  inputs={'upstream': self.upstream(*model_stages, 'selector_0', 'rollouts',
                                                    'selector_tree', 'dagger',
                                                    *evals),
                          'out': str(self.out)},
                  outputs={**{f: self.out / f for f in MODELS},
                           **{f[:-3] + '.md': self.out / (f[:-3] + '.md') for f in MODELS},
                           'zoo.json': self.out / 'zoo.json'})
        s.action = self._publish
        stages.append(s)
        for stage in stages:
            stage.estimate_s = self.estimate(stage)
        return stages

    def dagger_roots(self) -> list:
        """One relabelled data root per DAgger round."""
        rounds = len(self.cfg.dagger.rounds)
        return [self.work / 'data' / f'dagger_{r}' for r in range(1, rounds + 1)]

    def dagger_jobs(self, r: int) -> list:
        """(scenario, first seed index, episodes) chunks of round r (1-based), per worker."""
        d = self.cfg.dagger
        done = {}
        for spec in d.rounds[:r - 1]:
            for name, n in spec.items():
                done[name] = done.get(name, 0) + int(n)
        out = []
        for name, n in d.rounds[r - 1].items():
            bounds = [round(k * int(n) / max(1, d.workers)) for k in range(max(1, d.workers) + 1)]
            out += [(name, done.get(name, 0) + lo, hi - lo)
                    for lo, hi in zip(bounds, bounds[1:]) if hi > lo]
        return out

    def dagger_stages(self, runs: str) -> list:
        """
        Return the DAgger stages: the rounds, then IL-A motion trained on them all.

        Stage dagger holds every round's rollouts and the IL-A motion of each round but the
        last; stage il_a_motion_dagger trains on the expert logs plus every round.
        """
        from pair_drive_ros.training import train_il

        c, w, m, d = self.cfg, self.work, self.models, self.cfg.dagger
        roots = self.dagger_roots()
        tcfg = self.trainer_config('il_a_motion', train_il.ILTrainConfig, {'model': 'transfuser'})
        config = self.work / 'configs' / 'il_a_motion_dagger.yaml'

        def train(r: int, export: Path) -> list:
            extra = json.dumps([str(root) for root in roots[:r]])
            return ['train', 'il', '--model', 'transfuser', '--data', str(self.data_root),
                    '--config', str(config), '--set', f'extra_data_roots={extra}',
                    '--out', str(w / 'runs' / f'il_a_motion_dagger_{r}'), '--runs', runs,
                    '--export', str(export), '--force']

        rounds, driver = [], m / 'transfuser_lite_motion.pt'
        for r, root in enumerate(roots, 1):
            drive = []
            for name, skip, episodes in self.dagger_jobs(r):
                argv = ['train', 'rollouts', '--out', str(root), '--episodes', str(episodes),
                        '--skip-seeds', str(skip), '--il-checkpoint', str(driver),
                        '--set', 'driver=il', '--set', 'expert_relabel=true',
                        '--set', f'label_every={d.label_every}', '--set', f'scenarios=[{name}]',
                        '--threads', str(c.threads)]
                if d.max_steps:
                    argv += ['--set', f'max_steps={d.max_steps}']
                drive.append(argv)
            if r < len(roots):
                driver = m / f'transfuser_lite_motion_dagger_{r}.pt'
                rounds.append((drive, train(r, driver)))
            else:
                rounds.append((drive, None))
        s = Stage('dagger', f'{len(roots)} DAgger rounds: IL-A motion drives, the expert '
                  'relabels', inputs={'upstream': self.upstream('data', 'il_a_motion'),
                                      'dagger': config_to_dict(d)},
                  outputs={f'round_{r}': root / 'train' for r, root in enumerate(roots, 1)},
                  keep_partial=tuple(f'round_{r}' for r in range(1, len(roots) + 1)))
        s.set_config(config, tcfg)
        s.commands = [argv for drive, trained in rounds for argv in drive + [trained] if argv]

        def action(stage: Stage) -> None:
            for r, (drive, trained) in enumerate(rounds, 1):
                LOG.info('dagger: round %d of %d', r, len(rounds))
                self.run_all(stage.name, drive, d.workers)
                if trained:
                    self.run_all(stage.name, [trained], 1)
        s.action = action
        out = [s]

        export = w / 'runs' / 'il_a_motion_dagger' / 'export' / 'transfuser_lite_motion_dagger.pt'
        s = Stage('il_a_motion_dagger', 'train transfuser (IL) on the expert logs and every '
                  'DAgger round', inputs={'upstream': self.upstream('data', 'dagger')},
                  outputs={'model': m / 'transfuser_lite_motion_dagger.pt'})
        s.set_config(config, tcfg)
        argv = train(len(roots), export)
        argv[argv.index('--out') + 1] = str(w / 'runs' / 'il_a_motion_dagger')
        s.commands = [argv]
        s.action = self._runner_then_move(export, m / 'transfuser_lite_motion_dagger.pt')
        out.append(s)

        # IL-B with motion learns from the same rounds (the states IL-A motion drove into).
        file, keep = 'diffusiondrive_lite_motion_dagger.pt', list(c.il_b_motion_dagger.scenarios)
        export = w / 'runs' / 'il_b_motion_dagger' / 'export' / file
        s = Stage('il_b_motion_dagger', 'train diffusiondrive (IL) on the expert logs and the '
                  'DAgger rounds', inputs={'upstream': self.upstream('data', 'dagger'),
                                           'scenarios': keep},
                  outputs={'model': m / file})
        tcfg = self.trainer_config('il_b_motion_dagger', train_il.ILTrainConfig,
                                   {'model': 'diffusiondrive'})
        s.commands = [['train', 'il', '--model', 'diffusiondrive', '--data', str(self.data_root),
                       '--config', str(self.write_config(s, tcfg)),
                       '--set', f'extra_data_roots={json.dumps([str(r) for r in roots])}',
                       '--set', f'extra_data_scenarios={json.dumps(keep)}',
                       '--out', str(w / 'runs' / 'il_b_motion_dagger'), '--runs', runs,
                       '--export', str(export), '--force']]
        s.action = self._runner_then_move(export, m / file)
        out.append(s)
        return out

    def rollout_jobs(self, k: int) -> list:
        """(scenario, seed) jobs of rollout chunk k (the split_scenarios order, after skip)."""
        suite = self.suite
        skip = sum(self.cfg.rollouts.chunks[:k])
        count = self.cfg.rollouts.chunks[k]
        return [(n, s) for n in self.scenario_names()
                for s in list(suite.get(n).seed_range('train'))[skip:skip + count]]

    def eval_commands(self, stage: Stage, split: str, ecfg: EvalStage) -> list:
        """`pair-drive evaluate` of every row on a split, with its EvalConfig YAML."""
        # The keys of config/eval.yaml (evaluation.evaluate.EvalConfig; an unknown key fails).
        data = {'split': split, 'frame_stride': ecfg.frame_stride,
                'max_frames': ecfg.max_frames, 'batch_size': ecfg.batch_size,
                'closed_loop_episodes': ecfg.closed_loop_episodes,
                'closed_loop_max_steps': ecfg.closed_loop_max_steps,
                'replan_every': self.cfg.rollouts.replan_every, 'plots': ecfg.plots,
                'num_threads': self.cfg.threads}
        path = self.work / 'configs' / f'eval_{split}.yaml'
        stage.configs[str(path)] = data
        m = self.models
        out = []
        for key, _, planner, il_file, pair in ROWS:
            argv = ['evaluate', '--planner', planner, '--data', str(self.data_root),
                    '--split', split, '--out', str(self.work / 'eval' / split / key),
                    '--config', str(path), '--device', self.device]
            if il_file:
                argv += ['--il-checkpoint', str(m / il_file)]
            if pair:
                argv += ['--rl-checkpoint', str(m / 'pair_rl_branch.pt'),
                         '--selector-checkpoint', str(m / 'pair_selector.pt')]
            out.append(argv)
        return out

    # -- stage actions -------------------------------------------------------------------------

    def run_commands(self, stage: Stage) -> None:
        """Run a stage's `pair-drive` commands in order; a failing one stops the zoo."""
        self.run_all(stage.name, stage.commands, 1)

    def run_all(self, name: str, commands: list, workers: int) -> None:
        """
        Run independent `pair-drive` commands `workers` at a time, each in its own process.

        workers <= 1: the zoo's runner, one command after the other.
        """
        if workers <= 1:
            for argv in commands:
                LOG.info('%s: %s', name, command_text(argv))
                rc = self.runner(argv)
                if rc != 0:
                    raise ZooError(f'stage {name}: `{command_text(argv)}` exited with {rc}')
            return
        from concurrent.futures import ThreadPoolExecutor

        LOG.info('%s: %d commands, %d at a time', name, len(commands), workers)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            codes = list(pool.map(run_subprocess, commands))
        failed = [command_text(a) for a, rc in zip(commands, codes) if rc != 0]
        if failed:
            raise ZooError(f'stage {name}: {len(failed)} commands failed, e.g. `{failed[0]}`')

    def _parallel(self, workers: int) -> Callable | None:
        """Return an action running the stage's commands `workers` at a time (run_all)."""
        if workers <= 1:
            return None

        def action(stage: Stage) -> None:
            self.run_all(stage.name, stage.commands, workers)
        return action

    def _runner_then_move(self, src: Path, dst: Path) -> Callable:
        def action(stage: Stage) -> None:
            self.run_commands(stage)
            if not src.is_file():
                raise ZooError(f'stage {stage.name}: the trainer wrote no {src}')
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        return action

    def _rollouts(self, stage: Stage) -> None:
        """
        Drive IL-A + PaIR with the round-0 selector; one scene log per episode.

        Through training.rollouts.collect (what `pair-drive train rollouts` runs), one episode
        at a time for the progress bar; finished episodes are skipped, so an interrupted stage
        resumes episode by episode.
        """
        from tqdm import tqdm

        from pair_drive_ros.policy.closed_loop import closed_loop_policy
        from pair_drive_ros.policy.pair import PaIRPlanner
        from pair_drive_ros.training.common import set_threads
        from pair_drive_ros.training.rollouts import collect

        set_threads(self.cfg.threads)
        m = self.models
        planner = PaIRPlanner.from_checkpoints(m / 'transfuser_lite.pt', m / 'pair_rl_branch.pt',
                                               m / SELECTOR_0, device=self.device)
        policy = closed_loop_policy(planner)
        jobs = [(root, job) for k, root in enumerate(self.rollout_roots())
                for job in self.rollout_jobs(k)]
        crashed = 0
        for root, job in tqdm(jobs, desc='rollouts', unit='ep'):
            rows = collect(policy, planner, root, 'train', [job], self.cfg.rollouts.replan_every,
                           self.cfg.rollouts.max_steps, off_road=self.cfg.rollouts.off_road)
            crashed += sum(r['crashed'] for r in rows)
        LOG.info('rollouts: %d episodes (%d newly crashed)', len(jobs), crashed)

    def scores(self) -> dict:
        """Return the evaluation summaries per split and row (those that exist)."""
        out = {}
        for split in ('val', 'test'):
            for key, label, *_ in ROWS:
                folder = self.work / 'eval' / split / key
                row = {}
                for kind in ('open_loop', 'closed_loop'):
                    path = folder / f'{kind}.json'
                    if path.is_file():
                        data = json.loads(path.read_text())
                        row[kind] = {'summary': data.get('summary'),
                                     'by_family': data.get('by_family'),
                                     'frames': data.get('frames')}
                if row:
                    out.setdefault(split, {})[key] = {'label': label, **row}
        return out

    def _publish(self, stage: Stage) -> None:
        """
        Checkpoints, one card each, and zoo.json into OUT.

        Everything is first written next to its destination under a temporary name, then
        renamed into place one file after the other: an interruption before the renames leaves
        OUT as it was, and no reader ever sees a half-written file.
        """
        scores = self.scores()
        markers = {name: self.read_marker(name) for name in STAGES}
        manifests = {split: sha256_file(self.data_root / split / 'MANIFEST.json')
                     for split in SPLITS if (self.data_root / split / 'MANIFEST.json').is_file()}
        self.out.mkdir(parents=True, exist_ok=True)
        staged = []     # (temporary file, destination)

        def stage_file(dst: Path, src: Path | None = None, text: str = '') -> None:
            for old in self.out.glob(f'.{dst.name}.*.tmp'):
                old.unlink()    # left by a publish that was killed
            fd, tmp = tempfile.mkstemp(dir=self.out, prefix=f'.{dst.name}.', suffix='.tmp')
            os.close(fd)
            staged.append((Path(tmp), dst))
            if src is not None:
                shutil.copyfile(src, tmp)
            else:
                Path(tmp).write_text(text)

        models = {}
        try:
            for file, (name, title) in MODELS.items():
                src = self.models / file
                sha = sha256_file(src)
                models[file] = {'stage': name, 'sha256': sha, 'weights_digest':
                                markers[name]['outputs']['model']['digest'],
                                'bytes': src.stat().st_size}
                stage_file(self.out / file, src=src)
                stage_file(self.out / (file[:-3] + '.md'),
                           text=model_card(file, title, self, markers, manifests, scores, sha))
            summary = {'command': self.command, 'config': config_to_dict(self.cfg),
                       'git': self.git, 'device': self.device, 'work_dir': str(self.work),
                       'data_manifests_sha256': manifests, 'models': models,
                       'stages': {n: {k: mk.get(k) for k in ('seconds', 'finished_utc',
                                                             'commands')}
                                  for n, mk in markers.items() if mk},
                       'scores': scores}
            stage_file(self.out / 'zoo.json',
                       text=json.dumps(summary, indent=1, sort_keys=True))
            for tmp, dst in staged:
                os.replace(tmp, dst)
        finally:
            for tmp, _ in staged:
                if tmp.exists():
                    tmp.unlink()

    # -- estimates -------------------------------------------------------------------------------

    def split_samples(self, split: str, episodes: int, stride: int) -> tuple[int, int]:
        """Return (simulator steps, frames at a stride) of a split's generate jobs (estimate)."""
        from pair_drive_ros.sim.generate import plan_jobs

        suite = self.suite
        steps = frames = 0
        for name, _ in plan_jobs(suite, split, episodes, self.scenario_names()):
            n = self.cfg.data.max_steps or suite.get(name).max_steps
            steps += n
            frames += math.ceil(max(0, n + 1 - 40) / max(1, stride))
        return steps, frames

    def estimate(self, stage: Stage, rounds: int = 0) -> float:
        """
        Seconds the stage should take on 2 CPU cores (see COSTS; GPU runs are faster).

        rounds: an IL-A motion trained on that many DAgger rounds (0: all).
        """
        c, d = self.cfg, self.cfg.data
        cfg = next(iter(stage.configs.values()), {})   # the stage's trainer config
        if stage.name == 'data':
            return (self.generate_s('train', d.train_episodes)
                    + self.generate_s('val', d.val_episodes)) / max(1, min(d.workers, 2))
        if stage.name == 'dagger':
            total = 0.0
            for r in range(1, len(c.dagger.rounds) + 1):
                for name, _, episodes in self.dagger_jobs(r):
                    steps = self.cap(name, c.dagger.max_steps)
                    per = COSTS['relabel_s'].get(name, COSTS['relabel_s'][
                        self.suite.get(name).expert])
                    total += episodes * (steps * COSTS['rollout_step_s']
                                         + steps / c.dagger.label_every * per)
            total /= max(1, min(c.dagger.workers, 2))
            trained = Stage('il_a_motion_dagger', '', configs=stage.configs)
            return total + sum(self.estimate(trained, r) for r in range(1, len(c.dagger.rounds)))
        if stage.name in ('il_a', 'il_b', 'il_a_motion', 'il_a_motion_dagger',
                          'il_b_motion_dagger'):
            _, n = self.split_samples('train', d.train_episodes, cfg['data']['frame_stride'])
            if stage.name in ('il_a_motion_dagger', 'il_b_motion_dagger'):
                # the relabelled frames of `rounds` rounds (IL-B: of its scenarios)
                rounds = rounds or len(c.dagger.rounds)
                keep = (c.il_b_motion_dagger.scenarios if stage.name == 'il_b_motion_dagger'
                        else ())
                n += sum(math.ceil(self.cap(name, c.dagger.max_steps) / c.dagger.label_every)
                         * episodes for r in range(1, rounds + 1)
                         for name, _, episodes in self.dagger_jobs(r)
                         if not keep or name in keep)
            _, nv = self.split_samples('val', d.val_episodes, cfg['val_frame_stride'])
            if cfg.get('val_max_frames'):
                nv = min(nv, cfg['val_max_frames'])
            steps = cfg['epochs'] * math.ceil(n / cfg['batch_size'])
            epochs = cfg['epochs']
            if cfg.get('max_steps'):
                steps = min(steps, cfg['max_steps'])
                epochs = min(epochs, math.ceil(steps / max(1, math.ceil(n / cfg['batch_size']))))
            per = COSTS['il_sample_s'][cfg['model']]
            # IL-A builds the plain feature cache (IL-B reads it when its data config is the
            # same); a recipe with recovery copies builds its own, the copies' sensors
            # synthesized.
            copies = cfg['data'].get('perturb_copies', 0)
            cache = (COSTS['feature_frame_s'] * (n * (1 + copies) + nv)
                     if stage.name == 'il_a' or copies else 0.0)
            return cache + steps * cfg['batch_size'] * per + epochs * nv * per / 3
        if stage.name == 'rl':
            _, n = self.split_samples('train', d.train_episodes, cfg['frame_stride'])
            scenes = min(n, cfg['total_steps'] * cfg['scenes_per_step'])
            return cfg['total_steps'] * COSTS['grpo_step_s'] + scenes * COSTS['ep_reference_s']
        if stage.name in ('selector_0', 'selector', 'selector_tree'):
            _, n = self.split_samples('train', d.train_episodes, cfg['frame_stride'])
            if cfg['max_scenes']:
                n = min(n, cfg['max_scenes'])
            if stage.name != 'selector_0':
                n += sum(self.rollout_frames(k, cfg['frame_stride'])
                         for k in range(len(c.rollouts.chunks)))
            _, nv = self.split_samples('val', d.val_episodes, cfg['val_frame_stride'])
            if cfg['val_max_scenes']:
                nv = min(nv, cfg['val_max_scenes'])
            label = COSTS['label_reference_s'] * (n * len(cfg['references']) + nv)
            return label + cfg['epochs'] * n * COSTS['selector_sample_s']
        if stage.name == 'rollouts':
            steps = sum(self.rollout_steps(k) for k in range(len(c.rollouts.chunks)))
            return steps * COSTS['rollout_step_s']
        if stage.name.startswith('sequential'):
            steps = cfg['total_steps']
            if cfg['scorer_budget_of']:   # the rl and selector stages' calls, estimated
                from pair_drive_ros.policy.selector import candidates_per_reference
                from pair_drive_ros.policy.tree import resolve_group
                from pair_drive_ros.training import train_rl, train_selector

                rl = self.trainer_config('rl', train_rl.RLTrainConfig, {})
                sel = self.trainer_config('selector', train_selector.SelectorTrainConfig, {})
                _, n = self.split_samples('train', d.train_episodes, sel.frame_stride)
                n += sum(self.rollout_frames(k, sel.frame_stride)
                         for k in range(len(c.rollouts.chunks)))
                calls = (rl.total_steps * rl.scenes_per_step * (len(resolve_group(rl.group)) + 1)
                         + n * len(sel.references)
                         * candidates_per_reference(sel.group, sel.model.plan_variants))
                steps = math.ceil(calls / (cfg['scenes_per_step'] * cfg['group_size']))
            return steps * COSTS['sequential_step_s']
        if stage.name == 'test_data':
            return self.generate_s('test', d.test_episodes) / max(1, min(d.workers, 2))
        if stage.name in ('evaluate', 'test'):
            split = 'val' if stage.name == 'evaluate' else 'test'
            e = c.evaluate if split == 'val' else c.test
            episodes = d.val_episodes if split == 'val' else d.test_episodes
            steps, n = self.split_samples(split, episodes, e.frame_stride)
            if e.max_frames:
                n = min(n, e.max_frames)
            closed = e.closed_loop_episodes * sum(
                self.cap(name, e.closed_loop_max_steps) for name in self.scenario_names()
            ) * COSTS['rollout_step_s']
            return len(ROWS) * (n * COSTS['eval_frame_s'] + closed) / max(
                1, min(e.workers, 2))   # 2 cores
        return COSTS['publish_s']

    def cap(self, name: str, max_steps: int = 0) -> int:
        """Return the step cap of a scenario (max_steps > 0 overrides the suite's)."""
        return max_steps or self.suite.get(name).max_steps

    def generate_s(self, split: str, episodes: int) -> float:
        """One core's seconds to generate a split (per-scenario costs of the expert)."""
        from pair_drive_ros.sim.generate import plan_jobs

        suite = self.suite
        total = 0.0
        for name, _ in plan_jobs(suite, split, episodes, self.scenario_names()):
            spec = suite.get(name)
            per = COSTS['generate_step_s'].get(name, COSTS['generate_step_s'][spec.expert])
            total += per * (self.cfg.data.max_steps or spec.max_steps)
        return total

    def rollout_steps(self, k: int) -> int:
        """Return the simulator steps of rollout chunk k (at most)."""
        return sum(self.cap(name, self.cfg.rollouts.max_steps) for name, _ in self.rollout_jobs(k))

    def rollout_frames(self, k: int, stride: int) -> int:
        """Return the selector frames of rollout chunk k (at most)."""
        return sum(math.ceil(max(0, self.cap(n, self.cfg.rollouts.max_steps) + 1 - 40) / stride)
                   for n, _ in self.rollout_jobs(k))


# Seconds on one core of the 2-core development machine, from the timings in docs/RESULTS.md
# and the model cards (most were taken with other jobs on the machine, so they lean high).
COSTS = {
    # generate: CPU time per simulator step of one expert episode (docs/RESULTS.md, "Embedded
    # simulator": highway 1.7 s / 200 steps, merge 1.1 / 200, intersection 24.6 / 150,
    # roundabout 2.4 / 150); by expert for scenarios added later.
    'generate_step_s': {'highway': 0.0085, 'merge': 0.0055, 'intersection': 0.164,
                        'roundabout': 0.016, 'idm': 0.0085, 'search': 0.164},
    # IL: per training sample (transfuser 1,296 s / 1,670 steps of 32; diffusiondrive
    # 1,151 s / 1,162 steps of 32, models/*.md); validation costs a third of that.
    'il_sample_s': {'transfuser': 0.024, 'diffusiondrive': 0.031},
    'feature_frame_s': 0.1,       # feature cache build per frame (~10 min for the splits)
    'grpo_step_s': 0.25,          # train rl: ~130 s per 600 steps with cached normalisers
    'ep_reference_s': 0.1,        # EP normaliser of a new scene (15 IDM proposals scored)
    'sequential_step_s': 0.12,    # train sequential: 70 s per 600 steps (models/zoo.json)
    # selector: labels per reference (its 30 candidates scored) and training per sample per
    # epoch (659 s for the shipped selector's 8,685 + 992 scenes, 8 epochs; models/*.md)
    'label_reference_s': 0.012,
    'selector_sample_s': 0.003,
    # closed loop: simulator, sensors and a replan every 5 steps (a tiny zoo run: 0.047 s per
    # step with the models' start-up)
    'rollout_step_s': 0.04,
    # DAgger: the expert's 4-s plan from a driven state (SimSession.expert_plan; intersection
    # rollouts ~35 s per episode at label_every 8, roundabout ~6 s, highway and merge ~3 s)
    'relabel_s': {'intersection': 1.8, 'roundabout': 0.25, 'idm': 0.1, 'search': 1.8},
    'eval_frame_s': 0.1,          # open loop: plan (batch 32) + PDM scoring per frame
    'publish_s': 5.0,
}


# -- markers, checks and the run loop ----------------------------------------------------------


def _now() -> str:
    return datetime.now(timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def format_seconds(seconds: float) -> str:
    """'12 s', '34 min', '2 h 05 min'."""
    if seconds < 90:
        return f'{seconds:.0f} s'
    minutes = int(round(seconds / 60))
    return f'{minutes} min' if minutes < 60 else f'{minutes // 60} h {minutes % 60:02d} min'


class ZooRun(Zoo):
    """Checks, plan, execution and markers of a rebuild."""

    def check_folders(self, force: bool, resume: bool) -> None:
        """
        Refuse to write where files would be lost (before anything runs).

        OUT must be empty unless --force or --resume; with --resume (no --force) every file
        the zoo would replace in OUT must be one this work folder published. WORK must be a
        zoo work folder (or new) unless --force.
        """
        if self.out.exists() and not self.out.is_dir():
            raise ZooError(f'--out {self.out} exists and is not a folder')
        entries = sorted(p.name for p in self.out.iterdir()
                         if not (p.name.startswith('.') and p.name.endswith('.tmp'))
                         ) if self.out.is_dir() else []
        if entries and not (force or resume):
            raise ZooError(f'--out {self.out} is not empty ({len(entries)} entries, e.g. '
                           f'{entries[:3]}): pass --resume to continue a zoo run that publishes '
                           'there, or --force to replace the files the zoo writes')
        if resume and not force:
            marker = self.read_marker('publish') or {'outputs': {}}
            ours = {v['path']: v['sha256'] for v in marker['outputs'].values()}
            targets = [self.out / f for f in MODELS] + \
                [self.out / (f[:-3] + '.md') for f in MODELS] + [self.out / 'zoo.json']
            foreign = [p.name for p in targets
                       if p.is_file() and ours.get(str(p)) != sha256_file(p)]
            if foreign:
                raise ZooError(f'--out {self.out} holds {foreign}, which this zoo run did not '
                               'write; pass --force to replace them')
        state = self.work / 'zoo_work.json'
        if self.work.is_dir() and any(self.work.iterdir()) and not state.is_file() and not force:
            raise ZooError(f'--work {self.work} is not empty and is not a zoo work folder; '
                           'choose another or pass --force')

    def check(self, stage: Stage) -> str:
        """'done' when the marker matches the inputs and every output, else why it must run."""
        marker = self.read_marker(stage.name)
        if marker is None:
            return 'interrupted' if (self.markers / f'{stage.name}.started.json').is_file() \
                else 'new'
        if marker.get('inputs') != stage.input_digest() and not self.same_but_new_defaults(
                marker, stage):
            return 'inputs changed'
        for label, path in stage.outputs.items():
            rec = marker['outputs'].get(label)
            if rec is None or rec['path'] != str(path) or not path.exists():
                return f'output {label} missing'
            sha = tree_digest(path) if path.is_dir() else sha256_file(path)
            if sha != rec['sha256']:
                return f'output {label} changed'
        return 'done'

    def same_but_new_defaults(self, marker: dict, stage: Stage) -> bool:
        """Tell whether inputs differ from the marker's only by config fields added at defaults."""
        now = stage.digested()
        configs = marker.get('configs')
        # The marker keeps the commands as the text it wrote (command_text).
        if marker.get('commands') != [command_text(a) for a in stage.commands] \
                or marker.get('input_detail') != now['inputs'] \
                or not isinstance(configs, dict) or set(configs) != set(now['configs']):
            return False
        added = []
        for path, cfg in now['configs'].items():
            extra = fields_added_at_defaults(configs[path], cfg,
                                             stage.config_defaults.get(path, {}))
            if extra is None:
                return False
            added += extra
        if added:
            LOG.info('%s: done; its configs gained %s at their defaults since it ran',
                     stage.name, ', '.join(added))
        return True

    def execute(self, stage: Stage) -> dict:
        """Run a stage and write its done-marker (inputs digest, output checksums, time)."""
        digest = stage.input_digest()
        started = self.markers / f'{stage.name}.started.json'
        previous = json.loads(started.read_text()) if started.is_file() else {}
        same_inputs = previous.get('inputs') == digest
        for label, path in stage.outputs.items():
            if not path.resolve().is_relative_to(self.work.resolve()):
                continue            # files in OUT are replaced atomically, never removed
            if same_inputs and label in stage.keep_partial and path.is_dir():
                for tmp in path.rglob('*.tmp'):
                    tmp.unlink()    # an interrupted write; the episode is redone
            else:
                _remove(path)
        _remove(self.marker_path(stage.name))
        write_text_atomic(started, json.dumps({'inputs': digest, 'started_utc': _now()}))
        for path, data in stage.configs.items():
            write_text_atomic(path, yaml.safe_dump(data, sort_keys=False))
        t0 = time.monotonic()
        (stage.action or self.run_commands)(stage)
        seconds = time.monotonic() - t0
        outputs = {}
        for label, path in stage.outputs.items():
            if not path.exists():
                raise ZooError(f'stage {stage.name} did not write {path}')
            outputs[label] = {'path': str(path), **output_digests(path)}
        marker = {'stage': stage.name, 'title': stage.title, 'inputs': digest,
                  'input_detail': stage.inputs, 'configs': stage.configs,
                  'commands': [command_text(a) for a in stage.commands],
                  'outputs': outputs, 'seconds': seconds,
                  'estimate_s': stage.estimate_s, 'seed': self.cfg.seed,
                  'device': self.device, 'git': self.git, 'finished_utc': _now()}
        write_text_atomic(self.marker_path(stage.name), json.dumps(marker, indent=1, default=str))
        started.unlink()
        return marker

    def plan(self, names: list) -> dict:
        """Status of each stage now; logs the plan with estimated times."""
        stages = {s.name: s for s in self.stages()}
        status = {}
        for name in names:
            stage = stages[name]
            st = self.check(stage)
            upstream = stage.inputs.get('upstream', {})
            if st == 'done' and any(status.get(u, 'done') != 'done' for u in upstream):
                st = 'check after upstream'
            status[name] = st
        lines = [f'zoo plan: out {self.out}, work {self.work}, device {self.device}, '
                 f'seed {self.cfg.seed}, commit {self.git["commit"][:12]}'
                 + (' (uncommitted changes)' if self.git['dirty'] else ''),
                 f'  {"stage":<20}{"status":<26}{"estimate":>12}']
        todo = 0.0
        for name in names:
            est = stages[name].estimate_s
            if status[name] != 'done':
                todo += est
            lines.append(f'  {name:<20}{status[name]:<26}{format_seconds(est):>12}')
        lines.append(f'  {"to run":<46}{format_seconds(todo):>12}  (estimates for 2 CPU '
                     'cores; a GPU or idle cores take less)')
        LOG.info('\n'.join(lines))
        return status

    def run(self, until: str | None = None, rerun: tuple = (), plan_only: bool = False,
            only: tuple = ()) -> dict:
        """
        Run every stage (up to `until`) that is not done; returns name -> 'ran' / 'skipped'.

        With `only`, run just those stages; each needs its upstream stages done, so
        independent stages (il_a and il_b, or the two sequential baselines) can run in
        separate processes or on separate machines sharing the work folder.
        """
        from tqdm import tqdm

        names = [s.name for s in self.stages()]
        if until is not None:
            if until not in names:
                raise ZooError(f'--until {until}: not a stage of this config ({names})')
            names = names[:names.index(until) + 1]
        if only:
            unknown = sorted(set(only) - set(names))
            if unknown:
                raise ZooError(f'--only {unknown}: not a stage of this config ({names})')
            names = [n for n in names if n in only]
            stages = {s.name: s for s in self.stages()}
            for name in names:
                missing = [u for u, d in stages[name].inputs.get('upstream', {}).items()
                           if d is None and u not in names]
                if missing:
                    raise ZooError(f'--only {name}: upstream stage(s) {missing} not done yet')
        for name in rerun:
            _remove(self.marker_path(name))
        self.plan(names)
        if plan_only:
            return {}
        self.work.mkdir(parents=True, exist_ok=True)
        state = self.work / 'zoo_work.json'
        if not state.is_file():
            write_text_atomic(state, json.dumps({'created_utc': _now(), 'command': self.command}))
        results = {}
        bar = tqdm(names, desc='zoo', unit='stage')
        for name in bar:
            bar.set_postfix_str(name)
            stage = {s.name: s for s in self.stages()}[name]   # upstream digests as of now
            status = self.check(stage)
            if status == 'done':
                LOG.info('stage %s: done, skipped', name)
                results[name] = 'skipped'
                continue
            LOG.info('stage %s (%s): %s; estimate %s', name, status, stage.title,
                     format_seconds(stage.estimate_s))
            marker = self.execute(stage)
            LOG.info('stage %s finished in %s', name, format_seconds(marker['seconds']))
            results[name] = 'ran'
        bar.close()
        return results


# -- model cards ---------------------------------------------------------------------------


# The upstream models each checkpoint was built from (stage -> model files).
DEPENDS = {'il_a': (), 'il_b': (), 'il_a_motion': (),
           'il_a_motion_dagger': ('transfuser_lite_motion.pt',),
           'il_b_motion_dagger': ('transfuser_lite_motion.pt',), 'rl': ('transfuser_lite.pt',),
           'selector': ('transfuser_lite.pt', 'pair_rl_branch.pt', SELECTOR_0),
           'selector_tree': ('transfuser_lite.pt', 'pair_rl_branch.pt', SELECTOR_0),
           'sequential_a': ('transfuser_lite.pt',), 'sequential_b': ('diffusiondrive_lite.pt',)}
_SELECTOR_ROLE = 'IL-A references, RL context, rollouts driven by'
DEPEND_ROLE = {'il_a_motion_dagger': 'DAgger round 1 driven by',
               'il_b_motion_dagger': 'DAgger round 1 driven by', 'rl': 'trunk copied from',
               'selector': _SELECTOR_ROLE,
               'selector_tree': _SELECTOR_ROLE, 'sequential_a': 'initialised from',
               'sequential_b': 'initialised from'}


def _manifest_line(root: Path, split: str, sha: str | None) -> str:
    path = root / split / 'MANIFEST.json'
    if not sha or not path.is_file():
        return f'{split}: not generated'
    man = json.loads(path.read_text())
    return (f'{split}: {man["num_episodes"]} episodes, {man["num_frames"]} frames, '
            f'MANIFEST.json sha256 `{sha}`')


def scores_table(scores: dict, keys: tuple) -> list:
    """Markdown lines: open-loop (x 100) and closed-loop rows of evaluation keys per split."""
    lines = []
    for split in ('val', 'test'):
        rows = [(k, scores.get(split, {}).get(k)) for k in ('expert',) + keys]
        rows = [(k, r) for k, r in rows if r and 'open_loop' in r]
        if not rows:
            continue
        lines += ['', f'{split} split, open loop (x 100):', '',
                  '| planner | frames | PDMS | EPDMS | NC | DAC | EP | TTC | C |',
                  '|---|---|---|---|---|---|---|---|---|']
        for _, r in rows:
            s = r['open_loop']['summary']
            lines.append(f'| {r["label"]} | {r["open_loop"]["frames"]} | ' + ' | '.join(
                f'{s.get(m, float("nan")):.1f}' for m in ('pdms', 'epdms', 'NC', 'DAC', 'EP',
                                                          'TTC', 'C')) + ' |')
        closed = [(k, r) for k, r in rows if 'closed_loop' in r]
        if closed:
            lines += ['', f'{split} split, closed loop:', '',
                      '| planner | episodes | collision rate | off-road rate | '
                      'route completion |', '|---|---|---|---|---|']
            for _, r in closed:
                s = r['closed_loop']['summary']
                lines.append(f'| {r["label"]} | {s.get("episodes", 0)} | '
                             f'{s["collision_rate"]:.2f} | {s["off_road_rate"]:.2f} | '
                             f'{s["route_completion"]:.2f} |')
    return lines


def model_card(file: str, title: str, zoo: Zoo, markers: dict, manifests: dict, scores: dict,
               sha: str) -> str:
    """Markdown card of one published checkpoint."""
    stage = MODELS[file][0]
    mk = markers[stage]
    git = mk['git']
    lines = [f'# {file}: {title}', '',
             'Rebuilt from the source tree by `pair-drive zoo` (docs/MODEL_ZOO.md).', '',
             f'- **File.** {(zoo.models / file).stat().st_size:,} bytes, sha256 `{sha}`.',
             f'  Weights digest `{mk["outputs"]["model"]["digest"]}` (model name, model config '
             'and tensors; equal digests mean equal models).',
             f'- **Command.** `{zoo.command}`; its stage `{stage}` ran:']
    lines += [f'  - `{c}`' for c in mk['commands']]
    if stage in ('selector', 'selector_tree'):
        lines.append('  - after stage `selector_0` (the round-0 selector, expert logs only):')
        lines += [f'    `{c}`' for c in markers['selector_0']['commands']]
        lines.append('  - and stage `rollouts` (IL-A + PaIR driven by it; the zoo calls '
                     '`training.rollouts.collect`, as these commands do):')
        lines += [f'    `{c}`' for c in markers['rollouts']['commands']]
    if stage in ('il_a_motion_dagger', 'il_b_motion_dagger'):
        lines.append('  - after stage `dagger` (each round: the IL-A motion of the round before '
                     'drives, the expert relabels; then it trains again):')
        lines += [f'    `{c}`' for c in markers['dagger']['commands']]
    lines += [f'- **Config.** `{zoo.work / "configs" / (stage + ".yaml")}` (also in the '
              'checkpoint as `train_config`).',
              f'- **Data.** `{zoo.data_root}`, generated by stage `data`:']
    lines += [f'  - {_manifest_line(zoo.data_root, s, manifests.get(s))}'
              for s in ('train', 'val')]
    if stage in ('selector', 'selector_tree'):
        for label, rec in markers['rollouts']['outputs'].items():
            lines.append(f'  - on-policy `{rec["path"]}`: tree sha256 `{rec["sha256"]}`')
    if stage in ('il_a_motion_dagger', 'il_b_motion_dagger'):
        for label, rec in markers['dagger']['outputs'].items():
            lines.append(f'  - DAgger {label.replace("_", " ")} `{rec["path"]}` (relabelled '
                         f'frames only): tree sha256 `{rec["sha256"]}`')
    deps = DEPENDS.get(stage, ())
    if deps:
        role = DEPEND_ROLE[stage]
        lines.append(f'- **Built on** ({role}): ' + ', '.join(
            f'`{d}` (weights digest `{_model_digest(markers, d)[:16]}`)' for d in deps) + '.')
    # A stage's recipe may override the run's seed (a training draw chosen on val).
    seeds = {c.get('seed') for c in mk.get('configs', {}).values()} - {None, mk['seed']}
    seed_text = (f'{mk["seed"]} (every stage of the run)' if not seeds else
                 f'{", ".join(map(str, sorted(seeds)))} (this stage\'s recipe; the run\'s is '
                 f'{mk["seed"]})')
    lines += [f'- **Seed.** {seed_text}; device `{mk["device"]}`.',
              f'- **Code.** commit `{git["commit"]}`'
              + (' with uncommitted changes.' if git['dirty'] else '.'),
              f'- **Wall time.** {mk["seconds"]:.0f} s for the stage (estimate '
              f'{mk["estimate_s"]:.0f} s), finished {mk["finished_utc"]}.',
              '- **Scores** (`pair-drive evaluate` of stage `evaluate`'
              + (' and `test`' if 'test' in scores else '') + '; the expert row is the logged '
              'expert):']
    lines += scores_table(scores, CARD_ROWS[file])
    return '\n'.join(lines) + '\n'


def _model_digest(markers: dict, file: str) -> str:
    if file == SELECTOR_0:
        return markers['selector_0']['outputs']['model']['digest']
    return markers[MODELS[file][0]]['outputs']['model']['digest']


# -- command line ----------------------------------------------------------------------------


def run_zoo(cfg: ZooConfig, out: str | Path, work: str | Path | None = None, *,
            force: bool = False, resume: bool = False, until: str | None = None,
            rerun: tuple = (), plan_only: bool = False, runner: Callable = run_in_process,
            command: str = '', only: tuple = ()) -> dict:
    """Check the folders, print the plan and run the stages; returns name -> 'ran'/'skipped'."""
    zoo = ZooRun(cfg, out, work, runner, command or f'pair-drive zoo --out {out}')
    zoo.check_folders(force, resume)
    return zoo.run(until, tuple(rerun), plan_only, tuple(only))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """CLI flags of `pair-drive zoo`."""
    add_config_arguments(parser, DEFAULT_CONFIG)
    parser.add_argument('--out', required=True,
                        help='where the checkpoints, their cards and zoo.json go')
    parser.add_argument('--work', help='data, run folders and stage markers (default: the '
                        "config's work_dir)")
    parser.add_argument('--resume', action='store_true',
                        help='allow a non-empty --out holding only files this run wrote')
    parser.add_argument('--force', action='store_true',
                        help='allow replacing any file the zoo writes in --out')
    parser.add_argument('--until', choices=STAGES, help='stop after this stage')
    parser.add_argument('--rerun', action='append', default=[], choices=STAGES,
                        help='run this stage again even if it is done (repeatable)')
    parser.add_argument('--only', action='append', default=[], choices=STAGES,
                        help='run only this stage (repeatable); its upstream stages must be '
                        'done, e.g. il_b in a second process while il_a runs')
    parser.add_argument('--plan', action='store_true', help='print the plan and exit')
    parser.add_argument('--runner', choices=sorted(RUNNERS), default='inprocess',
                        help='run the stage commands in this process or one process each')


def run(args: argparse.Namespace) -> int:
    """Entry point of `pair-drive zoo`."""
    args.config = resolve_path(args.config)
    cfg = config_from_args(ZooConfig, args)
    command = shlex.join(['pair-drive', 'zoo', '--config', args.config,
                          *[x for s in args.set for x in ('--set', s)], '--out', args.out]
                         + (['--work', args.work] if args.work else []))
    try:
        run_zoo(cfg, args.out, args.work, force=args.force, resume=args.resume,
                until=args.until, rerun=tuple(args.rerun), plan_only=args.plan,
                runner=RUNNERS[args.runner], command=command, only=tuple(args.only))
    except ZooError as err:
        LOG.error('%s', err)
        return 2
    return 0
