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

"""IL training machinery: dataset targets, cache, a 2-step run via the CLI, resume."""

import argparse
import hashlib
import json
import math
from pathlib import Path
import sys

import numpy as np
import pytest
import torch
import yaml

from pair_drive_ros.cli import main as cli_main
from pair_drive_ros.core.agents import Agents
from pair_drive_ros.perception import PerceptionConfig
from pair_drive_ros.policy.checkpoint import load_checkpoint
from pair_drive_ros.training.data import agent_targets, cache_key, collate, DataConfig, DataError
from pair_drive_ros.training.data import ILDataset, recovery_trajectory
from pair_drive_ros.training.train_il import add_arguments, ILRunConfig, kmeans_anchors
from pair_drive_ros.training.train_il import run as run_il, train_config

sys.path.insert(0, str(Path(__file__).parent))
from il_synthetic_logs import write_logs  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope='module')
def logs(tmp_path_factory) -> Path:
    return write_logs(tmp_path_factory.mktemp('logs') / 'logs', episodes=2, num_frames=50)


def test_dataset_items_and_cache(logs, tmp_path):
    ds = ILDataset(logs, 'train', data_cfg=DataConfig(frame_stride=5), cache_dir=tmp_path)
    # 50 frames, 10 scorable (4-s future), every 5th: frames 0 and 5 of each of 2 episodes.
    assert len(ds) == 4 and ds.episode_frame(1)[1] == 5
    feats, targets = ds[0]
    assert feats['lidar_bev'].shape == (2, 64, 64) and feats['lidar_bev'].dtype == np.float32
    assert targets['bev_semantics'].shape == (64, 64)
    # The ego drives straight: the expert trajectory has y = 0, yaw = 0 and x increasing.
    np.testing.assert_allclose(targets['trajectory'][:, 1:], 0.0, atol=1e-6)
    assert np.all(np.diff(targets['trajectory'][:, 0]) > 0)
    # Agent 1 runs alongside 10 m ahead, 4 m to the right (y = 0 vs the ego's 4).
    assert targets['agent_mask'].sum() == 2
    np.testing.assert_allclose(targets['agent_states'][0], [10.0, -4.0, 0.0, 5.0, 2.0])
    # The road (class 1) lies under the ego cell; row of x = 0.5 is 47, column of y = 0.5 is 31.
    assert targets['bev_semantics'][47, 31] != 0
    cached = sorted(tmp_path.rglob('*.npz'))
    stamps = [p.stat().st_mtime_ns for p in cached]
    ILDataset(logs, 'train', data_cfg=DataConfig(frame_stride=5), cache_dir=tmp_path)
    assert [p.stat().st_mtime_ns for p in cached] == stamps  # read back, not rebuilt
    f, t = collate([ds[0], ds[1]])
    assert f['camera'].shape == (2, 3, 32, 64) and t['bev_semantics'].dtype == torch.int64
    with pytest.raises(DataError, match='no scene logs'):
        ILDataset(logs, 'nope', cache_dir=tmp_path)


def test_agent_targets_keep_nearest_inside_the_bev():
    agents = Agents(np.arange(3), np.array([[30.0, 0, 0], [5.0, 1.0, 0.1], [100.0, 0, 0]]),
                    np.array([[5.0, 2.0]] * 3), np.zeros((3, 2)))
    states, mask = agent_targets(agents, PerceptionConfig(), 2)
    assert mask.tolist() == [True, True]
    np.testing.assert_allclose(states[:, :3], [[5.0, 1.0, 0.1], [30.0, 0.0, 0.0]])


def test_kmeans_anchors_recover_two_speeds():
    t = np.arange(1, 9) * 0.5
    slow = np.stack([5 * t, 0 * t, 0 * t], -1)
    fast = np.stack([20 * t, 0 * t, 0 * t], -1)
    anchors = kmeans_anchors(np.stack([slow] * 5 + [fast] * 5), 2, seed=0)
    ends = sorted(anchors[:, -1, 0].tolist())
    np.testing.assert_allclose(ends, [20.0, 80.0], atol=1e-4)


