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
Node parameters: one frozen dataclass per node, the same names as config/pair_drive.yaml.

`read_params(node, cls)` declares every field as a typed ROS parameter (default = the field
default, with a description, a range where one applies, read_only unless the node applies a
change at run time) and returns the frozen values; `yaml_params(path, node_name, cls)` reads the
same names from a params file without a graph (the launcher and the tests use it). Topics a node
uses are listed by `node_topics(executable)` so launch files can be checked against them.
"""

from dataclasses import dataclass, field, fields, replace
from pathlib import Path
import typing

import yaml

from pair_drive_ros.core.shipped import shipped_default
from pair_drive_ros.ros.carla import carla_topics
from pair_drive_ros.runtime.path_tracker import ControlGains
from pair_drive_ros.runtime.speed_governor import BESIDE_LANE_ACTIONS, SpeedGovernorConfig

# The shipped params file: the share directory of an install, else the source tree.
DEFAULT_CONFIG = shipped_default('config', 'pair_drive.yaml')


class ParamsError(ValueError):
    """A parameter file or value does not match the node's parameter dataclass."""


def _f(default, doc: str, lo: float | None = None, hi: float | None = None,
       dynamic: bool = False, choices: tuple = ()):
    """
    Return a parameter field: default, description, [lo, hi] range, choices.

    dynamic: a change is applied at run time; otherwise the parameter is read only (a change
    needs a restart).
    """
    return field(default=default, metadata={'doc': doc, 'range': (lo, hi), 'dynamic': dynamic,
                                            'choices': choices})


# Topic names are relative: they resolve in the node's namespace, so `__ns:=/car1` (or the
# launch files' `namespace` argument) moves the whole graph. /clock, /tf, /tf_static and
# /diagnostics stay global, as in every ROS 2 graph.

@dataclass(frozen=True)
class PerceptionParams:
    """perception_node: CARLA bridge topics in, features out (private topics, one stamp)."""

    camera_topic: str = _f('carla/ego_vehicle/rgb_front/image', 'front camera (sensor_msgs/Image)')
    lidar_topic: str = _f('carla/ego_vehicle/lidar', 'LiDAR (sensor_msgs/PointCloud2)')
    odometry_topic: str = _f('carla/ego_vehicle/odometry', 'ego odometry (nav_msgs/Odometry)')
    route_topic: str = _f('carla/ego_vehicle/waypoints', 'route (nav_msgs/Path, latched)')
    sync_slop_s: float = _f(0.025, 'stamps closer than this belong to one frame [s]', 0.0, 1.0)
    sync_queue: int = _f(10, 'messages kept per input while waiting for a match', 1, 1000)
    perception_config: str = _f('', "perception YAML, or the planner's model checkpoint (.pt) "
                                "to take its perception config from ('' = defaults)")
    # Sensor mounts in the ego frame (x, y, z [m], yaw [rad]); CARLA bridge defaults.
    lidar_mount: tuple = _f((0.0, 0.0, 2.4, 0.0), 'LiDAR mount in the ego frame: x, y, z [m], '
                            'yaw [rad] (used until /tf_static gives it)', dynamic=True)
    camera_mount: tuple = _f((2.0, 0.0, 2.0, 0.0), 'camera mount in the ego frame: x, y, z [m], '
                             'yaw [rad] (used until /tf_static gives it)', dynamic=True)
    camera_fov_deg: float = _f(90.0, 'horizontal field of view of the camera [deg]', 10.0,
                               170.0, dynamic=True)
    ego_frame: str = _f('ego_vehicle', 'TF frame of the ego vehicle')
    lidar_frame: str = _f('ego_vehicle/lidar', 'TF frame of the LiDAR (mount lookup)')
    camera_frame: str = _f('ego_vehicle/rgb_front', 'TF frame of the camera (mount lookup)')
    autostart: bool = _f(False, 'configure and activate by itself (unmanaged start)')


