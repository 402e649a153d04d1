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

"""`pair-drive dataset from-bag`: recordings -> scene logs that the IL trainer reads."""

import argparse
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip('rclpy')
pytest.importorskip('rosbags')
torch = pytest.importorskip('torch')

from pair_drive_ros.cli import main as cli_main  # noqa: E402
from pair_drive_ros.perception import FeatureBuilder, PerceptionConfig  # noqa: E402
from pair_drive_ros.policy.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from pair_drive_ros.policy.il_planner import build_model, compute_loss  # noqa: E402
from pair_drive_ros.ros.bag import bag_topics, BagWriter, read_bag  # noqa: E402
from pair_drive_ros.sim.bags import CarlaTopics, frames_from_bag  # noqa: E402
from pair_drive_ros.sim.logs import EpisodeLog, episode_paths  # noqa: E402
from pair_drive_ros.sim.sensors import LidarConfig  # noqa: E402
from pair_drive_ros.training import datasets  # noqa: E402
from pair_drive_ros.training.data import collate, DataConfig, DataError, ILDataset  # noqa: E402
from pair_drive_ros.training.data import perturbed_frame_sample  # noqa: E402

SAMPLE = Path(__file__).parent / 'data' / 'sample_bag'
TOPICS = CarlaTopics()
T0_NS = 1_767_225_600 * 10 ** 9     # the sample bag's first tick: 2026-01-01T00:00:00Z
TINY = {'backbone': {'channels': [8, 8, 16, 16], 'd_model': 16, 'num_heads': 2,
                     'num_agents': 4, 'semantic_channels': 8}}
torch.set_num_threads(1)


def rewrite(src: Path, dst: Path, keep=lambda topic, t_ns: True, extra=()) -> Path:
    """
    Copy a bag's messages (CDR bytes) that `keep` accepts.

    Then write the (topic, t_ns, data) of `extra`.
    """
    types = bag_topics(src)
    with BagWriter(dst) as bag:
        for topic, t_ns, data in read_bag(src, raw=True):
            if keep(topic, t_ns):
                bag.write(topic, data, t_ns, msgtype=types[topic],
                          latched=topic == TOPICS.route)
        for topic, t_ns, data in extra:
            bag.write(topic, data, t_ns, msgtype=types[topic])
    return dst


def test_sample_bag_becomes_a_log_the_trainer_reads(tmp_path):
    out = tmp_path / 'ds'
    assert cli_main(['dataset', 'from-bag', str(SAMPLE), '--out', str(out)]) == 0
    [path] = episode_paths(out, 'train')
    log = EpisodeLog.load(path)
    frames = list(frames_from_bag(SAMPLE))
    assert log.num_frames == len(frames) == 50
    assert not log.agents_known and not log.map_known
    for k in (0, 17, 49):
        got = log.sensor_frame(k)
        np.testing.assert_array_equal(got.ego.pose, frames[k].ego.pose)
        np.testing.assert_array_equal(got.lidar_points, frames[k].lidar_points)
        np.testing.assert_array_equal(got.camera_image, frames[k].camera_image)
    np.testing.assert_allclose(log.arrays['t'], np.arange(50) * 0.1, atol=1e-9)
    # The expert is the recorded ego future: pose k + 5 seen from pose k.
    expert = log.expert(3).poses
    np.testing.assert_allclose(np.hypot(*expert[0, :2]), np.hypot(
        *(log.arrays['ego_pose'][8, :2] - log.arrays['ego_pose'][3, :2])), rtol=1e-9)
    ds = ILDataset(out, 'train', data_cfg=DataConfig(frame_stride=1), cache_dir=tmp_path / 'c')
    assert len(ds) == 10     # 50 frames, the last 40 lack a 4-s future
    # A recording cannot be seen from another pose: recovery copies skip it.
    copies = ILDataset(out, 'train', data_cfg=DataConfig(frame_stride=1, perturb_copies=2),
                       cache_dir=tmp_path / 'c')
    assert len(copies) == 10
    np.testing.assert_array_equal(copies[3][1]['trajectory'], ds[3][1]['trajectory'])
    with pytest.raises(DataError, match='another pose'):
        perturbed_frame_sample(log, 3, FeatureBuilder(PerceptionConfig()), DataConfig(), 0)
    feats, targets = collate([ds[i] for i in range(4)])
    assert (targets['bev_semantics'] == 255).all() and not targets['agents_known'].any()
    torch.manual_seed(0)
    model = build_model('transfuser', TINY)
    losses = compute_loss('transfuser', model, model(feats), targets)
    # The terms that need agent boxes or lanes are skipped; the trajectory term is not.
    losses = {k: float(v.detach()) for k, v in losses.items()}
    assert losses['bev_semantic'] == 0.0 and losses['agent_class'] == 0.0
    assert losses['agent_box'] == 0.0 and losses['trajectory'] > 0.0
    saved = yaml.safe_load((out / 'config.yaml').read_text())
    assert saved['bags'] == [str(SAMPLE)] and saved['out'] == str(out)
    assert saved['conversion']['split'] == 'auto' and saved['topics']['lidar'] == TOPICS.lidar
    # Nothing is overwritten.
    assert cli_main(['dataset', 'from-bag', str(SAMPLE), '--out', str(out)]) == 2


