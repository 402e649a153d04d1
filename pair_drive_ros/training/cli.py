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
`pair-drive train <il|rl|selector|sequential|rollouts> ...`: dispatch to the trainer modules.

Each trainer module exposes add_arguments(parser) and run(args); they are imported lazily so a
missing trainer only affects its own sub-command.
"""

import argparse

from pair_drive_ros.core.commands import add_subcommand_arguments, run_subcommand

TRAINERS = {
    'il': ('pair_drive_ros.training.train_il', 'imitation learning (Transfuser, DiffusionDrive)'),
    'rl': ('pair_drive_ros.training.train_rl', 'GRPO training of the RL tree branch'),
    'selector': ('pair_drive_ros.training.train_selector', 'candidate selector training'),
    'sequential': ('pair_drive_ros.training.train_sequential',
                   'sequential IL -> GRPO fine-tuning baseline'),
    'rollouts': ('pair_drive_ros.training.rollouts',
                 'on-policy IL-A + PaIR episodes as scene logs (selector training data)'),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Positional trainer name; the rest is parsed by the trainer."""
    add_subcommand_arguments(parser, TRAINERS, 'trainer', 'trainer')


def run(args: argparse.Namespace) -> int:
    """Parse the trainer's own arguments and run it."""
    return run_subcommand(TRAINERS, args.trainer, args.rest, f'pair-drive train {args.trainer}')
