"""Vectorized geometry for the scorer.

Lane membership through a grid index, box overlap by separating axes, and a near-polyline test.
No per-candidate Python loops.
"""

from dataclasses import dataclass

import numpy as np

from pair_drive_ros.core.road import RoadMap


@dataclass(frozen=True)
class LaneIndex:
    """Lane polygons split into quads, bucketed on a uniform grid.

    quads: (Q, 4, 2) vertices left_i, left_{i+1}, right_{i+1}, right_i of each centreline
    segment; quad_lane: (Q,) lane index. cells: (Cx * Cy, K) quad ids per cell, -1 padded.
    The union of a lane's quads is its polygon (Lane.polygon) when the polygon is simple.
    """

    quads: np.ndarray
    quad_lane: np.ndarray
    num_lanes: int
    origin: np.ndarray
    cell_m: float
    shape: tuple
    cells: np.ndarray

    @classmethod
    def build(cls, road: RoadMap, cell_m: float = 4.0, max_cells: int = 400_000) -> 'LaneIndex':
        """Index all lanes of `road`."""
        quads, owner = [], []
        for i, lane in enumerate(road.lanes):
            left, right = lane.left_boundary, lane.right_boundary
            q = np.stack([left[:-1], left[1:], right[1:], right[:-1]], axis=1)
            quads.append(q)
            owner.append(np.full(len(q), i))
        if not quads:
            return cls(np.zeros((0, 4, 2)), np.zeros(0, int), 0, np.zeros(2), cell_m, (1, 1),
                       np.full((1, 1), -1))
        quads = np.concatenate(quads)
        owner = np.concatenate(owner)
        lo = quads.min(axis=(0, 1)) - 1.0
        hi = quads.max(axis=(0, 1)) + 1.0
        while np.prod(np.ceil((hi - lo) / cell_m)) > max_cells:
            cell_m *= 2.0
        shape = tuple(int(v) for v in np.ceil((hi - lo) / cell_m).astype(int))
        qlo = np.floor((quads.min(axis=1) - lo) / cell_m).astype(int)
        qhi = np.floor((quads.max(axis=1) - lo) / cell_m).astype(int)
        buckets: dict = {}
        for qi in range(len(quads)):
            for cx in range(qlo[qi, 0], qhi[qi, 0] + 1):
                for cy in range(qlo[qi, 1], qhi[qi, 1] + 1):
                    buckets.setdefault(cx * shape[1] + cy, []).append(qi)
        k = max(len(v) for v in buckets.values())
        cells = np.full((shape[0] * shape[1], k), -1, dtype=np.int64)
        for key, ids in buckets.items():
            cells[key, :len(ids)] = ids
        return cls(quads, owner, len(road.lanes), lo, cell_m, shape, cells)

    def points_in_lanes(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) points -> (..., num_lanes) bool: point inside each lane polygon."""
        pts = np.asarray(points, dtype=np.float64)
        shape = pts.shape[:-1]
        flat = pts.reshape(-1, 2)
        out = np.zeros((len(flat), max(self.num_lanes, 1)), dtype=bool)
        if self.num_lanes == 0 or len(flat) == 0:
            return out[:, :self.num_lanes].reshape(shape + (self.num_lanes,))
        cxy = np.floor((flat - self.origin) / self.cell_m).astype(np.int64)
        inside_grid = ((cxy[:, 0] >= 0) & (cxy[:, 0] < self.shape[0])
                       & (cxy[:, 1] >= 0) & (cxy[:, 1] < self.shape[1]))
        rows = np.nonzero(inside_grid)[0]
        cell = cxy[rows, 0] * self.shape[1] + cxy[rows, 1]
        cand = self.cells[cell]                       # (R, K)
        r_idx, k_idx = np.nonzero(cand >= 0)
        qid = cand[r_idx, k_idx]
        p_rows = rows[r_idx]
        hit = point_in_quads(flat[p_rows], self.quads[qid])
        out[p_rows[hit], self.quad_lane[qid[hit]]] = True
        return out.reshape(shape + (self.num_lanes,))


def point_in_quads(points: np.ndarray, quads: np.ndarray) -> np.ndarray:
    """Crossing-number test of points (P, 2) against their quads (P, 4, 2). Returns (P,) bool."""
    x, y = points[:, 0:1], points[:, 1:2]
    xi, yi = quads[..., 0], quads[..., 1]
    xj, yj = np.roll(xi, 1, axis=1), np.roll(yi, 1, axis=1)
    straddle = (yi > y) != (yj > y)
    with np.errstate(divide='ignore', invalid='ignore'):
        x_cross = (xj - xi) * (y - yi) / (yj - yi) + xi
    crossing = straddle & (x < x_cross)
    return (np.count_nonzero(crossing, axis=1) % 2) == 1


def box_corners(centre: np.ndarray, heading: np.ndarray, length: np.ndarray,
                width: np.ndarray) -> np.ndarray:
    """Corners (..., 4, 2) FL, RL, RR, FR (NAVSIM's BBCoordsIndex order) of oriented boxes."""
    c, s = np.cos(heading), np.sin(heading)
    hl, hw = 0.5 * np.asarray(length), 0.5 * np.asarray(width)
    fx, fy = c * hl, s * hl          # half-length along the heading
    lx, ly = -s * hw, c * hw         # half-width to the left
    cx, cy = centre[..., 0], centre[..., 1]
    xs = np.stack([cx + fx + lx, cx - fx + lx, cx - fx - lx, cx + fx - lx], -1)
    ys = np.stack([cy + fy + ly, cy - fy + ly, cy - fy - ly, cy + fy - ly], -1)
    return np.stack([xs, ys], -1)


def boxes_overlap(centre_a: np.ndarray, heading_a: np.ndarray, half_a: np.ndarray,
                  centre_b: np.ndarray, heading_b: np.ndarray, half_b: np.ndarray) -> np.ndarray:
    """Separating-axis test for pairs of oriented boxes (broadcast over leading dims).

    half_*: (..., 2) half length, half width. Touching counts as overlap (shapely intersects).
    """
    d = centre_b - centre_a
    ca, sa = np.cos(heading_a), np.sin(heading_a)
    cb, sb = np.cos(heading_b), np.sin(heading_b)
    # |cos| and |sin| of the relative rotation
    cr = np.abs(ca * cb + sa * sb)
    sr = np.abs(sa * cb - ca * sb)
    hla, hwa = half_a[..., 0], half_a[..., 1]
    hlb, hwb = half_b[..., 0], half_b[..., 1]
    # axes of box a
    da0 = np.abs(d[..., 0] * ca + d[..., 1] * sa)
    da1 = np.abs(-d[..., 0] * sa + d[..., 1] * ca)
    sep = da0 > hla + hlb * cr + hwb * sr
    sep |= da1 > hwa + hlb * sr + hwb * cr
    # axes of box b
    db0 = np.abs(d[..., 0] * cb + d[..., 1] * sb)
    db1 = np.abs(-d[..., 0] * sb + d[..., 1] * cb)
    sep |= db0 > hlb + hla * cr + hwa * sr
    sep |= db1 > hwb + hla * sr + hwa * cr
    return ~sep


def segment_box_overlap(p0: np.ndarray, p1: np.ndarray, centre: np.ndarray,
                        heading: np.ndarray, half: np.ndarray) -> np.ndarray:
    """Separating-axis test of segments p0-p1 (..., 2) against oriented boxes (broadcast)."""
    c, s = np.cos(heading), np.sin(heading)
    hl, hw = half[..., 0], half[..., 1]
    mid = 0.5 * (p0 + p1) - centre
    hseg = 0.5 * (p1 - p0)
    # box axes
    m0 = mid[..., 0] * c + mid[..., 1] * s
    m1 = -mid[..., 0] * s + mid[..., 1] * c
    h0 = np.abs(hseg[..., 0] * c + hseg[..., 1] * s)
    h1 = np.abs(-hseg[..., 0] * s + hseg[..., 1] * c)
    sep = (np.abs(m0) > hl + h0) | (np.abs(m1) > hw + h1)
    # segment normal
    nx, ny = -hseg[..., 1], hseg[..., 0]
    proj_mid = np.abs(mid[..., 0] * nx + mid[..., 1] * ny)
    box_r = hl * np.abs(c * nx + s * ny) + hw * np.abs(-s * nx + c * ny)
    sep |= proj_mid > box_r
    return ~sep


def polyline_within(points: np.ndarray, polyline: np.ndarray, dist_m: float) -> np.ndarray:
    """(..., 2) points -> bool: distance to the polyline (P, 2) is at most dist_m.

    Only segments whose bounding box, grown by dist_m, meets the points' bounding box are tested.
    """
    pts = np.asarray(points, dtype=np.float64)
    shape = pts.shape[:-1]
    flat = pts.reshape(-1, 2)
    a, b = polyline[:-1], polyline[1:]
    lo = flat.min(axis=0) - dist_m
    hi = flat.max(axis=0) + dist_m
    keep = ((np.maximum(a, b) >= lo).all(axis=1) & (np.minimum(a, b) <= hi).all(axis=1))
    a, b = a[keep], b[keep]
    out = np.zeros(len(flat), dtype=bool)
    if len(a) == 0:
        return out.reshape(shape)
    d = b - a
    len2 = np.maximum(np.einsum('ij,ij->i', d, d), 1e-18)
    # chunk over points to bound memory
    step = max(1, 2_000_000 // len(a))
    for i in range(0, len(flat), step):
        q = flat[i:i + step]
        rel = q[:, None, :] - a[None]
        t = np.clip((rel[..., 0] * d[:, 0] + rel[..., 1] * d[:, 1]) / len2, 0.0, 1.0)
        ex = rel[..., 0] - t * d[:, 0]
        ey = rel[..., 1] - t * d[:, 1]
        out[i:i + step] = (ex * ex + ey * ey).min(axis=1) <= dist_m * dist_m
    return out.reshape(shape)
