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
