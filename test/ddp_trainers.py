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
Run the GRPO, sequential and selector trainers on synthetic scenes under torchrun.

    torchrun --standalone --nproc_per_node 2 test/ddp_trainers.py OUT IL_CKPT RL_CKPT

Each rank keeps the model its trainer built and saves its final state_dict as
OUT/<trainer>_rank<r>.pt, so a test can compare every rank's weights with the checkpoint rank 0
wrote. The process group is created here, so the trainers share it (and leave it open).
"""

import json
from pathlib import Path
import sys

import torch
import torch.distributed as dist

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rl_fixtures import SyntheticSceneSet, TINY_BACKBONE  # noqa: E402

from pair_drive_ros.core.config import load_config  # noqa: E402
import pair_drive_ros.policy.il_planner as il_planner  # noqa: E402
from pair_drive_ros.policy.rl_branch import RLBranchConfig  # noqa: E402
from pair_drive_ros.policy.selector import SelectorConfig  # noqa: E402
from pair_drive_ros.training import train_rl, train_selector, train_sequential  # noqa: E402

RL_CFG = RLBranchConfig(backbone=TINY_BACKBONE, decoder_layers=1, num_heads=2)
SEL_CFG = SelectorConfig(backbone=TINY_BACKBONE, layers=1, num_heads=2, raster_features=True)


def rl_config(out: Path) -> train_rl.RLTrainConfig:
    """Two GRPO steps of two scenes (one per rank), deterministic references."""
    cfg = load_config(train_rl.RLTrainConfig, 'config/rl_grpo.yaml', [
        f'runs_root={out / "rl"}', 'total_steps=2', 'scenes_per_step=2', 'group=5',
        'threads=1', 'warmup_steps=1', 'val_split=', 'init_trunk=', 'out=',
        'il_reference_fraction=0.0', 'save_every=100'])
    return type(cfg)(**{**cfg.__dict__, 'model': RL_CFG})


def sequential_config(out: Path, il_ckpt: str) -> train_sequential.SequentialConfig:
    """Two sequential GRPO steps of two scenes on the tiny IL-A."""
    return load_config(train_sequential.SequentialConfig, 'config/rl_sequential.yaml', [
        f'runs_root={out / "seq"}', 'total_steps=2', 'scenes_per_step=2', 'group_size=4',
        f'il_checkpoint={il_ckpt}', 'out=', 'threads=1'])


def selector_config(out: Path, il_ckpt: str, rl_ckpt: str) -> train_selector.SelectorTrainConfig:
    """Two epochs on three scenes with deterministic references only (labels comparable)."""
    cfg = load_config(train_selector.SelectorTrainConfig, 'config/selector.yaml', [
        f'runs_root={out / "sel"}', 'epochs=2', 'batch_size=3', 'threads=1',
        'extra_data_roots=[]', f'rl_checkpoint={rl_ckpt}', f'il_checkpoint={il_ckpt}',
        'out=', 'references=[il, expert]'])
    return type(cfg)(**{**cfg.__dict__, 'model': SEL_CFG})


def main() -> None:
    """Train each trainer once; every rank saves the weights it ended with."""
    out, il_ckpt, rl_ckpt = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
    dist.init_process_group('gloo')
    rank = dist.get_rank()
    held = {}

    build = train_rl.build
    train_rl.build = lambda cfg, device: held.setdefault('rl', build(cfg, device))
    load_il_model = il_planner.load_il_model
    il_planner.load_il_model = lambda *a, **k: held.setdefault(
        'sequential', load_il_model(*a, **k))

    class Kept(train_selector.Selector):
        def __init__(self, cfg) -> None:
            super().__init__(cfg)
            held['selector'] = (self, None)

    train_selector.Selector = Kept
    paths = {'rl': train_rl.main(rl_config(out), scenes=SyntheticSceneSet(4))}
    train_rl.build = build
    paths['sequential'] = train_sequential.main(sequential_config(out, il_ckpt),
                                                scenes=SyntheticSceneSet(4))
    il_planner.load_il_model = load_il_model    # the selector loads the untouched IL-A
    paths['selector'] = train_selector.main(selector_config(out, il_ckpt, rl_ckpt),
                                            train_scenes=SyntheticSceneSet(3, seed=1),
                                            val_scenes=SyntheticSceneSet(2, seed=2))
    for name, (model, _) in held.items():
        torch.save(model.state_dict(), out / f'{name}_rank{rank}.pt')
    if rank == 0:
        (out / 'paths.json').write_text(json.dumps({k: str(v) for k, v in paths.items()}))
    dist.barrier()
    dist.destroy_process_group()


if __name__ == '__main__':
    main()
