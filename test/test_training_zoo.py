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

"""`pair-drive zoo` end to end on a tiny config: stages, resume, determinism, cards, refusals."""

import hashlib
import json
import logging
from pathlib import Path
import shlex

import pytest
import torch

from pair_drive_ros.core.config import config_from_dict, load_config
from pair_drive_ros.training.rl_data import scorer_calls
from pair_drive_ros.training.zoo import (fields_added_at_defaults, json_digest, MODELS,
                                         run_in_process, run_subprocess, run_zoo, Stage, STAGES,
                                         ZooConfig, ZooError, ZooRun)

ROOT = Path(__file__).resolve().parents[1]

# Every stage of the real pipeline with a handful of frames, steps and episodes each.
TINY = {
    'seed': 0, 'device': 'cpu', 'threads': 1, 'workers': 1,
    'data': {'train_episodes': 2, 'val_episodes': 2, 'test_episodes': 2,
             'scenarios': ['highway', 'merge'], 'max_steps': 52, 'workers': 1},
    'il_a': {'config': str(ROOT / 'config/il_transfuser.yaml'),
             'overrides': ['epochs=1', 'max_steps=2', 'batch_size=4', 'val_max_frames=4',
                           'warmup_steps=1', 'data.frame_stride=2']},
    'il_b': {'config': str(ROOT / 'config/il_diffusiondrive.yaml'),
             'overrides': ['epochs=1', 'max_steps=2', 'batch_size=4', 'val_max_frames=4',
                           'warmup_steps=1', 'data.frame_stride=2', 'model_config.num_modes=4']},
    'il_a_motion': {'config': str(ROOT / 'config/il_transfuser_motion.yaml'),
                    'overrides': ['epochs=1', 'max_steps=2', 'batch_size=4', 'val_max_frames=4',
                                  'warmup_steps=1', 'data.frame_stride=2']},
    'dagger': {'rounds': [{'highway': 1}, {'highway': 1, 'merge': 1}], 'max_steps': 45,
               'workers': 1},
    'il_b_motion_dagger': {'config': str(ROOT / 'config/il_diffusiondrive_motion.yaml'),
                           'overrides': ['epochs=1', 'max_steps=2', 'batch_size=4',
                                         'val_max_frames=4', 'warmup_steps=1',
                                         'data.frame_stride=2', 'model_config.num_modes=4',
                                         'seed=1'],
                           'scenarios': ['highway']},
    'rl': {'config': str(ROOT / 'config/rl_grpo.yaml'),
           'overrides': ['total_steps=2', 'scenes_per_step=2', 'frame_stride=2']},
    'selector': {'config': str(ROOT / 'config/selector.yaml'),
                 'overrides': ['epochs=1', 'max_scenes=4', 'val_max_scenes=4', 'batch_size=4',
                               'frame_stride=2', 'val_frame_stride=8']},
    'rollouts': {'chunks': [1, 1], 'max_steps': 45},
    'sequential_a': {'config': str(ROOT / 'config/rl_sequential.yaml'),
                     'overrides': ['total_steps=2', 'scenes_per_step=2', 'group_size=4',
                                   'frame_stride=2']},
    'sequential_b': {'config': str(ROOT / 'config/rl_sequential_b.yaml'),
                     'overrides': ['total_steps=2', 'scenes_per_step=2', 'group_size=4',
                                   'frame_stride=2']},
    'evaluate': {'frame_stride': 8, 'max_frames': 3},
    'test': {'frame_stride': 8, 'max_frames': 2},
}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _tiny(**changes) -> ZooConfig:
    data = json.loads(json.dumps(TINY))
    for key, value in changes.items():
        node = data
        *parents, last = key.split('.')
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return config_from_dict(ZooConfig, data)


class _Interrupt:
    """A command runner that stops the zoo (like Ctrl-C) when a given command starts."""

    def __init__(self, head: list) -> None:
        self.head = head

    def __call__(self, argv: list) -> int:
        if argv[:len(self.head)] == self.head:
            raise KeyboardInterrupt
        return run_in_process(argv)


