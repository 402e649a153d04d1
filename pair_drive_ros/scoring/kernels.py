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
numba-compiled inner loops of the scorer.

Each kernel fuses a run of numpy operations into one pass and spells out the same
floating-point expressions, in the same order, as the numpy code it replaces, so results are
bit-identical. Transcendental functions (sin, cos, tan, arctan2, hypot) stay in numpy between
the kernels: numpy's SIMD versions differ from libm in the last bit. The one BLAS product
(the tracker's curvature horizon terms) is replayed as OpenBLAS's dgemm computes it here
(fused multiply-adds in order); a BLAS that rounds differently changes only the last bit.
`cache=True` compiles once per machine (into __pycache__; about 4 s on first use).
"""

from llvmlite import ir
import numba
from numba.core import types
from numba.extending import intrinsic
import numpy as np

# rows of the tracker's work array (F, N)
W_X, W_Y, W_HEADING, W_V, W_ACC, W_STEER, W_OMEGA, W_TAN = range(8)
W_SIN_H, W_COS_H, W_NUM, W_DEN, W_HEAD_ERR, W_LAT = range(8, 14)
W_P = 14        # 2 rows: arguments of normalize_angle (x1 before wrapping, steer)
W_SIN_P = 16    # 2 rows
W_COS_P = 18    # 2 rows
W_WRAP = 20     # 2 rows: normalize_angle of W_P (x1, x2)
W_X0, W_BV0, W_BV1, W_INV, W_ACC_LQR, W_VREF = range(22, 28)
W_CURV = 28     # 5 rows: the LQR horizon's curvature terms
NUM_WORK = 33

# tracker constants (float64 array)
(K_DT, K_WHEELBASE, K_STOP_V, K_NEG_K_LON, K_NEG_STOP_GAIN, K_ALPHA_A, K_ALPHA_S_DT,
 K_MAX_STEER, K_N, K_S1, K_S2, K_Q0, K_Q1, K_Q2, K_P1, K_P23, K_P4, K_DTDT_WB, K_NEG_DT,
 K_NEG_DTDT, K_DT3_WB, K_BV2, K_QL0, K_QL1, K_BV2_QL2_BV2, K_R_LAT, K_BV2_QL2) = range(27)
NUM_CONST = 27

# state columns (simulation.StateIndex)
_S_X, _S_Y, _S_HEADING, _S_VX = 0, 1, 2, 3
_S_AX, _S_STEER, _S_STEER_RATE, _S_OMEGA, _S_ANG_ACC = 5, 7, 8, 9, 10


@intrinsic
def _fma(typingctx, a, b, c):
    """Fused a * b + c (one rounding), as OpenBLAS's dgemm kernels accumulate."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        d = ir.DoubleType()
        fn = builder.module.declare_intrinsic('llvm.fma', [d], ir.FunctionType(d, [d, d, d]))
        return builder.call(fn, args)
    return sig, codegen


@numba.njit(cache=True)
def tracker_yaw_rate(w, k, states, t):
    """Finish step t: yaw rate from the new speed and tan(steer), and yaw acceleration."""
    n = w.shape[1]
    wb = k[K_WHEELBASE]
    dt = k[K_DT]
    for i in range(n):
        omega_new = w[W_V, i] * w[W_TAN, i] / wb
        states[i, t, _S_OMEGA] = omega_new
        states[i, t, _S_ANG_ACC] = (omega_new - w[W_OMEGA, i]) / dt
        w[W_OMEGA, i] = omega_new


@numba.njit(cache=True)
def tracker_errors(w, ref, ref_sin, ref_cos, k, states, t):
    """
    Step t: finish step t-1 (yaw rate from tan(steer)), then the tracking errors.

    ref (N, T, 3) reference poses, ref_sin/ref_cos (T-1, N) of their headings. Needs
    W_SIN_H, W_COS_H of the current heading; writes W_LAT and the arguments of the heading
    error's arctan2 (W_NUM, W_DEN).
    """
    if t > 1:
        tracker_yaw_rate(w, k, states, t - 1)
    n = w.shape[1]
    it = t - 1
    for i in range(n):
        sh = w[W_SIN_H, i]
        ch = w[W_COS_H, i]
        rs = ref_sin[it, i]
        rc = ref_cos[it, i]
        dx = w[W_X, i] - ref[i, it, 0]
        dy = w[W_Y, i] - ref[i, it, 1]
        w[W_LAT, i] = -dx * rs + dy * rc
        w[W_NUM, i] = sh * rc - ch * rs
        w[W_DEN, i] = ch * rc + sh * rs


@numba.njit(cache=True)
def tracker_lqr(w, velocity, ref_idx, curvature_t, window, basis, k, t):
    """
    Longitudinal and closed-form lateral LQR up to the angles to wrap (W_P).

    velocity (N, T-1) and curvature_t (T-1, N) profiles; ref_idx (T-1,) the speed target's
    index, window (T-1, H) the horizon's curvature indices, basis (H, 5) the horizon sums.
    The curvature terms are `curvature[:, window] @ basis` as numpy computes it through
    OpenBLAS's dgemm: a fused multiply-add per horizon step, in order, from 0 (checked bit for
    bit against this machine's OpenBLAS; another BLAS may round the last bit differently).
    """
    n = w.shape[1]
    it = t - 1
    dt = k[K_DT]
    wb = k[K_WHEELBASE]
    vi = ref_idx[it]
    for j in range(5):
        acc = w[W_CURV + j]
        acc[:] = 0.0
        for h in range(window.shape[1]):
            row = curvature_t[window[it, h]]
            b = basis[h, j]
            for i in range(n):
                acc[i] = _fma(row[i], b, acc[i])
    for i in range(n):
        v = w[W_V, i]
        head_err = w[W_HEAD_ERR, i]
        steer = w[W_STEER, i]
        v_ref = velocity[i, vi]
        w[W_VREF, i] = v_ref
        accel = k[K_NEG_K_LON] * (v - v_ref)
        al = accel * dt
        vv = v * v
        va = v * al
        aa = al * al
        sum_v = k[K_N] * v + k[K_S1] * al
        sum_kv = k[K_S1] * v + k[K_S2] * al
        pair_vv = k[K_Q0] * vv + k[K_Q1] * va + k[K_Q2] * aa
        pair_ivv = k[K_P1] * vv + k[K_P23] * va + k[K_P4] * aa
        sa = dt * sum_v
        sb = sa / wb
        sw = k[K_DTDT_WB] * pair_vv
        g1 = k[K_NEG_DT] * (v * w[W_CURV, i] + al * w[W_CURV + 1, i])
        g0 = k[K_NEG_DTDT] * (vv * w[W_CURV + 2, i] + va * w[W_CURV + 3, i]
                              + aa * w[W_CURV + 4, i])
        w[W_X0, i] = w[W_LAT, i] + sa * head_err + sw * steer + g0
        w[W_P, i] = head_err + sb * steer + g1
        w[W_P + 1, i] = steer
        bv0 = k[K_DT3_WB] * pair_ivv
        bv1 = k[K_DTDT_WB] * sum_kv
        w[W_BV0, i] = bv0
        w[W_BV1, i] = bv1
        w[W_INV, i] = -1.0 / (bv0 * k[K_QL0] * bv0 + bv1 * k[K_QL1] * bv1 + k[K_BV2_QL2_BV2]
                              + k[K_R_LAT])
        w[W_ACC_LQR, i] = accel


@numba.njit(cache=True)
def tracker_step(w, k, states, t):
    """
    Steering rate, stop controller and the bicycle model's Euler step into states[:, t].

    Needs W_WRAP (normalize_angle of W_P); leaves the new steering in W_STEER for np.tan.
    """
    n = w.shape[1]
    dt = k[K_DT]
    wb = k[K_WHEELBASE]
    stop_v = k[K_STOP_V]
    max_steer = k[K_MAX_STEER]
    two_pi = 2.0 * np.pi
    for i in range(n):
        out = states[i, t]
        v = w[W_V, i]
        steer = w[W_STEER, i]
        acc = w[W_ACC, i]
        v_ref = w[W_VREF, i]
        steer_rate = w[W_INV, i] * (w[W_BV0, i] * k[K_QL0] * w[W_X0, i]
                                    + w[W_BV1, i] * k[K_QL1] * w[W_WRAP, i]
                                    + k[K_BV2_QL2] * w[W_WRAP + 1, i])
        if v_ref <= stop_v and v <= stop_v:
            accel_cmd = k[K_NEG_STOP_GAIN] * (v - v_ref)
            steer_rate = 0.0
        else:
            accel_cmd = w[W_ACC_LQR, i]
        acc_new = k[K_ALPHA_A] * (accel_cmd - acc) + acc
        steer_lp = k[K_ALPHA_S_DT] * steer_rate + steer
        steer_rate_new = (steer_lp - steer) / dt
        x = w[W_X, i] + v * w[W_COS_H, i] * dt
        y = w[W_Y, i] + v * w[W_SIN_H, i] * dt
        # principal_value: (a + pi) % 2 pi - pi; fmod (slow) only outside [0, 2 pi), where
        # Python's % returns its argument unchanged
        shifted = w[W_HEADING, i] + v * w[W_TAN, i] / wb * dt + np.pi
        if not (0.0 < shifted < two_pi):
            shifted = shifted % two_pi
        heading = shifted - np.pi
        v = v + acc_new * dt
        steer = steer + steer_rate_new * dt
        # np.clip: min(max(x, lo), hi)
        steer = min(max(steer, -max_steer), max_steer)
        w[W_X, i] = x
        w[W_Y, i] = y
        w[W_HEADING, i] = heading
        w[W_V, i] = v
        w[W_STEER, i] = steer
        w[W_ACC, i] = acc_new
        out[_S_X] = x
        out[_S_Y] = y
        out[_S_HEADING] = heading
        out[_S_VX] = v
        out[_S_STEER] = steer
        out[_S_AX] = acc_new
        out[_S_STEER_RATE] = steer_rate_new


@numba.njit(cache=True)
def solve_tridiagonal_const_off(diag, off, rhs):
    """
    Thomas algorithm per row for symmetric tridiagonal systems (N, M), constant off-diagonal.

    The same operations in the same order as the row-vectorized numpy loop it replaces.
    """
    rows, n = diag.shape
    x = np.empty_like(rhs)
    c = np.empty(n)
    dd = np.empty(n)
    for r in range(rows):
        c[0] = off / diag[r, 0]
        dd[0] = rhs[r, 0] / diag[r, 0]
        for i in range(1, n):
            denom = diag[r, i] - off * c[i - 1]
            c[i] = off / denom
            dd[i] = (rhs[r, i] - off * dd[i - 1]) / denom
        x[r, n - 1] = dd[n - 1]
        for i in range(n - 2, -1, -1):
            x[r, i] = dd[i] - c[i] * x[r, i + 1]
    return x


@numba.njit(cache=True)
def first_box_overlaps(cx, cy, cos_h, sin_h, speed, min_speed, step, offs, t_eval, project,
                       row_group, axy, acos, asin, ahalf, areach2, avalid, ego_hl, ego_hw,
                       out):
    """
    First overlap in (step, projection) order of each (ego row, agent) pair.

    Ego rows n (row_group[n] >= 0 is the row's scene in the agent group) at steps t < t_eval
    with speed >= min_speed, its box centre projected by `step[n, s]` seconds at constant
    velocity when `project` (TTC) or not (NC), against the agents at step t + offs[s]: a
    circle test (squared centre distance <= areach2) then the separating-axis test of
    geometry.boxes_overlap, spelled out with the same operations. Rows (n, t, s, m) go into
    out (N M, 4); returns how many.
    """
    n_rows = cx.shape[0]
    n_s = offs.shape[0]
    t_agents = axy.shape[1]
    m_count = axy.shape[2]
    seen = np.full(m_count, -1, np.int64)
    count = 0
    for n in range(n_rows):
        g = row_group[n]
        if g < 0:
            continue
        for t in range(t_eval):
            v = speed[n, t]
            if not v >= min_speed:
                continue
            ca = cos_h[n, t]
            sa = sin_h[n, t]
            for s in range(n_s):
                tt = t + offs[s]
                if tt >= t_agents:
                    continue
                if project:
                    px = cx[n, t] + ca * v * step[n, s]
                    py = cy[n, t] + sa * v * step[n, s]
                else:
                    px = cx[n, t]
                    py = cy[n, t]
                for m in range(m_count):
                    if seen[m] == n or not avalid[g, tt, m]:
                        continue
                    ax = axy[g, tt, m, 0]
                    ay = axy[g, tt, m, 1]
                    ddx = px - ax
                    ddy = py - ay
                    if not ddx * ddx + ddy * ddy <= areach2[g, m]:
                        continue
                    # geometry.boxes_overlap(p, heading, ego half, agent centre, heading, half)
                    d0 = ax - px
                    d1 = ay - py
                    cb = acos[g, tt, m]
                    sb = asin[g, tt, m]
                    cr = abs(ca * cb + sa * sb)
                    sr = abs(sa * cb - ca * sb)
                    hlb = ahalf[g, m, 0]
                    hwb = ahalf[g, m, 1]
                    if abs(d0 * ca + d1 * sa) > ego_hl + hlb * cr + hwb * sr:
                        continue
                    if abs(-d0 * sa + d1 * ca) > ego_hw + hlb * sr + hwb * cr:
                        continue
                    if abs(d0 * cb + d1 * sb) > hlb + ego_hl * cr + ego_hw * sr:
                        continue
                    if abs(-d0 * sb + d1 * cb) > hwb + ego_hl * sr + ego_hw * cr:
                        continue
                    seen[m] = n
                    out[count, 0] = n
                    out[count, 1] = t
                    out[count, 2] = s
                    out[count, 3] = m
                    count += 1
    return count


@numba.njit(cache=True)
def _segment_offset(px, py, ax, ay, bx, by):
    """
    (squared distance, t, length^2 floored at 1e-18) of point p to segment a-b.

    The operations of SegmentGrid.within and the route-projection shortcut, in their order.
    """
    dx = bx - ax
    dy = by - ay
    len2 = max(dx * dx + dy * dy, 1e-18)
    rx = px - ax
    ry = py - ay
    t = min(max((rx * dx + ry * dy) / len2, 0.0), 1.0)
    ex = rx - t * dx
    ey = ry - t * dy
    return ex * ex + ey * ey, t, len2


@numba.njit(cache=True)
def project_on_route(points, route, arc, margin):
    """
    geometry.project_on_polyline (arc length only) with the same operations.

    points (P, 2), route (R, 2) polyline, arc (R,) its arc length. Segments near the points'
    bounding box are searched first; a point whose closest one is farther than `margin` is
    projected on the whole route with Route.project's formula.
    """
    n_pts = points.shape[0]
    n_seg = route.shape[0] - 1
    out = np.empty(n_pts)
    lox = points[0, 0]
    loy = points[0, 1]
    hix = lox
    hiy = loy
    for i in range(1, n_pts):
        lox = min(lox, points[i, 0])
        loy = min(loy, points[i, 1])
        hix = max(hix, points[i, 0])
        hiy = max(hiy, points[i, 1])
    lox -= margin
    loy -= margin
    hix += margin
    hiy += margin
    keep = np.empty(n_seg, np.int64)
    n_keep = 0
    for j in range(n_seg):
        ax, ay = route[j, 0], route[j, 1]
        bx, by = route[j + 1, 0], route[j + 1, 1]
        if (max(ax, bx) >= lox and max(ay, by) >= loy and min(ax, bx) <= hix
                and min(ay, by) <= hiy):
            keep[n_keep] = j
            n_keep += 1
    margin2 = margin * margin
    for i in range(n_pts):
        px, py = points[i, 0], points[i, 1]
        best = -1
        best_d2 = np.inf
        best_t = 0.0
        best_len2 = 0.0
        for q in range(n_keep):
            j = keep[q]
            d2, t, len2 = _segment_offset(px, py, route[j, 0], route[j, 1], route[j + 1, 0],
                                          route[j + 1, 1])
            if d2 < best_d2:
                best, best_d2, best_t, best_len2 = j, d2, t, len2
        if best >= 0 and best_d2 <= margin2:
            out[i] = arc[best] + best_t * np.sqrt(best_len2)
            continue
        # Route.project: closest = a + t d, distance of the point to it
        for j in range(n_seg):
            ax, ay = route[j, 0], route[j, 1]
            dx = route[j + 1, 0] - ax
            dy = route[j + 1, 1] - ay
            len2 = dx * dx + dy * dy
            rx = px - ax
            ry = py - ay
            t = min(max((rx * dx + ry * dy) / len2, 0.0), 1.0)
            ex = px - (ax + t * dx)
            ey = py - (ay + t * dy)
            d2 = ex * ex + ey * ey
            if j == 0 or d2 < best_d2:
                best, best_d2, best_t, best_len2 = j, d2, t, len2
        out[i] = arc[best] + best_t * np.sqrt(best_len2)
    return out


@numba.njit(cache=True)
def _cell_row(x, y, cell_m, x0, y0, grid):
    """Row of the dense cell table for point (x, y), -1 outside (geometry._find_rows)."""
    fx = np.floor(x / cell_m)
    fy = np.floor(y / cell_m)
    # beyond the int64 range (or NaN) numpy's cast lands on the grid's -1 border as well
    if not (abs(fx) < 4e18 and abs(fy) < 4e18):
        return -1
    cx = np.int64(fx)
    cy = np.int64(fy)
    nx, ny = grid.shape
    ix = min(max(cx - x0, 0), nx - 1)
    iy = min(max(cy - y0, 0), ny - 1)
    return grid[ix, iy]


@numba.njit(cache=True)
def lane_flags(points, k_use, num_lanes, cell_m, x0, y0, grid, full, flat_start, flat_count,
               flat_values, normals, offsets, piece_lane, route_mask, inter_mask, out):
    """
    Lane flags of the ego points (G, T, 6, 2) of one scene (batch._lane_flags).

    Points are FL, RL, RR, FR, centre, rear axle; only the first k_use are tested. A point is
    in a column when its cell lies wholly inside it (`full`) or a piece of the column listed
    for the cell contains it (4 closed half-planes, the same operations as
    LaneIndex.point_hits). out (5, G, T) bool: multiple lanes, non-drivable, oncoming, centre
    and rear axle in an intersection.
    """
    g_len, t_len = points.shape[0], points.shape[1]
    n_col = num_lanes + 1
    hit = np.zeros((6, n_col), np.bool_)
    for g in range(g_len):
        for t in range(t_len):
            for k in range(k_use):
                x = points[g, t, k, 0]
                y = points[g, t, k, 1]
                row = _cell_row(x, y, cell_m, x0, y0, grid)
                if row < 0:
                    continue
                for f in range(full.shape[1]):
                    col = full[row, f]
                    if col >= 0:
                        hit[k, col] = True
                start = flat_start[row]
                for q in range(start, start + flat_count[row]):
                    p = flat_values[q]
                    if (normals[p, 0, 0] * x + normals[p, 0, 1] * y >= offsets[p, 0]
                            and normals[p, 1, 0] * x + normals[p, 1, 1] * y >= offsets[p, 1]
                            and normals[p, 2, 0] * x + normals[p, 2, 1] * y >= offsets[p, 2]
                            and normals[p, 3, 0] * x + normals[p, 3, 1] * y >= offsets[p, 3]):
                        hit[k, piece_lane[p]] = True
            touched = 0
            all_four = False
            for c in range(num_lanes):
                if hit[0, c] or hit[1, c] or hit[2, c] or hit[3, c]:
                    touched += 1
                if hit[0, c] and hit[1, c] and hit[2, c] and hit[3, c]:
                    all_four = True
            out[0, g, t] = touched > 1 and not all_four
            drivable = True
            for k in range(4):
                inside = False
                for c in range(n_col):
                    inside = inside or hit[k, c]
                drivable = drivable and inside
            out[1, g, t] = not drivable
            on_route = False
            c_inter = False
            r_inter = False
            for c in range(num_lanes):
                on_route = on_route or (hit[4, c] and route_mask[c])
                c_inter = c_inter or (hit[4, c] and inter_mask[c])
                r_inter = r_inter or (hit[5, c] and inter_mask[c])
            out[2, g, t] = not on_route
            out[3, g, t] = c_inter
            out[4, g, t] = r_inter
            hit[:k_use] = False


@numba.njit(cache=True)
def within_segments(points, radius, cell_m, x0, y0, grid, flat_start, flat_count,
                    flat_values, seg_a, seg_b, out):
    """SegmentGrid.within for points (P, 2) with its operations: out (P,) bool."""
    r2 = radius * radius
    for i in range(points.shape[0]):
        x = points[i, 0]
        y = points[i, 1]
        out[i] = False
        row = _cell_row(x, y, cell_m, x0, y0, grid)
        if row < 0:
            continue
        start = flat_start[row]
        for q in range(start, start + flat_count[row]):
            s = flat_values[q]
            d2 = _segment_offset(x, y, seg_a[s, 0], seg_a[s, 1], seg_b[s, 0], seg_b[s, 1])[0]
            if d2 <= r2:
                out[i] = True
                break


@numba.njit(cache=True)
def ego_points(states, cos_h, sin_h, rear_to_centre, half_length, half_width, out):
    """
    Box corners FL, RL, RR, FR, centre and rear axle (N, T, 6, 2) of rear-axle states.

    simulation.rear_axle_to_centre and geometry.box_corners with the same operations, from
    the heading's cos_h, sin_h (N, T).
    """
    for n in range(states.shape[0]):
        for t in range(states.shape[1]):
            c = cos_h[n, t]
            s = sin_h[n, t]
            rx = states[n, t, 0]
            ry = states[n, t, 1]
            cx = rx + rear_to_centre * c
            cy = ry + rear_to_centre * s
            fx = c * half_length
            fy = s * half_length
            lx = -s * half_width
            ly = c * half_width
            p = out[n, t]
            p[0, 0] = cx + fx + lx
            p[1, 0] = cx - fx + lx
            p[2, 0] = cx - fx - lx
            p[3, 0] = cx + fx - lx
            p[0, 1] = cy + fy + ly
            p[1, 1] = cy - fy + ly
            p[2, 1] = cy - fy - ly
            p[3, 1] = cy + fy - ly
            p[4, 0] = cx
            p[4, 1] = cy
            p[5, 0] = rx
            p[5, 1] = ry