# The speed governor's defaults live in one place (runtime.speed_governor): the node runs it
# with adaptive cruise.
_GOVERNOR = SpeedGovernorConfig.adaptive_cruise()


@dataclass(frozen=True)
class PlannerParams:
    """planner_node: features in, ~/trajectory (Path) out."""

    planner: str = _f('pair', 'planner name (pair_drive_ros.policy.factory.PLANNERS)')
    il_checkpoint: str = _f('', "IL checkpoint ('' = the shipped one)")
    rl_checkpoint: str = _f('', "RL branch checkpoint ('' = the shipped one)")
    selector_checkpoint: str = _f('', "selector checkpoint ('' = the shipped one)")
    device: str = _f('cpu', 'torch device')
    torch_threads: int = _f(1, "torch intra-op threads (0 = torch's default)", 0, 256)
    # Python's GIL switch interval [s] for the process (0 = keep Python's 5 ms). The inference
    # thread runs many small torch ops; with sensor callbacks busy in other threads, each GIL
    # hand-over waited up to 5 ms, and a PaIR inference took ~0.8 s instead of ~18 ms.
    gil_switch_interval_s: float = _f(0.0002, "GIL switch interval [s] (0 = Python's 5 ms)",
                                      0.0, 0.1)
    warmup: bool = _f(True, 'one dummy inference when configured (first-call costs)')
    features_ns: str = _f('perception', "perception_node's private namespace (inputs)")
    output_frame: str = _f('map', "frame of the published Path: 'map' or the ego frame name",
                           dynamic=True)
    ego_frame: str = _f('ego_vehicle', 'TF frame of the ego vehicle')
    max_input_age_s: float = _f(0.3, 'older input -> stopping trajectory + ERROR [s]', 0.01,
                                60.0, dynamic=True)
    stop_decel_mps2: float = _f(2.5, 'deceleration of the stopping trajectory [m/s^2]', 0.1,
                                10.0, dynamic=True)
    diagnostics_period_s: float = _f(1.0, 'period of /diagnostics [s]', 0.05, 60.0)
    watchdog_period_s: float = _f(0.05, 'period of the stale-input watchdog [s]', 0.005, 10.0)
    pending_frames: int = _f(4, 'partial frames kept while joining by stamp', 1, 100)
    # The speed governor between the planner and the tracker (runtime.speed_governor).
    # On by default on the node (the deployed stack); `pair-drive evaluate` keeps it off unless
    # asked, so that the planners' own closed loop stays measurable.
    speed_governor: bool = _f(_GOVERNOR.enabled, 're-time each plan to the speed limit and '
                              "the route's curve speed (the path is kept)", dynamic=True)
    speed_limit_mps: float = _f(0.0, 'speed limit of the road [m/s] (0 = unknown: curve speed '
                                'only)', 0.0, 100.0, dynamic=True)
    governor_lateral_accel_mps2: float = _f(_GOVERNOR.lateral_accel_mps2, 'lateral '
                                            'acceleration that sets the curve speed [m/s^2]',
                                            0.1, 20.0, dynamic=True)
    governor_decel_mps2: float = _f(_GOVERNOR.decel_mps2, 'braking into a slower stretch '
                                    'ahead [m/s^2]', 0.1, 10.0, dynamic=True)
    governor_limit_factor: float = _f(_GOVERNOR.limit_factor, 'allowed speed over the speed '
                                      'limit (1 = at the limit)', 0.1, 3.0, dynamic=True)
    governor_keep_gap: bool = _f(_GOVERNOR.keep_gap, 'follow or stop behind LiDAR obstacles in '
                                 "the plan's corridor", dynamic=True)
    governor_corridor_half_width_m: float = _f(_GOVERNOR.corridor_half_width_m, 'obstacle '
                                               'cells this close to the path block it [m]',
                                               0.1, 10.0, dynamic=True)
    governor_lane_half_width_m: float = _f(_GOVERNOR.lane_half_width_m, 'obstacle cells this '
                                           "close to the route's centreline are the ego's lane "
                                           '(0 = no lane) [m]', 0.0, 10.0, dynamic=True)
    governor_min_lead_speed_mps: float = _f(_GOVERNOR.min_lead_speed_mps, 'in the lane only a '
                                            'lead moving at least this fast is followed (0 = '
                                            'any obstacle) [m/s]', 0.0, 40.0, dynamic=True)
    governor_beside_lane: bool = _f(_GOVERNOR.beside_lane, 'obstacles beside the lane count '
                                    'where the plan heads into them (false: only the lead in '
                                    'the lane, pure adaptive cruise)', dynamic=True)
    governor_beside_lane_action: str = _f(_GOVERNOR.beside_lane_action, 'where the plan heads '
                                          'into something beside the lane: stop short of it, or '
                                          "keep_lane (drive the route's lane at the plan's "
                                          'speeds)', dynamic=True, choices=BESIDE_LANE_ACTIONS)
    governor_standstill_gap_m: float = _f(_GOVERNOR.standstill_gap_m, 'gap from the ego centre '
                                          'to an obstacle at a standstill [m]', 0.5, 50.0,
                                          dynamic=True)
    governor_headway_s: float = _f(_GOVERNOR.headway_s, "extra gap per m/s of the lead's speed "
                                   '[s]', 0.0, 10.0, dynamic=True)
    autostart: bool = _f(False, 'configure and activate by itself (unmanaged start)')

    def governor(self) -> SpeedGovernorConfig:
        """Return the speed governor these parameters describe."""
        return SpeedGovernorConfig(enabled=self.speed_governor,
                                   lateral_accel_mps2=self.governor_lateral_accel_mps2,
                                   decel_mps2=self.governor_decel_mps2,
                                   limit_factor=self.governor_limit_factor,
                                   keep_gap=self.governor_keep_gap,
                                   corridor_half_width_m=self.governor_corridor_half_width_m,
                                   lane_half_width_m=self.governor_lane_half_width_m,
                                   min_lead_speed_mps=self.governor_min_lead_speed_mps,
                                   beside_lane=self.governor_beside_lane,
                                   beside_lane_action=self.governor_beside_lane_action,
                                   standstill_gap_m=self.governor_standstill_gap_m,
                                   headway_s=self.governor_headway_s)