def test_from_bag_flags_are_config_fields(tmp_path):
    parser = argparse.ArgumentParser()
    datasets.add_arguments(parser)
    args = parser.parse_args(['from-bag', 'a', 'b', '--out', 'o', '--val-fraction', '0.5',
                              '--split', 'val', '--lidar-topic', '/x/lidar', '--set',
                              'conversion.max_frames=100', '--set', 'topics.route=/x/route'])
    cfg = datasets.resolve_config(args)
    assert cfg == datasets.FromBagConfig(
        bags=('a', 'b'), out='o', conversion=datasets.BagConversion(
            val_fraction=0.5, split='val', max_frames=100),
        topics=CarlaTopics(lidar='/x/lidar', route='/x/route'))
    assert datasets.run(parser.parse_args(['from-bag', 'a', '--out', str(tmp_path / 'o'),
                                           '--split', 'test'])) == 2
    assert datasets.run(parser.parse_args(['from-bag', '--out', str(tmp_path / 'o')])) == 2
    assert not (tmp_path / 'o').exists()


def test_exported_episode_round_trips(tmp_path):
    from pair_drive_ros.sim import export_bag, generate

    src = tmp_path / 'merge_s010002.npz'
    generate.record_episode(generate.DEFAULT_SUITE.as_posix(), 'val', 'merge', 10002,
                            str(src), max_steps=44)
    bag = tmp_path / 'bag'
    parser = argparse.ArgumentParser()
    export_bag.add_arguments(parser)
    args = parser.parse_args([str(src), '--out', str(bag), '--width', '64', '--height', '32',
                              '--lidar-azimuths', '60'])
    assert export_bag.run(args) == 0
    summary = datasets.convert_bags([bag], tmp_path / 'ds')
    assert summary['episodes'] == 1
    source = EpisodeLog.load(src)
    [path] = episode_paths(tmp_path / 'ds', 'train')
    log = EpisodeLog.load(path)
    assert log.num_frames == source.num_frames == 45
    np.testing.assert_allclose(log.arrays['ego_pose'], source.arrays['ego_pose'], atol=1e-9)
    np.testing.assert_allclose(log.arrays['t'], source.arrays['t'], atol=1e-9)
    for k in log.scorable_frames():
        np.testing.assert_allclose(log.expert(k).poses, source.expert(k).poses, atol=1e-6)
    np.testing.assert_allclose(log.episode_route().points, source.episode_route().points)
    builder = FeatureBuilder(PerceptionConfig(history_sweeps=2))
    lidar = LidarConfig(horizontal_samples=60)
    h1, h2 = builder.new_history(), builder.new_history()
    for k in range(0, 12):
        a = builder.build(log.sensor_frame(k), h1)
        b = builder.build(source.sensor_frame(k, lidar_cfg=lidar), h2)
        np.testing.assert_array_equal(a.lidar_bev, b.lidar_bev)
        # Velocity and sweep flags. Not the acceleration (odometry carries none: it is
        # differenced from velocities), nor the command (the bag carries the episode's route,
        # the log the lane chain from the ego's current lane).
        keep = [4, 5, 8, 9]
        np.testing.assert_array_equal(a.ego_status[keep], b.ego_status[keep])
    assert a.ego_status[-2:].tolist() == [1.0, 1.0]      # 0.5 s and 1.0 s back