def test_zoo_builds_resumes_and_publishes(tmp_path):
    out, work = tmp_path / 'out', tmp_path / 'work'
    cfg = _tiny()
    ran = {name: 'ran' for name in STAGES}
    skipped = {name: 'skipped' for name in ran}

    # Stages 1..2, then an interruption in the middle of stage 5 (rl).
    assert run_zoo(cfg, out, work, until='il_a') == {'data': 'ran', 'il_a': 'ran'}
    # --only runs a stage whose upstream is done (il_b beside il_a), and refuses one whose
    # upstream is not.
    with pytest.raises(ZooError, match='upstream'):
        run_zoo(cfg, out, work, only=('selector_0',))
    assert run_zoo(cfg, out, work, only=('il_b',)) == {'il_b': 'ran'}
    with pytest.raises(KeyboardInterrupt):
        run_zoo(cfg, out, work, runner=_Interrupt(['train', 'rl']))
    assert (work / 'stages' / 'il_b.json').is_file()
    assert not (work / 'stages' / 'rl.json').is_file()
    assert (work / 'stages' / 'rl.started.json').is_file()
    assert not out.exists()     # nothing is published before every model is built

    # The re-run skips the finished stages and does the rest.
    results = run_zoo(cfg, out, work)
    assert results == {**ran, 'data': 'skipped', 'il_a': 'skipped', 'il_b': 'skipped',
                       'il_a_motion': 'skipped', 'dagger': 'skipped',
                       'il_a_motion_dagger': 'skipped', 'il_b_motion_dagger': 'skipped'}
    zoo = json.loads((out / 'zoo.json').read_text())
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*MODELS, *(f[:-3] + '.md' for f in MODELS), 'zoo.json'])
    manifest_sha = _sha(work / 'data' / 'logs' / 'train' / 'MANIFEST.json')
    assert zoo['data_manifests_sha256']['train'] == manifest_sha
    for file, (stage, _) in MODELS.items():
        sha = _sha(out / file)
        assert sha == _sha(work / 'models' / file) == zoo['models'][file]['sha256']
        marker = json.loads((work / 'stages' / f'{stage}.json').read_text())
        assert marker['outputs']['model']['sha256'] == sha
        card = (out / (file[:-3] + '.md')).read_text()
        seed = ("**Seed.** 1 (this stage's recipe; the run's is 0)"
                if stage == 'il_b_motion_dagger' else '**Seed.** 0 (every stage')
        for text in (f'sha256 `{sha}`', manifest_sha, zoo['git']['commit'],
                     marker['commands'][0], seed, '| expert (logged)', 'PDMS'):
            assert text in card, (file, text)
    # The RL trunk is a copy of the IL-A this run trained (frozen while GRPO trains the tree).
    il = torch.load(out / 'transfuser_lite.pt', weights_only=True)['state_dict']
    rl = torch.load(out / 'pair_rl_branch.pt', weights_only=True)['state_dict']
    trunk = [k for k in rl if k.startswith('trunk.')]
    assert trunk and all(torch.equal(rl[k], il[k]) for k in trunk)
    # The final selector learnt from the expert logs and both rollout roots.
    sel = torch.load(out / 'pair_selector.pt', weights_only=True)['train_config']
    assert sel['extra_data_roots'] == [str(work / 'data' / f'onpolicy_{k}') for k in (0, 1)]
    assert len(list((work / 'data' / 'onpolicy_1' / 'train').rglob('*.npz'))) == 2
    # The sequential baselines had the same data and spent the scorer calls of rl + selector.
    budget = scorer_calls(str(out / 'pair_rl_branch.pt')) + \
        scorer_calls(str(out / 'pair_selector.pt'))
    for file in ('transfuser_lite_seq_grpo.pt', 'diffusiondrive_lite_seq_grpo.pt'):
        seq = torch.load(out / file, weights_only=False)
        assert seq['train_config']['extra_data_roots'] == sel['extra_data_roots']
        assert budget <= seq['scorer_calls'] < budget + 2 * 4   # whole steps of 2 scenes x 4
    scores = zoo['scores']['val']
    assert set(scores) == {'expert', 'il_a', 'il_b', 'pair_a', 'pair_b', 'seq_a', 'seq_b',
                           'il_a_motion', 'pair_a_motion', 'il_a_motion_dagger',
                           'pair_a_motion_dagger', 'il_b_motion_dagger', 'pair_b_motion_dagger'}
    # DAgger: round 1 drove il_a_motion's model, round 2 the model trained on round 1; the
    # seeds of a scenario continue across rounds; the published model learnt from both.
    dagger = json.loads((work / 'stages' / 'dagger.json').read_text())['commands']
    assert [c.split('--il-checkpoint ')[1].split()[0] for c in dagger if 'rollouts' in c] == \
        [str(work / 'models' / f) for f in ('transfuser_lite_motion.pt',
                                            'transfuser_lite_motion_dagger_1.pt',
                                            'transfuser_lite_motion_dagger_1.pt')]
    episodes = sorted(str(p.relative_to(work / 'data')) for r in (1, 2)
                      for p in (work / 'data' / f'dagger_{r}' / 'train').rglob('*.npz'))
    assert episodes == ['dagger_1/train/highway/highway_s000000.npz',
                        'dagger_2/train/highway/highway_s000001.npz',
                        'dagger_2/train/merge/merge_s000000.npz']
    final = json.loads((work / 'stages' / 'il_a_motion_dagger.json').read_text())['commands']
    assert 'dagger_1' in final[0] and 'dagger_2' in final[0]
    assert '(relabelled frames only)' in (out / 'transfuser_lite_motion_dagger.md').read_text()
    # IL-B motion learnt from the rounds' highway episodes only (its `scenarios`), with sweeps.
    il_b = torch.load(out / 'diffusiondrive_lite_motion_dagger.pt', weights_only=False)
    assert il_b['perception_config']['history_sweeps'] == 2
    il_b_cmd = json.loads((work / 'stages' / 'il_b_motion_dagger.json').read_text())['commands']
    assert 'dagger_2' in il_b_cmd[0] and 'extra_data_scenarios=["highway"]' in il_b_cmd[0]
    assert 'DAgger round 2' in (out / 'diffusiondrive_lite_motion_dagger.md').read_text()
    # The motion IL-A reads past sweeps; the RL branch it plugs into does not.
    motion = torch.load(out / 'transfuser_lite_motion.pt', weights_only=False)
    assert motion['perception_config']['history_sweeps'] == 2
    assert motion['train_config']['data']['dense_scenarios'] == ['intersection']
    assert torch.load(out / 'pair_rl_branch.pt',
                      weights_only=False)['perception_config']['history_sweeps'] == 0
    assert all(r['open_loop']['frames'] == 3 for r in scores.values())
    assert set(zoo['scores']['test']) == set(scores)
    assert zoo['data_manifests_sha256']['test'] == \
        _sha(work / 'data' / 'logs' / 'test' / 'MANIFEST.json')
    assert 'test split, open loop' in (out / 'pair_rl_branch.md').read_text()

    # A finished --out is never overwritten by accident ...
    with pytest.raises(ZooError, match='not empty'):
        run_zoo(cfg, out, work)
    # ... --resume finds nothing to do ...
    assert run_zoo(cfg, out, work, resume=True) == skipped
    # ... also where a trainer config gained a field since a stage ran, at its default (as a
    # marker written before `closed_loop_outcomes` existed holds it):
    marker_path = work / 'stages' / 'selector.json'
    marker = json.loads(marker_path.read_text())
    for config in marker['configs'].values():
        assert config.pop('closed_loop_outcomes') is False
    marker['inputs'] = json_digest({'commands': [shlex.split(c)[1:] for c in marker['commands']],
                                    'inputs': marker['input_detail'],
                                    'configs': marker['configs']})
    marker_path.write_text(json.dumps(marker))
    assert run_zoo(cfg, out, work, resume=True) == skipped
    # ... and CPU training is bit-reproducible: re-run stages give the same weights, so
    # nothing after them runs again.
    again = ('il_a', 'il_b', 'rl', 'selector_0', 'sequential_b')
    assert run_zoo(cfg, out, work, resume=True, rerun=again) == \
        {**skipped, **{name: 'ran' for name in again}}
    # A changed input re-runs its stage and what depends on it, nothing else.
    results = run_zoo(_tiny(**{'evaluate.max_frames': 2}), out, work, resume=True)
    assert results == {**skipped, 'evaluate': 'ran', 'publish': 'ran'}
    zoo = json.loads((out / 'zoo.json').read_text())
    assert all(r['open_loop']['frames'] == 2 for r in zoo['scores']['val'].values())
    # A published file edited by hand is not replaced without --force; with it, only
    # publish runs.
    (out / 'pair_selector.md').write_text('edited')
    with pytest.raises(ZooError, match='did not write'):
        run_zoo(_tiny(**{'evaluate.max_frames': 2}), out, work, resume=True)
    assert run_zoo(_tiny(**{'evaluate.max_frames': 2}), out, work, force=True) == \
        {**skipped, 'publish': 'ran'}
    assert 'edited' not in (out / 'pair_selector.md').read_text()


