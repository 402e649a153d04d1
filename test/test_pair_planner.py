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

"""PaIRPlanner composition, selector loss and training smoke, oracle best-of-N."""

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest
import torch

from pair_drive_ros.core.config import load_config
from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.core.features import Features, STATUS_DIM
from pair_drive_ros.policy.base import PlannerInput
from pair_drive_ros.policy.checkpoint import CheckpointError, save_checkpoint
from pair_drive_ros.policy.il_planner import build_model, TransfuserPlanner
from pair_drive_ros.policy.pair import OracleBestOfN, PaIRPlanner
from pair_drive_ros.policy.rl_branch import MODEL_NAME as RL_NAME, RLBranch, RLBranchConfig
from pair_drive_ros.policy.selector import (BOX_POINTS, MODEL_NAME as SEL_NAME, NUM_PLAN_VARIANTS,
                                            plan_variants, RASTER_CHANNELS, raster_samples,
                                            Selector, selector_loss, SelectorConfig, TARGETS)
from pair_drive_ros.policy.transfuser.config import TransfuserConfig
from rl_fixtures import SyntheticSceneSet, TINY_BACKBONE

torch.set_num_threads(1)
RL_CFG = RLBranchConfig(backbone=TINY_BACKBONE, decoder_layers=1, num_heads=2)
SEL_CFG = SelectorConfig(backbone=TINY_BACKBONE, layers=1, num_heads=2,
                         raster_features=True)


def features(seed: int = 0) -> Features:
    rng = np.random.default_rng(seed)
    status = np.zeros(STATUS_DIM, np.float32)
    status[1], status[4] = 1.0, 10.0
    return Features(lidar_bev=rng.random((2, 64, 64), dtype=np.float32),
                    camera=rng.random((3, 32, 64), dtype=np.float32),
                    route_raster=rng.random((1, 64, 64), dtype=np.float32), ego_status=status,
                    ego=EgoState([0.0, 0.0, 0.0], velocity=[10.0, 0.0]))


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    torch.manual_seed(0)
    root = tmp_path_factory.mktemp('pair')
    il = build_model('transfuser', TransfuserConfig(backbone=TINY_BACKBONE))
    rl, sel = RLBranch(RL_CFG), Selector(SEL_CFG)
    return {'il': save_checkpoint(root / 'il.pt', il, model_name='transfuser',
                                  model_config=il.cfg),
            'rl': save_checkpoint(root / 'rl.pt', rl, model_name=RL_NAME, model_config=RL_CFG),
            'sel': save_checkpoint(root / 'sel.pt', sel, model_name=SEL_NAME,
                                   model_config=SEL_CFG)}


def test_pair_planner_keeps_the_il_plan_as_candidate_zero(checkpoints):
    planner = PaIRPlanner.from_checkpoints(il_checkpoint=checkpoints['il'],
                                           rl_checkpoint=checkpoints['rl'],
                                           selector_checkpoint=checkpoints['sel'])
    plans = planner.compute_plans([PlannerInput(features(0)), PlannerInput(features(1))])
    for plan in plans:
        assert plan.candidates.shape == (16, 8, 3)
        assert plan.candidate_scores.shape == (16,)
        np.testing.assert_allclose(plan.candidates[0], plan.il_trajectory.poses, atol=1e-5)
        k = plan.info['selected']
        np.testing.assert_allclose(plan.trajectory.poses, plan.candidates[k])
        assert k == int(np.argmax(plan.candidate_scores))
    # Without a selector the planner is plain IL.
    il_only = PaIRPlanner(planner.il_planner, planner.rl_branch, None)
    plan = il_only.compute_plan(PlannerInput(features(0)))
    np.testing.assert_allclose(plan.trajectory.poses, plan.il_trajectory.poses)
    assert plan.info['fallback_to_il']


