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
Closed-loop simulation: a stepping session (for the ROS sim bridge) and an episode runner.

`SimSession` wraps one highway-env environment at 10 Hz. The ego is driven by trajectories
(`set_trajectory`, tracked at every step by tracking.TrackingVehicle), or by an expert
('idm', 'search'). `scene()` is the privileged Scene of the current frame: the past comes from
the session's own recording; the future agent tracks (41 steps) are a constant-velocity
projection of the current agent states, since the future is unknown online; `expert` is None.

`run_episode(scenario_or_env_or_factory, seed, policy, ...)` calls
`policy(frame: SensorFrame, scene: Scene) -> Trajectory` (ego frame, or map frame) every
`replan_every` steps and returns an EpisodeResult.
"""

from dataclasses import dataclass, field
import logging
from typing import Any, Callable

import numpy as np

from pair_drive_ros.core.route import Route
from pair_drive_ros.core.scene import Scene
from pair_drive_ros.core.se2 import inverse_transform_points, wrap_angle
from pair_drive_ros.core.sensor_frame import SensorFrame
from pair_drive_ros.core.trajectory import NUM_POSES, POSE_DT_S, Trajectory
from pair_drive_ros.sim import hw
from pair_drive_ros.sim.experts import conflict_mask, make_idm_ego, make_tracking_ego
from pair_drive_ros.sim.experts import SearchConfig, SearchExpert
from pair_drive_ros.sim.logs import EpisodeLog
from pair_drive_ros.sim.recorder import EpisodeRecorder
from pair_drive_ros.sim.sensors import CameraConfig, LidarConfig, RoadGeometry
from pair_drive_ros.sim.sensors import render_camera, simulate_lidar
from pair_drive_ros.sim.suite import load_suite, ScenarioSpec, Suite

LOG = logging.getLogger(__name__)

EGO_MODES = ('tracking', 'idm', 'search')
# NAVSIM comfort bounds (v1.1), used to count comfort violations per step.
COMFORT_LON_ACC = (-4.05, 2.40)
COMFORT_LAT_ACC = 4.89
COMFORT_YAW_RATE = 0.95
COMFORT_LON_JERK = 4.13
DEFAULT_MAX_STEPS = 200
ROUTE_END_MARGIN_M = 10.0

Policy = Callable[[SensorFrame, Scene], Trajectory]


END_CAUSES = ('goal', 'collision', 'off_road', 'env_terminated', 'time_limit', 'step_cap')
# How a collision happened, by the two headings (the usual crash typology): the ego drove into
# the vehicle ahead, was struck from behind, met an oncoming vehicle, or crossed one's path.
CRASH_KINDS = ('rear_end', 'struck_from_behind', 'head_on', 'crossing')
SAME_DIRECTION_RAD = np.deg2rad(35.0)
OPPOSITE_DIRECTION_RAD = np.deg2rad(145.0)
FAILURES = ('collision', 'off_road', 'env_terminated')
# What ends an episode as off-road: the ego's centre off highway-env's lanes and off the
# drivable area the scorer uses (lane polygons + junction patches), or off the lanes alone (the
# rule before the two were unified; the shipped selector's on-policy rollouts used it).
OFF_ROAD_RULES = ('drivable_area', 'lanes')


@dataclass
class EpisodeResult:
    """
    Outcome of one closed-loop episode (see SimSession for the semantics).

    end_cause: one of END_CAUSES, decided at step end_step. goal_reached: the ego covered the
    route target on the road without a collision. collision / off_road: the episode ended by
    that failure. route_completion: min(1, progress / target) at the end (progress along the
    route at the first failure; 1.0 exactly when the goal was reached). comfort_violations:
    steps breaking a NAVSIM comfort bound (from 0.1-s finite differences). terminated /
    truncated: the environment reported it at some step.
    """

    scenario: str
    seed: int
    collision: bool
    off_road: bool
    route_completion: float
    progress_m: float
    comfort_violations: int
    steps: int
    terminated: bool
    truncated: bool
    log: EpisodeLog | None = None
    extra: dict = field(default_factory=dict)
    goal_reached: bool = False
    end_cause: str = ''
    end_step: int = -1
    mean_speed_mps: float = 0.0
    p95_speed_mps: float = 0.0
    mean_speed_limit_mps: float = float('nan')   # of the lanes driven on (NaN: unknown)
    crash: dict = field(default_factory=dict)    # crash_geometry at a collision, else {}

    def as_dict(self) -> dict:
        """Plain-value summary (no log)."""
        return {k: getattr(self, k) for k in (
            'scenario', 'seed', 'collision', 'off_road', 'route_completion', 'progress_m',
            'comfort_violations', 'steps', 'terminated', 'truncated', 'goal_reached',
            'end_cause', 'end_step', 'mean_speed_mps', 'p95_speed_mps',
            'mean_speed_limit_mps', 'crash')} | {
                'off_lanes_step': self.extra.get('off_lanes_step', -1)}


def crash_geometry(arrays: dict, step: int) -> dict:
    """
    How the ego met the nearest other vehicle at frame `step` of a scene log (a collision's).

    Returns {'kind': one of CRASH_KINDS, 'ego_speed_mps', 'other_speed_mps', 'other_x_m',
    'other_y_m' (the other's centre in the ego frame: x ahead, y left), 'relative_yaw_rad'
    (its heading minus the ego's, in (-pi, pi])}; {} when no other vehicle is logged there.
    """
    k = int(np.clip(step, 0, len(arrays['ego_pose']) - 1))
    valid = np.asarray(arrays['agent_valid'][k], dtype=bool)
    if not valid.any():
        return {}
    ego = np.asarray(arrays['ego_pose'][k], dtype=np.float64)
    poses = np.asarray(arrays['agent_poses'][k], dtype=np.float64)
    dist = np.where(valid, np.hypot(*(poses[:, :2] - ego[:2]).T), np.inf)
    a = int(np.argmin(dist))
    x, y = inverse_transform_points(ego, poses[a, :2])
    rel_yaw = float(-wrap_angle(ego[2] - poses[a, 2]))     # in (-pi, pi]: head-on is +pi
    if abs(rel_yaw) <= SAME_DIRECTION_RAD:
        kind = 'rear_end' if x > 0 else 'struck_from_behind'
    elif abs(rel_yaw) >= OPPOSITE_DIRECTION_RAD:
        kind = 'head_on'
    else:
        kind = 'crossing'
    return {'kind': kind, 'ego_speed_mps': float(arrays['ego_speed'][k]),
            'other_speed_mps': float(np.hypot(*arrays['agent_velocities'][k][a])),
            'other_x_m': float(x), 'other_y_m': float(y), 'relative_yaw_rad': rel_yaw}


def _resolve(scenario: Any, suite: Suite | str | None) -> tuple[Callable, ScenarioSpec]:
    """(env factory, spec) for a suite scenario name, a ScenarioSpec, an env or a factory."""
    if isinstance(scenario, str):
        suite = suite if isinstance(suite, Suite) else load_suite(*(suite and [suite] or []))
        spec = suite.get(scenario)
    elif isinstance(scenario, ScenarioSpec):
        spec = scenario
    elif hasattr(scenario, 'reset') and hasattr(scenario, 'unwrapped'):
        env = scenario
        spec = ScenarioSpec(name=env.unwrapped.spec.id if env.unwrapped.spec else 'custom',
                            env_id=env.unwrapped.spec.id if env.unwrapped.spec else 'custom',
                            family='custom', expert='idm')
        _force_rates(env)
        return (lambda: env), spec
    elif callable(scenario):
        def factory():
            env = scenario()
            _force_rates(env)
            return env
        return factory, ScenarioSpec(name=getattr(scenario, '__name__', 'custom'),
                                     env_id='custom', family='custom')
    else:
        raise TypeError(f'scenario must be a suite name, ScenarioSpec, env or factory, '
                        f'got {type(scenario).__name__}')
    return (lambda: hw.make_env(spec.env_id, spec.config)), spec


def _force_rates(env: Any) -> None:
    cfg = env.unwrapped.config
    if cfg.get('simulation_frequency') != hw.SIM_HZ or cfg.get('policy_frequency') != hw.SIM_HZ:
        LOG.info('forcing simulation and policy frequency to %d Hz', hw.SIM_HZ)
        env.unwrapped.configure({'simulation_frequency': hw.SIM_HZ,
                                 'policy_frequency': hw.SIM_HZ})


class SimSession:
    """
    One highway-env episode at a time, stepped 0.1 s per `step()`.

    Outcome, checked after every step in this order; the first event decides it (cause and
    step) and ends the episode:
    - 'collision': the ego crashed;
    - 'off_road': the ego's centre is neither on a highway-env lane nor inside the drivable
      area the scorer's DAC uses (lane polygons and the junction patches of `sim.road_areas`),
      so open and closed loop share one road. Leaving the lane strips alone (the corner of a
      roundabout entry) is recorded as `off_lanes_step` without ending the episode
      (`off_road='lanes'` ends it there instead, the rule before the two were unified);
    - 'env_terminated': the env terminated the episode for another reason. Exception: the
      env's own success (intersection: arrived at the exit, merge: passed the merge end) is
      recorded as `env_goal_step` and the episode goes on, since it is not the route's end;
    - 'goal': the progress along the route reached the target: min(route length ahead - 10 m,
      reference speed x episode duration (step cap, or the env's `duration` if shorter)): the
      route's end, or the distance of an open route at the reference speed; the checks above
      passed, so the ego is on the road and uncrashed;
    - 'time_limit' (the env's duration) or 'step_cap' (max_steps).
    Progress is the arc length along the route since the start, updated while the ego is on a
    road segment of the route (leaving it, e.g. down an exit, freezes it). Route completion is
    min(1, progress / target) at the decision (1.0 exactly for 'goal').

    record_past_goal: keep simulating after 'goal' (the outcome stays as decided) until a
    failure, the time limit, the step cap or the route's end, so that the frames before the
    goal have a logged 4-s future (data generation).
    record_past_failure_steps: keep simulating this many steps after a collision or leaving the
    road (the outcome stays as decided; a crashed ego stands), so that the frames before the
    failure have a logged future (on-policy rollouts for selector labels).
    """

    def __init__(self, scenario: Any, suite: Suite | str | None = None,
                 ego_mode: str = 'tracking', lidar_cfg: LidarConfig | None = None,
                 camera_cfg: CameraConfig | None = None,
                 search_cfg: SearchConfig = SearchConfig(), max_steps: int | None = None,
                 split: str = '', record_past_goal: bool = False,
                 off_road: str = 'drivable_area', record_past_failure_steps: int = 0) -> None:
        if off_road not in OFF_ROAD_RULES:
            raise ValueError(f'off_road must be one of {OFF_ROAD_RULES}, got {off_road!r}')
        self.off_road_rule = off_road
        if ego_mode not in EGO_MODES + ('expert',):
            raise ValueError(f'ego_mode must be one of {EGO_MODES + ("expert",)}, '
                             f'got {ego_mode!r}')
        self._factory, self.spec = _resolve(scenario, suite)
        self.ego_mode = self.spec.expert if ego_mode == 'expert' else ego_mode
        self.lidar_cfg = lidar_cfg or LidarConfig()
        self.camera_cfg = camera_cfg or CameraConfig()
        self.search_cfg = search_cfg
        self.max_steps = int(max_steps or self.spec.max_steps or DEFAULT_MAX_STEPS)
        self.split = split
        self.record_past_goal = bool(record_past_goal)
        self.record_past_failure_steps = int(record_past_failure_steps)
        self.env = None
        self.seed = None

    # ---- lifecycle ----------------------------------------------------------------------------
    def reset(self, seed: int) -> None:
        """Start a new episode with this seed."""
        if self.env is None:
            self.env = self._factory()
        self.seed = int(seed)
        hw.restore_class_defaults()
        self.env.reset(seed=self.seed)
        u = self.env.unwrapped
        hw.speed_up_road(u.road)
        old = u.vehicle
        if self.ego_mode == 'idm':
            ego = make_idm_ego(old)
        else:
            ego = make_tracking_ego(old, hw.SIM_DT_S)
        hw.install_ego(u, ego)
        self.ego = ego
        # What the IDM expert drives towards, as in data generation (expert_plan).
        self._expert_speed = max(float(old.speed), 5.0)
        self._conflict = None
        self.steps = 0
        self.terminated = False
        self.truncated = False
        self.arrived = False
        self.env_goal_step = -1
        self.end_cause = ''
        self.end_step = -1
        self._stopped = False
        horizon_s = self.max_steps * hw.SIM_DT_S
        self.recorder = EpisodeRecorder(u, ego, {
            'scenario': self.spec.name, 'family': self.spec.family, 'env_id': self.spec.env_id,
            'seed': self.seed, 'split': self.split, 'expert': self.ego_mode,
            'config': self.spec.config, 'max_steps': self.max_steps,
        }, horizon_s=horizon_s)
        self.recorder.record(u, ego)
        self._log_cache = None
        self._road_map = _road_map(self.recorder)
        self._geometry = RoadGeometry.from_road(self._road_map)
        self.off_lanes_step = -1
        lanes = {ln.lane_id: ln for ln in self.recorder.lanes}
        self.route = Route(np.concatenate([lanes[x].centerline
                                           for x in self.recorder.route_lanes]))
        self._route_edges = {tuple(x.rsplit(':', 2)[:2]) for x in self.recorder.route_lanes}
        self._s_start = float(self.route.project(ego.position)[0])
        ref = self.spec.reference_speed_mps
        if ref is None:
            ref = 0.8 * float(getattr(ego.lane, 'speed_limit', 20.0) or 20.0)
        # The env may end the episode earlier than the step cap (its `duration`).
        duration = u.config.get('duration')
        drive_s = min(horizon_s, float(duration)) if duration else horizon_s
        ahead = self.route.length - self._s_start - ROUTE_END_MARGIN_M
        self._target_m = max(1.0, min(ahead, ref * drive_s))
        self.progress_m = 0.0
        self._final_progress_m = 0.0
        self.expert = None
        if self.ego_mode == 'search':
            conflict = conflict_mask(self.route, self.recorder.lanes, self.recorder.route_lanes,
                                     self.search_cfg.conflict_dist_m)
            self.expert = SearchExpert(self.route, self.search_cfg, conflict)

    @property
    def time_s(self) -> float:
        """Return the simulation time of the current frame [s]."""
        return self.steps * hw.SIM_DT_S

    @property
    def target_m(self) -> float:
        """Route progress [m] that counts as reaching the route's end (the goal)."""
        return self._target_m

    @property
    def goal_reached(self) -> bool:
        """Return whether the episode's outcome is 'goal'."""
        return self.end_cause == 'goal'

    @property
    def done(self) -> bool:
        """
        Return whether the outcome is decided.

        With record_past_goal or record_past_failure_steps: and the recording after it.
        """
        return self._stopped

    def set_trajectory(self, traj: Trajectory) -> None:
        """Track `traj` (ego frame relative to the current pose, or map frame) from now on."""
        if self.ego_mode != 'tracking':
            raise RuntimeError(f'set_trajectory needs ego_mode "tracking", not {self.ego_mode}')
        self.ego.set_trajectory(traj, self.time_s)

    def step(self) -> None:
        """Advance 0.1 s (the search expert replans every 0.5 s first)."""
        if self.done:
            raise RuntimeError('episode is over; call reset()')
        u = self.env.unwrapped
        if self.expert is not None and self.steps % 5 == 0:
            plan = self.expert.plan(u.road, self.ego, self.time_s)
            self.ego.set_trajectory(plan, self.time_s)
        terminated, truncated = hw.step_env(u)
        self.steps += 1
        self.terminated |= terminated
        self.truncated |= truncated
        self.recorder.record(u, self.ego)
        self._log_cache = None
        self._update_outcome(terminated, truncated)

    def _env_success(self) -> bool:
        """Whether the env's termination is its own success (not a failure of the ego)."""
        u = self.env.unwrapped
        if hasattr(u, 'has_arrived'):
            return bool(u.has_arrived(self.ego))
        from highway_env.envs.merge_env import MergeEnv

        # merge terminates on a crash or once the ego passed the merge's end.
        return isinstance(u, MergeEnv) and not self.ego.crashed

    def _update_outcome(self, terminated: bool, truncated: bool) -> None:
        u = self.env.unwrapped
        lane = self.ego.lane_index
        s_now = float(self.route.project(self.ego.position)[0])
        if lane is not None and tuple(lane[:2]) in self._route_edges:
            self.progress_m = max(0.0, s_now - self._s_start)
        success = terminated and self._env_success()
        if hasattr(u, 'has_arrived'):
            self.arrived = bool(u.has_arrived(self.ego))
        if success and self.env_goal_step < 0:
            self.env_goal_step = self.steps
        on_lanes = self.recorder.frames[-1]['on_road']
        if not on_lanes and self.off_lanes_step < 0:
            self.off_lanes_step = self.steps
        if self.ego.crashed:
            failure = 'collision'
        elif self._off_road(on_lanes, self.ego.position):
            failure = 'off_road'
        elif terminated and not success:
            failure = 'env_terminated'
        else:
            failure = ''
        limit = 'time_limit' if truncated else 'step_cap' if self.steps >= self.max_steps else ''
        if not self.end_cause:
            cause = failure or ('goal' if self.progress_m >= self._target_m else '') or limit
            if not cause:
                return
            self.end_cause, self.end_step = cause, self.steps
            self._final_progress_m = self.progress_m
            if cause == 'goal':
                self._stopped = not self.record_past_goal
            else:
                self._stopped = cause not in ('collision', 'off_road') \
                    or self.record_past_failure_steps <= 0
        if not self._stopped:
            # Recording past the outcome: it is decided, the log goes on.
            if self.end_cause == 'goal':
                self._stopped = bool(failure or limit
                                     or s_now >= self.route.length - ROUTE_END_MARGIN_M)
            else:
                self._stopped = bool(limit or self.steps
                                     >= self.end_step + self.record_past_failure_steps)

    def try_candidates(self, candidates: np.ndarray, horizon_steps: int
                       ) -> tuple[np.ndarray, np.ndarray]:
        """
        Try each ego-frame candidate (K, 8, 3): tracked from now, held unchanged, what happens.

        Each is driven in its own copy of the environment for up to horizon_steps steps against
        the reactive traffic; the session itself does not move. Returns (collision (K,),
        off_road (K,)) booleans: the copy's ego crashed, or its centre left the drivable area
        (the off-road rule of this session), within the horizon. Privileged (it reads the
        simulator): it labels training data, it is never a planner's input.
        """
        import copy

        if self.ego_mode != 'tracking':
            raise RuntimeError('try_candidates needs ego_mode "tracking"')
        candidates = np.asarray(candidates, dtype=np.float64)
        collision = np.zeros(len(candidates), dtype=bool)
        off_road = np.zeros(len(candidates), dtype=bool)
        for i, poses in enumerate(candidates):
            env = copy.deepcopy(self.env.unwrapped)
            ego = env.vehicle
            ego.set_trajectory(Trajectory(poses, POSE_DT_S), self.time_s)
            for _ in range(int(horizon_steps)):
                hw.step_env(env)
                if ego.crashed:
                    collision[i] = True
                    break
                if self._off_road(hw.any_lane_contains(env.road, ego.position), ego.position):
                    off_road[i] = True
                    break
        return collision, off_road

    def expert_plan(self) -> np.ndarray:
        """
        Return the scenario expert's plan from the current state: (8, 3) ego-frame poses.

        The expert (the spec's: IDM/MOBIL or the search expert) drives a copy of the
        environment from here for 4 s against the reactive traffic, as it drives when it
        generates the data (IDM towards the episode's starting target speed); its poses at
        0.5 s steps are the plan. The session itself does not move. Privileged: it labels
        on-policy states with what the expert would do there (DAgger).
        """
        import copy

        from pair_drive_ros.core.se2 import poses_to_local

        env = copy.deepcopy(self.env.unwrapped)
        old = env.vehicle
        start = np.array([*old.position, old.heading], np.float64)
        expert = None
        if self.spec.expert == 'idm':
            ego = hw.install_ego(env, make_idm_ego(old))
            ego.target_speed = self._expert_speed
        else:
            ego = old
            if self._conflict is None:
                self._conflict = conflict_mask(self.route, self.recorder.lanes,
                                               self.recorder.route_lanes,
                                               self.search_cfg.conflict_dist_m)
            expert = SearchExpert(self.route, self.search_cfg, self._conflict)
        step = int(round(POSE_DT_S / hw.SIM_DT_S))
        poses = []
        for i in range(step * NUM_POSES):
            if expert is not None and i % step == 0:      # it replans every 0.5 s, as in step()
                ego.set_trajectory(expert.plan(env.road, ego, self.time_s + i * hw.SIM_DT_S),
                                   self.time_s + i * hw.SIM_DT_S)
            hw.step_env(env)
            if (i + 1) % step == 0:
                poses.append([*ego.position, ego.heading])
        return poses_to_local(start, np.asarray(poses, np.float64))

    def on_drivable_area(self) -> bool:
        """Whether the ego's centre is on the scorer's drivable area (lanes, junction patches)."""
        return bool(self._road_map.contains(np.asarray(self.ego.position, dtype=np.float64))[0])

    def _off_road(self, on_lanes: bool, position) -> bool:
        """Return whether a centre on or off highway-env's lanes is off the road (the rule)."""
        if on_lanes:
            return False
        return self.off_road_rule == 'lanes' or not bool(
            self._road_map.contains(np.asarray(position, dtype=np.float64))[0])

    # ---- observations -------------------------------------------------------------------------
    def log(self) -> EpisodeLog:
        """Return the episode so far as an in-memory EpisodeLog (with outcome metadata)."""
        if self._log_cache is None:
            log = self.recorder.to_log(self._outcome())
            log._lanes = list(self.recorder.lanes)
            log._road_geometry = self._geometry
            self._log_cache = log
        return self._log_cache

    def scene(self) -> Scene:
        """Privileged Scene of the current frame (future agents at constant velocity)."""
        return self.log().scene(self.steps)

    def sensor_frame(self) -> SensorFrame:
        """Synthesized sensors of the current frame."""
        log = self.log()
        k = self.steps
        ego = log.ego_state(k)
        agents = log.agents(k)
        return SensorFrame(
            stamp_s=ego.stamp_s, ego=ego,
            lidar_points=simulate_lidar(ego.pose, agents, self._geometry, self.lidar_cfg),
            camera_image=render_camera(ego.pose, agents, self._geometry, self.camera_cfg),
            route=log.route(k), lidar_mount=np.array(self.lidar_cfg.mount),
            camera_mount=np.array(self.camera_cfg.mount), camera_fov_deg=self.camera_cfg.fov_deg,
            speed_limit_mps=log.speed_limit(k))

    # ---- metrics ------------------------------------------------------------------------------
    def _outcome(self) -> dict:
        decided = bool(self.end_cause)
        progress = self._final_progress_m if decided else self.progress_m
        goal = self.end_cause == 'goal'
        rc = 1.0 if goal else float(min(1.0, progress / self._target_m))
        return {'terminated': self.terminated, 'truncated': self.truncated,
                'goal_reached': goal, 'end_cause': self.end_cause, 'end_step': self.end_step,
                'env_goal_step': self.env_goal_step, 'arrived': self.arrived,
                'collision': self.end_cause == 'collision',
                'off_road': self.end_cause == 'off_road', 'progress_m': float(progress),
                'route_target_m': float(self._target_m), 'route_completion': rc,
                'steps': self.steps}

    def metrics(self) -> dict:
        """Outcome (see the class docstring), progress and comfort so far."""
        out = self._outcome()
        log = self.log()
        a = log.arrays
        acc = a['ego_accel']
        jerk = np.r_[0.0, np.diff(acc[:, 0]) / hw.SIM_DT_S]
        bad = ((acc[:, 0] <= COMFORT_LON_ACC[0]) | (acc[:, 0] >= COMFORT_LON_ACC[1])
               | (np.abs(acc[:, 1]) >= COMFORT_LAT_ACC)
               | (np.abs(a['ego_yaw_rate']) >= COMFORT_YAW_RATE)
               | (np.abs(jerk) >= COMFORT_LON_JERK))
        out['comfort_violations'] = int(bad[1:].sum())
        out['off_lanes_step'] = self.off_lanes_step
        out['crash'] = crash_geometry(a, out['end_step']) if out['collision'] else {}
        # Speed against the road's limit (overspeeding is reported per family).
        speed = np.asarray(a['ego_speed'], dtype=np.float64)
        lane = np.asarray(a['ego_lane'])
        limits = np.asarray(a['lane_speed_limit'], dtype=np.float64)
        known = (lane >= 0) & (lane < len(limits))
        limit = np.where(known, limits[np.clip(lane, 0, max(len(limits) - 1, 0))], np.nan) \
            if len(limits) else np.full(len(speed), np.nan)
        out['mean_speed_mps'] = float(speed.mean()) if len(speed) else 0.0
        out['p95_speed_mps'] = float(np.percentile(speed, 95)) if len(speed) else 0.0
        with np.errstate(invalid='ignore'):
            out['mean_speed_limit_mps'] = float(np.nanmean(limit)) if np.isfinite(limit).any() \
                else float('nan')
        return out


def _road_map(recorder: EpisodeRecorder):
    from pair_drive_ros.core.road import RoadMap
    from pair_drive_ros.sim.road_areas import connection_areas
    lanes = list(recorder.lanes)
    return RoadMap(lanes, connection_areas(lanes))


def run_episode(env_or_factory_or_scenario: Any, seed: int, policy: Policy | None,
                max_steps: int | None = None, replan_every: int = 5, record: bool = False,
                suite: Suite | str | None = None, ego_mode: str | None = None,
                lidar_cfg: LidarConfig | None = None, camera_cfg: CameraConfig | None = None,
                split: str = '', record_past_goal: bool = False,
                off_road: str = 'drivable_area') -> EpisodeResult:
    """
    Run one closed-loop episode.

    With a policy, the ego tracks its trajectories (replanned every `replan_every` steps);
    with policy None, the scenario's expert drives (ego_mode overrides either choice). The
    episode ends at its outcome (see SimSession); record_past_goal and off_road as in
    SimSession.
    """
    mode = ego_mode or ('tracking' if policy is not None else 'expert')
    session = SimSession(env_or_factory_or_scenario, suite=suite, ego_mode=mode,
                         lidar_cfg=lidar_cfg, camera_cfg=camera_cfg, max_steps=max_steps,
                         split=split, record_past_goal=record_past_goal, off_road=off_road)
    session.reset(seed)
    while not session.done:
        if policy is not None and session.ego_mode == 'tracking' \
                and session.steps % max(1, replan_every) == 0:
            traj = policy(session.sensor_frame(), session.scene())
            session.set_trajectory(traj)
        session.step()
    m = session.metrics()
    log = session.log() if record else None
    return EpisodeResult(scenario=session.spec.name, seed=int(seed), collision=m['collision'],
                         off_road=m['off_road'], route_completion=m['route_completion'],
                         progress_m=m['progress_m'], comfort_violations=m['comfort_violations'],
                         steps=m['steps'], terminated=m['terminated'], truncated=m['truncated'],
                         log=log, extra={'arrived': m['arrived'], 'expert': session.ego_mode,
                                         'env_goal_step': m['env_goal_step'],
                                         'off_lanes_step': m['off_lanes_step'],
                                         'route_target_m': m['route_target_m']},
                         goal_reached=m['goal_reached'], end_cause=m['end_cause'],
                         end_step=m['end_step'], mean_speed_mps=m['mean_speed_mps'],
                         p95_speed_mps=m['p95_speed_mps'],
                         mean_speed_limit_mps=m['mean_speed_limit_mps'], crash=m['crash'])
