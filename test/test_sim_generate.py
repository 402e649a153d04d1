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

"""`pair-drive generate`: seed specs, any split, failures skipped and listed, shards add up."""

import argparse
import hashlib
import json

import pytest

from pair_drive_ros.sim import generate
from pair_drive_ros.sim.suite import load_suite, parse_seeds, resolve_jobs, SuiteError

SUITE = """scenarios:
  road:
    env_id: highway-fast-v0
    max_steps: 3
    config: {vehicles_count: 3, lanes_count: 2}
    seeds: {train: [0, 100], calib: [100, 110]}
  broken:
    env_id: no-such-env-v0
    max_steps: 3
    seeds: {train: [0, 100]}
"""


@pytest.fixture()
def suite_file(tmp_path):
    path = tmp_path / 'suite.yaml'
    path.write_text(SUITE)
    return path


def _args(suite_file, out, **kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    generate.add_arguments(parser)
    argv = ['--suite', str(suite_file), '--out', str(out), '--set', 'progress=false']
    for key, value in kw.items():
        argv += [f'--{key.replace("_", "-")}', str(value)]
    return parser.parse_args(argv)


def test_seed_specs():
    assert parse_seeds('11000-11002') == {None: [11000, 11001, 11002]}
    assert parse_seeds('0-1,5, 7') == {None: [0, 1, 5, 7]}
    assert parse_seeds('road=3;broken=0-1') == {'road': [3], 'broken': [0, 1]}
    for bad in ('', '5-3', 'a-b', '1,1', 'road=1;road=2', '=3'):
        with pytest.raises(SuiteError):
            parse_seeds(bad)


def test_resolve_jobs(suite_file):
    suite = load_suite(suite_file)
    assert suite.sha256 == hashlib.sha256(suite_file.read_bytes()).hexdigest()
    assert resolve_jobs(suite, 'x', seeds='4-5') == [('road', 4), ('broken', 4), ('road', 5),
                                                     ('broken', 5)]
    assert resolve_jobs(suite, 'x', seeds='broken=9;road=1') == [('road', 1), ('broken', 9)]
    assert resolve_jobs(suite, 'calib', episodes=2) == [('road', 100), ('road', 101)]
    assert resolve_jobs(suite, 'train', per_scenario=1, skip=2) == [('road', 2), ('broken', 2)]
    with pytest.raises(SuiteError, match='splits'):
        resolve_jobs(suite, 'nope', episodes=1)
    with pytest.raises(SuiteError, match='only 10 seeds'):
        resolve_jobs(suite, 'calib', per_scenario=5, skip=6)
    with pytest.raises(SuiteError, match='unknown scenario'):
        resolve_jobs(suite, 'x', seeds='other=1')
    with pytest.raises(ValueError, match='exactly one'):
        resolve_jobs(suite, 'x', seeds='1', episodes=1)


@pytest.mark.parametrize('workers', [1, 2])
def test_failing_episode_is_skipped_and_listed(suite_file, tmp_path, workers):
    out = tmp_path / f'out{workers}'
    code = generate.run(_args(suite_file, out, split='my-split', seeds='7',
                              workers=workers))
    assert code == 1
    manifest = json.loads((out / 'my-split' / 'MANIFEST.json').read_text())
    assert [(e['scenario'], e['seed']) for e in manifest['episodes']] == [('road', 7)]
    assert manifest['num_failures'] == 1
    (fail,) = manifest['failures']
    assert (fail['scenario'], fail['seed']) == ('broken', 7) and 'no-such-env' in fail['error']
    assert manifest['suite_sha256'] == hashlib.sha256(suite_file.read_bytes()).hexdigest()
    assert (out / 'my-split' / 'road' / 'road_s000007.npz').is_file()


def test_shards_write_the_same_files_as_one_run(suite_file, tmp_path):
    one, shards = tmp_path / 'one', tmp_path / 'shards'
    assert generate.run(_args(suite_file, one, split='calib', seeds='road=100-103')) == 0
    assert generate.run(_args(suite_file, shards, split='calib', seeds='road=100-101')) == 0
    assert generate.run(_args(suite_file, shards, split='calib', seeds='road=102-103')) == 0
    files = sorted(p.relative_to(one) for p in one.rglob('*.npz'))
    assert len(files) == 4
    assert files == sorted(p.relative_to(shards) for p in shards.rglob('*.npz'))
    for rel in files:
        assert (one / rel).read_bytes() == (shards / rel).read_bytes()

    def manifest(root):
        data = json.loads((root / 'calib' / 'MANIFEST.json').read_text())
        return data, [c['seeds'] for c in data.pop('configs')]

    (data, seeds), (shard_data, shard_seeds) = manifest(one), manifest(shards)
    # The same episodes; the configs of the runs that wrote them are kept beside them.
    assert data == shard_data
    assert seeds == ['road=100-103'] and shard_seeds == ['road=100-101', 'road=102-103']
    # --episodes over the suite's calib range picks the same seeds and files.
    assert generate.run(_args(suite_file, tmp_path / 'count', split='calib', episodes=4,
                              scenarios='road')) == 0
    assert manifest(tmp_path / 'count')[0] == data


def test_bad_requests_are_clear_errors(suite_file, tmp_path):
    assert generate.run(_args(suite_file, tmp_path, split='a/b', seeds='1')) == 2
    assert generate.run(_args(suite_file, tmp_path, seeds='1', episodes=1)) == 2
    assert generate.run(_args(suite_file, tmp_path, split='val', episodes=1)) == 2
    assert not list(tmp_path.rglob('*.npz'))