def test_missing_topic_is_a_clear_error_and_writes_nothing(tmp_path):
    bad = rewrite(SAMPLE, tmp_path / 'no_odom', keep=lambda t, _: t != TOPICS.odometry)
    out = tmp_path / 'ds'
    with pytest.raises(datasets.DatasetError, match='lacks the topics odometry'):
        datasets.convert_bags([SAMPLE, bad], out)
    assert not out.exists() and list(tmp_path.glob('.ds*')) == []


def test_gaps_unsorted_stamps_and_failures(tmp_path):
    # A 0.5-s hole in the middle: two stretches of 22 and 23 frames, both too short.
    gap = rewrite(SAMPLE, tmp_path / 'gap', keep=lambda t, ns: not 2.2e9 <= ns - T0_NS < 2.7e9)
    with pytest.raises(datasets.DatasetError, match='no stretch of at least 41 frames'):
        datasets.convert_bags([gap], tmp_path / 'ds0')
    assert not (tmp_path / 'ds0').exists()
    # A frame (LiDAR, camera, odometry of 0.3 s) recorded again at the end: dropped.
    late = [(topic, T0_NS + 5_000_000_000, data)
            for topic, ns, data in read_bag(SAMPLE, raw=True)
            if ns == T0_NS + 300_000_000
            and topic in (TOPICS.lidar, TOPICS.camera, TOPICS.odometry)]
    assert len(late) == 3
    unsorted = rewrite(SAMPLE, tmp_path / 'late', extra=late)
    summary = datasets.convert_bags([unsorted, SAMPLE], tmp_path / 'ds1',
                                    datasets.BagConversion(val_fraction=0.5))
    assert summary['bags'][0]['unsorted'] == 1 and summary['bags'][0]['kept'] == 50
    assert len(episode_paths(tmp_path / 'ds1', 'train')) == 1
    assert len(episode_paths(tmp_path / 'ds1', 'val')) == 1
    assert EpisodeLog.load(episode_paths(tmp_path / 'ds1', 'val')[0]).meta['split'] == 'val'
    # A failure half-way leaves neither the dataset nor its temporary folder.
    calls = []

    def failing(frames, meta):
        calls.append(1)
        if len(calls) == 2:
            raise OSError('disk full')
        return real(frames, meta)

    real = datasets.episode_arrays
    datasets.episode_arrays = failing
    try:
        with pytest.raises(OSError, match='disk full'):
            datasets.convert_bags([SAMPLE, SAMPLE], tmp_path / 'ds2')
    finally:
        datasets.episode_arrays = real
    assert not (tmp_path / 'ds2').exists() and list(tmp_path.glob('.ds2*')) == []


def test_train_il_fine_tunes_on_converted_bags(tmp_path):
    data = tmp_path / 'ds'
    datasets.convert_bags([SAMPLE, SAMPLE], data, datasets.BagConversion(val_fraction=0.5))
    torch.manual_seed(0)
    model = build_model('transfuser', TINY)
    init = save_checkpoint(tmp_path / 'init.pt', model, model_name='transfuser',
                           model_config=model.cfg,
                           perception_config=PerceptionConfig().as_dict())
    cfg = tmp_path / 'tiny.yaml'
    cfg.write_text('model_config:\n  backbone: {channels: [8, 8, 16, 16], d_model: 16, '
                   'num_heads: 2, num_agents: 4, semantic_channels: 8}\n'
                   'data: {frame_stride: 2, num_agents: 4}\nval_frame_stride: 2\n'
                   'batch_size: 2\nwarmup_steps: 1\nepochs: 1\nnum_threads: 1\n')
    out = tmp_path / 'out'
    assert cli_main(['train', 'il', '--model', 'transfuser', '--data', str(data), '--config',
                     str(cfg), '--init', str(init), '--max-steps', '2', '--out', str(out),
                     '--runs', str(tmp_path / 'runs'), '--cache-dir', str(tmp_path / 'c'),
                     '--no-progress']) == 0
    tuned = load_checkpoint(out / 'transfuser_last.pt')
    assert tuned['step'] == 2
    start = load_checkpoint(init)['state_dict']
    # Fine-tuned from the init weights: they moved a little, not re-initialised.
    key = 'trunk.status_proj.0.weight'
    if key not in start:
        key = next(k for k in start if k.endswith('status_proj.0.weight'))
    delta = (tuned['state_dict'][key] - start[key]).abs().max()
    assert 0.0 < float(delta) < 0.05
