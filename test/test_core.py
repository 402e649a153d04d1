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

"""Core types and SE(2) math: exact answers, round trips and bad input."""

from hypothesis import given, settings, strategies as st
import hypothesis.extra.numpy as hnp
import numpy as np
import pytest

from pair_drive_ros.core import (Agents, AgentTracks, EgoState, Lane, RoadMap, Route, Scene,
                                 Trajectory)
from pair_drive_ros.core.se2 import (box_corners, inverse_transform_points, poses_to_global,
                                     poses_to_local, quaternion_to_yaw, se2_compose, se2_inverse,
                                     transform_points, wrap_angle, yaw_to_quaternion)

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
angles = st.floats(-10.0, 10.0, allow_nan=False, allow_infinity=False)
pose_st = st.tuples(finite, finite, angles).map(np.array)


def test_se2_round_trip():
    pose = np.array([3.0, -1.0, 0.7])
    np.testing.assert_allclose(se2_compose(pose, se2_inverse(pose)), 0.0, atol=1e-12)


def test_transform_points_known_answer():
    origin = np.array([1.0, 2.0, np.pi / 2])
    np.testing.assert_allclose(transform_points(origin, [1.0, 0.0]), [1.0, 3.0], atol=1e-12)
    np.testing.assert_allclose(inverse_transform_points(origin, [1.0, 3.0]), [1.0, 0.0],
                               atol=1e-12)


@given(pose_st, hnp.arrays(np.float64, (5, 3), elements=st.floats(-100, 100)))
@settings(max_examples=50, deadline=None)
def test_poses_global_local_round_trip(origin, poses):
    back = poses_to_local(origin, poses_to_global(origin, poses))
    np.testing.assert_allclose(back[:, :2], poses[:, :2], atol=1e-6)
    np.testing.assert_allclose(wrap_angle(back[:, 2] - poses[:, 2]), 0.0, atol=1e-9)


@given(angles)
def test_quaternion_round_trip(yaw):
    np.testing.assert_allclose(wrap_angle(quaternion_to_yaw(yaw_to_quaternion(yaw)) - yaw), 0.0,
                               atol=1e-9)


def test_wrap_angle_range():
    a = wrap_angle(np.linspace(-20, 20, 1001))
    assert np.all(a >= -np.pi) and np.all(a < np.pi)


def test_box_corners_axis_aligned():
    corners = box_corners(np.array([10.0, 5.0, 0.0]), 4.0, 2.0)
    np.testing.assert_allclose(corners, [[12, 6], [12, 4], [8, 4], [8, 6]])


def test_trajectory_rejects_two_columns():
    with pytest.raises(ValueError, match='shape'):
        Trajectory(np.zeros((8, 2)), dt_s=0.5, frame='ego')


def test_trajectory_rejects_nan():
    poses = np.zeros((8, 3))
    poses[3, 1] = np.nan
    with pytest.raises(ValueError, match='non-finite'):
        Trajectory(poses)


def test_trajectory_map_ego_round_trip_and_times():
    poses = np.c_[np.arange(1.0, 9.0), np.zeros(8), np.zeros(8)]
    traj = Trajectory(poses, dt_s=0.5, frame='ego', t0_s=10.0)
    ego_pose = np.array([5.0, -2.0, np.pi / 2])
    in_map = traj.to_map(ego_pose)
    assert in_map.frame == 'map'
    np.testing.assert_allclose(in_map.poses[0], [5.0, -1.0, np.pi / 2], atol=1e-12)
    np.testing.assert_allclose(in_map.to_ego(ego_pose).poses, poses, atol=1e-12)
    np.testing.assert_allclose(traj.times_s, 10.0 + 0.5 * np.arange(1, 9))


def test_ego_state_validates():
    ego = EgoState([1, 2, 0.5], velocity=[10.0, 0.0])
    assert ego.speed == pytest.approx(10.0)
    np.testing.assert_allclose(ego.velocity_map, 10.0 * np.array([np.cos(0.5), np.sin(0.5)]))
    with pytest.raises(ValueError, match='non-finite'):
        EgoState([np.inf, 0, 0])
    with pytest.raises(ValueError, match='shape'):
        EgoState([0, 0])


