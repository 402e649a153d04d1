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

"""Episode bootstrap and paired differences on known numbers; the attribution report's rows."""

import json

import numpy as np
import pytest
import torch

from pair_drive_ros.core.config import load_config
from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.core.features import Features
from pair_drive_ros.core.trajectory import POSE_DT_S, Trajectory
from pair_drive_ros.evaluation.attribution import (AttributionConfig, COLUMNS, compare_rows,
                                                   comparisons_of, report, Row)
from pair_drive_ros.evaluation.bootstrap import (bootstrap_draws, episode_bootstrap,
                                                 paired_difference)
from pair_drive_ros.policy.base import AbstractPlanner, PlanOutput
from pair_drive_ros.policy.rl_branch import RLBranch, RLBranchConfig, untrained_tree
from pair_drive_ros.policy.selector import Selector, SelectorConfig
from rl_fixtures import SyntheticSceneSet, TINY_BACKBONE

torch.set_num_threads(1)


# -- bootstrap maths ----------------------------------------------------------------------------

def test_a_constant_difference_has_a_degenerate_interval():
    a = np.array([0.3, 0.5, 0.9, 0.1, 0.7])
    episodes = np.array(['x', 'x', 'y', 'z', 'z'])
    d = paired_difference(a + 0.25, a, episodes, n_boot=500)
    assert d.mean == pytest.approx(0.25) and d.low == pytest.approx(0.25)
    assert d.high == pytest.approx(0.25)
    assert (d.frames, d.episodes) == (5, 3)
    # Unpaired, the same rows vary a lot between episodes.
    single = episode_bootstrap(a, episodes, n_boot=500)
    assert single.high - single.low > 0.2


def test_two_episodes_give_the_known_bootstrap_distribution():
    # Episode A: 3 frames of 1, episode B: 1 frame of 0. Resamples AA, AB, BA, BB have means
    # 1, 0.75, 0.75, 0 (frame-weighted), so with many replicates the 95 % interval is [0, 1]
    # and the point estimate is the frame mean 0.75, not the episode mean 0.5.
    iv = episode_bootstrap([1, 1, 1, 0], ['A', 'A', 'A', 'B'], n_boot=4000, seed=3)
    assert iv.mean == pytest.approx(0.75)
    assert (iv.low, iv.high) == (0.0, 1.0)
    draws = bootstrap_draws(2, 4000, 3)
    means = np.where(draws.sum(1) == 0, 1.0, np.where(draws.sum(1) == 2, 0.0, 0.75))
    assert np.mean(means == 0.75) == pytest.approx(0.5, abs=0.03)


def test_the_bootstrap_equals_a_plain_loop_over_resampled_episodes():
    rng = np.random.default_rng(0)
    values = rng.random(40)
    episodes = rng.integers(0, 7, 40)
    iv = episode_bootstrap(values, episodes, n_boot=300, seed=5, level=0.9)
    ids = np.unique(episodes)
    boot = []
    for draw in bootstrap_draws(len(ids), 300, 5):
        frames = np.concatenate([values[episodes == ids[e]] for e in draw])
        boot.append(frames.mean())
    assert iv.low == pytest.approx(np.quantile(boot, 0.05))
    assert iv.high == pytest.approx(np.quantile(boot, 0.95))
    assert iv.mean == pytest.approx(values.mean())


def test_bootstrap_rejects_bad_input():
    with pytest.raises(ValueError, match='equal 1-D'):
        episode_bootstrap([1.0, 2.0], ['a'])
    with pytest.raises(ValueError, match='same frames'):
        paired_difference([1.0], [1.0, 2.0], ['a'])
    with pytest.raises(ValueError, match='level'):
        episode_bootstrap([1.0], ['a'], level=1.0)


# -- the report ---------------------------------------------------------------------------------

class _Scenes(SyntheticSceneSet):
    """Synthetic scenes that also hand out Features, like a real SceneSet."""

    def features(self, j: int) -> Features:
        a = self.dataset.arrays
        i = int(self.indices[j])
        speed = float(self.dataset.speeds[i])
        return Features(lidar_bev=a['lidar_bev'][i], camera=a['camera'][i],
                        route_raster=a['route_raster'][i], ego_status=a['ego_status'][i],
                        ego=EgoState([0.0, 0.0, 0.0], velocity=[speed, 0.0]))