# The controller defaults live in one place (runtime.path_tracker.ControlGains).
_GAINS = ControlGains()


@dataclass(frozen=True)
class TrackerParams:
    """tracker_node: Path + Odometry -> vehicle control at `rate_hz`."""

    path_topic: str = _f('planner/trajectory', 'planned path (nav_msgs/Path)')
    odometry_topic: str = _f('carla/ego_vehicle/odometry', 'ego odometry (nav_msgs/Odometry)')
    role_name: str = _f('ego_vehicle', 'CARLA role name of the ego (control topic)')
    control_type: str = _f('auto', 'control message type', choices=('auto', 'carla',
                                                                    'ackermann', 'twist'))
    rate_hz: float = _f(20.0, 'control rate [Hz]', 1.0, 200.0)
    wheelbase_m: float = _f(_GAINS.wheelbase_m, "wheelbase [m] (CARLA's Lincoln MKZ)", 0.5, 10.0,
                            dynamic=True)
    max_steer_rad: float = _f(_GAINS.max_steer_rad, 'steering angle at steer = 1 [rad]',
                              0.1, 1.6, dynamic=True)
    min_lookahead_m: float = _f(_GAINS.min_lookahead_m, 'pure pursuit minimum lookahead [m]',
                                0.1, 50.0, dynamic=True)
    lookahead_time_s: float = _f(_GAINS.lookahead_time_s, 'pure pursuit lookahead time [s]',
                                 0.0, 5.0, dynamic=True)
    speed_kp: float = _f(_GAINS.speed_kp, 'throttle per m/s of speed error',
                         0.0, 10.0, dynamic=True)
    speed_ki: float = _f(_GAINS.speed_ki, 'integral gain of the speed control',
                         0.0, 10.0, dynamic=True)
    max_throttle: float = _f(_GAINS.max_throttle, 'throttle limit', 0.0, 1.0, dynamic=True)
    brake_gain: float = _f(_GAINS.brake_gain, 'brake per m/s of overspeed',
                           0.0, 10.0, dynamic=True)
    path_timeout_s: float = _f(0.5, 'older path (wall time) -> brake [s]', 0.01, 60.0,
                               dynamic=True)


