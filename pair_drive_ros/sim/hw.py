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
Adapters between highway-env 1.12.1 objects and the core types.

Conventions: the map frame is highway-env's world frame read as a right-handed x, y frame; a pose
is the highway-env vehicle position (the box centre) and heading. Lane ids are 'from:to:index'.
highway-env's `line_types[0]` lies at lateral -w/2 (right of the driving direction in this
frame) and `line_types[1]` at +w/2 (left).
"""

import logging
from typing import Any
import warnings

import numpy as np

from pair_drive_ros.core.road import Lane, LINE_CONTINUOUS, LINE_NONE, LINE_STRIPED

LOG = logging.getLogger(__name__)

SIM_HZ = 10
SIM_DT_S = 1.0 / SIM_HZ
# highway-env LineType values: NONE 0, STRIPED 1, CONTINUOUS 2, CONTINUOUS_LINE 3.
_LINE_NAMES = {0: LINE_NONE, 1: LINE_STRIPED, 2: LINE_CONTINUOUS, 3: LINE_CONTINUOUS}
LANE_SAMPLE_STEP_M = 2.0
LONG_LANE_M = 400.0
# The single-ego driving envs registered by highway-env 1.12.1 (all run here, expert or planner;
# not parking, a goal-conditioned task, nor the multi-agent intersection).
DRIVING_ENV_IDS = (
    'exit-v0', 'exit-v1', 'highway-v0', 'highway-fast-v0', 'intersection-v0', 'intersection-v1',
    'intersection-v2', 'lane-keeping-v0', 'merge-v0', 'merge-v1', 'merge-generic-v0',
    'merge-generic-v1', 'racetrack-v0', 'racetrack-v1', 'racetrack-large-v0',
    'racetrack-large-v1', 'racetrack-oval-v0', 'racetrack-oval-v1', 'roundabout-v0',
    'roundabout-v1', 'roundabout-generic-v0', 'roundabout-generic-v1', 'two-way-v0',
    'u-turn-v0', 'u-turn-v1')


# highway-env's intersection env sets IDMVehicle.DISTANCE_WANTED, COMFORT_ACC_MAX and
# COMFORT_ACC_MIN on the *class* when it resets, which changes every later episode of any
# scenario in the same process. We restore the import-time values before each reset.
_MUTATED_CLASS_ATTRS = ('DISTANCE_WANTED', 'COMFORT_ACC_MAX', 'COMFORT_ACC_MIN')


def _behavior_classes() -> list:
    from highway_env.vehicle import behavior

    return [c for c in vars(behavior).values()
            if isinstance(c, type) and issubclass(c, behavior.IDMVehicle)]


def _snapshot_class_defaults() -> tuple:
    missing = object()
    return tuple((cls, name, cls.__dict__.get(name, missing), missing)
                 for cls in _behavior_classes() for name in _MUTATED_CLASS_ATTRS)


_CLASS_DEFAULTS = _snapshot_class_defaults()


def restore_class_defaults() -> None:
    """Undo highway-env's class-attribute changes from earlier episodes (see above)."""
    for cls, name, value, missing in _CLASS_DEFAULTS:
        if value is missing:
            if name in cls.__dict__:
                delattr(cls, name)
        else:
            setattr(cls, name, value)


def make_env(env_id: str, config: dict | None = None) -> Any:
    """Create a highway-env environment running at 10 Hz simulation and policy rates."""
    import gymnasium as gym
    import highway_env  # noqa: F401  (registers the environments)

    cfg = dict(config or {})
    cfg['simulation_frequency'] = SIM_HZ
    cfg['policy_frequency'] = SIM_HZ
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        return gym.make(env_id, config=cfg)


def step_env(env_u: Any) -> tuple[bool, bool]:
    """
    Advance an env by one policy step without an action; return (terminated, truncated).

    `env.step` computes the observation and the reward, which read the ego's action and the
    attributes of highway-env's own vehicle classes (racetrack: the norm of the action; two-way,
    u-turn: `speed_index`, `target_speeds`); the ego here is driven by its own controller, so we
    step the road directly, as `AbstractEnv.step` does, and compute neither. Post-step work of
    the 1.12.1 envs that overrides `step`: the intersection clears arrived vehicles and spawns
    new ones (replicated here); exit adds an info entry and lane-keeping updates reward
    bookkeeping and its action-driven observer (neither needed).
    """
    env_u.time += 1.0 / env_u.config['policy_frequency']
    env_u._simulate(None)
    if hasattr(env_u, '_clear_vehicles') and hasattr(env_u, '_spawn_vehicle'):
        env_u._clear_vehicles()
        env_u._spawn_vehicle(spawn_probability=env_u.config['spawn_probability'])
    return bool(env_u._is_terminated()), bool(env_u._is_truncated())