def test_flags_are_config_fields(tmp_path):
    from pair_drive_ros.core.config import config_from_args

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cfg = tmp_path / 'run.yaml'
    cfg.write_text('model: diffusiondrive\nepochs: 3\nout: runs/x\n')
    args = parser.parse_args(['--config', str(cfg), '--data', 'd', '--runs', 'r', '--threads',
                              '2', '--max-steps', '5', '--set', 'lr=0.5', '--set', 'epochs=4',
                              '--epochs', '7', '--no-progress', '--set', 'data.frame_stride=2'])
    run_cfg = config_from_args(ILRunConfig, args)
    assert (run_cfg.model, run_cfg.data_root, run_cfg.runs_root, run_cfg.num_threads,
            run_cfg.max_steps, run_cfg.lr, run_cfg.epochs, run_cfg.progress, run_cfg.out,
            run_cfg.data.frame_stride) == ('diffusiondrive', 'd', 'r', 2, 5, 0.5, 7, False,
                                           'runs/x', 2)
    assert train_config(run_cfg).epochs == 7 and not hasattr(train_config(run_cfg), 'out')
    with pytest.raises(ValueError, match='--model must be one of'):
        run_il(parser.parse_args(['--data', 'd', '--model', 'bogus']))
    with pytest.raises(ValueError, match='--data'):
        run_il(parser.parse_args(['--model', 'transfuser']))


def test_train_two_steps_then_resume(logs, tmp_path):
    cfg = tmp_path / 'tiny.yaml'
    cfg.write_text(
        'model_config:\n  backbone: {channels: [8, 8, 16, 16], d_model: 16, num_heads: 2, '
        'num_agents: 4, semantic_channels: 8}\n  num_modes: 4\n'
        'data: {frame_stride: 5, num_agents: 4}\nval_frame_stride: 5\nbatch_size: 2\n'
        'warmup_steps: 1\nepochs: 1\nnum_threads: 1\n')
    out = tmp_path / 'out'
    common = ['--data', str(logs), '--config', str(cfg), '--out', str(out), '--runs',
              str(tmp_path / 'runs'), '--cache-dir', str(tmp_path / 'cache'), '--no-progress']
    # The export plans with 3 DDIM steps; training and the run's checkpoints keep 2.
    assert cli_main(['train', 'il', '--model', 'diffusiondrive', '--max-steps', '2',
                     '--set', 'export_model_config={"infer_steps": [10, 5, 0]}',
                     '--export', str(tmp_path / 'dd_small.pt')] + common) == 0
    ckpt = load_checkpoint(out / 'diffusiondrive_last.pt', expect_model='diffusiondrive')
    assert ckpt['step'] == 2 and ckpt['epoch'] == 1
    assert all(math.isfinite(v) for v in ckpt['val_metrics'].values())
    saved = yaml.safe_load((out / 'config.yaml').read_text())
    assert (saved['model'], saved['max_steps'], saved['data_root'], saved['progress']) == (
        'diffusiondrive', 2, str(logs), False)
    assert saved['batch_size'] == 2 and 'data_root' not in ckpt['train_config']
    assert (out / 'diffusiondrive.pt').is_file()
    exported = load_checkpoint(tmp_path / 'dd_small.pt')
    assert 'optimizer' not in exported
    assert list(exported['model_config']['infer_steps']) == [10, 5, 0]
    assert exported['export_model_config'] == {'infer_steps': [10, 5, 0]}
    best = load_checkpoint(out / 'diffusiondrive.pt')
    assert list(best['model_config']['infer_steps']) == [10, 0]
    assert {k: v for k, v in exported['model_config'].items() if k != 'infer_steps'} == {
        k: v for k, v in best['model_config'].items() if k != 'infer_steps'}
    for key, value in best['state_dict'].items():
        torch.testing.assert_close(exported['state_dict'][key], value)
    run_dirs = list((tmp_path / 'runs').iterdir())
    assert (run_dirs[0] / 'config.json').is_file()
    # Resume for a second epoch: the step count continues, the anchors come from the checkpoint.
    assert cli_main(['train', 'il', '--model', 'diffusiondrive', '--epochs', '2',
                     '--resume', str(out / 'diffusiondrive_last.pt')] + common) == 0
    resumed = load_checkpoint(out / 'diffusiondrive_last.pt')
    assert resumed['epoch'] == 2 and resumed['step'] > 2
    torch.testing.assert_close(resumed['state_dict']['anchors'],
                               ckpt['state_dict']['anchors'])


