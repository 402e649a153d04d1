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

"""The README says what the code does: every command it shows exists and answers --help."""

import importlib
from pathlib import Path
import re

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / 'README.md', ROOT / 'CONTRIBUTING.md', ROOT / 'docs' / 'RESULTS.md']


def _commands(prefix: str) -> set[tuple[str, ...]]:
    """Return the `pair-drive` command words (up to the first option) in the docs' code."""
    found = set()
    for doc in DOCS:
        if not doc.exists():
            continue
        text = doc.read_text()
        code = '\n'.join(re.findall(r'```[a-z]*\n(.*?)```', text, flags=re.S)
                         + re.findall(r'`([^`\n]+)`', text))
        for line in code.splitlines():
            for m in re.finditer(rf'(?<![\w/-]){re.escape(prefix)}((?: [a-z][a-z-]*)+)', line):
                found.add(tuple(m.group(1).split()))
    return found


def _pair_drive_help(words: tuple[str, ...], capsys) -> tuple[int, str]:
    from pair_drive_ros.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main([*words, '--help'])
    return exit_info.value.code, capsys.readouterr().out


def test_the_docs_show_pair_drive_commands():
    words = {w[0] for w in _commands('pair-drive')}
    assert {'demo', 'run', 'replay', 'generate', 'train', 'evaluate', 'score', 'report'} <= words


@pytest.mark.parametrize('words', sorted(_commands('pair-drive')), ids=' '.join)
def test_every_documented_pair_drive_command_answers_help(words, capsys):
    from pair_drive_ros.cli import COMMANDS

    # Sub-command words only: the first is a command, a second one may be its sub-command.
    assert words[0] in COMMANDS, f'the docs name an unknown command: pair-drive {words[0]}'
    sub = importlib.import_module(COMMANDS[words[0]][0])
    choices = next((getattr(sub, n) for n in ('TRAINERS', 'REPORTS', 'DATASETS')
                    if hasattr(sub, n)), {})
    if len(words) > 1 and words[1] in choices:
        words = words[:2]
    else:
        assert not choices, f'pair-drive {words[0]} needs one of {sorted(choices)}: {words}'
        words = words[:1]
    code, out = _pair_drive_help(words, capsys)
    assert code == 0 and 'usage: pair-drive' in out


def test_every_documented_make_target_exists():
    makefile = (ROOT / 'Makefile').read_text()
    targets = set(re.findall(r'^([a-z][a-z-]*):', makefile, flags=re.M))
    for words in _commands('make'):
        assert words[0] in targets, f'the docs name make {words[0]}: no such target'
