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

"""GRPO functions on hand-made numbers, and few-step smoke runs of the GRPO trainers."""

import math

import numpy as np
import pytest
import torch

from pair_drive_ros.core.config import load_config
from pair_drive_ros.policy.rl_branch import RLBranchConfig
from pair_drive_ros.training.grpo import (adapt_beta, cosine_lr, group_advantages, grpo_loss,
                                          linear_schedule, pick_credit, reference_advantages,
                                          set_credit)
from pair_drive_ros.training.rl_data import budget_of, scorer_calls
from rl_fixtures import SyntheticSceneSet, TINY_BACKBONE

torch.set_num_threads(1)


def test_group_advantages_are_normalised_per_scene():
    rewards = torch.tensor([[0.0, 0.5, 1.0, 0.5], [0.9, 0.1, 0.3, 0.7], [0.4, 0.4, 0.4, 0.4]])
    adv = group_advantages(rewards)
    torch.testing.assert_close(adv[:2].mean(-1), torch.zeros(2), atol=1e-6, rtol=0)
    torch.testing.assert_close(adv[:2].std(-1), torch.ones(2), atol=1e-4, rtol=0)
    torch.testing.assert_close(adv[2], torch.zeros(4))          # no preference in a tie
    assert adv[0, 2] > adv[0, 1] > adv[0, 0]
    with pytest.raises(ValueError, match='shape'):
        group_advantages(torch.zeros(4))


def test_reference_advantages_credit_beating_the_reference():
    rewards = torch.tensor([[0.2, 0.6, 1.0], [0.5, 0.5, 0.5]])
    ref = torch.tensor([0.6, 0.1])
    adv = reference_advantages(rewards, ref)
    std = rewards[0].std().item()
    torch.testing.assert_close(adv[0], torch.tensor([-0.4, 0.0, 0.4]) / (std + 1e-6))
    torch.testing.assert_close(adv[1], torch.zeros(3))     # no spread: nothing to tell apart
    with pytest.raises(ValueError, match='ref_rewards'):
        reference_advantages(rewards, torch.zeros(3))


