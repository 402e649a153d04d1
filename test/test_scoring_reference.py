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

"""The vectorized scorer against the slow, independent reference in test/scoring_reference.py."""

from dataclasses import replace

import numpy as np
import pytest
import scoring_reference as slow
from scoring_scenes import random_candidates, random_scene

from pair_drive_ros.core import Trajectory
from pair_drive_ros.core.se2 import poses_to_global
from pair_drive_ros.scoring import Metric, prepare_scene, ScorerConfig
from pair_drive_ros.scoring.metrics import PreparedScene
from pair_drive_ros.scoring.scorer import ego_progress, score_candidates, simulate_candidates

# v2: 40 x 26 = 1040 candidates; v1 (the behaviours that differ) on a quarter of them
SIZES = {'v2': (40, 26), 'v1': (10, 26)}


def _cases(version: str):
    rng = np.random.default_rng(1234 if version == 'v2' else 99)
    cfg = ScorerConfig(navsim_version=version, human_filter=False)
    num_scenes, per_scene = SIZES[version]
    for i in range(num_scenes):
        scene = random_scene(rng, token=f'r{i}')
        cands = random_candidates(rng, scene.ego.speed, per_scene)
        yield scene, cands, cfg, float(rng.uniform(0.0, 40.0))


@pytest.mark.slow
@pytest.mark.parametrize('version', ['v2', 'v1'])
def test_fast_scorer_matches_reference_on_1000_candidates(version):
    mismatches = []
    n = 0
    for scene, cands, cfg, reference in _cases(version):
        prep = prepare_scene(scene, cfg)
        table = score_candidates(prep, cands, cfg, reference=reference)
        ref = slow.SlowScorer(scene, cfg)
        for g in range(len(cands)):
            n += 1
            got = ref.score(table.states[g])
            for name in ('NC', 'DAC', 'DDC', 'TTC', 'LK'):
                if got[name] != table[Metric[name]][g]:
                    mismatches.append((scene.token, g, name, got[name], table[Metric[name]][g]))
            mult = got['NC'] * got['DAC'] * (got['DDC'] if version == 'v2' else 1.0)
            ep = slow.ep(got['raw'], mult, reference, version == 'v2')
            assert table[Metric.EP][g] == pytest.approx(ep, abs=1e-6)
            assert table.progress_m[g] == pytest.approx(got['raw'], abs=1e-6)
            assert slow.comfort_v1(table.states[g]) == table[Metric.C][g]
    assert n >= (1000 if version == 'v2' else 250)
    assert not mismatches, mismatches[:10]


def test_fast_simulation_matches_literal_navsim_tracker():
    rng = np.random.default_rng(7)
    for i in range(24):   # 192 candidates
        scene = random_scene(rng)
        cfg = ScorerConfig()
        prep = prepare_scene(scene, cfg)
        cands = random_candidates(rng, scene.ego.speed, 8)
        fast = simulate_candidates(prep, cands, cfg)
        for g in range(len(cands)):
            poses = poses_to_global(scene.ego.pose, cands[g])
            ref = slow.simulate_one(poses, prep.start_state, cfg.vehicle)
            np.testing.assert_allclose(fast[g], ref, atol=1e-6, rtol=0)


def test_true_difference_matrix_switch_changes_the_speed_fit():
    rng = np.random.default_rng(3)
    scene = random_scene(rng)
    cfg = ScorerConfig(sim=dict(navsim_banded_matrix=False))
    prep = prepare_scene(scene, cfg)
    cands = random_candidates(rng, scene.ego.speed, 4)
    fast = simulate_candidates(prep, cands, cfg)
    for g in range(len(cands)):
        ref = slow.simulate_one(poses_to_global(scene.ego.pose, cands[g]), prep.start_state,
                                cfg.vehicle, navsim_band=False)
        np.testing.assert_allclose(fast[g], ref, atol=1e-6, rtol=0)