def lane_id(index: tuple) -> str:
    """Lane id string of a highway-env lane index (from, to, i)."""
    return f'{index[0]}:{index[1]}:{0 if index[2] is None else int(index[2])}'


def sample_lane(lane: Any, s0: float, s1: float, step: float = LANE_SAMPLE_STEP_M
                ) -> tuple[np.ndarray, np.ndarray]:
    """Centreline points (P, 2) and widths (P,) of a highway-env lane over [s0, s1]."""
    n = max(2, int(np.ceil((s1 - s0) / step)) + 1)
    s = np.linspace(s0, s1, n)
    pts = np.array([lane.position(si, 0.0) for si in s], dtype=np.float64)
    widths = np.array([lane.width_at(si) for si in s], dtype=np.float64)
    return pts, widths


def road_lanes(road: Any, keep_xy: np.ndarray | None = None, margin_m: float = 300.0
               ) -> list[Lane]:
    """
    All lanes of a highway-env road as core Lanes.

    Lanes longer than LONG_LANE_M (highway-env highways are 10 km) are cropped to the arc-length
    range covered by `keep_xy` (N, 2) plus `margin_m`.
    """
    lanes = []
    for a, tos in road.network.graph.items():
        for b, lane_list in tos.items():
            for i, lane in enumerate(lane_list):
                s0, s1 = 0.0, float(lane.length)
                if s1 > LONG_LANE_M and keep_xy is not None and len(keep_xy):
                    s = np.array([lane.local_coordinates(p)[0] for p in keep_xy])
                    s0 = float(np.clip(s.min() - margin_m, 0.0, s1))
                    s1 = float(np.clip(s.max() + margin_m, s0 + 1.0, s1))
                pts, widths = sample_lane(lane, s0, s1)
                types = tuple(lane.line_types or (1, 1))
                lanes.append(Lane(
                    lane_id=lane_id((a, b, i)), centerline=pts, widths=widths,
                    left_line=_LINE_NAMES.get(int(types[1]), LINE_STRIPED),
                    right_line=_LINE_NAMES.get(int(types[0]), LINE_STRIPED),
                    speed_limit_mps=float(lane.speed_limit or 30.0),
                    in_intersection=str(a).startswith('ir') and str(b).startswith('il')))
    return lanes


def route_chain(road: Any, vehicle: Any, max_len: int = 50) -> list[tuple[str, str, int]]:
    """
    Return the ego's lane chain: its planned route (if any), extended along unique successors.

    Lane indices left open by highway-env (None) are resolved to the lane closest to the end of
    the previous lane, as highway-env's `next_lane` does.
    """
    graph = road.network.graph
    chain = [tuple(vehicle.lane_index)]
    planned = [tuple(r) for r in (getattr(vehicle, 'route', None) or [])]
    # Drop planned edges up to and including the current one.
    for k, r in enumerate(planned):
        if r[:2] == chain[0][:2]:
            planned = planned[k + 1:]
            break
    while len(chain) < max_len:
        a, b, i = chain[-1]
        if planned:
            nxt = planned.pop(0)
            c, j = nxt[1], nxt[2]
        else:
            succ = list(graph.get(b, {}).keys())
            if len(succ) != 1:
                break
            c, j = succ[0], None
        if c not in graph.get(b, {}):
            break
        lanes = graph[b][c]
        if j is None:
            end = road.network.get_lane((a, b, i if i is not None else 0)).position(
                road.network.get_lane((a, b, i if i is not None else 0)).length, 0.0)
            j = int(np.argmin([ln.distance(end) for ln in lanes]))
        nxt_idx = (b, c, int(min(j, len(lanes) - 1)))
        prev_lane = road.network.get_lane((a, b, i if i is not None else 0))
        nxt_lane = road.network.get_lane(nxt_idx)
        turn = np.cos(prev_lane.heading_at(prev_lane.length) - nxt_lane.heading_at(0.0))
        # Stop at a U-turn (a node that ends one road and starts the opposite one) or a loop.
        if turn < 0.0 or any(e[:2] == (b, c) for e in chain):
            break
        chain.append(nxt_idx)
    return [(a, b, 0 if i is None else int(i)) for a, b, i in chain]


def install_ego(env_u: Any, vehicle: Any) -> Any:
    """Put `vehicle` in place of the controlled vehicle (road list and controlled_vehicles)."""
    old = env_u.vehicle
    idx = env_u.road.vehicles.index(old)
    env_u.road.vehicles[idx] = vehicle
    env_u.controlled_vehicles = [vehicle]
    return vehicle