@dataclass(frozen=True)
class SimBridgeParams:
    """sim_bridge_node: the embedded simulator behind CARLA bridge topics."""

    scenarios: str = _f('highway:11000', 'comma-separated scenario:seed list, run in order')
    suite: str = _f('', "scenario suite YAML ('' = the shipped config/scenarios.yaml)")
    split: str = _f('test', 'suite split of the seeds', choices=('train', 'val', 'test'))
    max_steps: int = _f(0, "steps per episode (0 = the scenario's own cap)", 0, 100000,
                        dynamic=True)
    role_name: str = _f('ego_vehicle', 'CARLA role name of the ego (topic and frame names)')
    path_topic: str = _f('planner/trajectory', 'path the ego follows (nav_msgs/Path)')
    tick_mode: str = _f('lockstep', 'lockstep: tick when the planner answered; rate',
                        choices=('lockstep', 'rate'))
    tick_rate_hz: float = _f(10.0, "tick rate in 'rate' mode [Hz]", 0.1, 1000.0)
    answer_timeout_s: float = _f(2.0, 'lockstep: tick anyway after this wall time [s]', 0.01,
                                 600.0, dynamic=True)
    start_time_s: float = _f(1.0, 'sim time of the first frame [s]', 0.0, 1e9)
    camera_width: int = _f(256, 'camera image width [px]', 16, 4096)
    camera_height: int = _f(128, 'camera image height [px]', 16, 4096)
    publish_tf: bool = _f(True, 'map -> ego on /tf and the sensor mounts on /tf_static')
    loop: bool = _f(False, 'restart the scenario list when done', dynamic=True)


_TRUE, _FALSE = ('1', 'true', 'yes', 'on'), ('0', 'false', 'no', 'off')


def coerce_value(value, default, name: str):
    """Cast a parameter value to the type of the dataclass default."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
                return value.strip().lower() in _TRUE
            if isinstance(value, (bool, int)):
                return bool(value)
            raise ValueError(value)
        if isinstance(default, tuple):
            if isinstance(value, str) or len(value) != len(default):
                raise ValueError(value)
            return tuple(float(v) for v in value)
        if isinstance(default, (int, float)) and isinstance(value, bool):
            raise ValueError(value)
        return type(default)(value)
    except (TypeError, ValueError) as err:
        raise ParamsError(f'parameter {name}: cannot use {value!r} as '
                          f'{type(default).__name__}') from err


def check_value(f, value) -> None:
    """Raise ParamsError when `value` is outside the field's range or choices."""
    lo, hi = f.metadata.get('range', (None, None))
    if lo is not None and not lo <= value <= hi:
        raise ParamsError(f'parameter {f.name}: {value!r} is outside [{lo}, {hi}]')
    choices = f.metadata.get('choices', ())
    if choices and value not in choices:
        raise ParamsError(f'parameter {f.name}: {value!r} is not one of {list(choices)}')


def params_from_dict(cls, data: dict | None):
    """Build a params dataclass from a dict of values; unknown keys raise ParamsError."""
    data = dict(data or {})
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(names) - {'use_sim_time'})
    if unknown:
        raise ParamsError(f'unknown {cls.__name__} parameters: {unknown}')
    values = {n: coerce_value(data[n], f.default, n) for n, f in names.items() if n in data}
    for n, v in values.items():
        check_value(names[n], v)
    return cls(**values)


