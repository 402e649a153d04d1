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
`pair-drive report <attribution|table|picks|merge> ...`: dispatch to the report modules.

Each report module exposes add_arguments(parser) and run(args); imported lazily.
"""

import argparse

from pair_drive_ros.core.commands import add_subcommand_arguments, run_subcommand

REPORTS = {
    'attribution': ('pair_drive_ros.evaluation.attribution',
                    'the PaIR result tables: IL, PaIR, ablations, oracle, sequential baselines'),
    'table': ('pair_drive_ros.evaluation.results_table',
              'the RESULTS.md tables from pair-drive evaluate output folders'),
    'picks': ('pair_drive_ros.evaluation.pick_log',
              "closed-loop log of PaIR's pick at every replan, and its summary"),
    'merge': ('pair_drive_ros.evaluation.shards',
              'merge closed-loop evaluation shards (--closed-loop-skip) into one result'),
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Positional report name; the rest is parsed by the report."""
    add_subcommand_arguments(parser, REPORTS, 'report', 'report')


def run(args: argparse.Namespace) -> int:
    """Parse the report's own arguments and run it."""
    return run_subcommand(REPORTS, args.report, args.rest, f'pair-drive report {args.report}')
