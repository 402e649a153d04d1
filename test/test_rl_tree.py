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

"""RL tree sampler: exact geometry, layouts, log-prob consistency, gradient isolation."""

import math

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest
import torch

from pair_drive_ros.core.features import STATUS_DIM
from pair_drive_ros.policy.backbone import BackboneConfig
from pair_drive_ros.policy.rl_branch import gaussian_log_prob, RLBranch, RLBranchConfig, tree_kl
from pair_drive_ros.policy.tree import (ALL_CODES, BACKWARD, branch_offsets, CODES_15,
                                        EXPANSION_INDICES, FORWARD, graft, GROUPS, LEFT,
                                        mean_step_length, resolve_group, RIGHT, TreeError,
                                        TreeLayout)

torch.set_num_threads(1)
TINY = RLBranchConfig(backbone=BackboneConfig(channels=(4, 8, 8, 8), d_model=16, num_heads=2,
                                              num_agents=2, semantic_channels=4),
                      decoder_layers=1, num_heads=2)


def feature_batch(b: int = 2, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    return {'lidar_bev': torch.rand(b, 2, 64, 64, generator=g),
            'camera': torch.rand(b, 3, 32, 64, generator=g),
            'route_raster': torch.rand(b, 1, 64, 64, generator=g),
            'ego_status': torch.rand(b, STATUS_DIM, generator=g)}


def straight_reference(b: int = 2, speed: float = 10.0) -> torch.Tensor:
    ref = torch.zeros(b, 8, 3)
    ref[..., 0] = torch.arange(1, 9) * 0.5 * speed
    return ref


def test_groups_have_documented_sizes_and_valid_codes():
    assert {k: len(v) for k, v in GROUPS.items()} == {'5': 5, '9': 9, '12': 12, '15': 15,
                                                      'all': 256}
    assert CODES_15[0] == '0000' and CODES_15[-1] == '2210'
    for codes in GROUPS.values():
        assert len(set(codes)) == len(codes)
        assert set(GROUPS['5']) <= set(codes) or len(codes) < 5
    assert set(GROUPS['12']) <= set(CODES_15) and set(GROUPS['9']) <= set(GROUPS['12'])
    assert resolve_group(15) == CODES_15
    assert resolve_group(['0123']) == ('0123',)


@pytest.mark.parametrize('bad', ['7', ['012'], ['0124'], ['0000', '0000'], []])
def test_bad_groups_raise(bad):
    with pytest.raises(TreeError):
        resolve_group(bad)


def test_layout_of_all_codes_is_the_full_tree():
    lay = TreeLayout.build('all')
    assert [len(n) for n in lay.nodes] == [1, 4, 16, 64, 256]
    assert [lay.nodes[4][i] for i in lay.leaf_index] == list(ALL_CODES)
    lay15 = TreeLayout.build('15')
    assert [lay15.nodes[4][i] for i in lay15.leaf_index] == list(CODES_15)
    # Every child's parent + branch spells the child's prefix.
    for level in range(4):
        for j, child in enumerate(lay15.nodes[level + 1]):
            parent = lay15.nodes[level][lay15.parent[level][j]]
            assert parent + str(lay15.branch[level][j]) == child


def test_branch_offsets_exact_values():
    branch = torch.tensor([LEFT, FORWARD, RIGHT, BACKWARD])
    half = torch.full((4,), 0.5)
    dxy, dyaw = branch_offsets(branch, half, half, torch.zeros(4), torch.tensor(2.0),
                               offset_range=1.0, heading_range=1.2)
    size = 0.5 * 1.0 * 1.5 * 2.0
    np.testing.assert_allclose(dyaw.numpy(), [0.6, 0.0, -0.6, 0.0], atol=1e-6)
    np.testing.assert_allclose(dxy.numpy(), [[size * math.cos(0.6), size * math.sin(0.6)],
                                             [size, 0.0],
                                             [size * math.cos(0.6), -size * math.sin(0.6)],
                                             [-size, 0.0]], atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(yaw=st.floats(-3.0, 3.0), s=st.floats(0.01, 0.99), h=st.floats(0.01, 0.99),
       step=st.floats(0.1, 5.0))
def test_branch_offset_signs_follow_branch_type(yaw, s, h, step):
    branch = torch.tensor([LEFT, FORWARD, RIGHT, BACKWARD])
    dxy, dyaw = branch_offsets(branch, torch.full((4,), s), torch.full((4,), h),
                               torch.full((4,), yaw), torch.tensor(step))
    assert dyaw[0] > 0 and dyaw[2] < 0 and dyaw[1] == 0 and dyaw[3] == 0
    assert dyaw[0] <= 1.2 + 1e-6
    heading = torch.tensor([math.cos(yaw), math.sin(yaw)])
    along = dxy @ heading
    assert along[1] > 0 and along[3] < 0
    # Bounded: |offset| <= 1.5 x the mean step length.
    assert torch.all(dxy.norm(dim=-1) <= 1.5 * step + 1e-5)


def test_graft_moves_one_waypoint_and_translates_the_tail():
    ref = straight_reference(1)[0]
    dxy = torch.tensor([0.5, 1.0])
    out = graft(ref, 1, dxy, torch.tensor(0.3))
    t = EXPANSION_INDICES[1]
    torch.testing.assert_close(out[:t], ref[:t])
    torch.testing.assert_close(out[t:, :2], ref[t:, :2] + dxy)
    torch.testing.assert_close(out[t, 2], ref[t, 2] + 0.3)
    torch.testing.assert_close(out[t + 1:, 2], ref[t + 1:, 2])   # translated, not rotated


def test_mean_step_length_counts_from_the_origin():
    ref = straight_reference(1, speed=4.0)
    assert mean_step_length(ref).item() == pytest.approx(2.0)


def test_tree_of_all_codes_gives_256_distinct_leaves_from_the_reference():
    torch.manual_seed(0)
    model = RLBranch(TINY).eval()
    ref = straight_reference(1)
    with torch.no_grad():
        out = model(feature_batch(1), ref, 'all')
    assert out.paths.shape == (1, 256, 8, 3)
    # The waypoint before the first expansion is the reference's.
    torch.testing.assert_close(out.paths[0, :, 0], ref[0, 0].expand(256, 3))
    flat = out.paths[0].reshape(256, -1)
    assert torch.cdist(flat, flat).add(torch.eye(256) * 1e3).min() > 1e-4
    # Branch probabilities alone (sigma 0) form a distribution over the 256 paths.
    assert out.log_prob.exp().sum().item() == pytest.approx(1.0, abs=1e-4)


def test_leaf_1111_follows_the_documented_recurrence():
    torch.manual_seed(1)
    model = RLBranch(TINY).eval()
    ref = straight_reference(1)
    with torch.no_grad():
        out = model(feature_batch(1), ref, ['1111'])
    path = ref[0].clone()
    step = mean_step_length(ref)
    for level in range(4):
        z = out.z[level][0, 0]
        dxy, dyaw = branch_offsets(torch.tensor([FORWARD]), torch.sigmoid(z[:1]),
                                   torch.sigmoid(z[1:]), path[EXPANSION_INDICES[level], 2:],
                                   step, TINY.offset_range, TINY.heading_range)
        path = graft(path, level, dxy[0], dyaw[0])
    torch.testing.assert_close(out.paths[0, 0], path)
    # Forward on a straight reference: monotone x, no lateral motion.
    assert torch.all(torch.diff(out.paths[0, 0, :, 0]) > 0)
    assert out.paths[0, 0, :, 1].abs().max() < 1e-5


def test_sampling_then_evaluating_gives_the_same_log_prob():
    torch.manual_seed(2)
    model = RLBranch(TINY).eval()
    feats, ref = feature_batch(2), straight_reference(2)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        sampled = model(feats, ref, '15', sigma=0.5, generator=gen)
        again = model(feats, ref, '15', sigma=0.5, z=sampled.z)
    torch.testing.assert_close(again.log_prob, sampled.log_prob)
    torch.testing.assert_close(again.paths, sampled.paths)
    torch.testing.assert_close(tree_kl(again, sampled, 0.5), torch.zeros(2))
    # Manual sum for one code: log-softmax of the chosen branch + Gaussian of its offsets.
    lay = model.layout('15')
    g = 9   # '1122'
    manual = torch.zeros(2)
    for level in range(4):
        child = lay.ancestors(level)[g]
        parent, branch = lay.parent[level][child], lay.branch[level][child]
        manual += torch.log_softmax(sampled.logits[level], -1)[:, parent, branch]
        manual += gaussian_log_prob(sampled.z[level][:, child], sampled.means[level][:, child],
                                    0.5, sampled.masks[level][child])
    torch.testing.assert_close(sampled.log_prob[:, g], manual)
    # Deterministic inference has no offset noise: z equals the predicted means.
    with torch.no_grad():
        det = model(feats, ref, '15')
    for level in range(4):
        torch.testing.assert_close(det.z[level], det.means[level])


def test_no_gradient_flows_between_the_il_and_rl_branches():
    from pair_drive_ros.policy.il_planner import build_model
    from pair_drive_ros.policy.transfuser.config import TransfuserConfig

    torch.manual_seed(3)
    il = build_model('transfuser', TransfuserConfig(backbone=TINY.backbone)).eval()
    rl = RLBranch(TINY).eval()
    feats = feature_batch(2)
    il_traj = il(feats)['trajectory']
    assert il_traj.requires_grad
    out = rl(feats, il_traj, '15', sigma=0.3, generator=torch.Generator().manual_seed(0))
    out.log_prob.sum().backward(retain_graph=True)
    assert all(p.grad is None for p in il.parameters())
    assert any(p.grad is not None for p in rl.parameters())
    # The deterministic tree's leaves depend on RL weights but not on the reference's graph.
    det = rl(feats, il_traj, '15')
    assert det.paths.requires_grad
    assert torch.autograd.grad(det.paths.sum(), il_traj, allow_unused=True)[0] is None
    rl.zero_grad(set_to_none=True)
    il_traj.sum().backward()
    assert all(p.grad is None for p in rl.parameters())
    # Separate weights: no parameter tensor is shared.
    assert not {id(p) for p in il.parameters()} & {id(p) for p in rl.parameters()}
