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

"""The GRPO, sequential and selector trainers under torchrun (2 CPU processes, gloo)."""

import json
import os
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest
import torch

from pair_drive_ros.core.config import load_config
from pair_drive_ros.policy.checkpoint import load_checkpoint, save_checkpoint
from pair_drive_ros.policy.il_planner import build_model
from pair_drive_ros.policy.rl_branch import MODEL_NAME as RL_NAME, RLBranch
from pair_drive_ros.policy.transfuser.config import TransfuserConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
import ddp_trainers  # noqa: E402
from rl_fixtures import SyntheticSceneSet, TINY_BACKBONE  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not torch.distributed.is_available(),
                                reason='torch.distributed (torchrun) is not available')


@pytest.fixture(scope='module')
def ddp_run(tmp_path_factory):
    """Checkpoints to start from, and the three trainers run once under torchrun."""
    root = tmp_path_factory.mktemp('ddp')
    torch.manual_seed(0)
    il = build_model('transfuser', TransfuserConfig(backbone=TINY_BACKBONE))
    il_ckpt = save_checkpoint(root / 'il.pt', il, model_name='transfuser', model_config=il.cfg)
    rl = RLBranch(ddp_trainers.RL_CFG)
    rl_ckpt = save_checkpoint(root / 'rl.pt', rl, model_name=RL_NAME,
                              model_config=ddp_trainers.RL_CFG)
    out = root / 'out'
    out.mkdir()
    env = {**os.environ, 'PYTHONPATH': f'{ROOT}{os.pathsep}{os.environ.get("PYTHONPATH", "")}',
           'OMP_NUM_THREADS': '1'}
    proc = subprocess.run(
        [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2',
         str(ROOT / 'test' / 'ddp_trainers.py'), str(out), str(il_ckpt), str(rl_ckpt)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    paths = {k: Path(v) for k, v in json.loads((out / 'paths.json').read_text()).items()}
    return {'out': out, 'paths': paths, 'il': il_ckpt, 'rl': rl_ckpt}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize('trainer', ['rl', 'sequential', 'selector'])
def test_every_rank_ends_with_the_weights_rank_0_saved_and_writes_one_run(ddp_run, trainer):
    out, path = ddp_run['out'], ddp_run['paths'][trainer]
    saved = load_checkpoint(path)
    rank0 = torch.load(out / f'{trainer}_rank0.pt', weights_only=True)
    rank1 = torch.load(out / f'{trainer}_rank1.pt', weights_only=True)
    assert _same(rank0, rank1)
    assert _same(saved['state_dict'], rank0)
    assert saved['world_size'] == 2
    # One run folder: rank 1 wrote none of its own.
    runs = [p for p in (out / {'rl': 'rl', 'sequential': 'seq', 'selector': 'sel'}[trainer]
                        ).iterdir() if p.is_dir()]
    assert runs == [path.parent]


def test_grpo_steps_score_scenes_per_step_over_both_ranks_and_train(ddp_run, tmp_path):
    saved = load_checkpoint(ddp_run['paths']['rl'])
    # 2 steps x 2 scenes (one per rank) x (5 leaves + reference + expert)
    assert saved['scorer_calls'] == 2 * 2 * (5 + 2)
    torch.manual_seed(ddp_trainers.rl_config(tmp_path).seed)   # the trainer's init
    init = RLBranch(ddp_trainers.RL_CFG).state_dict()
    trained = saved['state_dict']
    changed = [k for k in init if not torch.equal(init[k], trained[k])]
    assert changed and all(not k.startswith('trunk.') for k in changed)   # frozen trunk


def test_sequential_on_two_ranks_equals_one_process_on_the_same_scenes(ddp_run, tmp_path):
    from pair_drive_ros.training.train_sequential import main

    saved = load_checkpoint(ddp_run['paths']['sequential'])
    assert saved['scorer_calls'] == 2 * 2 * 4
    # Ranks slice the step's scenes and noise that one process draws whole; averaged gradients
    # of equal halves' mean losses are the full batch's: the same weights up to rounding.
    cfg = ddp_trainers.sequential_config(tmp_path, str(ddp_run['il']))
    one = load_checkpoint(main(cfg, scenes=SyntheticSceneSet(4)))
    init = load_checkpoint(ddp_run['il'])['state_dict']
    moved = 0.0
    for k, v in one['state_dict'].items():
        torch.testing.assert_close(saved['state_dict'][k], v, atol=1e-6, rtol=0)
        moved = max(moved, float((v.float() - init[k].float()).abs().max()))
    assert moved > 1e-4                                   # and the step did train


def test_selector_labels_gathered_from_two_ranks_equal_one_process(ddp_run, tmp_path):
    from pair_drive_ros.training.train_selector import main

    labels = torch.load(ddp_run['paths']['selector'].parent / 'labels.pt', weights_only=True)
    assert len(labels['train']['candidates']) == 3 and len(labels['val']['candidates']) == 2
    cfg = ddp_trainers.selector_config(tmp_path, str(ddp_run['il']), str(ddp_run['rl']))
    cfg = type(cfg)(**{**cfg.__dict__, 'epochs': 1})
    path = main(cfg, train_scenes=SyntheticSceneSet(3, seed=1),
                val_scenes=SyntheticSceneSet(2, seed=2))
    single = torch.load(path.parent / 'labels.pt', weights_only=True)
    for split in ('train', 'val'):
        for key, value in single[split].items():
            torch.testing.assert_close(labels[split][key].float(), value.float(), atol=1e-3,
                                       rtol=0, msg=lambda m: f'{split} {key}: {m}')
        # The scored targets of the same candidates agree to float precision (ranks may round
        # the candidates differently in the last bit on some CPUs).
        np.testing.assert_allclose(labels[split]['targets'].numpy(),
                                   single[split]['targets'].numpy(), rtol=0, atol=1e-5)
    saved = load_checkpoint(ddp_run['paths']['selector'])
    assert saved['num_scenes'] == 3
    assert saved['model_config']['fallback_margin'] in cfg.margins


def test_shards_are_contiguous_and_cover_everything_once():
    from pair_drive_ros.training.common import DistInfo, rank_seed, shard_of

    halves = [shard_of(np.arange(5), DistInfo(rank=r, world_size=2)) for r in range(2)]
    assert [h.tolist() for h in halves] == [[0, 1], [2, 3, 4]]
    thirds = [shard_of(np.arange(2), DistInfo(rank=r, world_size=3)).tolist() for r in range(3)]
    assert thirds == [[], [0], [1]]
    assert rank_seed(7, 0) == 7 and rank_seed(7, 1) != 7 and rank_seed(7, 1) != rank_seed(8, 1)


def test_grpo_refuses_steps_that_do_not_split_evenly(monkeypatch, tmp_path):
    from pair_drive_ros.training import train_rl
    from pair_drive_ros.training.common import DistInfo

    monkeypatch.setattr(train_rl, 'init_distributed', lambda device: DistInfo(0, 0, 2))
    cfg = load_config(train_rl.RLTrainConfig, 'config/rl_grpo.yaml', [
        f'runs_root={tmp_path}', 'scenes_per_step=3', 'val_split='])
    with pytest.raises(ValueError, match='multiple of the number of processes'):
        train_rl.main(cfg, scenes=SyntheticSceneSet(4))
    assert not any(tmp_path.iterdir())
