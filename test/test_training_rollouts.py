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

"""On-policy rollouts are written as ordinary scene logs (the generate layout), once."""

import numpy as np

from pair_drive_ros.core.trajectory import POSE_DT_S, Trajectory
from pair_drive_ros.sim.generate import episode_path
from pair_drive_ros.sim.logs import episode_paths, EpisodeLog
from pair_drive_ros.training.rollouts import collect


class _KeepSpeed:
    """A planner stand-in: keeps the current speed straight ahead; counts its episodes."""

    def __init__(self) -> None:
        self.episodes = 0
        self.calls = 0

    def reset(self) -> None:
        self.episodes += 1

    def __call__(self, frame, scene) -> Trajectory:
        self.calls += 1
        t = POSE_DT_S * np.arange(1, 9)
        speed = float(np.hypot(*frame.ego.velocity))
        return Trajectory(np.stack([speed * t, 0 * t, 0 * t], -1), POSE_DT_S)


def test_rollouts_are_scene_logs_of_the_driven_episode(tmp_path):
    planner = _KeepSpeed()
    rows = collect(planner, planner, tmp_path, 'train', [('highway', 3)], max_steps=20)
    assert [(r['scenario'], r['seed']) for r in rows] == [('highway', 3)]
    path = episode_path(tmp_path, 'train', 'highway', 3)
    assert episode_paths(tmp_path, 'train') == [path]
    log = EpisodeLog.load(path)
    assert log.meta['scenario'] == 'highway' and log.meta['seed'] == 3
    assert log.num_frames == rows[0]['frames'] == 21
    assert (planner.episodes, planner.calls) == (1, 4)     # replanned every 0.5 s
    # The logged ego is the one the planner drove, not the scenario's expert.
    assert log.meta['expert'] == 'tracking'
    # Finished episodes are skipped.
    assert collect(planner, planner, tmp_path, 'train', [('highway', 3)], max_steps=20) == []
    assert planner.episodes == 1


def test_split_scenarios_skip_extends_a_rollout_set():
    from pair_drive_ros.sim.suite import split_scenarios

    first = split_scenarios('train', 4)
    later = split_scenarios('train', 2, skip=2)
    assert later == [job for i, job in enumerate(first) if i % 4 >= 2]


def test_rollout_flags_are_config_fields():
    from pair_drive_ros.core.config import parse_config
    from pair_drive_ros.training.rollouts import add_arguments, RolloutConfig

    argv = ['--out', 'data/x', '--episodes', '40', '--selector-checkpoint', 'runs/s.pt', '--set',
            'skip_seeds=20']
    assert parse_config(RolloutConfig, add_arguments, argv) == RolloutConfig(
        out='data/x', episodes=40, selector_checkpoint='runs/s.pt', skip_seeds=20)


class _Candidates:
    """A PaIR stand-in: drives its first candidate (keep speed), offers a stop and a swerve."""

    name = 'candidates'

    def reset(self) -> None:
        pass

    def compute_plan(self, inputs):
        from pair_drive_ros.policy.base import PlanOutput

        t = POSE_DT_S * np.arange(1, 9)
        speed = float(np.hypot(*inputs.features.ego.velocity))
        keep = np.stack([speed * t, 0 * t, 0 * t], -1)
        stop = np.zeros_like(keep)
        swerve = np.stack([speed * t, 3.0 * (speed * t) ** 1.3, 0 * t], -1)
        cands = np.stack([keep, stop, swerve])
        return PlanOutput(Trajectory(keep, POSE_DT_S), candidates=cands,
                          candidate_scores=np.zeros(3), info={'selected': 0})


def test_rollouts_try_every_candidate_beside_the_log(tmp_path):
    from pair_drive_ros.policy.closed_loop import closed_loop_policy
    from pair_drive_ros.training.rollouts import load_outcomes, outcome_path

    planner = _Candidates()
    rows = collect(closed_loop_policy(planner), planner, tmp_path, 'train', [('highway', 3)],
                   max_steps=12, outcome_horizon_steps=10, label_every=4)
    path = episode_path(tmp_path, 'train', 'highway', 3)
    # Outside the split's folder: the logs of the split are still exactly the episodes.
    assert episode_paths(tmp_path, 'train') == [path] and rows[0]['frames'] == 13
    assert outcome_path(path) == tmp_path / 'candidate_outcomes/train/highway/highway_s000003.npz'
    outcomes = load_outcomes(path)
    assert sorted(outcomes) == [0, 4, 8]
    cands, collision, off_road = outcomes[4]
    assert cands.shape == (3, 8, 3) and not collision.any()
    assert off_road.tolist() == [False, False, True]      # the swerve leaves the highway
    assert load_outcomes(episode_path(tmp_path, 'train', 'highway', 4)) is None
    # Scenarios not listed are driven without trying candidates.
    collect(closed_loop_policy(planner), planner, tmp_path, 'train', [('merge', 3)], max_steps=8,
            outcome_horizon_steps=10, label_scenarios=('highway',))
    assert load_outcomes(episode_path(tmp_path, 'train', 'merge', 3)) is None