def test_fields_added_at_defaults():
    defaults = {'lr': 0.001, 'new': False, 'model': {'width': 64, 'extra': 0}}
    old = {'lr': 0.01, 'model': {'width': 32}}
    assert fields_added_at_defaults(old, {'lr': 0.01, 'model': {'width': 32}}, defaults) == []
    assert fields_added_at_defaults(
        old, {'lr': 0.01, 'new': False, 'model': {'width': 32, 'extra': 0}}, defaults) == \
        ['new', 'model.extra']
    # Anything else is a changed input: a new field away from its default, a changed value,
    # a removed field, a field the class does not know.
    for new in ({'lr': 0.01, 'new': True, 'model': {'width': 32}},
                {'lr': 0.02, 'new': False, 'model': {'width': 32}},
                {'lr': 0.01, 'model': {'width': 32, 'extra': 1}},
                {'model': {'width': 32}},
                {'lr': 0.01, 'model': {'width': 32}, 'unknown': 1}):
        assert fields_added_at_defaults(old, new, defaults) is None


def test_zoo_refuses_to_overwrite(tmp_path):
    out, work = tmp_path / 'out', tmp_path / 'work'
    out.mkdir()
    (out / 'pair_selector.pt').write_bytes(b'a model someone trained')
    with pytest.raises(ZooError, match='not empty'):
        run_zoo(_tiny(), out, work, plan_only=True)
    with pytest.raises(ZooError, match='pair_selector.pt'):
        run_zoo(_tiny(), out, work, resume=True, plan_only=True)
    assert run_zoo(_tiny(), out, work, force=True, plan_only=True) == {}
    # A file the zoo does not write may stay in --out with --resume.
    (out / 'pair_selector.pt').unlink()
    (out / 'README.md').write_text('notes')
    assert run_zoo(_tiny(), out, work, resume=True, plan_only=True) == {}
    assert not work.exists()    # --plan writes nothing
    # A folder that is not a zoo work folder is not used as one.
    other = tmp_path / 'other'
    other.mkdir()
    (other / 'results.csv').write_text('1,2')
    with pytest.raises(ZooError, match='not a zoo work folder'):
        run_zoo(_tiny(), tmp_path / 'out2', other, plan_only=True)


