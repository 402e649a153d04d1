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

"""The scenario suite YAML and the generate job plan."""

from collections import Counter
from pathlib import Path

import pytest

from pair_drive_ros.sim.generate import allot, plan_jobs
from pair_drive_ros.sim.suite import DEFAULT_SUITE, load_suite, SPLITS, SuiteError


def test_shipped_suite_covers_the_families_with_disjoint_seeds():
    suite = load_suite(DEFAULT_SUITE)
    families = {suite.get(n).family for n in suite.names()}
    assert {'highway', 'merge', 'intersection', 'roundabout'} <= families
    for name in suite.names():
        spec = suite.get(name)
        ranges = [set(spec.seed_range(s)) for s in SPLITS]
        assert not (ranges[0] & ranges[1]) and not (ranges[0] & ranges[2])
        assert not (ranges[1] & ranges[2])


def test_plan_is_deterministic_and_weighted():
    suite = load_suite()
    jobs = plan_jobs(suite, 'train', 14)
    assert jobs == plan_jobs(suite, 'train', 14)
    counts = Counter(n for n, _ in jobs)
    weights = {n: suite.get(n).weight for n in suite.names()}
    total = sum(weights.values())
    for name, w in weights.items():
        assert abs(counts[name] - 14 * w / total) < 1.0
    assert len(set(jobs)) == len(jobs)
    assert allot(5, [1, 1, 0.5]) == [2, 2, 1]
    assert sum(allot(7, [0.3, 0.3, 0.4])) == 7
    with pytest.raises(ValueError):
        allot(3, [0, 0])


def test_user_scenario_without_code(tmp_path):
    path = tmp_path / 'suite.yaml'
    path.write_text('scenarios:\n  exit:\n    env_id: exit-v0\n    config: {duration: 5}\n'
                    '    seeds: {train: [0, 10], test: [10, 20]}\n')
    suite = load_suite(path)
    spec = suite.get('exit')
    assert spec.family == 'exit' and spec.expert == 'idm' and spec.seed_range('test')[0] == 10
    assert plan_jobs(suite, 'test', 2) == [('exit', 10), ('exit', 11)]
    with pytest.raises(SuiteError, match='no seeds'):
        spec.seed_range('val')


@pytest.mark.parametrize('text,match', [
    ('scenarios:\n  a: {env_id: x, seeds: {train: [0, 10], test: [5, 20]}}\n', 'overlap'),
    ('scenarios:\n  a: {env_id: x, colour: red}\n', 'unknown keys'),
    ('scenarios:\n  a: {seeds: {}}\n', 'env_id'),
    ('scenarios:\n  a: {env_id: x, expert: magic}\n', 'expert'),
    ('just text', 'scenarios'),
])
def test_bad_suites_are_rejected(tmp_path, text, match):
    path = tmp_path / 'bad.yaml'
    path.write_text(text)
    with pytest.raises(SuiteError, match=match):
        load_suite(path)


def test_the_held_out_suite_shares_no_environment_with_the_training_suite():
    root = Path(__file__).resolve().parents[1]
    train = load_suite(root / 'config' / 'scenarios.yaml')
    held = load_suite(root / 'config' / 'heldout.yaml')
    train_ids = {train.get(n).env_id for n in train.names()}
    held_ids = {held.get(n).env_id for n in held.names()}
    assert len(held_ids) >= 6 and not train_ids & held_ids
    assert {held.get(n).family for n in held.names()}.isdisjoint(
        {train.get(n).family for n in train.names()})
