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

"""The scene set's on-disk EP normaliser cache: one entry per (scene token, log file)."""

import json

from rl_fixtures import SyntheticSceneSet


class _TwoLogSets(SyntheticSceneSet):
    """
    Items 0 and 1 share a scene token but come from different log files (speeds differ).

    Like a regenerated split, or on-policy rollouts of the seeds of the logged split.
    """

    def __init__(self, paths, cache_file) -> None:
        super().__init__(2, seed=3, cache_file=cache_file)
        self.dataset.episode_frame = lambda i: (paths[i], 0)

    def scene(self, j: int):
        scene = super().scene(j)
        scene.token = 'highway_s1_f0000'
        return scene


def test_ep_normalisers_are_keyed_by_the_log_file(tmp_path):
    paths = []
    for i in range(2):
        path = tmp_path / f'set{i}' / 'highway_s000001.npz'
        path.parent.mkdir()
        path.write_bytes(bytes([i]) * 64)
        paths.append(path)
    cache = tmp_path / 'ep_reference_train.json'
    # An entry from before the log hash was part of the key must not be used.
    cache.write_text(json.dumps({'highway_s1_f0000': 1.0}))
    scenes = _TwoLogSets(paths, cache)
    refs = [scenes.prepared(j)[1] for j in range(2)]
    assert refs[0] != refs[1]
    assert 1.0 not in refs
    scenes.save_references()
    saved = json.loads(cache.read_text())
    assert len(saved) == 2 and all(key.startswith('highway_s1_f0000@') for key in saved)

    # A new scene set reads them back, each for its own log file.
    again = _TwoLogSets(paths, cache)
    assert again._refs == saved
    assert [again.prepared(j)[1] for j in range(2)] == refs


def test_concatenated_scene_sets_keep_the_order_of_the_request():
    import numpy as np
    import torch

    from pair_drive_ros.training.rl_data import ConcatSceneSet, steps_for_budget

    a, b = SyntheticSceneSet(3, seed=0), SyntheticSceneSet(2, seed=1)
    both = ConcatSceneSet([a, b])
    assert len(both) == 5
    js = [4, 0, 3, 2]
    feats, expert = both.batch(js)
    want = [b.batch([1])[1][0], a.batch([0])[1][0], b.batch([0])[1][0], a.batch([2])[1][0]]
    for got, w in zip(expert, want):
        assert torch.equal(got, w)
    assert torch.equal(feats['ego_status'][0], b.batch([1])[0]['ego_status'][0])
    np.testing.assert_array_equal(both.arrays_of(js, 'trajectory')[1],
                                  a.arrays_of([0], 'trajectory')[0])
    cands = expert[:, None].numpy()
    scores = both.score(js, cands)
    np.testing.assert_allclose(scores.pdms[0], b.score([1], cands[:1]).pdms[0])
    np.testing.assert_allclose(scores.pdms[3], a.score([2], cands[3:]).pdms[0])
    assert steps_for_budget(0, 8, 300) == 300
    assert steps_for_budget(100, 8, 300) == 13 and steps_for_budget(96, 8, 300) == 12