def test_zoo_cli_plan_and_bad_config(tmp_path, caplog, capfd):
    from pair_drive_ros.cli import main

    caplog.set_level(logging.INFO)
    assert main(['zoo', '--config', str(ROOT / 'config/zoo.yaml'), '--out', str(tmp_path / 'o'),
                 '--work', str(tmp_path / 'w'), '--plan']) == 0
    plan = caplog.text
    for name in STAGES:
        assert f'  {name} ' in plan
    assert 'to run' in plan
    assert not (tmp_path / 'w').exists()
    # The default config fits a night on 2 CPU cores by the zoo's own estimate; the GPU and
    # motion configs resolve every trainer config too.
    zoo = ZooRun(load_config(ZooConfig, ROOT / 'config/zoo.yaml'), tmp_path / 'o', tmp_path / 'w')
    hours = sum(s.estimate_s for s in zoo.stages()) / 3600
    assert 1.0 < hours < 8.0
    # The guard is the deployed selector's alone: the rollouts' selector_0 and the paper-set
    # selector keep the recipe's (off), so the rollouts and every selector's weights stay.
    configs = {Path(p).name: c for s in zoo.stages() for p, c in s.configs.items()}
    assert configs['selector.yaml']['model']['safety_tolerance'] == 0.01
    assert configs['selector_0.yaml']['model']['safety_tolerance'] == -1.0
    assert configs['selector_tree.yaml']['model']['safety_tolerance'] == -1.0
    gpu = ZooRun(load_config(ZooConfig, ROOT / 'config/zoo_gpu.yaml'), tmp_path / 'o')
    configs = {Path(p).name: c for s in gpu.stages() for p, c in s.configs.items()}
    assert configs['il_a.yaml']['batch_size'] == 64 and configs['selector.yaml']['threads'] == 4
    assert configs['il_a.yaml']['device'] == ('cuda' if torch.cuda.is_available() else 'cpu')
    # The motion chain: both IL planners on past sweeps (the rest follows their checkpoints).
    motion = ZooRun(load_config(ZooConfig, ROOT / 'config/zoo_motion.yaml'), tmp_path / 'o')
    configs = {Path(p).name: c for s in motion.stages() for p, c in s.configs.items()}
    assert configs['il_a.yaml']['perception']['history_sweeps'] == 2
    assert configs['il_b.yaml']['perception']['history_sweeps'] == 2
    assert not (tmp_path / 'w').exists()
    # The subprocess runner reaches the same command table.
    assert run_subprocess(['zoo', '--help']) == 0
    assert 'usage: pair-drive zoo' in capfd.readouterr().out
    # Evaluation rows in parallel processes: every command runs; a failing one stops the zoo.
    merged = tmp_path / 'merged'
    stage = Stage('evaluate', 'rows', commands=[
        ['report', 'merge', '--help'], ['zoo', '--help'],
        ['report', 'merge', str(tmp_path / 'no_shard'), '--out', str(merged)]])
    with pytest.raises(ZooError, match='1 commands failed, e.g. `pair-drive report merge /'):
        zoo._parallel(2)(stage)
    assert capfd.readouterr().out.count('usage: pair-drive') == 2
    assert zoo._parallel(1) is None      # one at a time: the stage's own runner
    with pytest.raises(ZooError, match='unknown scenarios'):
        run_zoo(_tiny(**{'data.scenarios': ['nowhere']}), tmp_path / 'o', tmp_path / 'w')
    # DAgger rounds: a scenario's seeds continue after its earlier rounds, split over workers.
    assert zoo.dagger_jobs(1) == [('intersection', 0, 16), ('intersection', 16, 16)]
    assert zoo.dagger_jobs(2)[:3] == [('intersection', 32, 12), ('intersection', 44, 12),
                                      ('roundabout', 0, 12)]
    for rounds in ([], [{'nowhere': 2}], [{'highway': 0}]):
        with pytest.raises(ZooError, match='dagger.rounds'):
            run_zoo(_tiny(**{'dagger.rounds': rounds}), tmp_path / 'o', tmp_path / 'w')
    with pytest.raises(ValueError, match='unknown config keys'):
        _tiny(**{'il_a.epochs': 3})
