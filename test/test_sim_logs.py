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

"""Scene logs: seeds reproduce bit-identical files (also across processes); logs round-trip."""

import json
from pathlib import Path
import subprocess
import sys

import numpy as np
import pytest

from pair_drive_ros.core.scene import Scene
from pair_drive_ros.core.se2 import poses_to_local
from pair_drive_ros.sim import generate
from pair_drive_ros.sim.logs import (EpisodeLog, iter_episodes, list_frames, LogFormatError,
                                     read_meta)
from pair_drive_ros.sim.raster import bev_semantics, MARKING, ROAD, ROUTE, VEHICLE

STEPS = 60


@pytest.fixture(scope='module')
def merge_log(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp('logs') / 'val' / 'merge' / 'merge_s010000.npz'
    generate.record_episode(generate.DEFAULT_SUITE.as_posix(), 'val', 'merge', 10000,
                            str(path), max_steps=STEPS)
    return path


def test_same_seed_same_bytes_across_processes(merge_log, tmp_path):
    other = tmp_path / 'again.npz'
    code = ('import sys; from pair_drive_ros.sim import generate; '
            'generate.record_episode(generate.DEFAULT_SUITE.as_posix(), "val", "merge", 10000, '
            f'sys.argv[1], max_steps={STEPS})')
    subprocess.run([sys.executable, '-c', code, str(other)], check=True,
                   env={'PYTHONHASHSEED': '123', 'PATH': '/usr/bin:/bin'})
    assert other.read_bytes() == merge_log.read_bytes()


def test_different_seed_differs(merge_log, tmp_path):
    other = tmp_path / 'other.npz'
    generate.record_episode(generate.DEFAULT_SUITE.as_posix(), 'val', 'merge', 10001,
                            str(other), max_steps=STEPS)
    a = EpisodeLog.load(merge_log).arrays
    b = EpisodeLog.load(other).arrays
    assert not np.array_equal(a['agent_poses'][:, :2], b['agent_poses'][:, :2])


def test_round_trip_and_meta(merge_log, tmp_path):
    log = EpisodeLog.load(merge_log)
    assert log.num_frames == STEPS + 1
    assert log.meta['scenario'] == 'merge' and log.meta['seed'] == 10000
    assert log.meta['split'] == 'val' and log.meta['expert'] == 'idm'
    assert isinstance(log.meta['expert_crashed'], bool)
    copy_path = tmp_path / 'copy.npz'
    log.save(copy_path)
    again = EpisodeLog.load(copy_path)
    assert set(again.arrays) == set(log.arrays)
    for key, value in log.arrays.items():
        if key != 'meta':
            np.testing.assert_array_equal(again.arrays[key], value, err_msg=key)
    assert again.meta == log.meta
    assert copy_path.read_bytes() == merge_log.read_bytes()
    assert read_meta(copy_path)['num_frames'] == STEPS + 1


def test_scene_contents(merge_log):
    log = EpisodeLog.load(merge_log)
    assert list(log.scorable_frames()) == list(range(STEPS + 1 - 40))
    k = 10
    scene = log.scene(k)
    assert isinstance(scene, Scene)
    np.testing.assert_array_equal(scene.ego.pose, log.arrays['ego_pose'][k])
    assert scene.ego_history.shape == (k + 1, 3)
    np.testing.assert_array_equal(scene.ego_history[-1], scene.ego.pose)
    assert scene.agents.num_steps == 41
    assert scene.expert is not None and scene.expert.poses.shape == (8, 3)
    # The expert is the logged future in the ego frame.
    future = log.arrays['ego_pose'][k + 5:k + 41:5]
    np.testing.assert_allclose(scene.expert.poses, poses_to_local(scene.ego.pose, future))
    # The route passes by the ego and belongs to the logged lanes.
    s, lat = scene.route.project(scene.ego.pose[:2])
    assert abs(lat) < 2.5
    lane_ids = {ln.lane_id for ln in scene.road.lanes}
    assert set(scene.route_lane_ids) <= set(log.arrays['lane_ids'])
    assert lane_ids
    # Ego-frame ground truth agents.
    agents = log.agents(k, frame='ego', radius_m=50.0)
    assert np.all(np.hypot(agents.poses[:, 0], agents.poses[:, 1]) <= 50.0 + 1e-9)
    # Past the scorable range: no expert, tracks extended at constant velocity.
    last = log.scene(log.num_frames - 1)
    assert last.expert is None and last.agents.num_steps == 41
    with pytest.raises(IndexError):
        log.scene(log.num_frames)


def test_sensor_frame_and_bev(merge_log):
    log = EpisodeLog.load(merge_log)
    frame = log.sensor_frame(5)
    assert frame.lidar_points.dtype == np.float32 and frame.lidar_points.shape[1] == 4
    assert frame.camera_image.dtype == np.uint8 and frame.camera_image.ndim == 3
    again = log.sensor_frame(5)
    assert again.lidar_points.tobytes() == frame.lidar_points.tobytes()
    assert again.camera_image.tobytes() == frame.camera_image.tobytes()
    bev = bev_semantics(log.scene(5), 32.0, 0.5)
    assert bev.shape == (128, 128) and bev.dtype == np.uint8
    assert bev[64, 64] in (ROAD, ROUTE, MARKING)       # the ego stands on the road
    present = set(np.unique(bev))
    assert {ROAD, MARKING, ROUTE} <= present
    agents = log.agents(5, frame='ego', radius_m=30.0)
    for x, y in agents.poses[:, :2]:
        i, j = int((32.0 - x) / 0.5), int((32.0 - y) / 0.5)
        assert bev[i, j] == VEHICLE
    np.testing.assert_array_equal(bev, bev_semantics((log, 5), 32.0, 0.5))


def test_list_frames_manifest_and_errors(merge_log, tmp_path):
    root = merge_log.parents[2]
    frames = list_frames(root, 'val')
    assert frames == [(merge_log, k) for k in range(STEPS + 1 - 40)]
    assert len(list_frames(root, 'val', scorable_only=False)) == STEPS + 1
    assert [e.meta['seed'] for e in iter_episodes(root, 'val')] == [10000]
    manifest = generate.write_manifest(root, 'val', 'suite.yaml', [('merge', 10000)])
    data = json.loads(manifest.read_text())
    assert data['num_frames'] == STEPS + 1 and data['episodes'][0]['sha256']
    bad = tmp_path / 'bad.npz'
    bad.write_bytes(b'not a zip')
    with pytest.raises(LogFormatError):
        EpisodeLog.load(bad)
    arrays = dict(EpisodeLog.load(merge_log).arrays)
    arrays['meta'] = np.array(json.dumps({'schema_version': 99}))
    with pytest.raises(LogFormatError, match='schema version'):
        EpisodeLog(arrays)


def test_earlier_intersection_episode_does_not_leak(merge_log, tmp_path):
    # highway-env's intersection env changes IDMVehicle class attributes on reset.
    from pair_drive_ros.sim.closed_loop import SimSession

    SimSession('intersection', ego_mode='idm', max_steps=2).reset(3)
    again = tmp_path / 'after_intersection.npz'
    generate.record_episode(generate.DEFAULT_SUITE.as_posix(), 'val', 'merge', 10000,
                            str(again), max_steps=STEPS)
    assert again.read_bytes() == merge_log.read_bytes()
