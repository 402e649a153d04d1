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
Sub-command tables of the `pair-drive` CLI: one way to list, parse and run a command.

A table maps a name to (module, one-line description); each module exposes
`add_arguments(parser)` and `run(args) -> int`, imported only when its command runs (a missing
optional dependency affects its own command only).
"""

import argparse
import importlib


def add_subcommand_arguments(parser: argparse.ArgumentParser, table: dict, dest: str,
                             what: str) -> None:
    """Add the positional sub-command name (`dest`) and the rest, parsed by the sub-command."""
    parser.add_argument(dest, choices=sorted(table), help='; '.join(
        f'{k}: {v[1]}' for k, v in sorted(table.items())))
    parser.add_argument('rest', nargs=argparse.REMAINDER, help=f'{what} arguments')


def run_subcommand(table: dict, name: str, argv: list, prog: str) -> int:
    """Import `name`'s module, parse `argv` with its own arguments and run it."""
    module_name, description = table[name]
    module = importlib.import_module(module_name)
    sub = argparse.ArgumentParser(prog=prog, description=description)
    module.add_arguments(sub)
    return int(module.run(sub.parse_args(argv)) or 0)