def test_export_model_config_takes_inference_fields_only(tmp_path):
    from pair_drive_ros.training.train_il import check_export_model_config

    check_export_model_config('diffusiondrive', {'infer_noise_t': 4, 'infer_steps': [10, 0]})
    with pytest.raises(ValueError, match='only set inference fields of diffusiondrive'):
        check_export_model_config('diffusiondrive', {'num_modes': 8})
    with pytest.raises(ValueError, match=r'\(none\), not infer_steps'):
        check_export_model_config('transfuser', {'infer_steps': [10, 0]})


def test_regenerated_log_gets_a_fresh_cache_entry(tmp_path):
    from il_synthetic_logs import make_log

    root = write_logs(tmp_path / 'logs', splits=('train',), episodes=1, num_frames=50)
    cfg = DataConfig(frame_stride=5)
    first = ILDataset(root, 'train', data_cfg=cfg, cache_dir=tmp_path / 'cache')
    path = Path(first.episodes[0])
    make_log(seed=1, num_frames=50, speed_mps=25.0).save(path)   # same file, new content
    second = ILDataset(root, 'train', data_cfg=cfg, cache_dir=tmp_path / 'cache')
    assert len(list((tmp_path / 'cache').rglob('*.npz'))) == 2
    # The faster ego's expert plan reaches further: the new entry was built from the new log.
    assert second[0][1]['trajectory'][-1, 0] > first[0][1]['trajectory'][-1, 0] + 10.0


def test_recovery_trajectory_rejoins_the_expert_path():
    # Expert: straight along the map x axis at 10 m/s from the origin; the ego shifted 1 m left.
    t = np.arange(1, 9) * 0.5
    expert = np.stack([10.0 * t, 0 * t, 0 * t], -1)
    start = np.zeros(3)
    label = recovery_trajectory(expert, start, np.array([0.0, 1.0, 0.0]), recover_s=2.0)
    u = np.clip(1.0 - t / 2.0, 0.0, 1.0)
    w = u * u * (3.0 - 2.0 * u)                     # smoothstep: the share of the shift left
    np.testing.assert_allclose(label[:, 0], 10.0 * t, atol=1e-5)
    np.testing.assert_allclose(label[:, 1], w - 1.0, atol=1e-5)
    assert np.all(label[:3, 2] < 0) and np.allclose(label[4:, 2], 0.0, atol=1e-6)
    # No shift: the expert's own future, poses and yaw.
    np.testing.assert_allclose(recovery_trajectory(expert, start, start, 2.0), expert,
                               atol=1e-6)
    # A heading error alone: the label starts along the ego's (turned) x axis...
    turned = recovery_trajectory(expert, start, np.array([0.0, 0.0, 0.2]), 2.0)
    np.testing.assert_allclose(turned[:, 2], -0.2, atol=1e-6)
    # ... and is the expert's path seen from the turned ego.
    np.testing.assert_allclose(np.hypot(turned[:, 0], turned[:, 1]), 10.0 * t, atol=1e-5)


def test_dense_scenarios_take_every_frame_of_their_episodes(logs, tmp_path):
    plain = ILDataset(logs, 'train', data_cfg=DataConfig(frame_stride=5), cache_dir=tmp_path)
    dense_cfg = DataConfig(frame_stride=5, dense_scenarios=('synthetic',))
    dense = ILDataset(logs, 'train', data_cfg=dense_cfg, cache_dir=tmp_path)
    other = ILDataset(logs, 'train', data_cfg=DataConfig(frame_stride=5,
                                                         dense_scenarios=('merge',)),
                      cache_dir=tmp_path)
    assert len(other) == len(plain) and len(dense) == 5 * len(plain)
    assert [dense.episode_frame(i)[1] for i in range(6)] == [0, 1, 2, 3, 4, 5]
    assert dense_cfg.training_only == DataConfig(frame_stride=5)
    assert cache_key(PerceptionConfig(), dense_cfg) != \
        cache_key(PerceptionConfig(), DataConfig(frame_stride=5))


