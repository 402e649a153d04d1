"""The scene set's on-disk EP normaliser cache: one entry per (scene token, log file)."""

import json

from rl_fixtures import SyntheticSceneSet


class _TwoLogSets(SyntheticSceneSet):
    """Items 0 and 1 share a scene token but come from different log files (speeds differ).

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