def any_lane_contains(road: Any, xy: np.ndarray, margin: float = 0.0) -> bool:
    """Whether a point lies on any lane (highway-env's `on_road` only checks the current lane)."""
    return any(ln.on_lane(xy, margin=margin) for ln in road.network.lanes_list())


def _fast_regulated_road_class():
    """
    Return a RegulatedRoad whose right-of-way check predicts each vehicle once per call.

    highway-env's `enforce_road_rules` predicts both vehicles of every pair (O(N^2) predictions,
    the bulk of an intersection step); the predictions depend on the vehicle only, so caching
    them per call gives the same yielding decisions at a fraction of the cost.
    """
    from highway_env import utils
    from highway_env.road.regulation import RegulatedRoad
    from highway_env.vehicle.controller import ControlledVehicle, MDPVehicle

    class FastRegulatedRoad(RegulatedRoad):
        def enforce_road_rules(self) -> None:
            for v in self.vehicles:
                if getattr(v, 'is_yielding', False):
                    if v.yield_timer >= self.YIELD_DURATION * self.REGULATION_FREQUENCY:
                        v.target_speed = v.lane.speed_limit
                        delattr(v, 'color')
                        v.is_yielding = False
                    else:
                        v.yield_timer += 1
            times = np.arange(0.25, 3, 0.25)
            preds = [v.predict_trajectory_constant_speed(times) for v in self.vehicles]
            n = len(self.vehicles)
            for i in range(n - 1):
                for j in range(i + 1, n):
                    v1, v2 = self.vehicles[i], self.vehicles[j]
                    if not _conflict(v1, v2, preds[i], preds[j], utils):
                        continue
                    yielding = self.respect_priorities(v1, v2)
                    if (yielding is not None and isinstance(yielding, ControlledVehicle)
                            and not isinstance(yielding, MDPVehicle)):
                        yielding.color = self.YIELDING_COLOR
                        yielding.target_speed = 0
                        yielding.is_yielding = True
                        yielding.yield_timer = 0

    return FastRegulatedRoad


def _conflict(v1, v2, pred1, pred2, utils) -> bool:
    for p1, h1, p2, h2 in zip(pred1[0], pred1[1], pred2[0], pred2[1]):
        if np.linalg.norm(p2 - p1) > v1.LENGTH:
            continue
        if utils.rotated_rectangles_intersect((p1, 1.5 * v1.LENGTH, 0.9 * v1.WIDTH, h1),
                                              (p2, 1.5 * v2.LENGTH, 0.9 * v2.WIDTH, h2)):
            return True
    return False


def _fast_network_class():
    """
    Return a RoadNetwork whose closest-lane search skips lanes that cannot be closest.

    Same result as highway-env's exhaustive search (argmin of `distance_with_heading`, ties to the
    first lane in graph order): a lane is skipped only when a lower bound of its distance, the
    distance to a circle enclosing its centreline, exceeds the best distance found. The exhaustive
    search is a third of an intersection step.
    """
    from highway_env.road.road import RoadNetwork

    class FastRoadNetwork(RoadNetwork):
        def _bounds(self):
            cache = getattr(self, '_lane_bounds', None)
            if cache is None:
                items, centres, radii = [], [], []
                for a, to_dict in self.graph.items():
                    for b, lanes in to_dict.items():
                        for i, lane in enumerate(lanes):
                            s = np.linspace(0.0, lane.length, 33)
                            pts = np.array([lane.position(si, 0.0) for si in s])
                            c = 0.5 * (pts.min(0) + pts.max(0))
                            # Chord sampling error of an arc is at most length^2 / (8 R 32^2).
                            r = float(np.linalg.norm(pts - c, axis=1).max()) + lane.length / 64
                            items.append(((a, b, i), lane))
                            centres.append(c)
                            radii.append(r)
                cache = (items, np.array(centres), np.array(radii))
                self._lane_bounds = cache
            return cache

        def get_closest_lane_index(self, position, heading=None):
            items, centres, radii = self._bounds()
            lower = np.maximum(np.linalg.norm(centres - position, axis=1) - radii, 0.0)
            best, best_key = None, None
            for k in np.argsort(lower, kind='stable'):
                if best_key is not None and lower[k] > best_key[0]:
                    break
                d = items[k][1].distance_with_heading(position, heading)
                key = (d, int(k))
                if best_key is None or key < best_key:
                    best, best_key = items[k][0], key
            return best

    return FastRoadNetwork


def speed_up_road(road: Any) -> None:
    """Swap the road's and network's classes for faster ones with the same behaviour."""
    from highway_env.road.regulation import RegulatedRoad
    from highway_env.road.road import RoadNetwork

    if type(road) is RegulatedRoad:
        road.__class__ = _fast_regulated_road_class()
    if type(road.network) is RoadNetwork:
        road.network.__class__ = _fast_network_class()
