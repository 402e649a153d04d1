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
NAVSIM's simulation of candidate trajectories: interpolation, LQR tracker, kinematic bicycle.

All functions are pure and vectorized over candidates; the only Python loop is over the 40 time
steps. States are (N, 41, len(StateIndex)) arrays referenced at the rear axle, map frame.
"""

from enum import IntEnum
from functools import lru_cache

import numpy as np

from pair_drive_ros.core.ego import EgoState
from pair_drive_ros.scoring import kernels
from pair_drive_ros.scoring.config import SimConfig, VehicleParams


class StateIndex(IntEnum):
    """Columns of a simulated state (NAVSIM's StateIndex order)."""

    X = 0              # rear axle x [m]
    Y = 1              # rear axle y [m]
    HEADING = 2        # [rad]
    VELOCITY_X = 3     # longitudinal velocity [m/s]
    VELOCITY_Y = 4     # lateral velocity [m/s]
    ACCELERATION_X = 5  # [m/s^2]
    ACCELERATION_Y = 6  # [m/s^2]
    STEERING_ANGLE = 7  # [rad]
    STEERING_RATE = 8  # [rad/s]
    ANGULAR_VELOCITY = 9  # yaw rate [rad/s]
    ANGULAR_ACCELERATION = 10  # [rad/s^2]


NUM_STATE = len(StateIndex)


def normalize_angle(angle: np.ndarray) -> np.ndarray:
    """Wrap to (-pi, pi] as NAVSIM does (arctan2 of sin, cos)."""
    return np.arctan2(np.sin(angle), np.cos(angle))


def principal_value(angle: np.ndarray) -> np.ndarray:
    """Wrap to [-pi, pi) (nuPlan's principal_value)."""
    return (angle + np.pi) % (2.0 * np.pi) - np.pi


def centre_to_rear_axle(poses: np.ndarray, vehicle: VehicleParams) -> np.ndarray:
    """Box-centre poses (..., 3) -> rear-axle poses (..., 3)."""
    out = np.array(poses, dtype=np.float64, copy=True)
    r = vehicle.rear_axle_to_center_m
    out[..., 0] -= r * np.cos(out[..., 2])
    out[..., 1] -= r * np.sin(out[..., 2])
    return out


def rear_axle_to_centre(poses: np.ndarray, vehicle: VehicleParams) -> np.ndarray:
    """Rear-axle (x, y, heading) (..., >=3) -> box-centre xy (..., 2)."""
    r = vehicle.rear_axle_to_center_m
    return np.stack([poses[..., 0] + r * np.cos(poses[..., 2]),
                     poses[..., 1] + r * np.sin(poses[..., 2])], -1)


def initial_state(ego: EgoState, vehicle: VehicleParams) -> np.ndarray:
    """
    (NUM_STATE,) simulation start state: rear-axle pose, logged velocity and acceleration.

    Steering, steering rate, yaw rate and yaw acceleration start at 0, as in NAVSIM (the logged
    yaw rate is not used).
    """
    state = np.zeros(NUM_STATE)
    state[:3] = centre_to_rear_axle(ego.pose, vehicle)
    state[StateIndex.VELOCITY_X:StateIndex.VELOCITY_Y + 1] = ego.velocity
    state[StateIndex.ACCELERATION_X:StateIndex.ACCELERATION_Y + 1] = ego.acceleration
    return state


def interpolate_poses(start: np.ndarray, poses: np.ndarray, pose_dt_s: float,
                      cfg: SimConfig) -> np.ndarray:
    """
    Prepend the start pose and interpolate to the simulation grid.

    start: (N, 3), poses: (N, K, 3) at pose_dt_s, both rear-axle map frame. Returns
    (N, num_steps + 1, 3): x, y linear, heading unwrapped then linear (NAVSIM's
    InterpolatedTrajectory). Times beyond the last pose hold it.
    """
    full = np.concatenate([start[:, None], poses], axis=1)
    full[..., 2] = np.unwrap(full[..., 2], axis=1)
    k = full.shape[1]
    t_src = np.arange(k) * pose_dt_s
    t_dst = np.arange(cfg.num_steps + 1) * cfg.dt_s
    idx = np.clip(np.searchsorted(t_src, t_dst, side='right') - 1, 0, k - 2)
    w = np.clip((t_dst - t_src[idx]) / pose_dt_s, 0.0, 1.0)
    return full[:, idx] * (1.0 - w)[None, :, None] + full[:, idx + 1] * w[None, :, None]


@lru_cache(maxsize=16)
def _speed_fit_operator(num_disp: int, dt: float, jerk_penalty: float,
                        navsim_banded: bool) -> np.ndarray:
    """
    (M, M) operator mapping longitudinal displacements to (v0, a_0..a_{M-2}).

    NAVSIM's least squares uses unit heading vectors in every row, so A^T A does not depend on
    the headings and the regularised normal matrix is a constant: only the projection of each
    displacement on its heading (p_k) enters, through A^T y = A_lon^T p.
    """
    m = num_disp
    a_lon = np.tril(np.full((m, m), dt * dt))
    a_lon[:, 0] = dt
    a_lon[np.triu_indices(m, 1)] = 0.0
    n = m - 2
    band = np.zeros((n, n + 1))
    eye = np.eye(n)
    band[:, 1:] = eye
    if navsim_banded:
        band[:, :-1] = -eye  # overwrites the first band, as NAVSIM does
    else:
        band[:, :-1] -= eye
    reg = np.block([np.zeros((n, 1)), band])
    normal = a_lon.T @ a_lon + jerk_penalty * reg.T @ reg
    return np.linalg.pinv(normal) @ a_lon.T


def fit_velocity_curvature(ref: np.ndarray, cfg: SimConfig,
                           trig: tuple | None = None) -> tuple[np.ndarray, np.ndarray]:
    """
    Fit speed and curvature profiles to reference poses (N, T, 3) as NAVSIM does.

    Returns velocity (N, T-1) [m/s] and curvature (N, T-1) [1/m] profiles. trig: the
    reference headings' (cos, sin) (N, T-1) each, when the caller has them.
    """
    dt = cfg.dt_s
    diff = np.diff(ref, axis=1)
    if trig is None:
        heading = ref[:, :-1, 2]
        trig = np.cos(heading), np.sin(heading)
    p = diff[..., 0] * trig[0] + diff[..., 1] * trig[1]
    m = p.shape[1]
    op = _speed_fit_operator(m, dt, cfg.jerk_penalty, cfg.navsim_banded_matrix)
    x = p @ op.T
    velocity = x[:, :1] + np.concatenate([np.zeros((len(x), 1)),
                                          np.cumsum(x[:, 1:] * dt, axis=1)], axis=1)
    # Curvature: min ||D kappa - dtheta||^2 + x^T Q x with kappa = T x, D = diag(v dt); in kappa
    # this is a tridiagonal system (Q on the curvature rates is a first difference of kappa).
    dtheta = normalize_angle(diff[..., 2])
    d = velocity * dt
    lam = cfg.curvature_rate_penalty / (dt * dt)
    diag = d * d + 2.0 * lam
    diag[:, 0] = d[:, 0] ** 2 + lam + cfg.initial_curvature_penalty
    diag[:, -1] = d[:, -1] ** 2 + lam
    off = -lam
    rhs = d * dtheta
    curvature = kernels.solve_tridiagonal_const_off(diag, off, rhs)
    return velocity, curvature


@lru_cache(maxsize=8)
def _horizon_constants(n: int) -> tuple:
    """
    Return the sums over the LQR horizon k = 0..n-1 used by the closed-form lateral LQR.

    The lateral LQR (kernels.tracker_lqr) acts on (lateral error, heading error, steering)
    over a linear time-varying horizon. Its step matrices I + a_k E01 + b_k E12 (a_k = v_k dt,
    b_k = a_k / L) compose to I + sum(a) E01 + sum(b) E12 + sum_{i<j} a_j b_i E02, which gives
    NAVSIM's A, B and g in closed form. With v_k = v + k alpha along the horizon, every horizon
    sum is a polynomial in (v, alpha) with these integer coefficients, and the curvature terms
    are dot products of the curvature window with the columns of `curv_basis` (n, 5).
    """
    k = np.arange(n, dtype=np.float64)
    i, j = np.triu_indices(n, 1)                    # pairs i < j
    pairs = dict(q0=float(len(i)), q1=float(np.sum(i + j)), q2=float(np.sum(i * j)),
                 p1=float(np.sum(i)), p2=float(np.sum(i * j)), p3=float(np.sum(i * i)),
                 p4=float(np.sum(i * i * j)), s1=float(k.sum()), s2=float(np.sum(k * k)))
    tail = np.array([k[m + 1:].sum() for m in range(n)])   # sum_{j > k} j
    rest = n - 1 - k                                        # number of j > k
    curv_basis = np.stack([np.ones(n), k, rest, tail + k * rest, k * tail], axis=1)
    return pairs, curv_basis


def _tracker_constants(cfg: SimConfig, wheelbase: float) -> np.ndarray:
    """Scalars of the tracker step for kernels.py (the horizon sums of _horizon_constants)."""
    dt = cfg.dt_s
    n = cfg.tracking_horizon
    c, _ = _horizon_constants(n)
    q0, q1, q2 = cfg.q_lateral
    k_lon = cfg.q_longitudinal * n * dt / ((n * dt) ** 2 * cfg.q_longitudinal
                                           + cfg.r_longitudinal)
    bv2 = dt * n
    k = np.zeros(kernels.NUM_CONST)
    k[kernels.K_DT] = dt
    k[kernels.K_WHEELBASE] = wheelbase
    k[kernels.K_STOP_V] = cfg.stopping_velocity_mps
    k[kernels.K_NEG_K_LON] = -k_lon
    k[kernels.K_NEG_STOP_GAIN] = -cfg.stopping_gain
    k[kernels.K_ALPHA_A] = dt / (dt + cfg.accel_time_constant_s)
    k[kernels.K_ALPHA_S_DT] = dt / (dt + cfg.steering_time_constant_s) * dt
    k[kernels.K_MAX_STEER] = cfg.max_steering_rad
    k[kernels.K_N] = n
    k[kernels.K_S1], k[kernels.K_S2] = c['s1'], c['s2']
    k[kernels.K_Q0], k[kernels.K_Q1], k[kernels.K_Q2] = c['q0'], c['q1'], c['q2']
    k[kernels.K_P1], k[kernels.K_P23], k[kernels.K_P4] = c['p1'], c['p2'] + c['p3'], c['p4']
    k[kernels.K_DTDT_WB] = dt * dt / wheelbase
    k[kernels.K_NEG_DT] = -dt
    k[kernels.K_NEG_DTDT] = -dt * dt
    k[kernels.K_DT3_WB] = dt ** 3 / wheelbase
    k[kernels.K_BV2] = bv2
    k[kernels.K_QL0], k[kernels.K_QL1] = q0, q1
    k[kernels.K_BV2_QL2_BV2] = bv2 * q2 * bv2
    k[kernels.K_R_LAT] = cfg.r_lateral
    k[kernels.K_BV2_QL2] = bv2 * q2
    return k


def simulate_reference(ref: np.ndarray, start: np.ndarray, cfg: SimConfig,
                       vehicle: VehicleParams) -> np.ndarray:
    """
    Track reference rear-axle poses (N, T, 3) from start states (N, NUM_STATE).

    Returns states (N, T, NUM_STATE) with states[:, 0] = start.
    """
    n, t_len, _ = ref.shape
    hor = cfg.tracking_horizon
    wheelbase = vehicle.wheelbase_m
    # the reference headings' sin and cos serve the speed fit and the tracker's errors
    ref_heading = np.ascontiguousarray(ref[:, :-1, 2].T)                 # (T-1, N)
    ref_sin, ref_cos = np.sin(ref_heading), np.cos(ref_heading)
    velocity_profile, curvature_profile = fit_velocity_curvature(ref, cfg,
                                                                 (ref_cos.T, ref_sin.T))
    num_profile = velocity_profile.shape[1]
    # the speed target's and the LQR horizon's curvature indices of every step
    its = np.arange(t_len - 1)
    ref_idx = np.minimum(its + hor, num_profile - 1)                     # (T-1,)
    window = np.minimum(its[:, None] + np.arange(hor)[None], ref_idx[:, None])
    _, basis = _horizon_constants(hor)
    curvature_t = np.ascontiguousarray(curvature_profile.T)              # (T-1, N)
    k = _tracker_constants(cfg, wheelbase)
    states = np.zeros((n, t_len, NUM_STATE))
    states[:, 0] = start
    w = np.empty((kernels.NUM_WORK, n))
    for row, col in ((kernels.W_X, StateIndex.X), (kernels.W_Y, StateIndex.Y),
                     (kernels.W_HEADING, StateIndex.HEADING),
                     (kernels.W_V, StateIndex.VELOCITY_X),
                     (kernels.W_ACC, StateIndex.ACCELERATION_X),
                     (kernels.W_STEER, StateIndex.STEERING_ANGLE),
                     (kernels.W_OMEGA, StateIndex.ANGULAR_VELOCITY)):
        w[row] = start[:, col]
    heading, steer, tan_steer = w[kernels.W_HEADING], w[kernels.W_STEER], w[kernels.W_TAN]
    sin_h, cos_h = w[kernels.W_SIN_H], w[kernels.W_COS_H]
    num, den, head_err = w[kernels.W_NUM], w[kernels.W_DEN], w[kernels.W_HEAD_ERR]
    wrap_in = w[kernels.W_P:kernels.W_P + 2]
    wrap_sin = w[kernels.W_SIN_P:kernels.W_SIN_P + 2]
    wrap_cos = w[kernels.W_COS_P:kernels.W_COS_P + 2]
    wrap_out = w[kernels.W_WRAP:kernels.W_WRAP + 2]
    np.tan(steer, out=tan_steer)
    # the transcendental functions run in numpy (bit-identical to the vectorized code), the
    # arithmetic between them in three fused kernels per step
    for t in range(1, t_len):
        np.sin(heading, out=sin_h)
        np.cos(heading, out=cos_h)
        kernels.tracker_errors(w, ref, ref_sin, ref_cos, k, states, t)
        np.arctan2(num, den, out=head_err)
        kernels.tracker_lqr(w, velocity_profile, ref_idx, curvature_t, window, basis, k, t)
        # normalize_angle of (x1, steer) in one call each
        np.sin(wrap_in, out=wrap_sin)
        np.cos(wrap_in, out=wrap_cos)
        np.arctan2(wrap_sin, wrap_cos, out=wrap_out)
        kernels.tracker_step(w, k, states, t)
        np.tan(steer, out=tan_steer)
    if t_len > 1:
        kernels.tracker_yaw_rate(w, k, states, t_len - 1)
    return states


def simulate(poses_map: np.ndarray, start_states: np.ndarray, vehicle: VehicleParams,
             cfg: SimConfig = SimConfig(), pose_dt_s: float = 0.5) -> np.ndarray:
    """
    Simulate candidate trajectories as NAVSIM does.

    poses_map: (N, K, 3) box-centre poses in the map frame at pose_dt_s (pose k at
    (k + 1) pose_dt_s). start_states: (NUM_STATE,) or (N, NUM_STATE) rear-axle start states
    (see initial_state). Returns (N, num_steps + 1, NUM_STATE) rear-axle states.
    """
    poses_map = np.asarray(poses_map, dtype=np.float64)
    if poses_map.ndim != 3 or poses_map.shape[-1] != 3:
        raise ValueError(f'poses_map must have shape (N, K, 3), got {poses_map.shape}')
    n = len(poses_map)
    start = np.broadcast_to(np.asarray(start_states, dtype=np.float64), (n, NUM_STATE))
    rear = centre_to_rear_axle(poses_map, vehicle)
    ref = interpolate_poses(start[:, :3], rear, pose_dt_s, cfg)
    return simulate_reference(ref, start.copy(), cfg, vehicle)
