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
Sanity of the scorer on synthetic scenes.

A lane-following expert scores near the top of a random candidate set, constant velocity
scores low where the road curves or traffic stops.
"""

import numpy as np
from scoring_scenes import arc_lanes, make_scene, random_candidates

from pair_drive_ros.core import Trajectory
from pair_drive_ros.core.se2 import poses_to_local
from pair_drive_ros.scoring import (constant_velocity_trajectory, Metric, reference_progress,
                                    score_candidates, ScorerConfig)


def _route_follower(scene, speeds: np.ndarray) -> Trajectory:
    """Expert: drive along the route centreline with speeds (8,) [m/s] at the pose times."""
    s0, _ = scene.route.project(scene.ego.pose[:2])
    dist = np.cumsum(0.5 * speeds)
    poses = scene.route.interpolate(s0 + dist)
    return Trajectory(poses_to_local(scene.ego.pose, poses))


def _scenes():
    lanes, ids = arc_lanes(2)
    yield 'curve', make_scene(10.0, lanes=lanes, route_ids=ids,
                              route_points=lanes[0].centerline), np.full(8, 10.0)
    parked = dict(x=40.0, y=0.0, yaw=0.0, speed=0.0)
    # brake at 2 m/s^2 from 10 m/s: stop after ~25 m, 12 m behind the parked car's rear
    yield 'stopped traffic', make_scene(10.0, [parked]), np.maximum(
        10.0 - 2.0 * 0.5 * np.arange(1, 9), 0.0)


def test_expert_near_top_and_constant_velocity_low():
    cfg = ScorerConfig()
    rng = np.random.default_rng(5)
    for name, scene, speeds in _scenes():
        expert = _route_follower(scene, speeds)
        cv = constant_velocity_trajectory(scene.ego)
        cands = np.concatenate([np.stack([expert.poses, cv.poses]),
                                random_candidates(rng, scene.ego.speed, 60)])
        table = score_candidates(scene, cands, cfg, reference=reference_progress(scene, cfg))
        assert table[Metric.NC][0] == table[Metric.DAC][0] == 1.0, name
        assert table.pdms[0] > 0.8 and table.epdms[0] > 0.75, name
        assert table.epdms[0] >= np.quantile(table.epdms[2:], 0.9), name
        assert table.pdms[1] == 0.0 and table.epdms[1] == 0.0, name