class _SlowExpert(AbstractPlanner):
    """A deterministic 'IL planner': the logged expert at `factor` of its speed."""

    name = 'slow_expert'
    requires_scene = True

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def compute_plans(self, batch):
        out = []
        for b in batch:
            poses = np.array(b.scene.expert.poses, dtype=np.float64)
            poses[:, :2] *= self.factor
            # Own modes, like DiffusionDrive's, with another plan first: never what it deploys.
            modes = np.stack([np.array(b.scene.expert.poses), poses])
            out.append(PlanOutput(Trajectory(poses, POSE_DT_S), candidates=modes,
                                  candidate_scores=np.array([0.0, 1.0])))
        return out

    def compute_plan(self, inputs):
        return self.compute_plans([inputs])[0]


def test_untrained_tree_keeps_the_trunk_and_redraws_the_tree():
    torch.manual_seed(0)
    rl = RLBranch(RLBranchConfig(backbone=TINY_BACKBONE, decoder_layers=1, num_heads=2))
    a, b = untrained_tree(rl, 1), untrained_tree(rl, 1)
    for k, v in rl.trunk.state_dict().items():
        assert torch.equal(a.trunk.state_dict()[k], v)
    assert torch.equal(a.score_head[0].weight, b.score_head[0].weight)     # seeded
    assert not torch.equal(a.score_head[0].weight, untrained_tree(rl, 2).score_head[0].weight)
    for p, q in zip(a.trunk.parameters(), rl.trunk.parameters()):
        assert p.data_ptr() != q.data_ptr()       # copied, not shared


def _tiny_report_parts(tmp_path, *sets: str):
    """Return a tiny RL branch and selector, and the attribution config for IL-A with `sets`."""
    torch.manual_seed(0)
    rl = RLBranch(RLBranchConfig(backbone=TINY_BACKBONE, decoder_layers=1, num_heads=2))
    sel = Selector(SelectorConfig(backbone=TINY_BACKBONE, layers=1, num_heads=2,
                                  raster_features=True, plan_variants=True))
    cfg = load_config(AttributionConfig, 'config/rl_attribution.yaml', [
        'planners=[IL-A]', 'untrained_seeds=[0]', f'out={tmp_path}',
        f'rl_checkpoint={tmp_path}/none.pt', f'selector_checkpoint={tmp_path}/none.pt',
        f'tree_selector_checkpoint={tmp_path}/none.pt', *sets])
    return rl, sel, cfg


def test_report_rows_differences_and_output(tmp_path):
    rl, sel, cfg = _tiny_report_parts(tmp_path, 'bootstrap=200')
    scenes = _Scenes(n=6)
    res = report(cfg, 'pair-drive report attribution --set planners=[IL-A]', scenes=scenes,
                 il_planners={'IL-A': _SlowExpert(0.8)}, rl=rl, selector=sel,
                 sequential={'IL-A': _SlowExpert(1.0)})
    keys = [r['key'] for r in res['rows']]
    assert keys == ['IL-A/il', 'IL-A/no_rl', 'IL-A/no_rl/oracle', 'IL-A/untrained0',
                    'IL-A/untrained0/oracle', 'IL-A/tree/oracle', 'IL-A/tree_untrained0/oracle',
                    'IL-A/pair', 'IL-A/pair/oracle', 'IL-A/sequential']
    rows = {r['key']: r for r in res['rows']}
    assert rows['IL-A/pair']['candidates'] == 30 and rows['IL-A/no_rl']['candidates'] == 15
    assert rows['IL-A/tree/oracle']['candidates'] == 16
    assert rows['IL-A/tree/oracle']['label'].startswith('oracle, not deployable')
    stats = res['stats']
    # IL alone, scored directly.
    slow = np.stack([scenes.scene(j).expert.poses for j in range(6)])
    slow[..., :2] *= 0.8
    direct = scenes.score(list(range(6)), slow[:, None])
    assert stats['IL-A/il']['open_loop']['pdms']['mean'] == pytest.approx(
        100 * direct.pdms.mean())
    # The sequential row is the expert itself here: it scores what the expert scores.
    expert = scenes.score(list(range(6)), np.stack([scenes.scene(j).expert.poses
                                                    for j in range(6)])[:, None])
    assert stats['IL-A/sequential']['open_loop']['epdms']['mean'] == pytest.approx(
        100 * expert.epdms.mean())
    # Each oracle is at least its selected row and at least IL (IL is candidate 0).
    for key in ('IL-A/no_rl', 'IL-A/untrained0', 'IL-A/pair'):
        for c in COLUMNS[-2:-1]:
            assert stats[f'{key}/oracle']['open_loop'][c]['mean'] >= \
                stats[key]['open_loop'][c]['mean'] - 1e-9
            assert stats[f'{key}/oracle']['open_loop'][c]['mean'] >= \
                stats['IL-A/il']['open_loop'][c]['mean'] - 1e-9
    # Paired differences are differences of the row means, with their intervals around them.
    diffs = {(d['row'], d['baseline']): d for d in res['comparisons']}
    for (a, b), d in diffs.items():
        want = stats[a]['open_loop']['pdms']['mean'] - stats[b]['open_loop']['pdms']['mean']
        assert d['pdms']['mean'] == pytest.approx(want)
        assert d['pdms']['low'] <= d['pdms']['mean'] + 1e-9 <= d['pdms']['high'] + 2e-9
    assert ('IL-A/pair', 'IL-A/no_rl') in diffs and ('IL-A/pair', 'IL-A/il') in diffs
    assert ('IL-A/pair/oracle', 'IL-A/no_rl/oracle') in diffs
    assert ('IL-A/tree/oracle', 'IL-A/tree_untrained0/oracle') in diffs
    assert ('IL-A/pair', 'IL-A/untrained0') in diffs
    # Output files record the commit, the split, the frames and the command.
    saved = json.loads((tmp_path / 'attribution.json').read_text())
    assert saved['meta']['split'] == 'val' and saved['meta']['frames'] == 6
    assert saved['meta']['command'].startswith('pair-drive report attribution')
    assert saved['meta']['commit']
    # Rows of two reports compare frame by frame: a report against itself gives 0 exactly.
    same = compare_rows(saved, 'IL-A/pair', saved, 'IL-A/pair')
    assert (same['mean'], same['low'], same['high']) == (0.0, 0.0, 0.0)
    d = compare_rows(saved, 'IL-A/pair', saved, 'IL-A/il')
    assert d['mean'] == pytest.approx(diffs[('IL-A/pair', 'IL-A/il')]['pdms']['mean'])
    text = (tmp_path / 'attribution.md').read_text()
    assert 'oracle, not deployable' in text and 'IL-A + PaIR' in text and 'Commit `' in text


