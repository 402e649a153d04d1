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
Vectorized geometry for the scorer.

Lane membership through a grid index, box overlap by separating axes, and a near-polyline test.
No per-candidate Python loops.
"""

from dataclasses import dataclass

import numpy as np

from pair_drive_ros.core.road import RoadMap


@dataclass(frozen=True)
class LaneIndex:
    """
    Lane polygons split into convex pieces, bucketed on a sparse uniform grid.

    Each centreline segment gives the quad left_i, left_{i+1}, right_{i+1}, right_i; convex
    quads are kept, others are split into two triangles (a repeated vertex). The union of a
    lane's pieces is its polygon (Lane.polygon) when that polygon is simple. Pieces are stored
    as counter-clockwise half-planes: inside iff normal . p >= offset for all 4 edges (closed).
    A cell that no boundary segment of a lane touches lies wholly inside or wholly outside that
    lane; such cells answer from `full` without any point test. Column `num_lanes` (the last)
    is the union of extra drivable areas (junctions, roundabout rings) that belong to no lane:
    `RoadMap.drivable_areas` when the road map has it (polygons (P, 2) or shapely polygons).
    """

    normals: np.ndarray   # (Q, 4, 2)
    offsets: np.ndarray   # (Q, 4)
    piece_lane: np.ndarray  # (Q,)
    num_lanes: int
    cell_m: float
    keys: np.ndarray      # (U,) sorted cell keys
    cells: np.ndarray     # (U, K) piece ids to test per cell, -1 padded
    full: np.ndarray      # (U, F) lanes that contain the whole cell, -1 padded

    def __post_init__(self) -> None:
        # dense cell -> row table: an O(1) lookup instead of a binary search per point
        object.__setattr__(self, '_dense', _dense_rows(self.keys))
        # the pieces to test per cell as a flat list (cells row by row): per point work in
        # point_hits follows the pieces present, not the widest cell
        object.__setattr__(self, '_flat', _flat_table(self.cells))

    @property
    def num_columns(self) -> int:
        """Lanes plus the drivable-area column."""
        return self.num_lanes + 1

    @classmethod
    def build(cls, road: RoadMap, cell_m: float = 1.0) -> 'LaneIndex':
        """Index all lanes of `road` and its extra drivable areas."""
        pieces, owner = [], []
        for i, lane in enumerate(road.lanes):
            left, right = lane.left_boundary, lane.right_boundary
            q = np.stack([left[:-1], left[1:], right[1:], right[:-1]], axis=1)
            q = _convex_pieces(q)
            pieces.append(q)
            owner.append(np.full(len(q), i))
        area_rings = []
        for area in getattr(road, 'drivable_areas', None) or ():
            tris, rings = _triangulate(area)
            pieces.append(tris)
            owner.append(np.full(len(tris), len(road.lanes)))
            area_rings.extend(rings)
        if not any(len(p) for p in pieces):
            return cls(np.zeros((0, 4, 2)), np.zeros((0, 4)), np.zeros(0, int), 0, cell_m,
                       np.zeros(0, np.int64), np.full((0, 1), -1), np.full((0, 1), -1))
        quads = np.concatenate(pieces)
        owner = np.concatenate(owner)
        edge = np.roll(quads, -1, axis=1) - quads
        normals = np.stack([-edge[..., 1], edge[..., 0]], -1)
        offsets = np.einsum('qkd,qkd->qk', normals, quads)
        lo = np.floor(quads.min(axis=1) / cell_m).astype(np.int64)
        hi = np.floor(quads.max(axis=1) / cell_m).astype(np.int64)
        keys, cells = _bucket(lo, hi)
        rings = [np.concatenate([ln.left_boundary, ln.right_boundary[::-1],
                                 ln.left_boundary[:1]]) for ln in road.lanes]
        ring_owner = list(range(len(road.lanes))) + [len(road.lanes)] * len(area_rings)
        cells, full = _split_full_cells(rings + area_rings, ring_owner, len(road.lanes) + 1,
                                        keys, cells, owner, normals, offsets, cell_m)
        return cls(normals, offsets, owner, len(road.lanes), cell_m, keys, cells, full)

    def points_in_lanes(self, points: np.ndarray) -> np.ndarray:
        """
        Test (..., 2) points against every lane: (..., num_lanes + 1) bool.

        The last column is "inside an extra drivable area".
        """
        pts = np.asarray(points, dtype=np.float64)
        shape = pts.shape[:-1]
        flat = pts.reshape(-1, 2)
        out = np.zeros((len(flat), self.num_columns), dtype=bool)
        f_rows, f_cols, rows, cols = self.point_hits(flat)
        out[f_rows, f_cols] = True
        out[rows, cols] = True
        return out.reshape(shape + (self.num_columns,))

    def point_hits(self, flat: np.ndarray) -> tuple:
        """
        (point, column) pairs where points (P, 2) lie in a column (repeats possible).

        The sparse form of `points_in_lanes`, as two (rows, columns) pairs of arrays (whole
        cells, tested pieces): a batch of scenes writes them all into one table.
        """
        if len(flat) == 0 or len(self.keys) == 0:
            empty = np.zeros(0, np.int64)
            return empty, empty, empty, empty
        cxy = np.floor(flat / self.cell_m).astype(np.int64)
        rows, row_pos = _find_rows(self.keys, self._dense, cxy)
        full = self.full[row_pos]
        f_r, f_k = np.nonzero(full >= 0)
        r_idx, qid = _expand(self._flat, row_pos)
        p_rows = rows[r_idx]
        x, y = flat[p_rows, 0:1], flat[p_rows, 1:2]
        n = self.normals[qid]
        side = n[..., 0] * x + n[..., 1] * y >= self.offsets[qid]     # (P, 4)
        # the 4 edges spelled out: numpy reduces tiny axes slowly
        hit = side[:, 0] & side[:, 1] & side[:, 2] & side[:, 3]
        return rows[f_r], full[f_r, f_k], p_rows[hit], self.piece_lane[qid[hit]]


def _triangulate(area) -> tuple[np.ndarray, list]:
    """
    Triangulate a drivable area ((P, 2) array or shapely polygon).

    Returns counter-clockwise triangles as 4-vertex pieces (Q, 4, 2) and the boundary rings.
    """
    import shapely
    from shapely.geometry import Polygon
    poly = area if hasattr(area, 'exterior') else Polygon(np.asarray(area, dtype=np.float64))
    tris = [np.asarray(t.exterior.coords)[:3]
            for t in shapely.constrained_delaunay_triangles(poly).geoms]
    if not tris:
        return np.zeros((0, 4, 2)), []
    tris = np.stack(tris)
    tris = np.where((_signed_area(tris) < 0)[:, None, None], tris[:, ::-1], tris)
    rings = [np.asarray(poly.exterior.coords)] + [np.asarray(r.coords) for r in poly.interiors]
    return np.concatenate([tris, tris[:, -1:]], axis=1), rings


def _split_full_cells(rings: list, ring_owner: list, num_lanes: int, keys: np.ndarray,
                      cells: np.ndarray, owner: np.ndarray, normals: np.ndarray,
                      offsets: np.ndarray, cell_m: float) -> tuple:
    """
    Separate, per cell, columns that contain the whole cell from pieces that need a test.

    rings: closed boundary polylines; ring_owner: the column each ring bounds.
    """
    # cells touched by each column's boundary
    seg_a, seg_b, seg_lane = [], [], []
    for ring, col in zip(rings, ring_owner):
        seg_a.append(ring[:-1])
        seg_b.append(ring[1:])
        seg_lane.append(np.full(len(ring) - 1, col))
    seg_a, seg_b = np.concatenate(seg_a), np.concatenate(seg_b)
    seg_lane = np.concatenate(seg_lane)
    b_keys, b_table = _bucket(np.floor(np.minimum(seg_a, seg_b) / cell_m).astype(np.int64),
                              np.floor(np.maximum(seg_a, seg_b) / cell_m).astype(np.int64))
    b_r, b_k = np.nonzero(b_table >= 0)
    b_row = np.searchsorted(keys, b_keys[b_r])
    b_row = np.minimum(b_row, len(keys) - 1)
    ok = keys[b_row] == b_keys[b_r]
    boundary_codes = np.unique(b_row[ok] * num_lanes + seg_lane[b_table[b_r, b_k]][ok])
    # candidate (cell, piece) pairs
    r, k = np.nonzero(cells >= 0)
    piece = cells[r, k]
    code = r * num_lanes + owner[piece]
    on_boundary = np.isin(code, boundary_codes)
    # away from its lane's boundary a cell is wholly in or out: test the cell centre
    ctr = (np.stack([keys >> 32, (keys & 0xFFFFFFFF) - (1 << 31)], -1) + 0.5) * cell_m
    inner = ~on_boundary
    c = ctr[r[inner]]
    hit = np.all(normals[piece[inner], :, 0] * c[:, :1] + normals[piece[inner], :, 1] * c[:, 1:]
                 >= offsets[piece[inner]], axis=1)
    full_codes = np.unique(code[inner][hit])
    test_r, test_p = r[on_boundary], piece[on_boundary]
    return (_ragged(test_r, test_p, len(keys)),
            _ragged(full_codes // num_lanes, full_codes % num_lanes, len(keys)))


def _ragged(rows: np.ndarray, values: np.ndarray, num_rows: int) -> np.ndarray:
    """(num_rows, K) table of values grouped by row (rows sorted or not), -1 padded."""
    order = np.argsort(rows, kind='stable')
    rows, values = rows[order], values[order]
    counts = np.bincount(rows, minlength=num_rows)
    table = np.full((num_rows, max(int(counts.max(initial=0)), 1)), -1, dtype=np.int64)
    start = np.cumsum(counts) - counts
    table[rows, np.arange(len(rows)) - start[rows]] = values
    return table


def _signed_area(poly: np.ndarray) -> np.ndarray:
    x, y = poly[..., 0], poly[..., 1]
    return 0.5 * np.sum(x * np.roll(y, -1, axis=-1) - np.roll(x, -1, axis=-1) * y, axis=-1)


def _convex_pieces(quads: np.ndarray) -> np.ndarray:
    """Counter-clockwise convex 4-vertex pieces covering each quad (Q, 4, 2)."""
    quads = np.where((_signed_area(quads) < 0)[:, None, None], quads[:, ::-1], quads)
    edge = np.roll(quads, -1, axis=1) - quads
    nxt = np.roll(edge, -1, axis=1)
    cross = edge[..., 0] * nxt[..., 1] - edge[..., 1] * nxt[..., 0]
    convex = np.all(cross >= 0, axis=1)
    out = [quads[convex]]
    for q in quads[~convex]:
        # split at the reflex vertex r: triangles (r, r+1, r+2) and (r, r+2, r+3)
        e = np.roll(q, -1, axis=0) - q
        c = e[:, 0] * np.roll(e, -1, axis=0)[:, 1] - e[:, 1] * np.roll(e, -1, axis=0)[:, 0]
        r = (int(np.argmin(c)) + 1) % 4
        for tri in ((r, r + 1, r + 2), (r, r + 2, r + 3)):
            t = q[[i % 4 for i in tri]]
            out.append(np.concatenate([t, t[-1:]])[None])   # repeated vertex: degenerate edge
    return np.concatenate(out)


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
    """
    Separating-axis test for pairs of oriented boxes (broadcast over leading dims).

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