def test_outcomes_lower_the_labels_of_the_candidates_that_failed():
    from types import SimpleNamespace

    from pair_drive_ros.policy.selector import TARGETS
    from pair_drive_ros.training.train_selector import apply_outcomes, SelectorTrainConfig

    cfg = SelectorTrainConfig(group='5')       # 6 candidates per reference, no variants
    layout = [('expert', None), ('il', 0)]
    rng = np.random.default_rng(0)
    cands = rng.normal(size=(3, 12, 8, 3)).astype(np.float32)
    target = np.ones((3, 12, len(TARGETS)), np.float32)
    episode = {0: ('a.npz', 4), 1: ('a.npz', 8), 2: ('b.npz', 4)}
    scenes = SimpleNamespace(indices=np.array([0, 1, 2]), dataset=SimpleNamespace(
        episode_frame=lambda i: episode[i]))
    fail = np.zeros(6, bool)
    crash, left = fail.copy(), fail.copy()
    crash[2], left[4] = True, True
    outcomes = {'a.npz': {4: (cands[0, 6:], crash, left),           # the IL block: applied
                          8: (cands[1, 6:] + 0.5, crash, left)}}    # other candidates: skipped
    tally = apply_outcomes(target, cands, scenes, [0, 1, 2], outcomes, layout, cfg)
    assert tally.tolist() == [1, 1]
    nc, dac, pdms = (TARGETS.index(k) for k in ('NC', 'DAC', 'pdms'))
    assert target[0, 6 + 2, nc] == 0 and target[0, 6 + 2, dac] == 1
    assert target[0, 6 + 4, dac] == 0 and target[0, 6 + 4, nc] == 1
    assert target[0, [8, 10], pdms].tolist() == [0, 0]
    assert target[0, :6].min() == 1 and target[0, [6, 7, 9, 11]].min() == 1   # others kept
    assert target[1:].min() == 1


def test_outcome_summary_counts_who_was_safe_where_the_il_plan_failed(tmp_path):
    from pair_drive_ros.training.rollouts import outcome_path, outcome_summary

    path = episode_path(tmp_path, 'train', 'intersection', 0)
    path.parent.mkdir(parents=True)
    path.write_bytes(b'')        # the summary reads the outcomes only
    # [IL plan, 2 leaves, 2 variants] at 4 frames: IL safe; only a leaf; only a variant; none.
    collision = np.array([[0, 1, 1, 1, 1], [1, 0, 1, 1, 1], [1, 1, 1, 0, 1], [1, 1, 1, 1, 1]],
                         bool)
    target = outcome_path(path)
    target.parent.mkdir(parents=True)
    np.savez(target, frames=np.arange(4) * 4, candidates=np.zeros((4, 5, 8, 3), np.float32),
             collision=collision, off_road=np.zeros_like(collision))
    row = outcome_summary(tmp_path, 'train', num_leaves=2)['intersection']
    assert row == {'frames': 4, 'il_failed': 3, 'leaf_safe': 1, 'variant_safe': 1,
                   'only_leaf_safe': 1, 'only_variant_safe': 1, 'none_safe': 1}


