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
The `pair-drive` command: one sub-command per job, each implemented in its room.

Every sub-command module exposes `add_arguments(parser)` and `run(args) -> int`. Modules are
imported lazily, so `pair-drive --help` is fast and a missing optional dependency only affects
its own command.
"""

import argparse
import logging
import sys

from pair_drive_ros.core.commands import run_subcommand

# Errors a user causes (bad file, parameter, checkpoint): one line instead of a traceback.
USER_ERRORS = (ValueError, OSError)


def _is_user_error(err: BaseException) -> bool:
    """Tell a user's error (bad file, parameter, checkpoint; rclpy's parameter errors)."""
    if isinstance(err, USER_ERRORS):
        return True
    return type(err).__module__ == 'rclpy.exceptions' and any(
        base.__name__ in ('ParameterException', 'NameValidationException')
        for base in type(err).__mro__)


# name: (module, one-line description)
COMMANDS = {
    'generate': ('pair_drive_ros.sim.generate',
                 'generate scene logs with the embedded simulator'),
    'export-bag': ('pair_drive_ros.sim.export_bag',
                   'export a scene-log episode as a rosbag2 MCAP'),
    'dataset': ('pair_drive_ros.training.datasets',
                'turn rosbag2 recordings into scene logs for training (from-bag)'),
    'score': ('pair_drive_ros.scoring.cli',
              'score trajectories with the PDM scorer (PDMS, EPDMS)'),
    'train': ('pair_drive_ros.training.cli',
              'train the IL planners, the RL branch or the selector'),
    'evaluate': ('pair_drive_ros.evaluation.evaluate',
                 'open- and closed-loop evaluation of a planner'),
    'report': ('pair_drive_ros.evaluation.cli',
               'result tables and analyses (PaIR attribution, pick logs)'),
    'replay': ('pair_drive_ros.apps.replay',
               'play a rosbag2 bag with /clock, without rosbag2'),
    'run': ('pair_drive_ros.apps.run',
            'run the perception, planner and tracker nodes in one process'),
    'demo': ('pair_drive_ros.apps.demo',
             'closed-loop demo: simulator + ROS graph + planner, recorded to MCAP'),
    'zoo': ('pair_drive_ros.training.zoo',
            'rebuild every shipped model from HEAD: data, training, evaluation, model cards'),
}


def build_parser() -> argparse.ArgumentParser:
    """Build the top-level parser; each sub-command parses its own arguments."""
    parser = argparse.ArgumentParser(prog='pair-drive',
                                     description=__doc__.strip().splitlines()[0])
    parser.add_argument('-v', '--verbose', action='store_true', help='debug logging')
    parser.add_argument('command', choices=sorted(COMMANDS), help='; '.join(
        f'{name}: {desc}' for name, (_, desc) in sorted(COMMANDS.items())))
    return parser


def main(argv: list | None = None) -> int:
    """Entry point of the `pair-drive` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    head = 2 if argv[:1] in (['-v'], ['--verbose']) else 1
    known = build_parser().parse_args(argv[:head])
    logging.basicConfig(level=logging.DEBUG if known.verbose else logging.INFO,
                        format='%(asctime)s %(levelname)s %(name)s: %(message)s')
    try:
        return run_subcommand(COMMANDS, known.command, argv[head:], f'pair-drive {known.command}')
    except KeyboardInterrupt:
        print(f'pair-drive {known.command}: interrupted', file=sys.stderr, flush=True)
        return 130
    except Exception as err:  # noqa: B902  (user errors are told apart below)
        # A bad file, parameter or checkpoint: one line (every error class of the package is
        # a ValueError; rclpy's parameter errors count too); -v shows the traceback.
        if not _is_user_error(err):
            raise
        if known.verbose:
            raise
        print(f'pair-drive {known.command}: error: {err}', file=sys.stderr, flush=True)
        return 1


if __name__ == '__main__':
    sys.exit(main())
