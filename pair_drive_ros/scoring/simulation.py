"""NAVSIM's simulation of candidate trajectories: interpolation, LQR tracker, kinematic bicycle.

All functions are pure and vectorized over candidates; the only Python loop is over the 40 time
steps. States are (N, 41, len(StateIndex)) arrays referenced at the rear axle, map frame.
"""

from enum import IntEnum
from functools import lru_cache

import numpy as np

from pair_drive_ros.core.ego import EgoState
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
    """(NUM_STATE,) simulation start state: rear-axle pose, logged velocity and acceleration.

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
    """Prepend the start pose and interpolate to the simulation grid.

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
    """(M, M) operator mapping longitudinal displacements to (v0, a_0..a_{M-2}).

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


def fit_velocity_curvature(ref: np.ndarray, cfg: SimConfig) -> tuple[np.ndarray, np.ndarray]:
    """Fit speed and curvature profiles to reference poses (N, T, 3) as NAVSIM does.

    Returns velocity (N, T-1) [m/s] and curvature (N, T-1) [1/m] profiles.
    """
    dt = cfg.dt_s
    diff = np.diff(ref, axis=1)
    heading = ref[:, :-1, 2]
    p = diff[..., 0] * np.cos(heading) + diff[..., 1] * np.sin(heading)
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
    curvature = _solve_tridiagonal_const_off(diag, off, rhs)
    return velocity, curvature


def _solve_tridiagonal_const_off(diag: np.ndarray, off: float, rhs: np.ndarray) -> np.ndarray:
    """Batched Thomas algorithm for symmetric tridiagonal systems with constant off-diagonal."""
    n = diag.shape[1]
    c = np.empty_like(diag)
    dd = np.empty_like(rhs)
    c[:, 0] = off / diag[:, 0]
    dd[:, 0] = rhs[:, 0] / diag[:, 0]
    for i in range(1, n):
        denom = diag[:, i] - off * c[:, i - 1]
        c[:, i] = off / denom
        dd[:, i] = (rhs[:, i] - off * dd[:, i - 1]) / denom
    x = np.empty_like(rhs)
    x[:, -1] = dd[:, -1]
    for i in range(n - 2, -1, -1):
        x[:, i] = dd[:, i] - c[:, i] * x[:, i + 1]
    return x


def _suffix_sum(a: np.ndarray) -> np.ndarray:
    """s[..., k] = sum_{j >= k} a[..., j], with one extra trailing zero column."""
    s = np.cumsum(a[..., ::-1], axis=-1)[..., ::-1]
    return np.concatenate([s, np.zeros(a.shape[:-1] + (1,))], axis=-1)


def _lateral_lqr(lat_state: np.ndarray, velocity: np.ndarray, curvature: np.ndarray,
                 cfg: SimConfig, wheelbase: float) -> np.ndarray:
    """One-step lateral LQR over the linear time-varying horizon, in closed form.

    lat_state (N, 3): lateral error, heading error, steering. velocity, curvature (N, H).
    The step matrices I + a_k E01 + b_k E12 compose to I + sum(a) E01 + sum(b) E12
    + sum_{j>i} a_j b_i E02, which gives NAVSIM's A, B, g without 3x3 products.
    """
    dt = cfg.dt_s
    a = velocity * dt
    b = a / wheelbase
    c = -velocity * curvature * dt
    sa = _suffix_sum(a)                      # sa[:, k] = sum_{j>=k} a_j
    w = b * sa[:, 1:]                        # b_i * sum_{j>i} a_j
    sw = _suffix_sum(w)                      # sum_{i>=k} b_i sum_{j>i} a_j
    sb = _suffix_sum(b)
    e0, h0, s0 = lat_state[:, 0], lat_state[:, 1], lat_state[:, 2]
    # state after the horizon with zero input, plus the affine terms
    x0 = e0 + sa[:, 0] * h0 + sw[:, 0] * s0 + np.sum(c * sa[:, 1:], axis=1)
    x1 = h0 + sb[:, 0] * s0 + np.sum(c, axis=1)
    x2 = s0
    x1 = normalize_angle(x1)
    x2 = normalize_angle(x2)
    bv0 = dt * np.sum(sw[:, 1:], axis=1)
    bv1 = dt * np.sum(sb[:, 1:], axis=1)
    bv2 = dt * velocity.shape[1]
    q0, q1, q2 = cfg.q_lateral
    inv = -1.0 / (bv0 * q0 * bv0 + bv1 * q1 * bv1 + bv2 * q2 * bv2 + cfg.r_lateral)
    tail = bv0 * q0 * x0 + bv1 * q1 * x1 + bv2 * q2 * x2
    return inv * tail


def simulate_reference(ref: np.ndarray, start: np.ndarray, cfg: SimConfig,
                       vehicle: VehicleParams) -> np.ndarray:
    """Track reference rear-axle poses (N, T, 3) from start states (N, NUM_STATE).

    Returns states (N, T, NUM_STATE) with states[:, 0] = start.
    """
    n, t_len, _ = ref.shape
    dt = cfg.dt_s
    hor = cfg.tracking_horizon
    wheelbase = vehicle.wheelbase_m
    velocity_profile, curvature_profile = fit_velocity_curvature(ref, cfg)
    num_profile = velocity_profile.shape[1]
    states = np.zeros((n, t_len, NUM_STATE))
    states[:, 0] = start
    k_lon = cfg.q_longitudinal * hor * dt / ((hor * dt) ** 2 * cfg.q_longitudinal
                                             + cfg.r_longitudinal)
    steps = np.arange(hor)
    alpha_a = dt / (dt + cfg.accel_time_constant_s)
    alpha_s = dt / (dt + cfg.steering_time_constant_s)
    s = start.copy() if start.ndim == 2 else np.tile(start, (n, 1))
    for t in range(1, t_len):
        it = t - 1
        # --- tracker
        ref_pose = ref[:, it]
        dx = s[:, 0] - ref_pose[:, 0]
        dy = s[:, 1] - ref_pose[:, 1]
        sh, ch = np.sin(ref_pose[:, 2]), np.cos(ref_pose[:, 2])
        lat = np.stack([-dx * sh + dy * ch, normalize_angle(s[:, 2] - ref_pose[:, 2]),
                        s[:, StateIndex.STEERING_ANGLE]], -1)
        v = s[:, StateIndex.VELOCITY_X]
        ref_idx = min(it + hor, num_profile - 1)
        v_ref = velocity_profile[:, ref_idx]
        idx = np.minimum(it + steps, ref_idx)
        curv = curvature_profile[:, idx]
        stop = (v_ref <= cfg.stopping_velocity_mps) & (v <= cfg.stopping_velocity_mps)
        accel_lqr = -k_lon * (v - v_ref)
        vel_prof = v[:, None] + accel_lqr[:, None] * dt * steps[None]
        steer_rate = _lateral_lqr(lat, vel_prof, curv, cfg, wheelbase)
        accel_cmd = np.where(stop, -cfg.stopping_gain * (v - v_ref), accel_lqr)
        steer_rate = np.where(stop, 0.0, steer_rate)
        # --- bicycle model (explicit Euler with the old speed, heading and steering)
        acc_old = s[:, StateIndex.ACCELERATION_X]
        steer_old = s[:, StateIndex.STEERING_ANGLE]
        acc_new = alpha_a * (accel_cmd - acc_old) + acc_old
        ideal_steer = dt * steer_rate + steer_old
        steer_lp = alpha_s * (ideal_steer - steer_old) + steer_old
        steer_rate_new = (steer_lp - steer_old) / dt
        heading = s[:, 2]
        out = np.empty_like(s)
        out[:, 0] = s[:, 0] + v * np.cos(heading) * dt
        out[:, 1] = s[:, 1] + v * np.sin(heading) * dt
        out[:, 2] = principal_value(heading + v * np.tan(steer_old) / wheelbase * dt)
        out[:, StateIndex.VELOCITY_X] = v + acc_new * dt
        out[:, StateIndex.VELOCITY_Y] = 0.0
        out[:, StateIndex.STEERING_ANGLE] = np.clip(steer_old + steer_rate_new * dt,
                                                    -cfg.max_steering_rad, cfg.max_steering_rad)
        out[:, StateIndex.ANGULAR_VELOCITY] = (out[:, StateIndex.VELOCITY_X]
                                               * np.tan(out[:, StateIndex.STEERING_ANGLE])
                                               / wheelbase)
        out[:, StateIndex.ACCELERATION_X] = acc_new
        out[:, StateIndex.ACCELERATION_Y] = 0.0
        out[:, StateIndex.ANGULAR_ACCELERATION] = (out[:, StateIndex.ANGULAR_VELOCITY]
                                                   - s[:, StateIndex.ANGULAR_VELOCITY]) / dt
        out[:, StateIndex.STEERING_RATE] = steer_rate_new
        states[:, t] = out
        s = out
    return states


def simulate(poses_map: np.ndarray, start_states: np.ndarray, vehicle: VehicleParams,
             cfg: SimConfig = SimConfig(), pose_dt_s: float = 0.5) -> np.ndarray:
    """Simulate candidate trajectories as NAVSIM does.

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
