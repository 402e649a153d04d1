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
Scene logs: the versioned dataset format of the embedded simulator.

One episode = one `.npz` file (numpy's zip of `.npy` arrays), schema version SCHEMA_VERSION.

Why NPZ: it needs numpy only (no h5py or pyarrow in the training or ROS-free environments); one
self-contained file per episode shards trivially by seed across workers and machines; members are
decompressed lazily, so `list_frames` reads only the small `meta` member; every per-frame array
has time as its first axis, so random access by frame is an index into arrays that, for a whole
episode, are a few hundred kB. We write the zip ourselves with fixed member timestamps, so the
same seed gives a byte-identical file (checked by the tests, hashed in MANIFEST.json).

Arrays (T frames at 10 Hz, M agents ever seen, L lanes, P lane points; map frame; SI units):
  meta            0-d str   JSON: schema_version, scenario, family, env_id, seed, split, expert,
                            the outcome (sim.closed_loop.SimSession): end_cause, end_step,
                            goal_reached, collision, off_road, progress_m, route_target_m,
                            route_completion, env_goal_step, terminated, truncated, arrived;
                            log facts: expert_crashed, crash_step (any crash in the frames, also
                            one after the goal), ego_length/width/height, ...
  t               (T,)      time [s] of each frame (frame k at k * 0.1 s)
  ego_pose        (T, 3)    x, y, yaw of the ego box centre (highway-env vehicle position)
  ego_speed       (T,)      [m/s]
  ego_velocity    (T, 2)    longitudinal, lateral velocity in the ego frame [m/s]
  ego_accel       (T, 2)    longitudinal, lateral acceleration in the ego frame [m/s^2]
  ego_yaw_rate    (T,)      [rad/s]
  ego_action      (T, 2)    acceleration [m/s^2], steering [rad] applied from frame k to k + 1
  ego_lane        (T,)      index into lane_ids of the ego's current lane (-1 unknown)
  ego_crashed     (T,) bool
  ego_on_road     (T,) bool  centre on any lane
  agent_ids       (M,)      int64 track ids (order of first appearance)
  agent_sizes     (M, 2)    length, width [m];  agent_heights (M,) [m]
  agent_poses     (T, M, 3) box centre x, y, yaw;  agent_velocities (T, M, 2) map-frame [m/s]
  agent_valid     (T, M)    the agent exists at that frame
  lane_ids        (L,) str  'from:to:index' (highway-env lane index)
  lane_offsets    (L + 1,)  lane l's points are lane_points[lane_offsets[l]:lane_offsets[l + 1]]
  lane_points     (P, 2)    centreline points;  lane_widths (P,) [m]
  lane_left, lane_right (L,) int8 boundary line type: 0 none, 1 striped, 2 continuous
  lane_speed_limit (L,) [m/s];  lane_in_intersection (L,) bool
  route_lanes     (R,) str  the episode's lane-level route (lane ids in driving order)
Optional stored sensors: lidar_offsets (T + 1,), lidar_points (N, 4) float32; camera (T, H, W, 3)
uint8. Without them, sensors are re-synthesized deterministically from the state.
Optional expert_plan (T, 8, 3) float32: the scenario expert's plan (ego frame) from the state of
frames where it was asked (on-policy rollouts, `pair-drive train rollouts --set
expert_relabel=true`; NaN elsewhere); there it is the frame's expert instead of the logged future.
Optional route_points (P, 2): the route centreline where no lane-level route is known (logs
converted from recordings, `pair-drive dataset from-bag`). Such logs say in meta what they lack:
agents_known / map_known false (no agent boxes / no lanes were recorded), so trainers and
scorers skip the terms that need them.

Scenes: `EpisodeLog.scene(k)` is the scorer's input at frame k: the ego state, up to 2 s of ego
history, agent tracks over 41 steps (4 s) from frame k, the lanes within 150 m, the lane-level
route from the ego's current lane, and the expert trajectory = the ego's logged future (8 poses at
0.5 s, ego frame). Frames whose 4-s future is not logged are not scorable (`scorable_frames`); for
them the tracks are extended at constant velocity and the expert is None.
"""

from dataclasses import dataclass, replace
import io
import json
import logging
from pathlib import Path
from typing import Iterator
import zipfile

import numpy as np

from pair_drive_ros.core.agents import Agents
from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.core.road import Lane, LINE_TYPES, RoadMap
from pair_drive_ros.core.route import Route
from pair_drive_ros.core.scene import AgentTracks, Scene, SCENE_FUTURE_STEPS
from pair_drive_ros.core.sensor_frame import SensorFrame
from pair_drive_ros.core.trajectory import EGO_FRAME, NUM_POSES, POSE_DT_S, Trajectory
from pair_drive_ros.core.se2 import poses_to_local
from pair_drive_ros.sim.raster import bev_semantics  # noqa: F401  (re-exported contract)
from pair_drive_ros.sim.road_areas import connection_areas

LOG = logging.getLogger(__name__)

SCHEMA_VERSION = 1
FRAME_DT_S = 0.1
HISTORY_STEPS = 20
SCENE_RADIUS_M = 150.0
ROUTE_BACK_M = 30.0
ROUTE_AHEAD_M = 250.0
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
REQUIRED_KEYS = (
    'meta', 't', 'ego_pose', 'ego_speed', 'ego_velocity', 'ego_accel', 'ego_yaw_rate',
    'ego_action', 'ego_lane', 'ego_crashed', 'ego_on_road', 'agent_ids', 'agent_sizes',
    'agent_heights', 'agent_poses', 'agent_velocities', 'agent_valid', 'lane_ids',
    'lane_offsets', 'lane_points', 'lane_widths', 'lane_left', 'lane_right', 'lane_speed_limit',
    'lane_in_intersection', 'route_lanes')


class LogFormatError(ValueError):
    """A scene-log file is missing, unreadable or of an unsupported schema."""


def write_npz(path: str | Path, arrays: dict) -> None:
    """Write arrays as a deterministic compressed NPZ (fixed member timestamps), atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    with zipfile.ZipFile(tmp, 'w', compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.asarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f'{key}.npy', date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue(), compresslevel=6)
    tmp.replace(path)


def read_meta(path: str | Path) -> dict:
    """Only the meta dictionary of an episode file (cheap)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            return json.loads(str(data['meta']))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile) as err:
        raise LogFormatError(f'cannot read scene-log meta from {path}: {err}') from err


def lanes_to_arrays(lanes: list[Lane]) -> dict:
    """Pack core Lanes into the lane_* arrays of the schema."""
    codes = {name: k for k, name in enumerate(LINE_TYPES)}
    sizes = [len(ln.centerline) for ln in lanes]
    return {
        'lane_ids': np.array([ln.lane_id for ln in lanes], dtype=str),
        'lane_offsets': np.r_[0, np.cumsum(sizes)].astype(np.int64),
        'lane_points': (np.concatenate([ln.centerline for ln in lanes]) if lanes
                        else np.zeros((0, 2))),
        'lane_widths': np.concatenate([ln.widths for ln in lanes]) if lanes else np.zeros(0),
        'lane_left': np.array([codes[ln.left_line] for ln in lanes], dtype=np.int8),
        'lane_right': np.array([codes[ln.right_line] for ln in lanes], dtype=np.int8),
        'lane_speed_limit': np.array([ln.speed_limit_mps for ln in lanes], dtype=np.float64),
        'lane_in_intersection': np.array([ln.in_intersection for ln in lanes], dtype=bool),
    }


def lanes_from_arrays(a: dict) -> list[Lane]:
    """Inverse of `lanes_to_arrays`."""
    off = a['lane_offsets']
    return [Lane(lane_id=str(lid), centerline=a['lane_points'][off[k]:off[k + 1]],
                 widths=a['lane_widths'][off[k]:off[k + 1]],
                 left_line=LINE_TYPES[int(a['lane_left'][k])],
                 right_line=LINE_TYPES[int(a['lane_right'][k])],
                 speed_limit_mps=float(a['lane_speed_limit'][k]),
                 in_intersection=bool(a['lane_in_intersection'][k]))
            for k, lid in enumerate(a['lane_ids'])]


def _edge(lid: str) -> tuple[str, str, int]:
    a, b, i = lid.rsplit(':', 2)
    return a, b, int(i)


@dataclass
class _RouteIndex:
    by_edge: dict
    lanes: dict

    @classmethod
    def build(cls, lanes: list[Lane]) -> '_RouteIndex':
        by_edge: dict = {}
        for ln in lanes:
            a, b, i = _edge(ln.lane_id)
            by_edge.setdefault((a, b), {})[i] = ln
        return cls(by_edge, {ln.lane_id: ln for ln in lanes})


class EpisodeLog:
    """One recorded episode; random access to scenes, ground truth and sensor frames by frame."""

    def __init__(self, arrays: dict, path: str | Path | None = None) -> None:
        missing = [k for k in REQUIRED_KEYS if k not in arrays]
        if missing:
            raise LogFormatError(f'scene log {path or "<memory>"} lacks arrays {missing}')
        meta = arrays['meta']
        self.meta: dict = meta if isinstance(meta, dict) else json.loads(str(meta))
        version = int(self.meta.get('schema_version', -1))
        if version != SCHEMA_VERSION:
            raise LogFormatError(f'scene log {path or "<memory>"} has schema version {version}, '
                                 f'this reader supports {SCHEMA_VERSION}')
        self.arrays = arrays
        self.path = None if path is None else Path(path)
        self._lanes: list[Lane] | None = None
        self._route_index: _RouteIndex | None = None
        self._road_geometry = None
        self._drivable_areas = None

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | Path) -> 'EpisodeLog':
        """Read an episode file."""
        try:
            with np.load(path, allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            raise LogFormatError(f'cannot read scene log {path}: {err}') from err
        return cls(arrays, path)

    def save(self, path: str | Path) -> None:
        """Write the episode file (deterministic bytes)."""
        arrays = dict(self.arrays)
        arrays['meta'] = np.array(json.dumps(self.meta, sort_keys=True))
        write_npz(path, arrays)

    # ---- basic accessors ----------------------------------------------------------------------
    @property
    def num_frames(self) -> int:
        """Return the number of frames T."""
        return int(len(self.arrays['t']))

    def scorable_frames(self) -> np.ndarray:
        """Frames whose 4-s future (40 steps) is logged."""
        return np.arange(max(0, self.num_frames - (SCENE_FUTURE_STEPS - 1)))

    @property
    def lanes(self) -> list[Lane]:
        """All logged lanes."""
        if self._lanes is None:
            self._lanes = lanes_from_arrays(self.arrays)
        return self._lanes

    @property
    def road(self) -> RoadMap:
        """Return the whole logged road: lanes plus the patches where connected lanes meet."""
        if self._drivable_areas is None:
            self._drivable_areas = connection_areas(self.lanes)
        return RoadMap(list(self.lanes), list(self._drivable_areas))

    def road_geometry(self):
        """Return the cached sensor geometry of the road (see sensors.RoadGeometry)."""
        if self._road_geometry is None:
            from pair_drive_ros.sim.sensors import RoadGeometry
            self._road_geometry = RoadGeometry.from_road(self.road)
        return self._road_geometry

    def _check(self, k: int) -> int:
        k = int(k)
        if not 0 <= k < self.num_frames:
            raise IndexError(f'frame {k} out of range [0, {self.num_frames})')
        return k

    def ego_state(self, k: int) -> EgoState:
        """Return the ego state at frame k (map frame)."""
        k = self._check(k)
        a = self.arrays
        return EgoState(a['ego_pose'][k], a['ego_velocity'][k], a['ego_accel'][k],
                        float(a['ego_yaw_rate'][k]), float(a['t'][k]))

    def agents(self, k: int, frame: str = 'map', radius_m: float | None = None) -> Agents:
        """Return the valid agents at frame k, in the map frame or the ego frame ('ego')."""
        k = self._check(k)
        a = self.arrays
        mask = a['agent_valid'][k].copy()
        if radius_m is not None:
            d = np.linalg.norm(a['agent_poses'][k, :, :2] - a['ego_pose'][k, :2], axis=1)
            mask &= d <= radius_m
        ag = Agents(a['agent_ids'][mask], a['agent_poses'][k, mask], a['agent_sizes'][mask],
                    a['agent_velocities'][k, mask], a['agent_heights'][mask])
        return ag.to_frame(a['ego_pose'][k]) if frame == EGO_FRAME else ag

    def agent_tracks(self, k: int, steps: int = SCENE_FUTURE_STEPS,
                     radius_m: float = SCENE_RADIUS_M) -> AgentTracks:
        """Agent tracks over `steps` frames from k, extended at constant velocity past the log."""
        k = self._check(k)
        a = self.arrays
        last = self.num_frames - 1
        idx = np.minimum(np.arange(k, k + steps), last)
        extra = (np.arange(k, k + steps) - idx) * FRAME_DT_S
        poses = a['agent_poses'][idx].copy()
        vel = a['agent_velocities'][idx]
        poses[..., :2] += vel * extra[:, None, None]
        valid = a['agent_valid'][idx]
        near = np.linalg.norm(a['agent_poses'][k, :, :2] - a['ego_pose'][k, :2], axis=1)
        keep = valid.any(0) & ((near <= radius_m) | ~a['agent_valid'][k])
        return AgentTracks(a['agent_ids'][keep], a['agent_sizes'][keep], poses[:, keep],
                           vel[:, keep], valid[:, keep], a['agent_heights'][keep], FRAME_DT_S)

    def expert(self, k: int) -> Trajectory | None:
        """
        Return the frame's expert plan: 8 poses at 0.5 s, ego frame (None past the log).

        The logged ego future, or where the log holds one (`expert_plan`, on-policy rollouts
        relabelled), the scenario expert's plan from this frame's state.
        """
        k = self._check(k)
        step = int(round(POSE_DT_S / FRAME_DT_S))
        idx = k + step * np.arange(1, NUM_POSES + 1)
        if idx[-1] >= self.num_frames:
            return None
        relabel = self.arrays.get('expert_plan')
        if relabel is not None and np.isfinite(relabel[k]).all():
            return Trajectory(np.asarray(relabel[k], np.float64), POSE_DT_S, EGO_FRAME, 0.0)
        pose = self.arrays['ego_pose']
        return Trajectory(poses_to_local(pose[k], pose[idx]), POSE_DT_S, EGO_FRAME, 0.0)

    # ---- route --------------------------------------------------------------------------------
    def _index(self) -> _RouteIndex:
        if self._route_index is None:
            self._route_index = _RouteIndex.build(self.lanes)
        return self._route_index

    def route_lane_chain(self, k: int) -> list[str]:
        """Lane-level route from the ego's lane at frame k (the episode route if off it)."""
        k = self._check(k)
        episode = [str(x) for x in self.arrays['route_lanes']]
        li = int(self.arrays['ego_lane'][k])
        if li < 0 or not episode:
            return episode
        cur = str(self.arrays['lane_ids'][li])
        edges = [_edge(x)[:2] for x in episode]
        a, b, _ = _edge(cur)
        if (a, b) not in edges:
            return episode
        index = self._index()
        chain = [cur]
        for e in edges[edges.index((a, b)) + 1:]:
            prev = index.lanes[chain[-1]]
            options = index.by_edge.get(e, {})
            if not options:
                break
            end = prev.centerline[-1]
            best = min(options.values(),
                       key=lambda ln: float(np.min(np.linalg.norm(ln.centerline - end, axis=1))))
            chain.append(best.lane_id)
        return chain

    @property
    def agents_known(self) -> bool:
        """Return False where the log has no agent boxes to learn from (a converted recording)."""
        return bool(self.meta.get('agents_known', True))

    @property
    def map_known(self) -> bool:
        """Return False where the log has no lanes (BEV semantics and map-based scores unknown)."""
        return bool(self.meta.get('map_known', True))

    def route(self, k: int, back_m: float = ROUTE_BACK_M, ahead_m: float = ROUTE_AHEAD_M
              ) -> Route:
        """Return the lane-level route centreline at frame k, cropped around the ego."""
        k = self._check(k)
        if not len(self.arrays['route_lanes']) and 'route_points' in self.arrays:
            full = Route(self.arrays['route_points'])
        else:
            index = self._index()
            chain = self.route_lane_chain(k)
            full = Route(np.concatenate([index.lanes[x].centerline for x in chain]))
        s, _ = full.project(self.arrays['ego_pose'][k, :2])
        keep = (full.arc_length >= s - back_m) & (full.arc_length <= s + ahead_m)
        if keep.sum() >= 2:
            return Route(full.points[keep])
        return full

    def route_lane_ids(self, k: int) -> tuple[str, ...]:
        """All lanes of the route's road segments (any lane index): the on-route lanes."""
        index = self._index()
        edges = {_edge(x)[:2] for x in self.route_lane_chain(k)}
        return tuple(ln.lane_id for e in sorted(edges) for ln in index.by_edge.get(e, {}).values())

    def episode_route(self) -> Route:
        """Return the whole episode route (lanes of route_lanes concatenated)."""
        if not len(self.arrays['route_lanes']) and 'route_points' in self.arrays:
            return Route(self.arrays['route_points'])
        index = self._index()
        return Route(np.concatenate([index.lanes[str(x)].centerline
                                     for x in self.arrays['route_lanes']]))

    def speed_limit(self, k: int) -> float | None:
        """
        Speed limit [m/s] of the ego's lane at frame k (its route lane if off every lane).

        None where the log holds no lanes (e.g. converted from a recording without a map).
        """
        k = self._check(k)
        a = self.arrays
        limits = a['lane_speed_limit']
        li = int(a['ego_lane'][k])
        if 0 <= li < len(limits):
            return float(limits[li])
        if len(a['route_lanes']) and len(limits):
            ids = [str(x) for x in a['lane_ids']]
            first = str(a['route_lanes'][0])
            if first in ids:
                return float(limits[ids.index(first)])
        return None

    # ---- scenes and sensors -------------------------------------------------------------------
    def token(self, k: int) -> str:
        """Return a unique scene token."""
        return f'{self.meta.get("scenario", "ep")}_s{self.meta.get("seed", 0)}_f{int(k):04d}'

    def scene(self, k: int) -> Scene:
        """Return the scorer's input (a Scene) at frame k."""
        k = self._check(k)
        ego = self.ego_state(k)
        hist = self.arrays['ego_pose'][max(0, k - HISTORY_STEPS):k + 1].copy()
        road = self.road.crop(ego.pose[:2], SCENE_RADIUS_M)
        return Scene(token=self.token(k), ego=ego, ego_history=hist,
                     agents=self.agent_tracks(k), road=road, route=self.route(k),
                     route_lane_ids=self.route_lane_ids(k), expert=self.expert(k),
                     dt_s=FRAME_DT_S)

    def sensor_frame(self, k: int, lidar_cfg=None, camera_cfg=None,
                     ego_pose: np.ndarray | None = None) -> SensorFrame:
        """
        Sensor data at frame k: read back if stored (and no config given), else synthesized.

        ego_pose: synthesize from this map pose instead of the logged one (training's recovery
        copies); the frame's ego state carries it, with the logged velocities.
        """
        from pair_drive_ros.sim import sensors

        k = self._check(k)
        ego = self.ego_state(k)
        shifted = ego_pose is not None
        if shifted:
            ego = replace(ego, pose=np.asarray(ego_pose, np.float64))
        a = self.arrays
        lidar_cfg_eff = lidar_cfg or sensors.LidarConfig()
        camera_cfg_eff = camera_cfg or sensors.CameraConfig()
        if lidar_cfg is None and 'lidar_points' in a and not shifted:
            off = a['lidar_offsets']
            points = a['lidar_points'][off[k]:off[k + 1]]
        else:
            points = sensors.simulate_lidar(ego.pose, self.agents(k), self.road_geometry(),
                                            lidar_cfg_eff)
        if camera_cfg is None and 'camera' in a and not shifted:
            image = a['camera'][k]
        else:
            image = sensors.render_camera(ego.pose, self.agents(k), self.road_geometry(),
                                          camera_cfg_eff)
        return SensorFrame(stamp_s=ego.stamp_s, ego=ego, lidar_points=points,
                           camera_image=image, route=self.route(k),
                           lidar_mount=np.array(lidar_cfg_eff.mount),
                           camera_mount=np.array(camera_cfg_eff.mount),
                           camera_fov_deg=camera_cfg_eff.fov_deg,
                           speed_limit_mps=self.speed_limit(k))

    def bev(self, k: int, extent_m: float = 32.0, resolution_m: float = 0.25) -> np.ndarray:
        """BEV semantic raster of frame k (see raster.bev_semantics)."""
        return bev_semantics(self.scene(k), extent_m, resolution_m)


# ---- dataset-level helpers ------------------------------------------------------------------
def _split_dir(root: str | Path, split: str | None) -> Path:
    return Path(root) / split if split else Path(root)


def episode_paths(root: str | Path, split: str | None = None) -> list[Path]:
    """Episode files under root[/split], sorted."""
    return sorted(_split_dir(root, split).rglob('*.npz'))


def iter_episodes(root: str | Path, split: str | None = None) -> Iterator[EpisodeLog]:
    """Load the episodes under root[/split] one at a time, sorted by path."""
    for path in episode_paths(root, split):
        yield EpisodeLog.load(path)


def list_frames(root: str | Path, split: str | None = None, scorable_only: bool = True
                ) -> list[tuple[Path, int]]:
    """
    (episode path, frame index) of every frame under root[/split].

    Uses MANIFEST.json when present, else reads each file's meta.
    """
    out = []
    base = _split_dir(root, split)
    manifest = base / 'MANIFEST.json'
    counts = {}
    if manifest.is_file():
        data = json.loads(manifest.read_text())
        for ep in data.get('episodes', []):
            counts[(base / ep['file']).resolve()] = int(ep['num_frames'])
    for path in episode_paths(root, split):
        n = counts.get(path.resolve())
        if n is None:
            n = int(read_meta(path)['num_frames'])
        last = n - (SCENE_FUTURE_STEPS - 1) if scorable_only else n
        out.extend((path, k) for k in range(max(0, last)))
    return out