def test_ceiling_rows_are_oracles_over_the_wide_trees(tmp_path):
    rl, sel, cfg = _tiny_report_parts(tmp_path, 'bootstrap=50', 'ceiling_group=all')
    res = report(cfg, 'pair-drive report attribution', scenes=_Scenes(n=4),
                 il_planners={'IL-A': _SlowExpert(0.8)}, rl=rl, selector=sel, sequential={})
    rows = {r['key']: r for r in res['rows']}
    for key in ('IL-A/ceiling', 'IL-A/ceiling_untrained0'):
        assert key not in rows                       # never deployable: oracle rows only
        assert rows[f'{key}/oracle']['candidates'] == 1 + 256 + 14
        assert rows[f'{key}/oracle']['label'].startswith('oracle, not deployable')
    stats = res['stats']
    # The IL plan and its variants are in every ceiling set.
    for key in ('IL-A/ceiling/oracle', 'IL-A/ceiling_untrained0/oracle'):
        assert stats[key]['open_loop']['pdms']['mean'] >= \
            stats['IL-A/no_rl/oracle']['open_loop']['pdms']['mean'] - 1e-9
    diffs = {(d['row'], d['baseline']) for d in res['comparisons']}
    assert ('IL-A/ceiling/oracle', 'IL-A/ceiling_untrained0/oracle') in diffs


def test_comparisons_pair_oracles_with_oracles():
    rows = [Row(k, k, 'IL-A', k.endswith('oracle'), 1, {}) for k in (
        'IL-A/il', 'IL-A/no_rl', 'IL-A/no_rl/oracle', 'IL-A/pair', 'IL-A/pair/oracle')]
    pairs = comparisons_of(rows, (0,))
    assert pairs == [('IL-A/no_rl', 'IL-A/il'), ('IL-A/no_rl/oracle', 'IL-A/il'),
                     ('IL-A/pair', 'IL-A/il'), ('IL-A/pair', 'IL-A/no_rl'),
                     ('IL-A/pair/oracle', 'IL-A/il'), ('IL-A/pair/oracle', 'IL-A/no_rl/oracle')]


def test_a_report_needs_one_feature_set_for_all_its_models(tmp_path):
    from pair_drive_ros.perception.config import PerceptionConfig
    from pair_drive_ros.policy.checkpoint import CheckpointError

    rl, sel, cfg = _tiny_report_parts(tmp_path, 'bootstrap=50')
    # A BEV of other cells than the IL planner's: no frame's features feed both.
    rl.perception_config = PerceptionConfig(resolution_m=2.0)
    with pytest.raises(CheckpointError, match='resolution_m'):
        report(cfg, 'pair-drive report attribution', scenes=_Scenes(n=2),
               il_planners={'IL-A': _SlowExpert(0.8)}, rl=rl, selector=sel, sequential={})