class SegmentGrid:
    """Segments of a polyline hashed on a sparse grid for "distance <= radius" queries."""

    def __init__(self, polyline: np.ndarray, radius_m: float, cell_m: float = 2.0) -> None:
        pts = np.asarray(polyline, dtype=np.float64)
        self.a, self.b = pts[:-1], pts[1:]
        self.radius = float(radius_m)
        self.cell = float(cell_m)
        lo = np.floor((np.minimum(self.a, self.b) - radius_m) / cell_m).astype(np.int64)
        hi = np.floor((np.maximum(self.a, self.b) + radius_m) / cell_m).astype(np.int64)
        self.keys, self.table = _bucket(lo, hi)
        self._dense = _dense_rows(self.keys)
        self._flat = _flat_table(self.table)

    def within(self, points: np.ndarray) -> np.ndarray:
        """(..., 2) points -> bool: distance to the polyline <= radius."""
        pts = np.asarray(points, dtype=np.float64)
        shape = pts.shape[:-1]
        flat = pts.reshape(-1, 2)
        out = np.zeros(len(flat), dtype=bool)
        if len(self.keys) == 0:
            return out.reshape(shape)
        cxy = np.floor(flat / self.cell).astype(np.int64)
        rows, row_pos = _find_rows(self.keys, self._dense, cxy)
        r_idx, seg = _expand(self._flat, row_pos)
        p = flat[rows[r_idx]]
        a, d = self.a[seg], self.b[seg] - self.a[seg]
        len2 = np.maximum(d[:, 0] * d[:, 0] + d[:, 1] * d[:, 1], 1e-18)
        rx, ry = p[:, 0] - a[:, 0], p[:, 1] - a[:, 1]
        t = np.clip((rx * d[:, 0] + ry * d[:, 1]) / len2, 0.0, 1.0)
        ex, ey = rx - t * d[:, 0], ry - t * d[:, 1]
        hit = ex * ex + ey * ey <= self.radius * self.radius
        out[rows[r_idx[hit]]] = True
        return out.reshape(shape)