def test_route_project_and_interpolate():
    route = Route(np.array([[0.0, 0.0], [10.0, 0.0], [10.0, 10.0]]))
    assert route.length == pytest.approx(20.0)
    s, lat = route.project(np.array([[5.0, 1.0], [12.0, 5.0], [-3.0, 0.0]]))
    np.testing.assert_allclose(s, [5.0, 15.0, 0.0])
    np.testing.assert_allclose(lat, [1.0, -2.0, 0.0])
    np.testing.assert_allclose(route.interpolate([5.0, 15.0]),
                               [[5.0, 0.0, 0.0], [10.0, 5.0, np.pi / 2]])


def test_route_rejects_degenerate():
    with pytest.raises(ValueError, match='2 distinct'):
        Route(np.array([[1.0, 1.0], [1.0, 1.0]]))


def test_agents_to_frame():
    agents = Agents([7], [[10.0, 0.0, 0.0]], [[4.0, 2.0]], [[5.0, 0.0]])
    local = agents.to_frame(np.array([10.0, -5.0, np.pi / 2]))
    np.testing.assert_allclose(local.poses, [[5.0, 0.0, -np.pi / 2]], atol=1e-12)
    np.testing.assert_allclose(local.velocities, [[0.0, -5.0]], atol=1e-12)
    assert len(Agents.empty()) == 0


def test_lane_polygon_and_validation():
    lane = Lane('a', np.array([[0.0, 0.0], [10.0, 0.0]]), 4.0)
    np.testing.assert_allclose(lane.left_boundary, [[0, 2], [10, 2]])
    np.testing.assert_allclose(lane.polygon, [[0, 2], [10, 2], [10, -2], [0, -2]])
    with pytest.raises(ValueError, match='left_line'):
        Lane('b', np.array([[0.0, 0.0], [1.0, 0.0]]), 4.0, left_line='dashed')
    road = RoadMap([lane, Lane('far', np.array([[500.0, 0.0], [510.0, 0.0]]), 4.0)])
    assert [ln.lane_id for ln in road.crop([0.0, 0.0], 50.0).lanes] == ['a']
    with pytest.raises(KeyError):
        road.lane('missing')


def test_agent_tracks_at_step():
    tracks = AgentTracks(ids=[1, 2], sizes=[[4, 2], [4, 2]],
                         poses=np.zeros((3, 2, 3)), velocities=np.zeros((3, 2, 2)),
                         valid=[[True, True], [True, False], [False, False]])
    assert tracks.num_steps == 3
    assert list(tracks.at(1).ids) == [1]
    scene = Scene('t', EgoState([0, 0, 0]), np.zeros((1, 3)), tracks, RoadMap([]),
                  Route(np.array([[0.0, 0.0], [1.0, 0.0]])))
    assert scene.dt_s == pytest.approx(0.1)


def test_agent_tracks_without_agents():
    tracks = AgentTracks(ids=[], sizes=np.zeros((0, 2)), poses=np.zeros((41, 0, 3)),
                         velocities=np.zeros((41, 0, 2)), valid=np.zeros((41, 0), bool))
    assert tracks.num_steps == 41 and len(tracks.at(40)) == 0


def test_atomic_path_replaces_whole_file_or_nothing(tmp_path):
    from pair_drive_ros.core.files import atomic_path, write_text_atomic

    target = tmp_path / 'sub' / 'manifest.json'
    write_text_atomic(target, 'old')
    assert target.read_text() == 'old'
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('half')
            raise RuntimeError('crash while writing')
    # The failed write left the old file and no temporary file behind.
    assert target.read_text() == 'old'
    assert sorted(p.name for p in target.parent.iterdir()) == ['manifest.json']
    # np.savez appends '.npz' unless the name ends with it: the suffix keeps the rename exact.
    cache = tmp_path / 'features.npz'
    with atomic_path(cache, suffix='.tmp.npz') as tmp:
        np.savez(tmp, x=np.arange(3))
    assert np.load(cache)['x'].tolist() == [0, 1, 2]
    assert sorted(p.name for p in tmp_path.iterdir()) == ['features.npz', 'sub']