def test_set_credit_is_the_leave_one_out_drop_of_the_best():
    rewards = torch.tensor([[0.2, 0.9, 0.7],     # leaf 1 best by 0.2 over leaf 2
                            [0.2, 0.9, 0.7],     # ... but the reference is 0.8: margin 0.1
                            [0.9, 0.9, 0.1],     # a tie at the top: removing one loses nothing
                            [0.3, 0.4, 0.2]])    # the reference is best: no leaf earns credit
    ref = torch.tensor([0.0, 0.8, 0.0, 0.5])
    want = torch.tensor([[0.0, 0.2, 0.0], [0.0, 0.1, 0.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(set_credit(rewards, ref), want)
    # The definition: max(set) - max(set without leaf i), by brute force.
    for s in range(4):
        full = max(ref[s].item(), rewards[s].max().item())
        for i in range(3):
            rest = [ref[s].item()] + [rewards[s, j].item() for j in range(3) if j != i]
            assert set_credit(rewards, ref)[s, i].item() == pytest.approx(full - max(rest))


def test_pick_credit_credits_the_picked_leaf_by_what_the_pick_gains_or_loses():
    # Sets of [reference, leaf, leaf, variant]; the selector's eligible scores and true rewards.
    eligible = torch.tensor([[0.5, 0.9, 0.1, 0.6],    # picks leaf 0, next choice the variant
                             [0.5, 0.9, 0.1, 0.6],    # same pick, but the leaf is the worse one
                             [0.5, 0.1, 0.2, 0.9],    # picks the variant: no leaf is credited
                             [0.5, 0.52, -1.0, 0.4]])  # leaf 0 within the margin: the reference
    rewards = torch.tensor([[0.4, 0.9, 0.0, 0.7],
                            [0.4, 0.2, 0.0, 0.7],
                            [0.4, 1.0, 1.0, 0.3],
                            [0.4, 0.9, 1.0, 0.3]])
    out = pick_credit(eligible, rewards, slice(1, 3), margin=0.05)
    torch.testing.assert_close(out.picked, torch.tensor([1, 1, 3, 0]))
    torch.testing.assert_close(out.picked_leaf, torch.tensor([True, True, False, False]))
    torch.testing.assert_close(out.credit, torch.tensor([[0.2, 0.0], [-0.5, 0.0], [0.0, 0.0],
                                                         [0.0, 0.0]]))
    torch.testing.assert_close(out.reward, torch.tensor([0.9, 0.2, 0.3, 0.4]))
    # Every leaf ruled out: the non-RL pick (the variant, the variant, the variant, reference).
    torch.testing.assert_close(out.reward_without, torch.tensor([0.7, 0.7, 0.3, 0.4]))
    with pytest.raises(ValueError, match='both be'):
        pick_credit(eligible, rewards[:, :3], slice(1, 3), 0.0)


def test_above_reference_advantages_ignore_leaves_below_the_reference():
    from pair_drive_ros.training.train_rl import advantages_of, RLTrainConfig

    rewards = torch.tensor([[0.2, 0.9, 0.5], [0.1, 0.2, 0.3]])
    ref = torch.tensor([0.5, 0.8])
    adv = advantages_of(RLTrainConfig(advantage='above_reference'), rewards, ref)
    clipped = torch.tensor([0.5, 0.9, 0.5])
    torch.testing.assert_close(adv[0], (clipped - clipped.mean()) / (clipped.std() + 1e-6))
    torch.testing.assert_close(adv[1], torch.zeros(3))      # all below: no update
    both = advantages_of(RLTrainConfig(advantage='group', set_credit_weight=2.0), rewards, ref)
    want = group_advantages(rewards) + 2.0 * set_credit(rewards, ref) / (
        rewards.std(-1, keepdim=True) + 1e-6)
    torch.testing.assert_close(both, want)


def test_above_variants_advantages_rank_leaves_against_the_best_non_rl_candidate():
    from pair_drive_ros.training.train_rl import advantages_of, RLTrainConfig

    rewards = torch.tensor([[0.2, 0.9, 0.7], [0.1, 0.2, 0.3]])
    ref = torch.tensor([0.5, 0.1])
    variants = torch.tensor([[0.6, 0.8], [0.4, 0.0]])
    adv = advantages_of(RLTrainConfig(advantage='above_variants'), rewards, ref, variants)
    floored = torch.tensor([0.8, 0.9, 0.8])      # the best variant (0.8) is the floor
    torch.testing.assert_close(adv[0], (floored - floored.mean()) / (floored.std() + 1e-6))
    torch.testing.assert_close(adv[1], torch.zeros(3))    # a variant beats every leaf
    # Without variants above the reference it is 'above_reference'.
    low = torch.zeros(2, 2)
    torch.testing.assert_close(
        advantages_of(RLTrainConfig(advantage='above_variants'), rewards, ref, low),
        advantages_of(RLTrainConfig(advantage='above_reference'), rewards, ref))
    with pytest.raises(ValueError, match='variants'):
        advantages_of(RLTrainConfig(advantage='above_variants'), rewards, ref)


@pytest.mark.parametrize('ratio,adv,expected', [
    (1.5, 1.0, -1.2),    # positive advantage: gain capped at 1 + eps
    (1.5, -1.0, 1.5),    # negative advantage: the unclipped (worse) term is kept
    (0.5, 1.0, -0.5),    # positive advantage, ratio below 1 - eps: unclipped is smaller
    (0.5, -1.0, 0.8),    # negative advantage: the penalty is capped at 1 - eps
    (1.1, 2.0, -2.2),    # inside the clip range: plain ratio x advantage
])
def test_grpo_loss_clipping_on_hand_made_numbers(ratio, adv, expected):
    log_prob = torch.tensor([[math.log(ratio)]], requires_grad=True)
    loss, stats = grpo_loss(log_prob, torch.zeros(1, 1), torch.tensor([[adv]]), clip_eps=0.2)
    assert loss.item() == pytest.approx(expected, abs=1e-6)
    loss.backward()
    clipped_term_active = abs(ratio - 1.0) > 0.2 and (ratio - 1.0) * adv > 0
    if clipped_term_active:
        assert log_prob.grad.item() == 0.0
    else:
        assert log_prob.grad.item() == pytest.approx(-ratio * adv, abs=1e-6)
    assert stats.clip_frac == (1.0 if abs(ratio - 1.0) > 0.2 else 0.0)


def test_grpo_loss_adds_the_weighted_kl():
    lp = torch.zeros(2, 3)
    loss0, _ = grpo_loss(lp, lp, torch.ones(2, 3))
    loss1, stats = grpo_loss(lp, lp, torch.ones(2, 3), kl=torch.tensor([0.2, 0.4]), beta=0.5)
    assert loss1.item() - loss0.item() == pytest.approx(0.15)
    assert stats.kl == pytest.approx(0.3) and stats.ratio_mean == 1.0


def test_schedules():
    assert adapt_beta(0.1, kl=1.0, target=0.1) == pytest.approx(0.2)
    assert adapt_beta(0.1, kl=0.01, target=0.1) == pytest.approx(0.05)
    assert adapt_beta(0.1, kl=0.1, target=0.1) == pytest.approx(0.1)
    assert cosine_lr(0, 100, 1.0, warmup_steps=10) == pytest.approx(0.1)
    assert cosine_lr(10, 100, 1.0, warmup_steps=10) == pytest.approx(1.0)
    assert cosine_lr(100, 100, 1.0, warmup_steps=10, min_ratio=0.05) == pytest.approx(0.05)
    assert linear_schedule(0, 11, 0.6, 0.2) == pytest.approx(0.6)
    assert linear_schedule(10, 11, 0.6, 0.2) == pytest.approx(0.2)


def _scalars(run_dir) -> dict:
    out = {}
    for line in (run_dir / 'scalars.csv').read_text().splitlines():
        step, key, value = line.split(',')
        out.setdefault(key, []).append(float(value))
    return out


def test_grpo_trainer_smoke_with_the_real_scorer_and_resume(tmp_path):
    from pair_drive_ros.training.train_rl import main, RLTrainConfig

    cfg = load_config(RLTrainConfig, 'config/rl_grpo.yaml', [
        f'runs_root={tmp_path}', 'total_steps=3', 'scenes_per_step=2', 'save_every=2',
        'out=' + str(tmp_path / 'rl.pt'), 'group=5', 'val_split=', 'threads=1',
        'warmup_steps=1', 'init_trunk='])
    cfg = type(cfg)(**{**cfg.__dict__, 'model': RLBranchConfig(backbone=TINY_BACKBONE,
                                                               decoder_layers=1, num_heads=2)})
    final = main(cfg, scenes=SyntheticSceneSet(4))
    assert final.is_file() and (tmp_path / 'rl.pt').is_file()
    run_dir = final.parent
    scalars = _scalars(run_dir)
    for key in ('rl/reward_mean', 'rl/reward_best', 'rl/kl', 'rl/clip_frac', 'rl/loss'):
        assert len(scalars[key]) == 3 and np.all(np.isfinite(scalars[key])), key
    assert all(0.0 <= r <= 1.0 for r in scalars['rl/reward_mean'])
    assert all(b >= m for b, m in zip(scalars['rl/reward_best'], scalars['rl/reward_mean']))
    # Resume from the full checkpoint for one more step.
    resumed = type(cfg)(**{**cfg.__dict__, 'resume': str(run_dir / 'checkpoint.pt'),
                           'total_steps': 4, 'out': '',
                           'runs_root': str(tmp_path / 'resumed')})   # run dirs are per second
    again = main(resumed, scenes=SyntheticSceneSet(4))
    assert len(_scalars(again.parent)['rl/loss']) == 1


def test_grpo_trainer_with_il_references_reference_advantages_and_validation(tmp_path):
    from pair_drive_ros.policy.checkpoint import load_checkpoint, save_checkpoint
    from pair_drive_ros.policy.il_planner import build_model
    from pair_drive_ros.policy.transfuser.config import TransfuserConfig
    from pair_drive_ros.training.train_rl import main, RLTrainConfig

    torch.manual_seed(0)
    il = build_model('transfuser', TransfuserConfig(backbone=TINY_BACKBONE))
    il_path = save_checkpoint(tmp_path / 'il.pt', il, model_name='transfuser',
                              model_config=il.cfg)
    cfg = load_config(RLTrainConfig, 'config/rl_grpo.yaml', [
        f'runs_root={tmp_path}', 'total_steps=2', 'scenes_per_step=2', 'group=5', 'threads=1',
        'warmup_steps=1', 'out=', f'init_trunk={il_path}', f'il_checkpoint={il_path}',
        'il_reference_fraction=1.0', 'advantage=reference', 'set_credit_weight=1.0',
        'spread_coef=1.0', 'min_spread_m=100.0', 'augment_jitter_m=0.3'])
    cfg = type(cfg)(**{**cfg.__dict__, 'model': RLBranchConfig(backbone=TINY_BACKBONE,
                                                               decoder_layers=1, num_heads=2)})
    final = main(cfg, scenes=SyntheticSceneSet(4), val_scenes=SyntheticSceneSet(3, seed=1))
    scalars = _scalars(final.parent)
    for key in ('rl/oracle', 'rl/reward_ref', 'rl/spread_m', 'rl/spread_mean_m',
                'rl/oracle_gain'):
        assert len(scalars[key]) == 2 and np.all(np.isfinite(scalars[key])), key
    assert all(o >= r - 1e-6 for o, r in zip(scalars['rl/oracle'], scalars['rl/reward_ref']))
    ckpt = load_checkpoint(final)
    assert ckpt['scorer_calls'] == 2 * 2 * (5 + 2)
    for when in ('start', 'end'):
        v = ckpt['val'][when]
        assert v['val/oracle_pdms'] >= max(v['val/il_pdms'], v['val/leaf_best_pdms']) - 1e-6
        assert v['val/oracle_full_pdms'] >= max(v['val/oracle_pdms'],
                                                v['val/oracle_variants_pdms']) - 1e-6
        assert v['val/oracle_variants_pdms'] >= v['val/il_pdms'] - 1e-6
    # The hinge widened the deployed leaves (min spread far above what they reach).
    assert ckpt['val']['end']['val/spread_m'] > ckpt['val']['start']['val/spread_m']
    with pytest.raises(ValueError, match='advantage'):
        RLTrainConfig(advantage='mean')


def test_grpo_trainer_scores_the_variants_for_above_variants(tmp_path):
    from pair_drive_ros.training.train_rl import main, RLTrainConfig

    cfg = load_config(RLTrainConfig, 'config/rl_grpo.yaml', [
        f'runs_root={tmp_path}', 'total_steps=2', 'scenes_per_step=2', 'group=5', 'threads=1',
        'warmup_steps=1', 'out=', 'init_trunk=', 'il_reference_fraction=0',
        'advantage=above_variants', 'val_split='])
    cfg = type(cfg)(**{**cfg.__dict__, 'model': RLBranchConfig(backbone=TINY_BACKBONE,
                                                               decoder_layers=1, num_heads=2)})
    final = main(cfg, scenes=SyntheticSceneSet(4))
    scalars = _scalars(final.parent)
    assert len(scalars['rl/oracle_variants']) == 2
    assert all(o >= r - 1e-6 for o, r in zip(scalars['rl/oracle_variants'],
                                             scalars['rl/reward_ref']))
    assert all(g >= 0.0 for g in scalars['rl/leaf_gain_over_variants'])
    # leaves, reference, expert and the 14 variants of each scene
    assert torch.load(final, weights_only=False)['scorer_calls'] == 2 * 2 * (5 + 2 + 14)


def test_grpo_trainer_fine_tunes_a_branch_against_a_frozen_selector(tmp_path):
    from pair_drive_ros.policy.checkpoint import load_checkpoint, save_checkpoint
    from pair_drive_ros.policy.il_planner import build_model
    from pair_drive_ros.policy.selector import MODEL_NAME, Selector, SelectorConfig
    from pair_drive_ros.policy.transfuser.config import TransfuserConfig
    from pair_drive_ros.training.train_rl import main, RLTrainConfig

    torch.manual_seed(0)
    il = build_model('transfuser', TransfuserConfig(backbone=TINY_BACKBONE))
    il_path = save_checkpoint(tmp_path / 'il.pt', il, model_name='transfuser',
                              model_config=il.cfg)
    sel_cfg = SelectorConfig(backbone=TINY_BACKBONE, layers=1, num_heads=2,
                             raster_features=True, plan_variants=True, safety_tolerance=0.01)
    sel_path = save_checkpoint(tmp_path / 'sel.pt', Selector(sel_cfg), model_name=MODEL_NAME,
                               model_config=sel_cfg)
    model = RLBranchConfig(backbone=TINY_BACKBONE, decoder_layers=1, num_heads=2)

    def run(name: str, *sets: str):
        cfg = load_config(RLTrainConfig, 'config/rl_grpo.yaml', [
            f'runs_root={tmp_path / name}', 'total_steps=2', 'scenes_per_step=2', 'group=5',
            'threads=1', 'warmup_steps=1', 'out=', f'init_trunk={il_path}',
            f'il_checkpoint={il_path}', *sets])
        cfg = type(cfg)(**{**cfg.__dict__, 'model': model})
        return main(cfg, scenes=SyntheticSceneSet(4), val_scenes=SyntheticSceneSet(3, seed=1))

    first = run('first')
    second = run('second', f'init_branch={first}', f'selector_checkpoint={sel_path}',
                 'pick_credit_weight=1.0')
    scalars = _scalars(second.parent)
    for key in ('rl/pick_reward', 'rl/pick_gain_over_no_rl', 'rl/pick_leaf_frac'):
        assert len(scalars[key]) == 2 and np.all(np.isfinite(scalars[key])), key
    assert all(0.0 <= f <= 1.0 for f in scalars['rl/pick_leaf_frac'])
    start = load_checkpoint(second)['val']['start']
    # Fine-tuning starts where the first run ended (the same val scenes, the same tree).
    for key, value in load_checkpoint(first)['val']['end'].items():
        assert start[key] == pytest.approx(value), key
    assert start['val/selected_pdms'] <= start['val/oracle_full_pdms'] + 1e-6
    assert start['val/selected_no_rl_pdms'] <= start['val/oracle_variants_pdms'] + 1e-6
    # leaves, reference, expert and the 14 variants the pick is made among
    assert load_checkpoint(second)['scorer_calls'] == 2 * 2 * (5 + 2 + 14)
    with pytest.raises(ValueError, match='selector_checkpoint'):
        RLTrainConfig(pick_credit_weight=1.0)


def test_grpo_trainer_trains_its_own_trunk_with_the_auxiliary_losses(tmp_path):
    from pair_drive_ros.policy.rl_branch import RLBranch
    from pair_drive_ros.training.train_rl import main, RLTrainConfig

    model_cfg = RLBranchConfig(backbone=TINY_BACKBONE, decoder_layers=1, num_heads=2)
    scenes = SyntheticSceneSet(4)
    with torch.no_grad():
        out = RLBranch(model_cfg).trunk(scenes.batch([0])[0])
    h, w = out['bev_semantics'].shape[-2:]
    rng = np.random.default_rng(0)
    scenes.dataset.arrays.update(
        bev_semantics=rng.integers(0, TINY_BACKBONE.bev_classes, (4, h, w)),
        agent_states=rng.normal(0, 5, (4, TINY_BACKBONE.num_agents, 5)).astype(np.float32),
        agent_mask=rng.random((4, TINY_BACKBONE.num_agents)) < 0.5)
    cfg = load_config(RLTrainConfig, 'config/rl_grpo.yaml', [
        f'runs_root={tmp_path}', 'total_steps=1', 'scenes_per_step=2', 'group=5', 'threads=1',
        'out=', 'trunk_source=aux', 'trunk_pretrain_steps=3', 'trunk_pretrain_batch=2',
        'val_split='])
    cfg = type(cfg)(**{**cfg.__dict__, 'model': model_cfg})
    torch.manual_seed(cfg.seed)
    init = RLBranch(model_cfg).trunk.state_dict()
    final = main(cfg, scenes=scenes)
    from pair_drive_ros.policy.pair import load_rl_branch
    trained = load_rl_branch(final).trunk.state_dict()
    assert any(not torch.equal(init[k], trained[k]) for k in init)
    scalars = _scalars(final.parent)
    assert len(scalars['trunk/loss']) == 3 and np.all(np.isfinite(scalars['trunk/loss']))
    scenes.dataset.arrays.pop('bev_semantics')
    with pytest.raises(ValueError, match='bev_semantics'):
        main(cfg, scenes=scenes)


def test_sequential_trainer_smoke(tmp_path):
    from pair_drive_ros.policy.checkpoint import save_checkpoint
    from pair_drive_ros.policy.il_planner import build_model, load_il_model
    from pair_drive_ros.policy.transfuser.config import TransfuserConfig
    from pair_drive_ros.training.train_sequential import (gaussian_kl, gaussian_log_prob, main,
                                                          SequentialConfig)

    mean = torch.zeros(1, 8, 2)
    sample = torch.zeros(1, 8, 2)
    sample[0, 3, 1] = 0.5                        # one raw output off by 0.5 = one sigma
    sigma = 0.5
    base = 16 * (-math.log(sigma) - 0.5 * math.log(2 * math.pi))
    assert gaussian_log_prob(sample, mean, sigma).item() == pytest.approx(base - 0.5)
    assert gaussian_kl(sample, mean, sigma).item() == pytest.approx(0.5)

    torch.manual_seed(0)
    model = build_model('transfuser', TransfuserConfig(backbone=TINY_BACKBONE))
    il_path = save_checkpoint(tmp_path / 'il.pt', model, model_name='transfuser',
                              model_config=model.cfg)
    cfg = load_config(SequentialConfig, 'config/rl_sequential.yaml', [
        f'runs_root={tmp_path}', 'total_steps=50', 'scenes_per_step=2', 'group_size=4',
        f'il_checkpoint={il_path}', 'out=', 'threads=1', 'scorer_budget=9'])
    path = main(cfg, scenes=SyntheticSceneSet(4))
    from pair_drive_ros.policy.checkpoint import load_checkpoint
    assert load_checkpoint(path)['scorer_calls'] == 2 * 2 * 4     # ceil(9 / 8) = 2 steps
    tuned, _ = load_il_model(path, expect_model='transfuser')
    changed = [not torch.equal(a, b) for a, b in zip(model.trajectory_head.parameters(),
                                                     tuned.trajectory_head.parameters())]
    assert any(changed)
    # The perception trunk is frozen in the sequential baseline (same as the RL branch).
    for a, b in zip(model.trunk.parameters(), tuned.trunk.parameters()):
        assert torch.equal(a, b)


def test_sequential_trainer_smoke_diffusiondrive(tmp_path):
    from pair_drive_ros.policy.checkpoint import save_checkpoint
    from pair_drive_ros.policy.diffusiondrive.config import DiffusionDriveConfig
    from pair_drive_ros.policy.il_planner import build_model, DiffusionDrivePlanner, load_il_model
    from pair_drive_ros.training.train_sequential import diffusion_plan, main, SequentialConfig

    torch.manual_seed(0)
    model = build_model('diffusiondrive', DiffusionDriveConfig(backbone=TINY_BACKBONE,
                                                               num_modes=4, decoder_layers=1))
    for p in model.parameters():    # the zero-initialised sample head would give no gradient
        torch.nn.init.normal_(p, std=0.1)
    model.eval()
    scenes = SyntheticSceneSet(4)
    feats, _ = scenes.batch([0, 1, 2], 'cpu')
    # The differentiable plan is the deployed plan: plain plan() under no_grad bit for bit;
    # with grad on, MultiheadAttention leaves its inference fast path (float rounding only).
    deployed = DiffusionDrivePlanner(model).plan_tensors(feats)
    enc = model.trunk(feats)
    with torch.no_grad():
        same = model.denoise(model.trunk(feats), torch.Generator().manual_seed(0))
    for key in ('trajectory', 'candidates', 'scores'):
        assert torch.equal(same[key], deployed[key]), key
    traj = diffusion_plan(model, enc, noise_seed=0)
    torch.testing.assert_close(traj, deployed['trajectory'], atol=1e-5, rtol=0)
    assert not torch.allclose(diffusion_plan(model, enc, noise_seed=1), traj)
    # Gradients reach the decoder, not the trunk (frozen as in the trainer).
    model.trunk.requires_grad_(False)
    enc = model.trunk(feats)
    diffusion_plan(model, enc, noise_seed=0).square().sum().backward()
    assert all(p.grad is None for p in model.trunk.parameters())
    for module in (model.layers, model.traj_encoder):
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())

    model.zero_grad(set_to_none=True)
    model.trunk.requires_grad_(True)
    il_path = save_checkpoint(tmp_path / 'il_b.pt', model, model_name='diffusiondrive',
                              model_config=model.cfg)
    cfg = load_config(SequentialConfig, 'config/rl_sequential_b.yaml', [
        f'runs_root={tmp_path}', 'total_steps=2', 'scenes_per_step=2', 'group_size=4',
        f'il_checkpoint={il_path}', 'out=' + str(tmp_path / 'seq_b.pt'), 'threads=1'])
    path = main(cfg, scenes=scenes)
    assert path.name == 'diffusiondrive_seq_grpo.pt' and (tmp_path / 'seq_b.pt').is_file()
    tuned, _ = load_il_model(tmp_path / 'seq_b.pt', expect_model='diffusiondrive')
    assert any(not torch.equal(a, b) for a, b in zip(model.layers.parameters(),
                                                     tuned.layers.parameters()))
    for a, b in zip(model.trunk.parameters(), tuned.trunk.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(model.anchors, tuned.anchors)
    scalars = _scalars(path.parent)
    assert len(scalars['seq/policy_loss']) == 2
    assert np.all(np.isfinite(scalars['seq/policy_loss']))


def test_reference_augmentation_scales_shifts_and_keeps_headings_consistent():
    from pair_drive_ros.training.train_rl import augment_reference, RLTrainConfig

    expert = torch.zeros(4, 8, 3)
    expert[..., 0] = torch.arange(1, 9) * 5.0
    rng = np.random.default_rng(0)
    same = augment_reference(expert, RLTrainConfig(augment_fraction=0.0), rng)
    assert torch.equal(same, expert)
    cfg = RLTrainConfig(augment_fraction=1.0, augment_speed=0.4, augment_lateral_m=1.5)
    out = augment_reference(expert, cfg, rng)
    scale = out[:, -1, 0] / expert[:, -1, 0]
    assert torch.all((scale >= 0.6) & (scale <= 1.4))
    assert torch.all(out[:, :, 1].abs() <= 1.5 + 1e-6)
    xy = torch.cat([torch.zeros(4, 1, 2), out[..., :2]], 1)
    d = xy[:, 1:] - xy[:, :-1]
    torch.testing.assert_close(out[..., 2], torch.atan2(d[..., 1], d[..., 0]))


def test_scorer_calls_of_training_configs(tmp_path):
    torch.save({'model': 'pair_rl_branch', 'train_config': {
        'total_steps': 10, 'scenes_per_step': 4, 'group': '15'}}, tmp_path / 'rl.pt')
    torch.save({'model': 'transfuser', 'train_config': {
        'total_steps': 10, 'scenes_per_step': 4, 'group_size': 15}}, tmp_path / 'seq.pt')
    torch.save({'model': 'pair_selector', 'num_scenes': 7, 'train_config': {
        'references': ['il', 'expert'], 'group': '15', 'model': {'plan_variants': True}}},
        tmp_path / 'sel.pt')
    torch.save({'model': 'pair_rl_branch', 'scorer_calls': 123}, tmp_path / 'new.pt')
    assert scorer_calls(str(tmp_path / 'rl.pt')) == 10 * 4 * 16
    assert scorer_calls(str(tmp_path / 'seq.pt')) == 10 * 4 * 15
    assert scorer_calls(str(tmp_path / 'sel.pt')) == 7 * 2 * 30
    assert scorer_calls(str(tmp_path / 'new.pt')) == 123
    assert scorer_calls(str(tmp_path / 'missing.pt')) is None
    # an equal-budget run spends what the named trainings spent together
    assert budget_of([tmp_path / 'rl.pt', tmp_path / 'new.pt']) == 10 * 4 * 16 + 123
    with pytest.raises(ValueError, match='missing.pt'):
        budget_of([tmp_path / 'rl.pt', tmp_path / 'missing.pt'])


def test_rl_branch_reads_the_features_of_the_il_trunk_it_copies(tmp_path):
    from dataclasses import replace

    from pair_drive_ros.core.ego import EgoState
    from pair_drive_ros.core.features import Features
    from pair_drive_ros.perception.config import PerceptionConfig
    from pair_drive_ros.policy.backbone import backbone_inputs
    from pair_drive_ros.policy.base import PlannerInput
    from pair_drive_ros.policy.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
    from pair_drive_ros.policy.il_planner import build_model, load_il_planner
    from pair_drive_ros.policy.pair import load_rl_branch, PaIRPlanner, rl_features
    from pair_drive_ros.policy.rl_branch import RLBranch
    from pair_drive_ros.policy.selector import raster_samples, SelectorConfig
    from pair_drive_ros.policy.transfuser.config import TransfuserConfig
    from pair_drive_ros.training.train_rl import main, RLTrainConfig

    # Motion features: two past sweeps add 2 LiDAR channels and 2 status entries.
    motion = PerceptionConfig(history_sweeps=2)
    torch.manual_seed(0)
    paths = {}
    for name, perception in (('motion', motion), ('plain', PerceptionConfig())):
        backbone = replace(TINY_BACKBONE, **backbone_inputs(perception))
        il = build_model('transfuser', TransfuserConfig(backbone=backbone))
        paths[name] = save_checkpoint(tmp_path / f'{name}.pt', il, model_name='transfuser',
                                      model_config=il.cfg, perception_config=perception)
    cfg = load_config(RLTrainConfig, 'config/rl_grpo.yaml', [
        f'runs_root={tmp_path}', 'total_steps=1', 'scenes_per_step=2', 'group=5', 'threads=1',
        'warmup_steps=1', 'val_split=', f'out={tmp_path / "rl.pt"}',
        f'init_trunk={paths["motion"]}',
        f'il_checkpoint={paths["motion"]}', 'il_reference_fraction=1.0'])
    # The config's backbone has the default input sizes; the trainer takes the trunk's.
    cfg = type(cfg)(**{**cfg.__dict__, 'model': RLBranchConfig(backbone=TINY_BACKBONE,
                                                               decoder_layers=1, num_heads=2)})
    main(cfg, scenes=SyntheticSceneSet(4, perception=motion))
    ckpt = load_checkpoint(tmp_path / 'rl.pt')
    assert ckpt['perception_config']['history_sweeps'] == 2
    assert ckpt['model_config']['backbone']['lidar_channels'] == motion.lidar_channels + 1 == 5
    assert ckpt['model_config']['backbone']['status_dim'] == motion.status_dim
    rl = load_rl_branch(tmp_path / 'rl.pt')
    pair = PaIRPlanner(load_il_planner(paths['motion']), rl, None)
    assert pair.perception_config == motion     # closed loop builds these features for all
    # An IL planner without past sweeps plugs into this branch too (IL-B into a branch trained
    # around IL-A motion): the features are built with the sweeps, the IL planner reads its part.
    plain_il = load_il_planner(paths['plain'])
    pair = PaIRPlanner(plain_il, rl, None)
    assert pair.perception_config == motion
    assert pair._rl_index is None
    assert pair.il_planner.planner is plain_il
    assert pair.il_planner._index == ((0, 1), tuple(range(PerceptionConfig().status_dim)))
    rng = np.random.default_rng(0)
    status = rng.random(motion.status_dim).astype(np.float32)
    frame = Features(lidar_bev=rng.random((motion.lidar_channels, 64, 64), dtype=np.float32),
                     camera=rng.random((3, 32, 64), dtype=np.float32),
                     route_raster=rng.random((1, 64, 64), dtype=np.float32), ego_status=status,
                     ego=EgoState([0.0, 0.0, 0.0], velocity=[10.0, 0.0]))
    plan = pair.compute_plan(PlannerInput(frame))
    alone = plain_il.compute_plan(PlannerInput(replace(
        frame, lidar_bev=frame.lidar_bev[:2], ego_status=status[list(pair.il_planner._index[1])])))
    np.testing.assert_array_equal(plan.il_trajectory.poses, alone.trajectory.poses)
    assert plan.candidates.shape == (1 + 15, 8, 3)
    # Features that differ in more than an option group give no shared set: a clear error.
    coarse = replace(PerceptionConfig(), resolution_m=2.0)
    plain_il.perception_config = coarse
    with pytest.raises(CheckpointError, match='resolution_m'):
        PaIRPlanner(plain_il, rl, None)
    plain_il.perception_config = PerceptionConfig()
    # The other way round, an IL planner with past sweeps plugs into a branch without them:
    # the features are built for the IL planner, the branch reads its part and plans.
    plain_rl = RLBranch(RLBranchConfig(backbone=replace(
        TINY_BACKBONE, **backbone_inputs(PerceptionConfig())), decoder_layers=1, num_heads=2))
    plain_rl.perception_config = PerceptionConfig()
    pair = PaIRPlanner(load_il_planner(paths['motion']), plain_rl, None)
    assert pair.perception_config == motion
    assert pair._rl_index == ((0, 1), tuple(range(PerceptionConfig().status_dim)))
    scenes = SyntheticSceneSet(2, perception=motion)
    feats, _ = scenes.batch([0, 1])
    plans = pair.candidates(rl_features(feats, pair._rl_index),
                            np.zeros((2, 8, 3), np.float32))[0]
    assert plans.shape == (2, 1 + 15, 8, 3) and torch.isfinite(plans).all()
    # An IL checkpoint for the references must read the trunk's features too.
    with pytest.raises(ValueError, match='other features'):
        main(type(cfg)(**{**cfg.__dict__, 'il_checkpoint': str(paths['plain']), 'out': ''}),
             scenes=SyntheticSceneSet(4, perception=motion))
    # The selector samples the current sweep only, whatever follows it.
    cands = torch.zeros(1, 3, 8, 3)
    route = torch.rand(1, 1, 64, 64)
    lidar = torch.rand(1, 4, 64, 64)
    assert torch.equal(raster_samples(cands, lidar, route, SelectorConfig()),
                       raster_samples(cands, lidar[:, :2], route, SelectorConfig()))
    # ... unless told to sample the past sweeps too: they come after the current channels.
    past = SelectorConfig(raster_past_sweeps=2)
    both = raster_samples(cands, lidar, route, past).reshape(1, 3, -1, 8)
    now = raster_samples(cands, lidar, route, SelectorConfig()).reshape(1, 3, -1, 6)
    assert torch.equal(both[..., :6], now)
    assert torch.equal(raster_samples(cands, lidar[:, [2, 3, 0, 1]], route, past)
                       .reshape(1, 3, -1, 8)[..., 6:], now[..., :2])
    with pytest.raises(ValueError, match='past sweeps'):
        raster_samples(cands, lidar[:, :3], route, past)