def test_recovery_by_distance_waits_where_the_expert_waits():
    t = np.arange(1, 9) * 0.5
    start, shifted = np.zeros(3), np.array([0.0, 1.0, 0.1])
    # At a constant speed the distance blend is the time blend.
    expert = np.stack([10.0 * t, 0 * t, 0 * t], -1)
    np.testing.assert_allclose(recovery_trajectory(expert, start, shifted, 2.0, by_distance=True),
                               recovery_trajectory(expert, start, shifted, 2.0), atol=1e-6)
    # An expert that stands still: the label stands still at the shifted pose (ego frame 0).
    stopped = np.zeros((8, 3))
    np.testing.assert_allclose(recovery_trajectory(stopped, start, shifted, 2.0,
                                                   by_distance=True), 0.0, atol=1e-6)
    assert np.abs(recovery_trajectory(stopped, start, shifted, 2.0)[:, :2]).max() > 0.5
    # Waiting 2 s, then driving 10 m/s: nothing moves before the expert does, and the shift is
    # gone 2 s x the horizon's mean speed (5 m/s) = 10 m after it starts.
    x = np.where(t > 2.0, 10.0 * (t - 2.0), 0.0)
    waits = recovery_trajectory(np.stack([x, 0 * t, 0 * t], -1), start,
                                np.array([0.0, 1.0, 0.0]), 2.0, by_distance=True)
    np.testing.assert_allclose(waits[:4], 0.0, atol=1e-6)
    np.testing.assert_allclose(waits[6:, 1], -1.0, atol=1e-6)
    np.testing.assert_allclose(waits[6:, 0], x[6:], atol=1e-6)
    with pytest.raises(ValueError, match='perturb_recover_by'):
        DataConfig(perturb_recover_by='speed')
    plain = DataConfig(perturb_copies=1)
    assert cache_key(PerceptionConfig(), plain) != \
        cache_key(PerceptionConfig(), DataConfig(perturb_copies=1, perturb_recover_by='distance'))


def test_recovery_copies_are_training_only_and_deterministic(logs, tmp_path):
    cfg = DataConfig(frame_stride=5, perturb_copies=1, perturb_lateral_m=1.5,
                     perturb_yaw_rad=0.1)
    ds = ILDataset(logs, 'train', data_cfg=cfg, cache_dir=tmp_path)
    plain = ILDataset(logs, 'train', data_cfg=DataConfig(frame_stride=5), cache_dir=tmp_path)
    # Every frame once as logged, then once from a shifted pose.
    assert len(ds) == 2 * len(plain) == 8
    assert [ds.episode_frame(i)[1] for i in range(4)] == [0, 5, 0, 5]
    np.testing.assert_array_equal(ds[0][1]['trajectory'], plain[0][1]['trajectory'])
    for i in (2, 3):
        logged, shifted = ds[i - 2], ds[i]
        # The same speed and command; the label differs and, past perturb_recover_s, runs
        # along the expert's straight path: constant yaw, points on the line of that yaw.
        np.testing.assert_array_equal(shifted[0]['ego_status'], logged[0]['ego_status'])
        label = shifted[1]['trajectory']
        assert np.abs(label - logged[1]['trajectory']).max() > 0.05
        np.testing.assert_allclose(label[4:, 2], label[4, 2], atol=1e-5)
        assert abs(label[4, 2]) <= 0.1 + 1e-6
        step = np.diff(label[4:, :2], axis=0)
        np.testing.assert_allclose(np.arctan2(step[:, 1], step[:, 0]), label[4, 2], atol=1e-4)
        # The sensors moved with the ego: the LiDAR image differs.
        assert np.abs(shifted[0]['lidar_bev'] - logged[0]['lidar_bev']).sum() > 0
    again = ILDataset(logs, 'train', data_cfg=cfg, cache_dir=tmp_path / 'rebuilt')
    np.testing.assert_array_equal(again[3][1]['trajectory'], ds[3][1]['trajectory'])
    assert cfg.training_only == DataConfig(frame_stride=5, perturb_lateral_m=1.5,
                                           perturb_yaw_rad=0.1)
    # Without copies the cache keeps the name it had before the option existed.
    before = json.dumps({'v': 1, 'perception': PerceptionConfig().as_dict(), 'stride': 4,
                         'agents': 16}, sort_keys=True)
    assert cache_key(PerceptionConfig(), DataConfig()) == \
        hashlib.sha1(before.encode()).hexdigest()[:12]
    assert cache_key(PerceptionConfig(), cfg) != cache_key(PerceptionConfig(), cfg.training_only)
    with pytest.raises(ValueError, match='perturb'):
        DataConfig(perturb_copies=-1)