def test_ep_formula_v1_masks_by_multiplier():
    cfg1, cfg2 = ScorerConfig(navsim_version='v1'), ScorerConfig()
    raw = np.array([20.0, 20.0, 3.0])
    mult = np.array([1.0, 0.5, 0.0])
    np.testing.assert_allclose(ego_progress(raw, mult, 40.0, cfg1), [0.5, 0.25, 0.0])
    np.testing.assert_allclose(ego_progress(raw, mult, 40.0, cfg2), [0.5, 0.5, 0.075])
    np.testing.assert_allclose(ego_progress(raw, mult, 4.0, cfg1), [1.0, 1.0, 0.0])
    np.testing.assert_allclose(ego_progress(np.array([3.0]), np.array([0.0]), 4.0, cfg1), [0.0])
    assert isinstance(prepare_scene(random_scene(np.random.default_rng(0)), cfg2), PreparedScene)


def _turning_history(rng: np.random.Generator, scene):
    """Return the scene with a logged history that weaves into the ego (random-walk yaw rate)."""
    dt = scene.dt_s
    n = len(scene.ego_history)
    speed = max(scene.ego.speed, 1.0)
    yaw_rate = np.cumsum(rng.normal(0.0, 0.12, n))
    hist = np.zeros((n, 3))
    hist[-1] = scene.ego.pose
    for k in range(n - 2, -1, -1):          # backwards from the current pose
        yaw = hist[k + 1, 2] - yaw_rate[k] * dt
        hist[k] = [hist[k + 1, 0] - speed * dt * np.cos(yaw),
                   hist[k + 1, 1] - speed * dt * np.sin(yaw), yaw]
    return replace(scene, ego_history=hist)


def test_epdms_with_human_filter_matches_reference():
    rng = np.random.default_rng(21)
    cfg = ScorerConfig()
    checked = {'hc_fail': 0, 'pairs': 0}
    columns = set()
    for i in range(14):
        scene = random_scene(rng, token=f'h{i}')
        if i % 2:
            scene = _turning_history(rng, scene)
        expert = random_candidates(rng, scene.ego.speed, 1)[0]
        scene = replace(scene, expert=Trajectory(expert))
        cands = random_candidates(rng, scene.ego.speed, 5)
        prep = prepare_scene(scene, cfg)
        reference = float(rng.uniform(0.0, 40.0))
        table = score_candidates(prep, cands, cfg, reference=reference)
        ref = slow.SlowScorer(scene, cfg)
        human_states = slow.simulate_one(poses_to_global(scene.ego.pose, expert),
                                         prep.start_state, cfg.vehicle)
        human = ref.score(human_states)
        human_mult = human['NC'] * human['DAC'] * human['DDC']
        # NAVSIM scores the human alone (EP over its own progress) and without a history
        human.update(TLC=1.0, EP=slow.ep(human['raw'], human_mult, 0.0, True), HC=1.0)
        history = slow.history_rows(scene, cfg.vehicle)
        for g in range(len(cands)):
            got = ref.score(table.states[g])
            mult = got['NC'] * got['DAC'] * got['DDC']
            got.update(TLC=1.0, EP=slow.ep(got['raw'], mult, reference, True),
                       HC=slow.history_comfort(table.states[g], history, cfg.vehicle))
            assert table[Metric.HC][g] == got['HC'], (scene.token, g)
            score, filtered = slow.epdms(got, human)
            assert [m.name for m in Metric if table.human_filtered[m]] == filtered
            assert table.epdms[g] == pytest.approx(score, abs=1e-12), (scene.token, g)
            checked['pairs'] += 1
            checked['hc_fail'] += got['HC'] == 0.0
        columns.update(filtered)
    # the scenes exercise HC both ways and the filter on multipliers and weighted metrics
    assert checked['pairs'] == 70 and 0 < checked['hc_fail'] < 70, checked
    assert {'DAC', 'TTC', 'LK'} <= columns, columns
