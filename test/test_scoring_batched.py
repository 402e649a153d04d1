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
The batched sub-metrics (scoring/batch.py) equal the per-scene ones (metrics.py) exactly.

score_scenes scores all scenes of a call in one pass; the per-scene functions are the ones the
shapely reference tests check. Scenes mix agent counts, lane counts, intersections, histories
and group sizes (the human filter adds the expert to some scenes only). The real scenes come
from short expert episodes of every scenario family, recorded by the simulator for this module.
"""

from dataclasses import fields, replace

import numpy as np
import pytest
from scoring_scenes import arc_lanes, make_scene, random_candidates

from pair_drive_ros.core.scene import AgentTracks
from pair_drive_ros.core.se2 import poses_to_global
from pair_drive_ros.scoring import (Metric, prepare_scene, score_candidates, score_scenes,
                                    ScorerConfig, simulate)
from pair_drive_ros.scoring.batch import Batch, batch_geometry, batch_sub_metrics
from pair_drive_ros.scoring.metrics import ego_geometry
from pair_drive_ros.scoring.scorer import sub_metrics

# frames of each recorded episode: history of 5, 13 and the full 21 poses
REAL_FRAMES = (4, 12, 20)
REAL_STEPS = 60     # 61 frames: the last scorable one is 20


@pytest.fixture(scope='module')
def real_scenes(tmp_path_factory) -> list:
    """Scenes of one short val expert episode per scenario family (~10 s to record)."""
    from pair_drive_ros.sim import generate
    from pair_drive_ros.sim.logs import EpisodeLog
    from pair_drive_ros.sim.suite import load_suite
    suite = load_suite(generate.DEFAULT_SUITE)
    first_of_family: dict = {}
    for name in suite.names():
        first_of_family.setdefault(suite.get(name).family, name)
    root = tmp_path_factory.mktemp('logs')
    scenes = []
    for name in first_of_family.values():
        seed = suite.get(name).seed_range('val')[0]
        path = generate.episode_path(root, 'val', name, seed)
        generate.record_episode(generate.DEFAULT_SUITE.as_posix(), 'val', name, seed,
                                str(path), max_steps=REAL_STEPS)
        log = EpisodeLog.load(path)
        frames = [k for k in REAL_FRAMES if k in set(log.scorable_frames().tolist())]
        assert frames, f'{name}: the expert episode ended before frame {REAL_FRAMES[0]}'
        scenes += [log.scene(k) for k in frames]
    assert len(first_of_family) >= 4       # highway, merge, intersection, roundabout
    return scenes


def _synthetic_scenes():
    lanes, ids = arc_lanes(2)
    yield make_scene(10.0, lanes=lanes, route_ids=ids, route_points=lanes[0].centerline)
    yield make_scene(12.0, [dict(x=20.0, y=0.0, yaw=0.0, speed=3.0),
                            dict(x=-8.0, y=0.5, yaw=0.0, speed=14.0)])
    yield make_scene(6.0, [dict(x=12.0, y=4.0, yaw=3.1, speed=6.0)])
    yield make_scene(9.0)
    # a short agent track (its own agent group) and a scene without agents
    scene = make_scene(11.0, [dict(x=15.0, y=0.0, yaw=0.0, speed=2.0),
                              dict(x=30.0, y=4.0, yaw=0.0, speed=0.0)])
    tr = scene.agents
    yield replace(scene, agents=AgentTracks(tr.ids, tr.sizes, tr.poses[:21],
                                            tr.velocities[:21], tr.valid[:21]))
    yield replace(scene, agents=AgentTracks(tr.ids[:0], tr.sizes[:0], tr.poses[:, :0],
                                            tr.velocities[:, :0], tr.valid[:, :0]))


def _check_sub_metrics(scenes, cfg: ScorerConfig, rng: np.random.Generator,
                       dense: bool = True) -> None:
    preps = [prepare_scene(s, cfg) for s in scenes]
    if not dense:
        # maps too large for a dense cell table: binary search over the cell keys, and the
        # batch falls back from the compiled lane and centreline kernels to numpy
        for p in preps:
            object.__setattr__(p.lanes, '_dense', None)
            p.route_grid._dense = None
    blocks = [random_candidates(rng, max(p.scene.ego.speed, 1.0), 3 + i % 4)
              for i, p in enumerate(preps)]
    poses = np.concatenate([poses_to_global(p.scene.ego.pose, c) for p, c in zip(preps, blocks)])
    starts = np.concatenate([np.broadcast_to(p.start_state, (len(c), p.start_state.size))
                             for p, c in zip(preps, blocks)])
    states = simulate(poses, starts, cfg.vehicle, cfg.sim)
    bounds = np.cumsum([0] + [len(c) for c in blocks])
    slices = [slice(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:])]
    prevs = [states[sl][0] if i % 2 else None for i, sl in enumerate(slices)]
    rows = [sub_metrics(states[sl], p, cfg, prev) for p, sl, prev in zip(preps, slices, prevs)]
    comfort = tuple(np.concatenate([r[0][m] for r in rows]) for m in (Metric.C, Metric.HC))
    table, progress = batch_sub_metrics(states, Batch.build(preps, slices), cfg, prevs,
                                        comfort)
    for (one, prog), sl in zip(rows, slices):
        assert np.array_equal(table[:, sl], one)
        assert np.array_equal(progress[sl], prog)
    geo = batch_geometry(states, Batch.build(preps, slices), cfg)
    for p, sl in zip(preps, slices):
        one = ego_geometry(states[sl], p, cfg)
        for field in fields(one):
            assert np.array_equal(getattr(geo, field.name)[sl], getattr(one, field.name)), \
                field.name


@pytest.mark.parametrize('version', ['v1', 'v2'])
def test_batched_sub_metrics_equal_per_scene_synthetic(version):
    _check_sub_metrics(list(_synthetic_scenes()), ScorerConfig(navsim_version=version),
                       np.random.default_rng(0))


def test_batched_sub_metrics_equal_per_scene_without_dense_grids():
    _check_sub_metrics(list(_synthetic_scenes()), ScorerConfig(), np.random.default_rng(4),
                       dense=False)


def test_batched_sub_metrics_equal_per_scene_real(real_scenes):
    assert len(real_scenes) >= 8
    _check_sub_metrics(real_scenes, ScorerConfig(), np.random.default_rng(1))


def test_score_scenes_equals_one_scene_at_a_time(real_scenes):
    scenes = list(_synthetic_scenes()) + real_scenes
    assert sum(s.expert is not None for s in scenes) >= len(real_scenes)
    cfg = ScorerConfig()
    rng = np.random.default_rng(2)
    cands = np.stack([random_candidates(rng, max(s.ego.speed, 1.0), 5) for s in scenes])
    refs = [20.0 + i for i in range(len(scenes))]
    tables = score_scenes(scenes, cands, cfg, references=refs)
    for scene, c, ref, batch in zip(scenes, cands, refs, tables):
        one = score_candidates(scene, c, cfg, reference=ref)
        np.testing.assert_array_equal(one.human_filtered, batch.human_filtered)
        # Batched and one-at-a-time sums may round differently in the last bit on some CPUs.
        for field in ('table', 'pdms', 'epdms', 'progress_m', 'states'):
            np.testing.assert_allclose(getattr(one, field), getattr(batch, field), rtol=1e-12,
                                       atol=1e-12, err_msg=field)