def typed_values(cls, data: dict | None) -> dict:
    """
    Every parameter of `cls` with its type's value (the defaults where `data` has none).

    What a launcher passes to a node: ints where the node declares ints, floats where it
    declares floats, lists for arrays (a typed ROS parameter refuses any other type).
    """
    params = params_from_dict(cls, data)
    out = {f.name: getattr(params, f.name) for f in fields(cls)}
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def descriptor(f):
    """rcl_interfaces/ParameterDescriptor of a params field: type, description, range."""
    from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
    from rcl_interfaces.msg import ParameterType

    default = f.default
    kind = (ParameterType.PARAMETER_BOOL if isinstance(default, bool)
            else ParameterType.PARAMETER_INTEGER if isinstance(default, int)
            else ParameterType.PARAMETER_DOUBLE if isinstance(default, float)
            else ParameterType.PARAMETER_DOUBLE_ARRAY if isinstance(default, tuple)
            else ParameterType.PARAMETER_STRING)
    dynamic = f.metadata.get('dynamic', False)
    desc = ParameterDescriptor(name=f.name, type=kind, read_only=not dynamic,
                               description=f.metadata.get('doc', ''))
    choices = f.metadata.get('choices', ())
    notes = [f'one of: {", ".join(choices)}'] if choices else []
    notes.append('applied at run time' if dynamic else 'read only: needs a restart')
    desc.additional_constraints = '; '.join(notes)
    lo, hi = f.metadata.get('range', (None, None))
    if lo is not None and kind == ParameterType.PARAMETER_INTEGER:
        desc.integer_range = [IntegerRange(from_value=int(lo), to_value=int(hi), step=0)]
    elif lo is not None:
        desc.floating_point_range = [FloatingPointRange(from_value=float(lo),
                                                        to_value=float(hi), step=0.0)]
    return desc


def read_params(node, cls, on_change=None):
    """
    Declare every field of `cls` on `node` (typed, described, ranged) and return the values.

    Fields marked dynamic may be set while the node runs: the change is checked (type, range,
    choices: a bad value is refused with its reason), then `node.params` is replaced by the new
    frozen values and `on_change(old, new)` is called. The others are read only.
    """
    values = {}
    for f in fields(cls):
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        if not node.has_parameter(f.name):
            node.declare_parameter(f.name, default, descriptor(f))
        values[f.name] = node.get_parameter(f.name).value
    params = params_from_dict(cls, values)
    _watch(node, cls, on_change)
    return params


def _watch(node, cls, on_change) -> None:
    from rcl_interfaces.msg import SetParametersResult

    names = {f.name: f for f in fields(cls)}

    def check(parameters) -> SetParametersResult:
        try:
            for param in parameters:
                if param.name in names:
                    f = names[param.name]
                    check_value(f, coerce_value(param.value, f.default, f.name))
        except ParamsError as err:
            return SetParametersResult(successful=False, reason=str(err))
        return SetParametersResult(successful=True)

    def apply(parameters) -> None:
        changes = {p.name: coerce_value(p.value, names[p.name].default, p.name)
                   for p in parameters if p.name in names}
        if not changes or not hasattr(node, 'params'):
            return
        old = node.params
        node.params = replace(old, **changes)
        node.get_logger().info('parameters changed: ' + ', '.join(
            f'{k}={v!r}' for k, v in changes.items()))
        if on_change is not None:
            on_change(old, node.params)

    node.add_on_set_parameters_callback(check)
    node.add_post_set_parameters_callback(apply)


def namespaced_sections(node_name: str, namespace: str = '') -> tuple:
    """Params-file keys that address node `node_name` in `namespace`, lowest priority first."""
    ns = '/' + namespace.strip('/') if namespace.strip('/') else ''
    keys = ['/**', '/**/' + node_name, node_name, '/' + node_name]
    if ns:
        keys += [ns.lstrip('/') + '/' + node_name, ns + '/' + node_name]
    return tuple(keys)


