"""Node parameters: one frozen dataclass per node, the same names as config/pair_drive.yaml.

`read_params(node, cls)` declares every field as a ROS parameter (default = the field default) and
returns the frozen values; `yaml_params(path, node_name, cls)` reads the same names from a params
file without a graph (the launcher and the tests use it). Topics a node uses are listed by
`node_topics(executable)` so launch files can be checked against them.
"""

from dataclasses import dataclass, fields
from pathlib import Path
import typing

import yaml

from pair_drive_ros.ros.carla import carla_topics

DEFAULT_CONFIG = Path(__file__).resolve().parents[2] / 'config' / 'pair_drive.yaml'


class ParamsError(ValueError):
    """A parameter file or value does not match the node's parameter dataclass."""


@dataclass(frozen=True)
class PerceptionParams:
    """perception_node: CARLA bridge topics in, features out (private topics, one stamp)."""

    camera_topic: str = '/carla/ego_vehicle/rgb_front/image'
    lidar_topic: str = '/carla/ego_vehicle/lidar'
    odometry_topic: str = '/carla/ego_vehicle/odometry'
    route_topic: str = '/carla/ego_vehicle/waypoints'
    sync_slop_s: float = 0.025           # stamps closer than this belong to one frame [s]
    sync_queue: int = 10                 # messages kept per input while waiting for a match
    perception_config: str = ''          # perception YAML ('' = PerceptionConfig defaults)
    # Sensor mounts in the ego frame (x, y, z [m], yaw [rad]); CARLA bridge defaults.
    lidar_mount: tuple = (0.0, 0.0, 2.4, 0.0)
    camera_mount: tuple = (2.0, 0.0, 2.0, 0.0)
    camera_fov_deg: float = 90.0
    ego_frame: str = 'ego_vehicle'


@dataclass(frozen=True)
class PlannerParams:
    """planner_node: features in, ~/trajectory (Path) out."""

    planner: str = 'pair'   # the default planner (config/pair_drive.yaml holds the same value)
    il_checkpoint: str = ''
    rl_checkpoint: str = ''
    selector_checkpoint: str = ''
    device: str = 'cpu'
    torch_threads: int = 1               # torch intra-op threads (0 = torch's default)
    # Python's GIL switch interval [s] for the process (0 = keep Python's 5 ms). The inference
    # thread runs many small torch ops; with sensor callbacks busy in other threads, each GIL
    # hand-over waited up to 5 ms, and a PaIR inference took ~0.8 s instead of ~18 ms.
    gil_switch_interval_s: float = 0.0002
    warmup: bool = True                  # one dummy inference at start-up (first-call costs)
    features_ns: str = '/perception'     # perception_node's private namespace
    output_frame: str = 'map'            # 'map' or the ego frame name
    ego_frame: str = 'ego_vehicle'
    max_input_age_s: float = 0.3         # older input -> stopping trajectory + ERROR
    stop_decel_mps2: float = 2.5         # comfortable deceleration of the stopping trajectory
    diagnostics_period_s: float = 1.0
    watchdog_period_s: float = 0.05
    pending_frames: int = 4              # partial frames kept while joining by stamp


@dataclass(frozen=True)
class TrackerParams:
    """tracker_node: Path + Odometry -> vehicle control at `rate_hz`."""

    path_topic: str = '/planner/trajectory'
    odometry_topic: str = '/carla/ego_vehicle/odometry'
    role_name: str = 'ego_vehicle'
    control_type: str = 'auto'           # auto, carla, ackermann or twist
    rate_hz: float = 20.0
    wheelbase_m: float = 2.875           # CARLA's default Lincoln MKZ
    max_steer_rad: float = 1.22          # steering angle at steer = 1
    min_lookahead_m: float = 3.0
    lookahead_time_s: float = 0.8
    speed_kp: float = 0.4                # throttle per m/s of speed error
    speed_ki: float = 0.05
    max_throttle: float = 0.75
    brake_gain: float = 0.3              # brake per m/s of overspeed
    path_timeout_s: float = 0.5          # older path (wall time) -> brake