def test_outcome_summary_counts_braking_candidates_apart_from_the_variants(tmp_path):
    from pair_drive_ros.training.rollouts import outcome_path, outcome_summary

    path = episode_path(tmp_path, 'train', 'intersection', 0)
    path.parent.mkdir(parents=True)
    path.write_bytes(b'')
    # [IL plan, 1 leaf, 1 variant, 1 stop] at 4 frames: IL safe but the stop is struck;
    # only the stop; the variant and the stop; nothing.
    collision = np.array([[0, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], bool)
    target = outcome_path(path)
    target.parent.mkdir(parents=True)
    np.savez(target, frames=np.arange(4) * 4, candidates=np.zeros((4, 4, 8, 3), np.float32),
             collision=collision, off_road=np.zeros_like(collision))
    row = outcome_summary(tmp_path, 'train', num_leaves=1, num_stops=1)['intersection']
    assert row == {'frames': 4, 'il_failed': 3, 'leaf_safe': 0, 'variant_safe': 1,
                   'only_leaf_safe': 0, 'only_variant_safe': 0, 'none_safe': 1,
                   'stop_safe': 2, 'only_stop_safe': 1, 'stop_failed': 2}


def test_rollouts_with_past_sweeps_plan_on_every_sweep_the_log_has(tmp_path):
    from pair_drive_ros.perception.config import PerceptionConfig
    from pair_drive_ros.policy.closed_loop import closed_loop_policy

    class _Sweeps(_Candidates):
        perception_config = PerceptionConfig(history_sweeps=2)

        def __init__(self) -> None:
            self.valid = {}

        def compute_plan(self, inputs):
            f = inputs.features
            self.valid[round(f.stamp_s * 10)] = f.ego_status[-2:].tolist()
            return super().compute_plan(inputs)

    planner = _Sweeps()
    collect(closed_loop_policy(planner), planner, tmp_path, 'train',
            [('highway', 3)], max_steps=16, outcome_horizon_steps=2, label_every=4)
    # Plans every 4 (outcomes) and every 5 (replans) steps; the sweeps 0.5 s and 1 s back are
    # there at every plan from 1 s on, as in the log, because the frames between are observed.
    assert sorted(planner.valid) == [0, 4, 5, 8, 10, 12, 15]
    assert all(planner.valid[k] == [1.0, 1.0] for k in (10, 12, 15))
    assert planner.valid[8] == [1.0, 0.0] and planner.valid[0] == [0.0, 0.0]


def test_il_rollouts_relabelled_by_the_expert_train_on_those_frames_only(tmp_path):
    import pytest

    from pair_drive_ros.training.data import DataConfig, DataError, ILDataset

    planner = _KeepSpeed()
    collect(planner, _Candidates(), tmp_path, 'train', [('highway', 3)], max_steps=48,
            label_every=8, expert_relabel=True)
    log = EpisodeLog.load(episode_path(tmp_path, 'train', 'highway', 3))
    relabel = log.arrays['expert_plan']
    asked = np.flatnonzero(np.isfinite(relabel).all(axis=(1, 2)))
    assert len(asked) >= 2 and (asked % 8 == 0).all() and asked[0] == 0
    # The expert's plan is the frame's expert where the future is logged.
    np.testing.assert_allclose(log.expert(0).poses, relabel[0], atol=1e-6)
    assert log.expert(4).poses[-1, 0] != relabel[0][-1, 0]      # elsewhere the driven future
    # IDM plans forward along the lane from the driven state.
    assert (np.diff(relabel[0][:, 0]) > 0).all() and np.abs(relabel[0][:, 1]).max() < 0.5
    # The dataset of such a root holds the relabelled frames only, joined to another root.
    other = tmp_path / 'other'
    keep = _KeepSpeed()
    collect(keep, keep, other, 'train', [('highway', 4)], max_steps=60)
    plain = EpisodeLog.load(episode_path(other, 'train', 'highway', 4))
    data = ILDataset(other, 'train', data_cfg=DataConfig(frame_stride=4),
                     cache_dir=tmp_path / 'cache', extra_roots=(tmp_path,))
    frames = [data.episode_frame(i) for i in range(len(data))]
    scorable = log.scorable_frames()
    mine = [k for p, k in frames if p.endswith('highway_s000003.npz')]
    assert mine == [k for k in asked if k in scorable] and mine
    assert [k for p, k in frames if p.endswith('highway_s000004.npz')] == \
        plain.scorable_frames()[::4].tolist()
    i = frames.index((str(episode_path(tmp_path, 'train', 'highway', 3)), 0))
    np.testing.assert_allclose(data[i][1]['trajectory'], relabel[0], atol=1e-5)
    # Only some scenario folders of the extra root may join.
    same = ILDataset(other, 'train', data_cfg=DataConfig(frame_stride=4),
                     cache_dir=tmp_path / 'cache', extra_roots=(tmp_path,),
                     extra_scenarios=('highway',))
    assert same.episodes == data.episodes and len(same) == len(data)
    with pytest.raises(DataError, match=r"no scene logs under .* of \['roundabout'\]"):
        ILDataset(other, 'train', data_cfg=DataConfig(frame_stride=4),
                  cache_dir=tmp_path / 'cache', extra_roots=(tmp_path,),
                  extra_scenarios=('roundabout',))


def test_a_rollout_driver_is_pair_or_il():
    import pytest

    from pair_drive_ros.training.rollouts import main, RolloutConfig

    with pytest.raises(ValueError, match="driver must be 'pair' or 'il'"):
        main(RolloutConfig(driver='expert'))