def test_pair_variants_planner_picks_among_the_il_plan_and_its_variants(checkpoints):
    from pair_drive_ros.policy.ablations import VariantsOnlyPaIR
    from pair_drive_ros.policy.factory import build_planner

    planner = build_planner('pair_variants', il_checkpoint=checkpoints['il'],
                            rl_checkpoint=checkpoints['rl'],
                            selector_checkpoint=checkpoints['sel'])
    assert isinstance(planner, VariantsOnlyPaIR)
    plan = planner.compute_plan(PlannerInput(features(2)))
    assert plan.candidates.shape == (1 + NUM_PLAN_VARIANTS, 8, 3)
    ref = torch.as_tensor(plan.il_trajectory.poses[None], dtype=torch.float32)
    np.testing.assert_allclose(plan.candidates[0], plan.il_trajectory.poses, atol=1e-5)
    np.testing.assert_allclose(plan.candidates[1:], plan_variants(ref)[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(plan.trajectory.poses, plan.candidates[plan.info['selected']])


def test_safety_settings_replace_the_selector_checkpoints_own(checkpoints, tmp_path, capsys):
    from pair_drive_ros.cli import main as cli_main
    from pair_drive_ros.policy.factory import build_planner

    paths = dict(il_checkpoint=checkpoints['il'], rl_checkpoint=checkpoints['rl'],
                 selector_checkpoint=checkpoints['sel'])
    kept = build_planner('pair', **paths)
    assert kept.selector.cfg.safety_tolerance == SEL_CFG.safety_tolerance == -1.0
    for name in ('pair', 'pair_variants'):
        guarded = build_planner(name, safety_tolerance=0.0, **paths)
        assert guarded.selector.cfg.safety_tolerance == 0.0
        # everything else of the checkpoint's selector stays
        assert guarded.selector.cfg.select_by == kept.selector.cfg.select_by
        assert guarded.selector.cfg.safety_metrics == ('NC', 'TTC')
        assert guarded.selector.cfg.fallback_margin == kept.selector.cfg.fallback_margin
    stricter = build_planner('pair', fallback_margin=0.05, **paths)
    assert stricter.selector.cfg.fallback_margin == 0.05
    assert stricter.selector.cfg.safety_tolerance == -1.0
    ranked = build_planner('pair', select_by='epdms', **paths)
    assert ranked.selector.cfg.select_by == 'epdms'
    gated = build_planner('pair_variants', progress_tolerance_m=2.0, **paths)
    assert gated.selector.cfg.progress_tolerance_m == 2.0
    assert gated.selector.cfg.safety_tolerance == -1.0
    with pytest.raises(ValueError, match='select_by'):
        build_planner('pair', select_by='speed', **paths)
    wider = build_planner('pair', safety_metrics=['NC', 'TTC', 'DAC'], **paths)
    assert wider.selector.cfg.safety_metrics == ('NC', 'TTC', 'DAC')
    with pytest.raises(ValueError, match='safety_metrics'):
        build_planner('pair', safety_metrics=['speed'], **paths)
    # An IL planner has no selector: the setting is refused, not ignored.
    rc = cli_main(['evaluate', '--planner', 'transfuser', '--il-checkpoint',
                   str(checkpoints['il']), '--data', str(tmp_path / 'none'),
                   '--set', 'safety_tolerance=0.0', '--out', str(tmp_path / 'eval')])
    assert rc != 0 and 'safety_tolerance is a setting of the pair' in capsys.readouterr().err


def test_plan_variants_stretch_and_shift_the_whole_plan():
    t = torch.arange(1, 9, dtype=torch.float32)
    plan = torch.stack([5.0 * t, 0.1 * t, torch.full_like(t, 0.02)], -1)[None]   # (1, 8, 3)
    with_identity = plan_variants(plan, keep_identity=True)
    variants = plan_variants(plan)
    assert with_identity.shape == (1, 15, 8, 3) and variants.shape == (1, 14, 8, 3)
    assert any(torch.equal(v, plan[0]) for v in with_identity[0])
    assert not any(torch.equal(v, plan[0]) for v in variants[0])
    ramp = t / 8.0
    expected = []
    for speed in (0.8, 0.9, 1.0, 1.1, 1.2):
        for lateral in (-1.0, 0.0, 1.0):
            v = plan[0].clone()
            v[:, :2] *= speed
            v[:, 1] += lateral * ramp     # reaches the full offset at 4 s
            expected.append(v)
    assert torch.allclose(with_identity[0], torch.stack(expected), atol=1e-6)
    assert torch.equal(variants[..., 2], plan[..., 2].expand(1, 14, 8))    # headings kept


def test_a_selector_trained_with_variants_gets_them_as_candidates(checkpoints):
    from dataclasses import replace

    from pair_drive_ros.policy.pair import load_rl_branch

    il = TransfuserPlanner(build_model('transfuser', TransfuserConfig(backbone=TINY_BACKBONE)))
    rl = load_rl_branch(checkpoints['rl'])
    selector = Selector(replace(SEL_CFG, plan_variants=True))
    plan = PaIRPlanner(il, rl, selector).compute_plan(PlannerInput(features(3)))
    assert plan.candidates.shape == (1 + 15 + 14, 8, 3)
    np.testing.assert_allclose(plan.candidates[0], plan.il_trajectory.poses, atol=1e-5)
    ref = torch.as_tensor(plan.candidates[:1], dtype=torch.float32)
    np.testing.assert_allclose(plan.candidates[16:], plan_variants(ref)[0].numpy(), atol=1e-5)
    # without a selector (oracle candidates) variants are opt-in
    assert PaIRPlanner(il, rl, None).compute_plan(
        PlannerInput(features(3))).candidates.shape == (16, 8, 3)
    assert PaIRPlanner(il, rl, None, variants=True).compute_plan(
        PlannerInput(features(3))).candidates.shape == (30, 8, 3)


def test_swapping_the_il_planner_needs_no_rl_retraining(checkpoints):
    from pair_drive_ros.policy.diffusiondrive.config import DiffusionDriveConfig
    from pair_drive_ros.policy.pair import load_rl_branch, load_selector

    dd = build_model('diffusiondrive', DiffusionDriveConfig(backbone=TINY_BACKBONE))
    from pair_drive_ros.policy.il_planner import DiffusionDrivePlanner
    planner = PaIRPlanner(DiffusionDrivePlanner(dd), load_rl_branch(checkpoints['rl']),
                          load_selector(checkpoints['sel']))
    plan = planner.compute_plan(PlannerInput(features(2)))
    np.testing.assert_allclose(plan.candidates[0], plan.il_trajectory.poses, atol=1e-5)


def test_missing_checkpoint_is_a_typed_error(tmp_path, checkpoints):
    with pytest.raises(CheckpointError, match='does not exist'):
        PaIRPlanner.from_checkpoints(il_checkpoint=checkpoints['il'],
                                     rl_checkpoint=tmp_path / 'none.pt',
                                     selector_checkpoint=checkpoints['sel'])


def test_oracle_picks_the_truly_best_candidate(checkpoints):
    from pair_drive_ros.scoring import score_candidates

    scenes = SyntheticSceneSet(2)
    il = build_model('transfuser', TransfuserConfig(backbone=TINY_BACKBONE))
    pair = PaIRPlanner(TransfuserPlanner(il), RLBranch(RL_CFG), None)
    oracle = OracleBestOfN(pair)
    scene = scenes.scene(0)
    plan = oracle.compute_plan(PlannerInput(features(0), scene))
    true = score_candidates(scene, plan.candidates).pdms
    assert plan.info['selected'] == int(np.argmax(true))
    with pytest.raises(ValueError, match='scene'):
        oracle.compute_plan(PlannerInput(features(0)))


def test_selector_loss_prefers_the_right_ranking():
    targets = torch.zeros(1, 3, len(TARGETS))
    targets[0, :, TARGETS.index('pdms')] = torch.tensor([0.1, 0.9, 0.5])
    good = torch.zeros(1, 3, len(TARGETS))
    good[0, :, TARGETS.index('pdms')] = torch.tensor([-3.0, 3.0, 0.0])
    bad = -good
    assert selector_loss(good, targets)['rank'] < selector_loss(bad, targets)['rank']
    assert selector_loss(good, targets)['bce'] < selector_loss(bad, targets)['bce']
    with pytest.raises(ValueError, match='select_by'):
        SelectorConfig(select_by='best')


def test_selector_training_smoke(tmp_path, checkpoints):
    from pair_drive_ros.training.train_selector import main, SelectorTrainConfig

    cfg = load_config(SelectorTrainConfig, 'config/selector.yaml', [
        f'runs_root={tmp_path}', 'epochs=2', 'batch_size=2', 'threads=1', 'extra_data_roots=[]',
        f'rl_checkpoint={checkpoints["rl"]}', f'il_checkpoint={checkpoints["il"]}',
        'out=' + str(tmp_path / 'sel.pt')])
    cfg = type(cfg)(**{**cfg.__dict__, 'model': SEL_CFG})
    path = main(cfg, train_scenes=SyntheticSceneSet(3, seed=1),
                val_scenes=SyntheticSceneSet(2, seed=2))
    ckpt = torch.load(path, weights_only=True)
    val = ckpt['val']
    assert np.isfinite(val['sel/loss'])
    # The oracle bounds both the selection and the IL plan on the same candidates.
    assert val['sel/val_pdms_oracle'] >= val['sel/val_pdms_selected'] - 1e-6
    assert val['sel/val_pdms_oracle'] >= val['sel/val_pdms_il'] - 1e-6
    assert (tmp_path / 'sel.pt').is_file()


def test_selector_trains_around_an_il_planner_that_reads_more_features(tmp_path):
    from dataclasses import replace

    from pair_drive_ros.perception.config import PerceptionConfig
    from pair_drive_ros.policy.backbone import backbone_inputs
    from pair_drive_ros.policy.factory import build_planner
    from pair_drive_ros.training.train_selector import main, SelectorTrainConfig

    # An IL planner with past sweeps (IL-A motion), an RL branch without them: the labels are
    # built from the motion features, the trunk and the selector read their part; the selector
    # also learns braking candidates and samples the past sweeps only the IL planner reads.
    motion = PerceptionConfig(history_sweeps=2)
    torch.manual_seed(0)
    il = build_model('transfuser', TransfuserConfig(
        backbone=replace(TINY_BACKBONE, **backbone_inputs(motion))))
    il_path = save_checkpoint(tmp_path / 'il.pt', il, model_name='transfuser',
                              model_config=il.cfg, perception_config=motion)
    rl_path = save_checkpoint(tmp_path / 'rl.pt', RLBranch(RL_CFG), model_name=RL_NAME,
                              model_config=RL_CFG, perception_config=PerceptionConfig())
    cfg = load_config(SelectorTrainConfig, 'config/selector.yaml', [
        f'runs_root={tmp_path}', 'epochs=1', 'batch_size=2', 'threads=1', 'extra_data_roots=[]',
        f'rl_checkpoint={rl_path}', f'il_checkpoint={il_path}', 'out=' + str(tmp_path / 'sel.pt')])
    model = replace(SEL_CFG, plan_variants=True, stop_decels_mps2=(3.0,), raster_past_sweeps=2)
    cfg = type(cfg)(**{**cfg.__dict__, 'model': model})
    path = main(cfg, train_scenes=SyntheticSceneSet(3, seed=1, perception=motion),
                val_scenes=SyntheticSceneSet(2, seed=2, perception=motion))
    assert np.isfinite(torch.load(path, weights_only=True)['val']['sel/loss'])
    # Two IL planners of one selector must read the same features.
    from pair_drive_ros.policy.il_planner import load_il_planner
    from pair_drive_ros.policy.pair import load_rl_branch
    from pair_drive_ros.training.train_selector import label_features

    plain = build_model('transfuser', TransfuserConfig(backbone=TINY_BACKBONE))
    plain_path = save_checkpoint(tmp_path / 'plain.pt', plain, model_name='transfuser',
                                 model_config=plain.cfg, perception_config=PerceptionConfig())
    rl = load_rl_branch(rl_path)
    config, rl_part, il_parts = label_features(rl, [load_il_planner(il_path)])
    assert config == motion and rl_part is not None and il_parts == [None]
    with pytest.raises(CheckpointError, match='same features'):
        label_features(rl, [load_il_planner(il_path), load_il_planner(plain_path)])
    pair = build_planner('pair', il_checkpoint=il_path, rl_checkpoint=rl_path,
                         selector_checkpoint=path)
    assert pair.stop_decels == (3.0,) and pair.perception_config == motion
    rng = np.random.default_rng(0)
    frame = Features(lidar_bev=rng.random((motion.lidar_channels, 64, 64), dtype=np.float32),
                     camera=rng.random((3, 32, 64), dtype=np.float32),
                     route_raster=rng.random((1, 64, 64), dtype=np.float32),
                     ego_status=rng.random(motion.status_dim).astype(np.float32),
                     ego=EgoState([0.0, 0.0, 0.0], velocity=[10.0, 0.0]))
    plan = pair.compute_plan(PlannerInput(frame))
    assert plan.candidates.shape == (pair.candidates_per_frame(), 8, 3)
    assert pair.candidates_per_frame() == 1 + 15 + NUM_PLAN_VARIANTS + 1
    # the braking candidate is last: it never travels further than the IL plan
    reach = np.abs(plan.candidates[:, :, :2]).max(axis=(1, 2))
    assert reach[-1] <= reach[0] + 1e-4
    # the selector reads the past sweeps (the RL trunk's part has none), the trunk its part
    from pair_drive_ros.policy.il_planner import features_to_batch
    from pair_drive_ros.policy.pair import rl_features, selector_batch

    built = features_to_batch([frame], 'cpu')
    part = rl_features(built, pair._rl_index)
    given = selector_batch(pair.selector.cfg, built, part)
    assert part['lidar_bev'].shape[1] == 2 and given['lidar_bev'].shape[1] == 4
    assert given['ego_status'] is part['ego_status']


@settings(max_examples=40, deadline=None)
@given(x=st.floats(-15.0, 47.0), y=st.floats(-31.0, 31.0))
def test_raster_samples_read_the_bev_cell_under_each_box_point(x, y):
    from pair_drive_ros.perception.builder import bev_cells
    from pair_drive_ros.perception.config import PerceptionConfig

    # A raster that encodes each cell's own (row, col): bilinear sampling at a point then gives
    # back the point's continuous cell coordinate, which must match the feature builder's cells.
    pc = PerceptionConfig()
    rows, cols = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing='ij')
    lidar = torch.stack([rows, cols])[None]
    route = torch.ones(1, 1, 64, 64)
    cand = torch.zeros(1, 1, 8, 3)
    cand[..., 0], cand[..., 1] = x, y
    out = raster_samples(cand, lidar, route, SEL_CFG).reshape(8, BOX_POINTS, RASTER_CHANNELS)
    row, col, inside = bev_cells(pc, np.array([[x, y]]))
    assert inside[0]
    # Centre point of pose 0: continuous coordinate minus 0.5 is the cell-centre index.
    centre_row = (pc.x_max_m - x) / pc.resolution_m - 0.5
    centre_col = (pc.y_extent_m - y) / pc.resolution_m - 0.5
    if 0.0 <= centre_row <= 63.0 and 0.0 <= centre_col <= 63.0:
        assert out[0, 0, 0].item() == pytest.approx(centre_row, abs=1e-3)
        assert out[0, 0, 1].item() == pytest.approx(centre_col, abs=1e-3)
        assert abs(out[0, 0, 0].item() - row[0]) <= 0.5 + 1e-3
        assert out[0, 0, 2].item() == pytest.approx(1.0)
    # The front-left corner lies ahead (smaller row) and to the left (smaller column).
    front_left = out[0, 1]
    if 0.0 <= centre_row - 2.5 and centre_col - 1.0 >= 0.0:
        assert front_left[0].item() == pytest.approx(centre_row - 2.5, abs=1e-3)
        assert front_left[1].item() == pytest.approx(centre_col - 1.0, abs=1e-3)


def test_raster_selector_needs_the_feature_batch():
    sel = Selector(SEL_CFG)
    with pytest.raises(ValueError, match='rasters'):
        sel(torch.zeros(1, 2, 8, 3), torch.zeros(1, 5, TINY_BACKBONE.d_model))


def test_fallback_margin_keeps_the_il_plan_unless_clearly_beaten():
    from pair_drive_ros.policy.selector import pick_with_margin

    score = torch.tensor([[0.80, 0.85, 0.10], [0.50, 0.90, 0.70], [0.9, 0.2, 0.3]])
    assert pick_with_margin(score, 0.0).tolist() == [1, 1, 0]
    assert pick_with_margin(score, 0.1).tolist() == [0, 1, 0]
    assert pick_with_margin(score, 1.0).tolist() == [0, 0, 0]


def test_consistency_term_measures_distance_to_the_previous_plan(checkpoints):
    from pair_drive_ros.core.se2 import poses_to_local

    pair = PaIRPlanner.from_checkpoints(checkpoints['il'], checkpoints['rl'], checkpoints['sel'],
                                        consistency_weight=0.1)
    first = features(0)
    first.stamp_s = 10.0
    poses = pair.compute_plan(PlannerInput(first)).trajectory.poses
    # 0.5 s later the ego stands on the plan's first pose; the plan's continuation (its poses
    # 1..7) seen from there is at distance 0, the same shifted 2 m sideways at 2 m.
    later = features(1)
    later.stamp_s = 10.5
    later.ego = EgoState(poses[0].copy(), velocity=[10.0, 0.0])
    cands = np.zeros((2, 8, 3))
    cands[:, :7] = poses_to_local(poses[0], poses[1:])
    cands[1, :, 1] += 2.0
    cands[:, 7] = 100.0      # beyond the previous plan's horizon: not compared
    dist = pair.previous_plan_distance(later, cands)
    assert dist == pytest.approx([0.0, 2.0], abs=1e-6)
    later.stamp_s = 12.0     # too old (a new episode or dropped frames): no term
    assert pair.previous_plan_distance(later, cands) is None
    later.stamp_s = 10.5
    pair.reset()
    assert pair.previous_plan_distance(later, cands) is None


class ShiftedIL:
    """An IL planner whose plans are another one's, moved sideways by dy [m]."""

    def __init__(self, planner, dy: float):
        self.planner = planner
        self.dy = dy

    def plan_tensors(self, feats):
        out = self.planner.plan_tensors(feats)['trajectory'].clone()
        out[..., 1] += self.dy
        return {'trajectory': out}


def test_relabel_il_replaces_every_il_block_and_keeps_the_expert_blocks(checkpoints):
    from pair_drive_ros.policy.il_planner import load_il_planner
    from pair_drive_ros.policy.pair import load_rl_branch
    from pair_drive_ros.training.train_selector import (build_labels, relabel_il,
                                                        SelectorTrainConfig)

    cfg = load_config(SelectorTrainConfig, 'config/selector.yaml', ['batch_size=2'])
    scenes = SyntheticSceneSet(3, seed=1)
    rl = load_rl_branch(checkpoints['rl'])
    old_il = load_il_planner(checkpoints['il'], 'cpu')
    new_il = ShiftedIL(old_il, 1.0)      # a 'new IL-A': plans 1 m to the left
    labels = build_labels(scenes, rl, [old_il], cfg, 'cpu', 'labels')
    train, _ = relabel_il(cfg, rl, [new_il], 'cpu', labels, scenes,
                          SyntheticSceneSet(2, seed=2))
    block = labels['candidates'].shape[1] // len(cfg.references)
    feats, _ = scenes.batch(np.arange(3))
    with torch.no_grad():
        new_plan = new_il.plan_tensors(feats)['trajectory'].float()
    for k, ref_name in enumerate(cfg.references):
        blk = slice(k * block, (k + 1) * block)
        if ref_name == 'il':
            assert torch.allclose(train['candidates'][:, k * block], new_plan, atol=1e-5)
        if ref_name.startswith('il'):
            assert not torch.equal(train['candidates'][:, blk], labels['candidates'][:, blk])
        else:
            assert torch.equal(train['candidates'][:, blk], labels['candidates'][:, blk])
            assert torch.equal(train['targets'][:, blk], labels['targets'][:, blk])
    with pytest.raises(ValueError, match='IL planners'):
        relabel_il(cfg, rl, [new_il, old_il], 'cpu', labels, scenes)


def test_labels_with_two_il_planners_hold_one_il_block_per_planner(checkpoints):
    from pair_drive_ros.policy.il_planner import load_il_planner
    from pair_drive_ros.policy.pair import load_rl_branch
    from pair_drive_ros.policy.selector import Selector
    from pair_drive_ros.training.train_selector import (build_labels, evaluate, reference_layout,
                                                        SelectorTrainConfig)

    cfg = load_config(SelectorTrainConfig, 'config/selector.yaml', ['batch_size=2'])
    scenes = SyntheticSceneSet(3, seed=1)
    rl = load_rl_branch(checkpoints['rl'])
    il_a = load_il_planner(checkpoints['il'], 'cpu')
    il_b = ShiftedIL(il_a, -2.0)         # a second IL planner: 2 m to the right
    layout = reference_layout(cfg.references, 2)
    assert layout[:4] == [('il', 0), ('il', 1), ('il_perturbed', 0), ('il_perturbed', 1)]
    assert all(k is None for _, k in layout[4:])
    train = build_labels(scenes, rl, [il_a, il_b], cfg, 'cpu', 'labels')
    block = 1 + 15 + (NUM_PLAN_VARIANTS if cfg.model.plan_variants else 0)
    assert train['candidates'].shape[1] == len(layout) * block and int(train['il_blocks']) == 2
    feats, _ = scenes.batch(np.arange(3))
    with torch.no_grad():
        plan_a = il_a.plan_tensors(feats)['trajectory'].float()
    assert torch.allclose(train['candidates'][:, 0], plan_a, atol=1e-5)
    assert torch.allclose(train['candidates'][:, block, :, 1], plan_a[..., 1] - 2.0, atol=1e-5)
    # validation: one [IL plan, leaves] block per planner, selected from separately
    val = build_labels(scenes, rl, [il_a, il_b], cfg, 'cpu', 'val', references=('il',))
    stats = evaluate(Selector(SEL_CFG), val)
    for key in ('sel/val_pdms_il', 'sel/val_pdms_oracle', 'sel/val_pdms_selected'):
        per_il = [stats[f'{key}_il{i}'] for i in range(2)]
        assert stats[key] == pytest.approx(np.mean(per_il))
    pdms_il_b = 100 * val['targets'][:, block, -2].mean().item()
    assert stats['sel/val_pdms_il_il1'] == pytest.approx(pdms_il_b, rel=1e-5)


def test_safety_gate_keeps_candidates_less_safe_than_the_il_plan_out():
    from dataclasses import replace

    def logits_for(p: dict) -> torch.Tensor:
        out = torch.full((1, 3, len(TARGETS)), 4.0)      # sigmoid ~0.98 everywhere
        for (k, name), value in p.items():
            out[0, k, TARGETS.index(name)] = torch.logit(torch.tensor(value))
        return out

    # candidate 1: best composite but a lower predicted NC than the IL plan; candidate 2:
    # slightly better than IL and as safe.
    logits = logits_for({(0, 'EP'): 0.5, (1, 'NC'): 0.95, (1, 'EP'): 0.99, (2, 'EP'): 0.7})
    for tolerance, want in ((-1.0, 1), (0.0, 2), (0.2, 1)):
        sel = Selector(replace(SEL_CFG, select_by='composite', safety_tolerance=tolerance))
        sel.forward = lambda *args, **kwargs: logits
        best, score = sel.select(torch.zeros(1, 3, 8, 3))
        assert int(best[0]) == want, tolerance
        assert int(score.argmax()) == 1    # the reported scores are not gated
    # With DAC in the guard, candidate 2's lower predicted drivable area keeps it out too.
    logits = logits_for({(0, 'EP'): 0.5, (1, 'NC'): 0.95, (1, 'EP'): 0.99, (2, 'EP'): 0.7,
                         (2, 'DAC'): 0.9})
    for metrics, want in ((('NC', 'TTC'), 2), (('NC', 'TTC', 'DAC'), 0), (('EP',), 1)):
        sel = Selector(replace(SEL_CFG, select_by='composite', safety_tolerance=0.0,
                               safety_metrics=metrics))
        sel.forward = lambda *args, **kwargs: logits
        assert int(sel.select(torch.zeros(1, 3, 8, 3))[0][0]) == want, metrics


def test_progress_gate_keeps_candidates_that_go_further_than_the_il_plan_out():
    from dataclasses import replace

    from pair_drive_ros.policy.selector import path_length

    # Straight paths along x at 5, 8 and 6 m/s (0.5 s poses): 20, 32 and 24 m over 4 s; the
    # fastest scores best, the slowest (the IL plan) worst.
    t = 0.5 * torch.arange(1, 9, dtype=torch.float32)
    cands = torch.zeros(1, 3, 8, 3)
    for k, speed in enumerate((5.0, 8.0, 6.0)):
        cands[0, k, :, 0] = speed * t
    torch.testing.assert_close(path_length(cands), torch.tensor([[20.0, 32.0, 24.0]]))
    logits = torch.zeros(1, 3, len(TARGETS))
    logits[0, :, TARGETS.index('pdms')] = torch.tensor([0.0, 2.0, 1.0])
    for tolerance, want in ((-1.0, 1), (0.0, 0), (4.0, 2), (12.0, 1)):
        sel = Selector(replace(SEL_CFG, progress_tolerance_m=tolerance))
        sel.forward = lambda *args, **kwargs: logits
        assert int(sel.select(cands)[0][0]) == want, tolerance
    # A slower candidate passes the strictest gate.
    cands[0, 1, :, 0] = 4.0 * t
    sel = Selector(replace(SEL_CFG, progress_tolerance_m=0.0))
    sel.forward = lambda *args, **kwargs: logits
    assert int(sel.select(cands)[0][0]) == 1


def test_stop_candidates_brake_along_the_plan():
    from pair_drive_ros.policy.selector import stop_candidates
    from pair_drive_ros.runtime.safety import stopping_trajectory

    t = 0.5 * torch.arange(1, 9, dtype=torch.float32)
    plans = torch.zeros(2, 8, 3)
    plans[0, :, 0] = 10.0 * t                        # straight ahead at 10 m/s
    angle = 8.0 * t / 20.0                           # a left arc of 20 m radius at 8 m/s
    plans[1, :, 0] = 20.0 * torch.sin(angle)
    plans[1, :, 1] = 20.0 * (1.0 - torch.cos(angle))
    plans[1, :, 2] = angle
    stops = stop_candidates(plans, (5.0, 2.0))
    assert stops.shape == (2, 2, 8, 3)
    # Straight: the same braking curve as the nodes' stopping trajectory (10 m in 2 s at 5).
    for k, decel in enumerate((5.0, 2.0)):
        torch.testing.assert_close(stops[0, k], torch.as_tensor(
            stopping_trajectory(10.0, decel).poses, dtype=torch.float32))
    # The arc: every pose on the plan's polyline, monotone, standing still at the end, the
    # heading of the path where it stops.
    arc = stops[1, 0]
    radius = torch.hypot(arc[:, 0], arc[:, 1] - 20.0)
    assert (radius <= 20.0 + 1e-4).all() and (radius >= 19.0).all()    # chords of the circle
    assert (arc[1:, 0] >= arc[:-1, 0]).all() and torch.equal(arc[-1], arc[-2])
    assert 0.0 < float(arc[-1, 2]) < float(plans[1, 1, 2])
    # A plan standing still stays put.
    assert stop_candidates(torch.zeros(1, 8, 3), (3.0,)).abs().max() == 0.0


def test_stop_candidates_join_the_candidate_set(checkpoints):
    from pair_drive_ros.policy.factory import build_planner

    paths = dict(il_checkpoint=checkpoints['il'], rl_checkpoint=checkpoints['rl'],
                 selector_checkpoint=checkpoints['sel'])
    plain = build_planner('pair_variants', **paths)
    braking = build_planner('pair_variants', stop_decels_mps2=[3.0, 6.0], **paths)
    assert braking.candidates_per_frame() == plain.candidates_per_frame() + 2
    with pytest.raises(ValueError, match='stop_decels_mps2'):
        build_planner('pair', stop_decels_mps2=[0.0], **paths)


def test_concat_labels_appends_scenes_of_the_same_layout():
    from pair_drive_ros.training.train_selector import concat_labels

    def labels(n, k):
        return {'context': torch.zeros(n, 3, 4), 'candidates': torch.full((n, k, 8, 3), float(n)),
                'targets': torch.zeros(n, k, 10), 'il_blocks': torch.tensor(1)}

    both = concat_labels(labels(2, 5), labels(3, 5))
    assert both['candidates'].shape == (5, 5, 8, 3) and int(both['il_blocks']) == 1
    assert both['candidates'][:2].eq(2).all() and both['candidates'][2:].eq(3).all()
    with pytest.raises(ValueError, match='layout'):
        concat_labels(labels(2, 5), labels(2, 6))


def test_missing_extra_data_root_is_a_clear_error(tmp_path, checkpoints):
    from pair_drive_ros.core.config import load_config
    from pair_drive_ros.training.train_selector import main, SelectorTrainConfig

    cfg = load_config(SelectorTrainConfig, 'config/selector.yaml', [
        f'runs_root={tmp_path}', 'batch_size=2', 'threads=1',
        f'rl_checkpoint={checkpoints["rl"]}', f'il_checkpoint={checkpoints["il"]}',
        f'extra_data_roots=[{tmp_path / "no_rollouts"}]', 'out='])
    with pytest.raises(FileNotFoundError, match='pair-drive train rollouts'):
        main(cfg, train_scenes=SyntheticSceneSet(2, seed=1), val_scenes=SyntheticSceneSet(2))