@dataclass(frozen=True)
class SimBridgeParams:
    """sim_bridge_node: the embedded simulator behind CARLA bridge topics."""

    scenarios: str = 'highway:11000'     # comma-separated scenario:seed list, run in order
    suite: str = ''                      # scenario suite YAML ('' = config/scenarios.yaml)
    split: str = 'test'
    max_steps: int = 0                   # 0 = the scenario's own cap
    role_name: str = 'ego_vehicle'
    path_topic: str = '/planner/trajectory'
    tick_mode: str = 'lockstep'          # lockstep: tick when the planner answered; rate
    tick_rate_hz: float = 10.0           # tick rate in 'rate' mode
    answer_timeout_s: float = 2.0        # lockstep: tick anyway after this wall time
    start_time_s: float = 1.0            # sim time of the first frame [s]
    camera_width: int = 256
    camera_height: int = 128
    publish_tf: bool = True
    loop: bool = False                   # restart the scenario list when done


def _coerce(value, default, name: str):
    """Cast a parameter value to the type of the dataclass default."""
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                return value.strip().lower() in ('1', 'true', 'yes', 'on')
            return bool(value)
        if isinstance(default, tuple):
            return tuple(float(v) for v in value)
        return type(default)(value)
    except (TypeError, ValueError) as err:
        raise ParamsError(f'parameter {name}: cannot use {value!r} as '
                          f'{type(default).__name__}') from err


def params_from_dict(cls, data: dict | None):
    """Build a params dataclass from a dict of values; unknown keys raise ParamsError."""
    data = dict(data or {})
    names = {f.name: f for f in fields(cls)}
    unknown = sorted(set(data) - set(names) - {'use_sim_time'})
    if unknown:
        raise ParamsError(f'unknown {cls.__name__} parameters: {unknown}')
    values = {n: _coerce(data[n], f.default, n) for n, f in names.items() if n in data}
    return cls(**values)


def read_params(node, cls):
    """Declare every field of `cls` on `node` and return the frozen values."""
    from rcl_interfaces.msg import ParameterDescriptor

    descriptor = ParameterDescriptor(dynamic_typing=True)
    values = {}
    for f in fields(cls):
        default = list(f.default) if isinstance(f.default, tuple) else f.default
        if not node.has_parameter(f.name):
            node.declare_parameter(f.name, default, descriptor)
        values[f.name] = node.get_parameter(f.name).value
    return params_from_dict(cls, values)


def yaml_params(path: str | Path, node_name: str, cls=None) -> dict | typing.Any:
    """`ros__parameters` of `node_name` in a params file (wildcard `/**` merged first).

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
    for key in ('/**', node_name, '/' + node_name):
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
NODE_NAMES = {'perception_node': 'perception', 'planner_node': 'planner',
              'tracker_node': 'tracker', 'sim_bridge_node': 'sim_bridge'}
PARAMS_CLASSES = {'perception_node': PerceptionParams, 'planner_node': PlannerParams,
                  'tracker_node': TrackerParams, 'sim_bridge_node': SimBridgeParams}


def node_topics(executable: str, params=None, name: str | None = None) -> set[str]:
    """Every topic (absolute name) the node uses with these parameters (defaults if None)."""
    cls = PARAMS_CLASSES[executable]
    p = params or cls()
    name = name or NODE_NAMES[executable]
    if executable == 'perception_node':
        return {p.camera_topic, p.lidar_topic, p.odometry_topic, p.route_topic} | {
            f'/{name}/{t}' for t in PERCEPTION_OUTPUTS}
    if executable == 'planner_node':
        return {f'{p.features_ns}/{t}' for t in PERCEPTION_OUTPUTS} | {
            f'/{name}/{t}' for t in PLANNER_OUTPUTS} | {'/diagnostics'}
    if executable == 'tracker_node':
        c = carla_topics(p.role_name)
        return {p.path_topic, p.odometry_topic, c['control'], c['ackermann'], c['twist'],
                '/diagnostics'}
    c = carla_topics(p.role_name)
    return {p.path_topic, c['camera'], c['camera_info'], c['lidar'], c['odometry'], c['route'],
            c['speedometer'], c['markers'], '/clock', '/tf', f'/{name}/episode_metrics'}