def yaml_params(path: str | Path, node_name: str, cls=None,
                namespace: str = '') -> dict | typing.Any:
    """
    `ros__parameters` of `node_name` in a params file (wildcards merged first).

    Returns the dict, or the params dataclass when `cls` is given.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        raise ParamsError(f'cannot read params file {path}: {err}') from err
    if not isinstance(data, dict):
        raise ParamsError(f'{path}: expected a mapping of node names')
    merged = {}
    for key in namespaced_sections(node_name, namespace):
        section = data.get(key) or {}
        params = section.get('ros__parameters') if isinstance(section, dict) else section
        if not isinstance(params, (dict, type(None))):
            raise ParamsError(f'{path}: section {key!r} needs a ros__parameters mapping')
        merged.update(params or {})
    return merged if cls is None else params_from_dict(cls, merged)


def parameter_overrides(values: dict) -> list:
    """Return rclpy Parameters for Node(parameter_overrides=...) from a plain dict."""
    from rclpy.parameter import Parameter

    return [Parameter(k, value=list(v) if isinstance(v, tuple) else v) for k, v in values.items()]


# Private outputs of each node (relative to the node name) and its topic-valued parameters.
PERCEPTION_OUTPUTS = ('lidar_bev', 'camera', 'route_raster', 'ego_status', 'ego', 'route')
PLANNER_OUTPUTS = ('trajectory', 'il_trajectory', 'candidates')
# Latched: the perception config the features were built with (JSON); the planner checks it
# against its model's and refuses to plan on features of another configuration.
PERCEPTION_CONFIG_TOPIC = 'perception_config'
NODE_NAMES = {'perception_node': 'perception', 'planner_node': 'planner',
              'tracker_node': 'tracker', 'sim_bridge_node': 'sim_bridge'}
PARAMS_CLASSES = {'perception_node': PerceptionParams, 'planner_node': PlannerParams,
                  'tracker_node': TrackerParams, 'sim_bridge_node': SimBridgeParams}


def resolve(topic: str, namespace: str = '') -> str:
    """Absolute name of a topic in `namespace` (relative names are prefixed, '~/' kept out)."""
    if topic.startswith('/'):
        return topic
    ns = namespace.strip('/')
    return f'/{ns}/{topic}' if ns else f'/{topic}'


def node_topics(executable: str, params=None, name: str | None = None,
                namespace: str = '') -> set[str]:
    """Every topic (absolute name in `namespace`) the node uses with these parameters."""
    cls = PARAMS_CLASSES[executable]
    p = params or cls()
    name = name or NODE_NAMES[executable]
    outputs = {'perception_node': PERCEPTION_OUTPUTS + (PERCEPTION_CONFIG_TOPIC,),
               'planner_node': PLANNER_OUTPUTS,
               'sim_bridge_node': ('episode_metrics',)}.get(executable, ())
    private = {f'{name}/{t}' for t in outputs}
    if executable == 'perception_node':
        used = {p.camera_topic, p.lidar_topic, p.odometry_topic, p.route_topic}
    elif executable == 'planner_node':
        used = {f'{p.features_ns}/{t}' for t in PERCEPTION_OUTPUTS + (PERCEPTION_CONFIG_TOPIC,)} \
            | {'/diagnostics'}
    elif executable == 'tracker_node':
        c = carla_topics(p.role_name, relative=True)
        used = {p.path_topic, p.odometry_topic, c['control'], c['ackermann'], c['twist'],
                '/diagnostics'}
    else:
        c = carla_topics(p.role_name, relative=True)
        used = {p.path_topic, c['camera'], c['camera_info'], c['lidar'], c['odometry'],
                c['route'], c['speedometer'], c['markers'], '/clock', '/tf', '/tf_static'}
    return {resolve(t, namespace) for t in used | private}