def test_recovery_copies_shift_the_sweep_history_with_the_ego(logs, tmp_path):
    motion = PerceptionConfig(history_sweeps=2)
    # A zero shift re-synthesizes the sensors at the logged poses: the copy is the logged
    # sample, past sweeps included.
    still = DataConfig(frame_stride=5, perturb_copies=1, perturb_lateral_m=0.0,
                       perturb_yaw_rad=0.0)
    ds = ILDataset(logs, 'train', motion, still, cache_dir=tmp_path)
    assert ds[0][0]['lidar_bev'].shape[0] == motion.lidar_channels
    for i in (2, 3):
        for key in ('lidar_bev', 'ego_status'):
            np.testing.assert_allclose(ds[i][0][key], ds[i - 2][0][key], atol=1e-6)
        np.testing.assert_allclose(ds[i][1]['trajectory'], ds[i - 2][1]['trajectory'],
                                   atol=1e-5)
    # A real shift moves the current and the past sweeps alike (frame 5 has the sweep of
    # 0.5 s back, not yet the one of 1 s back: the same flags as the logged sample).
    moved = ILDataset(logs, 'train', motion, DataConfig(frame_stride=5, perturb_copies=1),
                      cache_dir=tmp_path)
    logged, shifted = moved[1], moved[3]
    np.testing.assert_array_equal(shifted[0]['ego_status'], logged[0]['ego_status'])
    assert shifted[0]['ego_status'][-2:].tolist() == [1.0, 0.0]
    for c in range(3):
        assert np.abs(shifted[0]['lidar_bev'][c] - logged[0]['lidar_bev'][c]).sum() > 0, c
    assert not shifted[0]['lidar_bev'][3].any()
    # Every past sweep is synthesized at its logged pose moved by the same body-frame offset.
    from pair_drive_ros.core.se2 import se2_compose, se2_inverse
    from pair_drive_ros.perception.builder import FeatureBuilder
    from pair_drive_ros.sim.logs import iter_episodes
    from pair_drive_ros.training.data import perturbed_frame_sample

    log = next(iter_episodes(logs, 'train'))
    poses = {}
    real = log.sensor_frame

    def recording(k, *args, ego_pose=None, **kwargs):
        poses[k] = ego_pose
        return real(k, *args, ego_pose=ego_pose, **kwargs)

    log.sensor_frame = recording
    perturbed_frame_sample(log, 5, FeatureBuilder(motion), DataConfig(perturb_copies=1), 0)
    assert sorted(poses) == [0, 5]               # the sweep 0.5 s back, then the frame itself
    past, now = (se2_compose(se2_inverse(np.asarray(log.ego_state(k).pose)), poses[k])
                 for k in (0, 5))
    assert abs(now[1]) > 0
    np.testing.assert_allclose(past, now, atol=1e-9)


def test_two_runs_started_in_the_same_second_get_their_own_folders(tmp_path):
    from pair_drive_ros.training.common import new_run_dir

    base = tmp_path / 'runs' / 'selector__0__20261207T044639Z'
    first, second, third = (new_run_dir(base) for _ in range(3))
    assert first == base and second.name == base.name + '_2' and third.name == base.name + '_3'
    assert all(p.is_dir() for p in (first, second, third))
