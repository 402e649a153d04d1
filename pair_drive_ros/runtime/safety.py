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
Planner safety logic and diagnostics payloads (no ROS graph needed).

The planner node publishes `stopping_trajectory` when its input is stale or the model's output is
not finite, and reports its health with `planner_status` (a plain dict turned into a
diagnostic_msgs/DiagnosticStatus by `diagnostic_status`).
"""

from dataclasses import dataclass

import numpy as np

from pair_drive_ros.core.trajectory import EGO_FRAME, NUM_POSES, POSE_DT_S, Trajectory

OK, WARN, ERROR, STALE = 0, 1, 2, 3
MAX_STOP_SPEED_MPS = 100.0   # the odometry plausibility bound; faster readings are corrupt
MAX_STOP_PATH_M = 1000.0     # an ego-frame path reaching further is not a plan to follow
LEVEL_NAMES = {OK: 'OK', WARN: 'WARN', ERROR: 'ERROR', STALE: 'STALE'}


def stopping_trajectory(speed_mps: float, decel_mps2: float = 2.5,
                        path_xy: np.ndarray | None = None, num_poses: int = NUM_POSES,
                        dt_s: float = POSE_DT_S, t0_s: float = 0.0) -> Trajectory:
    """
    Brake at a constant `decel_mps2` from `speed_mps` to a standstill (ego frame).

    Travels along `path_xy` ((P, 2) ego-frame polyline starting ahead of the ego, e.g. the last
    good plan) if given, else straight ahead. Pose k is at t0_s + (k + 1) dt_s.

    Bounded whatever the inputs: the speed is clamped to [0, MAX_STOP_SPEED_MPS] (a non-finite
    one reads 0) and a path that is not finite or leaves MAX_STOP_PATH_M is ignored, so the
    result is at most MAX_STOP_SPEED_MPS^2 / (2 decel) long. Only a non-positive `decel_mps2`
    raises (the nodes refuse it at start-up).
    """
    try:
        v0 = float(speed_mps)
    except (TypeError, ValueError):
        v0 = 0.0
    v0 = min(max(0.0, v0), MAX_STOP_SPEED_MPS) if np.isfinite(v0) else 0.0
    decel = float(decel_mps2)
    if not (decel > 0 and np.isfinite(decel)):
        raise ValueError(f'decel_mps2 must be positive, got {decel_mps2}')
    t = dt_s * np.arange(1, num_poses + 1)
    t_stop = v0 / decel
    tc = np.minimum(t, t_stop)
    s = v0 * tc - 0.5 * decel * tc ** 2
    poses = np.zeros((num_poses, 3))
    pts = None if path_xy is None else np.asarray(path_xy, dtype=np.float64).reshape(-1, 2)
    if pts is not None and len(pts) and np.all(np.isfinite(pts)) \
            and np.all(np.abs(pts) <= MAX_STOP_PATH_M):
        pts = np.vstack([np.zeros(2), pts])
        seg = np.linalg.norm(np.diff(pts, axis=0), axis=1)
        arc = np.r_[0.0, np.cumsum(seg)]
        if arc[-1] > 1e-6 and arc[-1] >= s[-1]:
            keep = np.r_[True, seg > 1e-9]
            pts, arc = pts[keep], arc[keep]
            poses[:, 0] = np.interp(s, arc, pts[:, 0])
            poses[:, 1] = np.interp(s, arc, pts[:, 1])
            d = np.diff(pts, axis=0)
            seg_idx = np.clip(np.searchsorted(arc, s, side='right') - 1, 0, len(d) - 1)
            poses[:, 2] = np.arctan2(d[seg_idx, 1], d[seg_idx, 0])
            return Trajectory(poses, dt_s=dt_s, frame=EGO_FRAME, t0_s=t0_s)
    poses[:, 0] = s
    return Trajectory(poses, dt_s=dt_s, frame=EGO_FRAME, t0_s=t0_s)


def standstill_trajectory(num_poses: int = NUM_POSES, dt_s: float = POSE_DT_S) -> Trajectory:
    """Every pose at the ego (ego frame): the stop that needs no speed, path or parameter."""
    return Trajectory(np.zeros((num_poses, 3)), dt_s=dt_s, frame=EGO_FRAME)


def plan_is_finite(*arrays) -> bool:
    """All given arrays (None skipped) contain only finite numbers."""
    for a in arrays:
        if a is not None and not np.all(np.isfinite(np.asarray(a, dtype=np.float64))):
            return False
    return True


@dataclass
class PlannerHealth:
    """Counters and the latest state the planner reports in /diagnostics."""

    planner: str = ''
    device: str = 'cpu'
    model_ids: str = ''
    frames: int = 0
    plans: int = 0
    stops: int = 0
    dropped: int = 0
    bad_inputs: int = 0      # malformed inputs (decode, stamp, frame, plausibility)
    stale_frames: int = 0    # complete frames too old to plan on when inference got to them
    implausible_plans: int = 0
    last_latency_ms: float = float('nan')
    last_input_age_s: float = float('nan')
    fault: str = ''          # non-empty while publishing stopping trajectories

    def level(self) -> int:
        """ERROR while faulted, WARN before the first plan, else OK."""
        if self.fault:
            return ERROR
        return OK if self.plans else WARN


def planner_status(health: PlannerHealth, latencies_ms: list[float]) -> dict:
    """Payload of the planner's DiagnosticStatus: level, message and key/value strings."""
    lat = np.asarray(latencies_ms, dtype=np.float64)
    level = health.level()
    if level == ERROR:
        message = f'stopping: {health.fault}'
    elif level == WARN:
        message = 'waiting for input'
    else:
        message = 'planning'
    values = {
        'planner': health.planner, 'device': health.device, 'model_ids': health.model_ids,
        'frames': str(health.frames), 'plans': str(health.plans), 'stops': str(health.stops),
        'dropped_frames': str(health.dropped), 'bad_inputs': str(health.bad_inputs),
        'stale_frames': str(health.stale_frames),
        'implausible_plans': str(health.implausible_plans),
        'inference_latency_ms_last': f'{health.last_latency_ms:.2f}',
        'inference_latency_ms_p50': f'{np.percentile(lat, 50):.2f}' if len(lat) else 'nan',
        'inference_latency_ms_max': f'{lat.max():.2f}' if len(lat) else 'nan',
        'input_age_s': f'{health.last_input_age_s:.3f}',
    }
    return {'level': level, 'message': message, 'values': values}


def diagnostic_status(payload: dict, name: str, hardware_id: str = ''):
    """Plain payload -> diagnostic_msgs/DiagnosticStatus."""
    from diagnostic_msgs.msg import DiagnosticStatus, KeyValue

    return DiagnosticStatus(level=bytes([int(payload['level'])]), name=name,
                            message=str(payload['message']), hardware_id=hardware_id,
                            values=[KeyValue(key=k, value=str(v))
                                    for k, v in payload['values'].items()])


def diagnostic_array(statuses: list, stamp):
    """Wrap DiagnosticStatus messages in a diagnostic_msgs/DiagnosticArray."""
    from diagnostic_msgs.msg import DiagnosticArray
    from std_msgs.msg import Header

    return DiagnosticArray(header=Header(stamp=stamp), status=list(statuses))