def _flat_table(table: np.ndarray) -> tuple:
    """Flatten a -1 padded (U, K) table to (start, count, values): rows in one flat list."""
    count = (table >= 0).sum(axis=1)
    return np.cumsum(count) - count, count, table[table >= 0]


def _expand(flat: tuple, row_pos: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(index into row_pos, value) for every entry of the rows row_pos of a _flat_table."""
    start, count, values = flat
    cnt = count[row_pos]
    first = np.cumsum(cnt) - cnt
    r_idx = np.repeat(np.arange(len(row_pos)), cnt)
    return r_idx, values[np.arange(len(r_idx)) + np.repeat(start[row_pos] - first, cnt)]


def _bucket(lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """
    Sparse grid of items with inclusive cell ranges lo..hi (Q, 2).

    Returns sorted cell keys (U,) and a (U, K) table of item ids per cell, -1 padded.
    """
    if len(lo) == 0:
        return np.zeros(0, np.int64), np.full((0, 1), -1, np.int64)
    ny = hi[:, 1] - lo[:, 1] + 1
    count = (hi[:, 0] - lo[:, 0] + 1) * ny
    item = np.repeat(np.arange(len(lo)), count)
    off = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count)
    key = _cell_key(lo[item, 0] + off // ny[item], lo[item, 1] + off % ny[item])
    order = np.lexsort((item, key))
    key, item = key[order], item[order]
    keys, start, counts = np.unique(key, return_index=True, return_counts=True)
    table = np.full((len(keys), int(counts.max())), -1, dtype=np.int64)
    table[np.repeat(np.arange(len(keys)), counts),
          np.arange(len(key)) - np.repeat(start, counts)] = item
    return keys, table


# largest dense cell table (int32 entries) kept per grid; sparser maps use binary search
_MAX_DENSE_CELLS = 4_000_000


def _dense_rows(keys: np.ndarray):
    """Dense (nx, ny) table of row index per cell over the keys' bounding box, or None."""
    if len(keys) == 0:
        return None
    cx = keys >> 32
    cy = (keys & 0xFFFFFFFF) - (1 << 31)
    x0, y0 = int(cx.min()), int(cy.min())
    nx, ny = int(cx.max()) - x0 + 1, int(cy.max()) - y0 + 1
    if nx * ny > _MAX_DENSE_CELLS:
        return None
    # a border of -1 cells: points off the grid clip onto it, so one lookup serves all points
    grid = np.full((nx + 2, ny + 2), -1, dtype=np.int32)
    grid[cx - x0 + 1, cy - y0 + 1] = np.arange(len(keys), dtype=np.int32)
    return x0 - 1, y0 - 1, grid


def _find_rows(keys: np.ndarray, dense, cxy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points (P,) whose cell (P, 2) is in the grid, and that cell's row in keys."""
    if dense is None:
        key = _cell_key(cxy[:, 0], cxy[:, 1])
        pos = np.minimum(np.searchsorted(keys, key), len(keys) - 1)
        rows = np.nonzero(keys[pos] == key)[0]
        return rows, pos[rows]
    x0, y0, grid = dense
    nx, ny = grid.shape
    x = np.clip(cxy[:, 0] - x0, 0, nx - 1)
    y = np.clip(cxy[:, 1] - y0, 0, ny - 1)
    pos = grid.ravel().take(x * ny + y)
    rows = np.nonzero(pos >= 0)[0]
    return rows, pos[rows].astype(np.int64)


def _cell_key(cx, cy):
    # cells are within +-2^31 of the origin for any map in metres
    return (np.asarray(cx, dtype=np.int64) << 32) + (np.asarray(cy, dtype=np.int64) + (1 << 31))


def project_on_polyline(route, points: np.ndarray, margin_m: float = 50.0,
                        with_lateral: bool = False):
    """
    Arc length (P,) of the closest route point to each point (P, 2), as Route.project.

    With with_lateral, returns (s, lateral) exactly as Route.project does.

    Only segments near the points' bounding box are searched; a point whose closest segment
    is farther than margin_m falls back to the whole route, so the result is exact.
    """
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    a, b = route.points[:-1], route.points[1:]
    lo, hi = pts.min(axis=0) - margin_m, pts.max(axis=0) + margin_m
    keep = np.nonzero((np.maximum(a, b) >= lo).all(axis=1)
                      & (np.minimum(a, b) <= hi).all(axis=1))[0]
    s = np.empty(len(pts))
    lat = np.empty(len(pts))
    todo = np.ones(len(pts), dtype=bool)
    if len(keep):
        a_k, d = a[keep], b[keep] - a[keep]
        len2 = np.maximum(np.einsum('ij,ij->i', d, d), 1e-18)
        rx = pts[:, None, 0] - a_k[None, :, 0]
        ry = pts[:, None, 1] - a_k[None, :, 1]
        t = np.clip((rx * d[:, 0] + ry * d[:, 1]) / len2, 0.0, 1.0)
        ex, ey = rx - t * d[:, 0], ry - t * d[:, 1]
        dist2 = ex * ex + ey * ey
        best = np.argmin(dist2, axis=1)
        idx = np.arange(len(pts))
        ok = dist2[idx, best] <= margin_m * margin_m
        seg = keep[best]
        s[ok] = (route.arc_length[seg] + t[idx, best] * np.sqrt(len2[best]))[ok]
        cross = d[best, 0] * ry[idx, best] - d[best, 1] * rx[idx, best]
        lat[ok] = (cross / np.sqrt(len2[best]))[ok]
        todo = ~ok
    if todo.any():
        s[todo], lat[todo] = route.project(pts[todo])
    return (s, lat) if with_lateral else s
