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


@lru_cache(maxsize=8)
def _horizon_constants(n: int) -> tuple:
    """Return the sums over the LQR horizon k = 0..n-1 used by the closed-form lateral LQR.

    With v_k = v + k alpha along the horizon, every horizon sum is a polynomial in (v, alpha)
    with these integer coefficients, and the curvature terms are dot products of the curvature
    window with the columns of `curv_basis` (n, 5).
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


def _lateral_lqr(lat_err: np.ndarray, head_err: np.ndarray, steer: np.ndarray,
                 v: np.ndarray, accel: np.ndarray, curv_terms: np.ndarray, cfg: SimConfig,
                 wheelbase: float) -> np.ndarray:
    """One-step lateral LQR over the linear time-varying horizon, in closed form.

    State (lateral error, heading error, steering), horizon velocities v_k = v + k accel dt and
    curvatures kappa_k (through curv_terms = kappa_window @ curv_basis, (N, 5)). The step
    matrices I + a_k E01 + b_k E12 (a_k = v_k dt, b_k = a_k / L) compose to
    I + sum(a) E01 + sum(b) E12 + sum_{i<j} a_j b_i E02, which gives NAVSIM's A, B and g.
    """
    n = cfg.tracking_horizon
    dt = cfg.dt_s
    c, _ = _horizon_constants(n)
    al = accel * dt
    vv, va, aa = v * v, v * al, al * al
    sum_v = n * v + c['s1'] * al                        # sum_k v_k
    sum_kv = c['s1'] * v + c['s2'] * al                 # sum_k k v_k
    pair_vv = c['q0'] * vv + c['q1'] * va + c['q2'] * aa  # sum_{i<j} v_i v_j
    # sum_{i<j} i v_i v_j
    pair_ivv = c['p1'] * vv + (c['p2'] + c['p3']) * va + c['p4'] * aa
    sa = dt * sum_v
    sb = sa / wheelbase
    sw = dt * dt / wheelbase * pair_vv
    # affine terms: g1 = sum_k c_k, g0 = sum_k c_k sum_{j>k} a_j with c_k = -v_k kappa_k dt
    g1 = -dt * (v * curv_terms[:, 0] + al * curv_terms[:, 1])
    g0 = -dt * dt * (vv * curv_terms[:, 2] + va * curv_terms[:, 3] + aa * curv_terms[:, 4])
    x0 = lat_err + sa * head_err + sw * steer + g0
    x1 = normalize_angle(head_err + sb * steer + g1)
    x2 = normalize_angle(steer)
    bv0 = dt ** 3 / wheelbase * pair_ivv
    bv1 = dt * dt / wheelbase * sum_kv
    bv2 = dt * n
    q0, q1, q2 = cfg.q_lateral
    inv = -1.0 / (bv0 * q0 * bv0 + bv1 * q1 * bv1 + bv2 * q2 * bv2 + cfg.r_lateral)
    return inv * (bv0 * q0 * x0 + bv1 * q1 * x1 + bv2 * q2 * x2)


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
    # everything that does not depend on the simulated state, for all steps at once
    its = np.arange(t_len - 1)
    ref_idx = np.minimum(its + hor, num_profile - 1)                     # (T-1,)
    window = np.minimum(its[:, None] + np.arange(hor)[None], ref_idx[:, None])
    _, basis = _horizon_constants(hor)
    curv_terms = curvature_profile[:, window] @ basis                    # (N, T-1, 5)
    # per-step rows laid out contiguously (step first): same values, cheaper access
    curv_rows = np.ascontiguousarray(curv_terms.transpose(1, 2, 0))      # (T-1, 5, N)
    v_refs = np.ascontiguousarray(velocity_profile[:, ref_idx].T)        # (T-1, N)
    ref_t = np.ascontiguousarray(ref.transpose(1, 2, 0))                 # (T, 3, N)
    ref_sin, ref_cos = np.sin(ref_t[:, 2]), np.cos(ref_t[:, 2])          # (T, N)
    k_lon = cfg.q_longitudinal * hor * dt / ((hor * dt) ** 2 * cfg.q_longitudinal
                                             + cfg.r_longitudinal)
    alpha_a = dt / (dt + cfg.accel_time_constant_s)
    alpha_s = dt / (dt + cfg.steering_time_constant_s)
    # step-major rows of candidate-major states: each step writes one (N, S) block, and the
    # final (N, T, S) layout is a copy of whole state rows
    cols = np.zeros((t_len, n, NUM_STATE))
    cols[0] = start
    x, y, heading = start[:, 0].copy(), start[:, 1].copy(), start[:, 2].copy()
    v = start[:, StateIndex.VELOCITY_X].copy()
    acc = start[:, StateIndex.ACCELERATION_X].copy()
    steer = start[:, StateIndex.STEERING_ANGLE].copy()
    omega = start[:, StateIndex.ANGULAR_VELOCITY].copy()
    tan_steer = np.tan(steer)
    for t in range(1, t_len):
        it = t - 1
        # --- tracker: errors in the reference pose's frame
        sh, ch = np.sin(heading), np.cos(heading)
        dx, dy = x - ref_t[it, 0], y - ref_t[it, 1]
        rs, rc = ref_sin[it], ref_cos[it]
        lat_err = -dx * rs + dy * rc
        head_err = np.arctan2(sh * rc - ch * rs, ch * rc + sh * rs)
        v_ref = v_refs[it]
        stop = (v_ref <= cfg.stopping_velocity_mps) & (v <= cfg.stopping_velocity_mps)
        accel_lqr = -k_lon * (v - v_ref)
        steer_rate = _lateral_lqr(lat_err, head_err, steer, v, accel_lqr, curv_rows[it].T,
                                  cfg, wheelbase)
        accel_cmd = np.where(stop, -cfg.stopping_gain * (v - v_ref), accel_lqr)
        steer_rate = np.where(stop, 0.0, steer_rate)
        # --- bicycle model (explicit Euler with the old speed, heading and steering)
        acc_new = alpha_a * (accel_cmd - acc) + acc
        steer_lp = alpha_s * dt * steer_rate + steer        # low-pass of steer + dt * rate
        steer_rate_new = (steer_lp - steer) / dt
        x = x + v * ch * dt
        y = y + v * sh * dt
        heading = principal_value(heading + v * tan_steer / wheelbase * dt)
        v = v + acc_new * dt
        steer = np.clip(steer + steer_rate_new * dt, -cfg.max_steering_rad, cfg.max_steering_rad)
        tan_steer = np.tan(steer)
        omega_new = v * tan_steer / wheelbase
        out = cols[t].T
        out[StateIndex.X] = x
        out[StateIndex.Y] = y
        out[StateIndex.HEADING] = heading
        out[StateIndex.VELOCITY_X] = v
        out[StateIndex.STEERING_ANGLE] = steer
        out[StateIndex.ANGULAR_VELOCITY] = omega_new
        out[StateIndex.ACCELERATION_X] = acc_new
        out[StateIndex.ANGULAR_ACCELERATION] = (omega_new - omega) / dt
        out[StateIndex.STEERING_RATE] = steer_rate_new
        acc, omega = acc_new, omega_new
    return np.ascontiguousarray(cols.transpose(1, 0, 2))


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
