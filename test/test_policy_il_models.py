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

"""IL models: forward shapes, learning on a tiny batch, diffusion inference, checkpoints."""

import numpy as np
import pytest
import torch

from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.core.sensor_frame import SensorFrame
from pair_drive_ros.perception import FeatureBuilder, PerceptionConfig, STATUS_DIM
from pair_drive_ros.policy.base import PlannerInput
from pair_drive_ros.policy.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from pair_drive_ros.policy.diffusiondrive.loss import nearest_anchor
from pair_drive_ros.policy.factory import build_planner
from pair_drive_ros.policy.il_planner import build_model, compute_loss, load_il_model

CFG = PerceptionConfig()
# One thread: on a loaded 2-core machine torch's thread pool slows tiny models down 50x.
torch.set_num_threads(1)
SMALL = {'backbone': {'channels': [8, 8, 16, 16], 'd_model': 16, 'num_heads': 2,
                      'num_agents': 4, 'semantic_channels': 8}}


def _batch(b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    h, w = CFG.bev_height, CFG.bev_width
    feats = {'lidar_bev': torch.rand(b, 2, h, w, generator=g),
             'camera': torch.randn(b, 3, CFG.camera_height, CFG.camera_width, generator=g),
             'route_raster': (torch.rand(b, 1, h, w, generator=g) > 0.9).float(),
             'ego_status': torch.randn(b, STATUS_DIM, generator=g)}
    t = torch.arange(1, 9, dtype=torch.float32) * 0.5
    traj = torch.zeros(b, 8, 3)
    traj[..., 0] = 10.0 * t
    targets = {'trajectory': traj, 'bev_semantics': torch.randint(0, 5, (b, h, w), generator=g),
               'agent_states': torch.tensor([[10.0, 4.0, 0.0, 5.0, 2.0]]).repeat(b, 4, 1),
               'agent_mask': torch.tensor([[True, False, False, False]]).repeat(b, 1)}
    return feats, targets


@pytest.mark.parametrize('name', ['transfuser', 'diffusiondrive'])
def test_forward_shapes(name):
    torch.manual_seed(0)
    model = build_model(name, dict(SMALL, num_modes=6) if name == 'diffusiondrive' else SMALL)
    feats, targets = _batch(3)
    out = model(feats)
    assert out['trajectory'].shape == (3, 8, 3)
    assert out['bev_semantics'].shape == (3, 5, CFG.bev_height, CFG.bev_width)
    assert out['agent_states'].shape == (3, 4, 5) and out['agent_logits'].shape == (3, 4)
    assert out['memory'].shape == (3, 65, 16)
    losses = compute_loss(name, model, out, targets)
    assert all(torch.isfinite(v) for v in losses.values())
    model.eval()
    plan = model.plan(feats)
    k = 6 if name == 'diffusiondrive' else 1
    assert plan['candidates'].shape == (3, k, 8, 3) and plan['scores'].shape == (3, k)
    assert not plan['trajectory'].requires_grad


@pytest.mark.parametrize('name', ['transfuser', 'diffusiondrive'])
def test_loss_decreases_on_a_tiny_batch(name):
    torch.manual_seed(0)
    model = build_model(name, dict(SMALL, num_modes=6) if name == 'diffusiondrive' else SMALL)
    feats, targets = _batch(4)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(25):
        loss = compute_loss(name, model, model(feats), targets)['loss']
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.6 * first


def test_diffusion_plan_picks_the_best_scored_mode():
    torch.manual_seed(0)
    model = build_model('diffusiondrive', dict(SMALL, num_modes=5)).eval()
    plan = model.plan(_batch(2)[0])
    best = plan['scores'].argmax(-1)
    torch.testing.assert_close(plan['trajectory'], plan['candidates'][torch.arange(2), best])
    torch.testing.assert_close(plan['scores'].sum(-1), torch.ones(2))
    # Noise at step 0 leaves the sample unchanged (alphas_cumprod[0] ~ 1).
    x0 = torch.rand(1, 5, 8, 2)
    torch.testing.assert_close(model.add_noise(x0, torch.tensor([0]), torch.zeros_like(x0)),
                               x0 * model.alphas_cumprod[0].sqrt())


def test_nearest_anchor():
    anchors = torch.zeros(3, 8, 2)
    anchors[1, :, 0] = 10.0
    anchors[2, :, 1] = 10.0
    target = torch.zeros(2, 8, 3)
    target[0, :, 0] = 9.0
    target[1, :, 1] = 7.0
    assert nearest_anchor(anchors, target).tolist() == [1, 2]


def _save(path, name='transfuser', model_config=SMALL):
    model = build_model(name, model_config)
    save_checkpoint(path, model, model_name=name, model_config=model.cfg,
                    perception_config=CFG)
    return model


def test_checkpoint_round_trip_and_mismatch_errors(tmp_path):
    path = tmp_path / 'tf.pt'
    model = _save(path)
    loaded, ckpt = load_il_model(path)
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        torch.testing.assert_close(a, b)
    with pytest.raises(CheckpointError, match="model 'transfuser' != expected 'diffusiondrive'"):
        load_checkpoint(path, expect_model='diffusiondrive')
    other = build_model('transfuser', {'backbone': dict(SMALL['backbone'], d_model=32)})
    with pytest.raises(CheckpointError, match=r'backbone\.d_model: 16 != expected 32'):
        load_checkpoint(path, expect_model_config=other.cfg)
    with pytest.raises(CheckpointError, match=r'perception_config differs: resolution_m'):
        load_checkpoint(path, expect_perception_config=PerceptionConfig(resolution_m=0.5))
    ckpt['schema_version'] = 99
    torch.save(ckpt, tmp_path / 'old.pt')
    with pytest.raises(CheckpointError, match='schema_version 99'):
        load_checkpoint(tmp_path / 'old.pt')


def test_planner_from_checkpoint_plans_in_the_ego_frame(tmp_path):
    _save(tmp_path / 'dd.pt', 'diffusiondrive', dict(SMALL, num_modes=4))
    planner = build_planner('diffusiondrive', il_checkpoint=tmp_path / 'dd.pt')
    ego = EgoState(np.array([100.0, 50.0, 1.0]), np.array([10.0, 0.0]))
    feats = FeatureBuilder(CFG).build(SensorFrame(stamp_s=0.0, ego=ego))
    plans = planner.compute_plans([PlannerInput(feats), PlannerInput(feats)])
    assert plans[0].trajectory.poses.shape == (8, 3) and plans[0].trajectory.frame == 'ego'
    assert plans[0].candidates.shape == (4, 8, 3) and plans[0].candidate_scores.shape == (4,)
    np.testing.assert_allclose(plans[0].trajectory.poses, plans[1].trajectory.poses)
    with pytest.raises(CheckpointError, match='expected'):
        build_planner('transfuser', il_checkpoint=tmp_path / 'dd.pt')


@pytest.mark.parametrize('plan_query', [False, True])
def test_diffusion_mode_queries_and_the_plan_query(plan_query):
    torch.manual_seed(0)
    model = build_model('diffusiondrive', dict(SMALL, num_modes=5, plan_query=plan_query)).eval()
    seen = []
    hook = model.layers[0].register_forward_pre_hook(lambda mod, args: seen.append(args[0]))
    with torch.no_grad():
        enc = model.trunk(_batch(2)[0])
        plan = model.denoise(enc, torch.Generator().manual_seed(0))
        token = enc['traj_query']
        enc['traj_query'] = torch.zeros_like(token)
        without = model.denoise(enc, torch.Generator().manual_seed(0))
    hook.remove()
    # The first layer's mode queries gain exactly the trunk's plan token, if asked for.
    expected = token[:, None].expand_as(seen[0]) if plan_query else torch.zeros_like(seen[0])
    torch.testing.assert_close(seen[0] - seen[len(seen) // 2], expected)  # step 1 of each
    assert torch.equal(plan['scores'], without['scores']) != plan_query
