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
Slow, simple reference implementation of the NAVSIM scorer.

Written independently of pair_drive_ros.scoring: one candidate at a time, plain loops, shapely
polygons, and the tracker written literally after NAVSIM (3x3 matrix products, pinv least
squares).
"""

import math

import numpy as np
from scipy.signal import savgol_filter
from shapely.geometry import LineString, Point, Polygon
from shapely.prepared import prep

# state columns (NAVSIM StateIndex)
X, Y, H, VX, VY, AX, AY, STEER, STEER_RATE, W, W_DOT = range(11)


def _wrap(a):
    return math.atan2(math.sin(a), math.cos(a))


def interpolate(start_pose, poses, dt_pose=0.5, dt=0.1, n=41):
    pts = [tuple(start_pose)] + [tuple(p) for p in poses]
    yaw = np.unwrap([p[2] for p in pts])
    out = []
    for i in range(n):
        t = i * dt
        k = min(int(math.floor(t / dt_pose + 1e-9)), len(pts) - 2)
        w = min(max((t - k * dt_pose) / dt_pose, 0.0), 1.0)
        out.append([pts[k][0] * (1 - w) + pts[k + 1][0] * w,
                    pts[k][1] * (1 - w) + pts[k + 1][1] * w,
                    yaw[k] * (1 - w) + yaw[k + 1] * w])
    return np.array(out)


def fit_profiles(ref, dt, jerk_penalty, curv_penalty, navsim_band=True):
    disp = np.diff(ref, axis=0)
    m = len(disp)
    y = disp[:, :2].reshape(-1)
    a = np.zeros((2 * m, m))
    for k in range(m):
        hv = (math.cos(ref[k, 2]), math.sin(ref[k, 2]))
        for r in range(2):
            a[2 * k + r, 0] = hv[r] * dt
            for j in range(1, k + 1):
                a[2 * k + r, j] = hv[r] * dt * dt
    n = m - 2
    band = np.zeros((n, n + 1))
    for i in range(n):
        band[i, i + 1] = 1.0
    if navsim_band:
        band[:, :-1] = -np.eye(n)
    else:
        for i in range(n):
            band[i, i] = -1.0
    r_mat = np.hstack([np.zeros((n, 1)), band])
    x = np.linalg.pinv(a.T @ a + jerk_penalty * r_mat.T @ r_mat) @ a.T @ y
    vel = [x[0]]
    for k in range(1, m):
        vel.append(vel[-1] + x[k] * dt)
    vel = np.array(vel)
    dth = np.array([_wrap(d) for d in disp[:, 2]])
    ac = np.zeros((m, m))
    for i in range(m):
        ac[i, 0] = vel[i] * dt
        for j in range(1, i + 1):
            ac[i, j] = vel[i] * dt * dt
    q = curv_penalty * np.eye(m)
    q[0, 0] = 1e-10
    xc = np.linalg.pinv(ac.T @ ac + q) @ ac.T @ dth
    curv = [xc[0]]
    for k in range(1, m):
        curv.append(curv[-1] + xc[k] * dt)
    return vel, np.array(curv)


def simulate_one(poses_centre_map, start, veh, dt=0.1, n=41, horizon=10, navsim_band=True):
    """Simulate NAVSIM's tracker and bicycle for one candidate; start: 11-vector (rear axle)."""
    r = veh.rear_axle_to_center_m
    rear = [(p[0] - r * math.cos(p[2]), p[1] - r * math.sin(p[2]), p[2]) for p in poses_centre_map]
    ref = interpolate(start[:3], rear, dt=dt, n=n)
    vel_p, curv_p = fit_profiles(ref, dt, 1e-4, 1e-2, navsim_band)
    lwb = veh.wheelbase_m
    states = [np.array(start, dtype=float)]
    q_lat = np.diag([1.0, 10.0, 0.0])
    for t in range(1, n):
        it = t - 1
        s = states[-1]
        rx, ry, rh = ref[it]
        ex = s[X] - rx
        ey = s[Y] - ry
        lat = np.array([-ex * math.sin(rh) + ey * math.cos(rh), _wrap(s[H] - rh), s[STEER]])
        ref_idx = min(it + horizon, len(vel_p) - 1)
        v_ref = vel_p[ref_idx]
        v = s[VX]
        if v_ref <= 0.2 and v <= 0.2:
            acc_cmd = -0.5 * (v - v_ref)
            rate_cmd = 0.0
        else:
            b = horizon * dt
            acc_cmd = -(b * 10.0 * (v - v_ref)) / (b * 10.0 * b + 1.0)
            a_m = np.eye(3)
            b_m = np.zeros((3, 1))
            g = np.zeros(3)
            for k in range(horizon):
                vk = v + k * acc_cmd * dt
                ck = curv_p[min(it + k, ref_idx)]
                mk = np.eye(3)
                mk[0, 1] = vk * dt
                mk[1, 2] = vk * dt / lwb
                a_m = mk @ a_m
                b_m = mk @ b_m + np.array([[0.0], [0.0], [dt]])
                g = mk @ g + np.array([0.0, -vk * ck * dt, 0.0])
            err = a_m @ lat + g
            err[1] = _wrap(err[1])
            err[2] = _wrap(err[2])
            bq = b_m.T @ q_lat
            rate_cmd = float(-(bq @ err)[0] / ((bq @ b_m)[0, 0] + 1.0))
        new = s.copy()
        acc = dt / (dt + 0.2) * (acc_cmd - s[AX]) + s[AX]
        ideal = dt * rate_cmd + s[STEER]
        steer_lp = dt / (dt + 0.05) * (ideal - s[STEER]) + s[STEER]
        rate = (steer_lp - s[STEER]) / dt
        new[X] = s[X] + v * math.cos(s[H]) * dt
        new[Y] = s[Y] + v * math.sin(s[H]) * dt
        new[H] = (s[H] + v * math.tan(s[STEER]) / lwb * dt + math.pi) % (2 * math.pi) - math.pi
        new[VX] = v + acc * dt
        new[VY] = 0.0
        new[STEER] = min(max(s[STEER] + rate * dt, -math.pi / 3), math.pi / 3)
        new[W] = new[VX] * math.tan(new[STEER]) / lwb
        new[AX] = acc
        new[AY] = 0.0
        new[W_DOT] = (new[W] - s[W]) / dt
        new[STEER_RATE] = rate
        states.append(new)
    return np.array(states)


def ego_polygon(state, veh):
    r = veh.rear_axle_to_center_m
    cx = state[X] + r * math.cos(state[H])
    cy = state[Y] + r * math.sin(state[H])
    return box_polygon(cx, cy, state[H], veh.length_m, veh.width_m)


def box_polygon(cx, cy, yaw, length, width):
    c, s = math.cos(yaw), math.sin(yaw)
    pts = []
    for lon, lat in ((0.5, 0.5), (-0.5, 0.5), (-0.5, -0.5), (0.5, -0.5)):  # FL RL RR FR
        dx, dy = lon * length, lat * width
        pts.append((cx + c * dx - s * dy, cy + s * dx + c * dy))
    return Polygon(pts)


def _angle(ego_xy, ego_h, agent_xy):
    vx, vy = agent_xy[0] - ego_xy[0], agent_xy[1] - ego_xy[1]
    norm = math.hypot(vx, vy)
    if norm == 0.0:
        return float('nan')
    d = (math.cos(ego_h) * vx + math.sin(ego_h) * vy) / norm
    return math.acos(min(1.0, max(-1.0, d)))


class SlowScorer:
    """Scores one candidate's simulated states against one scene."""

    def __init__(self, scene, cfg):
        self.scene = scene
        self.cfg = cfg
        self.veh = cfg.vehicle
        self.lanes = [prep(Polygon(ln.polygon)) for ln in scene.road.lanes]
        self.extra_areas = [prep(a if hasattr(a, 'exterior') else Polygon(a))
                            for a in getattr(scene.road, 'drivable_areas', None) or ()]
        self.route_set = set(scene.route_lane_ids)
        self.on_route = [ln.lane_id in self.route_set for ln in scene.road.lanes]
        self.inter = [ln.in_intersection for ln in scene.road.lanes]
        self.route_line = LineString(scene.route.points)
        tr = scene.agents
        self.valid = tr.valid.copy()
        if cfg.navsim_version == 'v2':
            ego0 = box_polygon(scene.ego.pose[0], scene.ego.pose[1], scene.ego.pose[2],
                               self.veh.length_m, self.veh.width_m)
            for m in range(len(tr.ids)):
                if tr.valid[0, m] and ego0.intersects(self._agent_poly(0, m)):
                    self.valid[:, m] = False
        self.first_speed = []
        for m in range(len(tr.ids)):
            t0 = int(np.argmax(tr.valid[:, m]))
            self.first_speed.append(math.hypot(*tr.velocities[t0, m]))

    def _agent_poly(self, t, m):
        p = self.scene.agents.poses[t, m]
        size = self.scene.agents.sizes[m]
        return box_polygon(p[0], p[1], p[2], size[0], size[1])

    def areas(self, state):
        poly = ego_polygon(state, self.veh)
        corners = list(poly.exterior.coords)[:4]
        c_in = [[lane.contains(Point(c)) for lane in self.lanes] for c in corners]
        touched = sum(1 for li in range(len(self.lanes)) if any(c_in[k][li] for k in range(4)))
        all4 = any(all(c_in[k][li] for k in range(4)) for li in range(len(self.lanes)))
        multiple = touched > 1 and not all4
        nondrivable = sum(1 for k in range(4) if any(c_in[k]) or any(
            a.contains(Point(corners[k])) for a in self.extra_areas)) < 4
        centre = poly.centroid
        rear = Point(state[X], state[Y])
        oncoming = not any(lane.contains(centre) for li, lane in enumerate(self.lanes)
                           if self.on_route[li])
        c_int = any(lane.contains(centre) for li, lane in enumerate(self.lanes) if self.inter[li])
        r_int = any(lane.contains(rear) for li, lane in enumerate(self.lanes) if self.inter[li])
        return dict(poly=poly, multiple=multiple, nondrivable=nondrivable, oncoming=oncoming,
                    c_int=c_int, r_int=r_int, centre=(centre.x, centre.y))

    def score(self, states):
        cfg = self.cfg
        v2 = cfg.navsim_version == 'v2'
        areas = [self.areas(s) for s in states]
        tr = self.scene.agents
        n_agents = len(tr.ids)
        # NC
        nc = 1.0
        ignored = set()
        for t, s in enumerate(states):
            if t >= tr.num_steps:
                break
            for m in range(n_agents):
                if not self.valid[t, m] or m in ignored:
                    continue
                apoly = self._agent_poly(t, m)
                if not areas[t]['poly'].intersects(apoly):
                    continue
                speed = math.hypot(s[VX], s[VY])
                if speed <= 0.05:
                    fault = False
                elif self.first_speed[m] <= 0.05:
                    fault = True
                elif _angle((s[X], s[Y]), s[H], (apoly.centroid.x, apoly.centroid.y)) > \
                        math.radians(150):
                    fault = False
                else:
                    coords = list(areas[t]['poly'].exterior.coords)
                    front = LineString([coords[0], coords[3]]).intersects(apoly)
                    fault = front or areas[t]['multiple'] or areas[t]['nondrivable']
                if fault:
                    nc = 0.0
                else:
                    ignored.add(m)
        dac = 0.0 if any(a['nondrivable'] for a in areas) else 1.0
        # DDC
        prog = [0.0]
        for t in range(1, len(states)):
            d = math.dist(areas[t]['centre'], areas[t - 1]['centre'])
            use = areas[t]['oncoming'] and not (v2 and areas[t]['c_int'])
            prog.append(d if use else 0.0)
        worst = max(sum(prog[max(0, t - 10):t + 1]) for t in range(len(prog)))
        ddc = 1.0 if worst < 2.0 else (0.5 if worst < 6.0 else 0.0)
        # EP raw
        p0 = self.route_line.project(Point(areas[0]['centre']))
        p1 = self.route_line.project(Point(areas[-1]['centre']))
        raw = max(p1 - p0, 0.0)
        # TTC
        ttc = 1.0
        ignored = set()
        n_t = len(states) - 9 if v2 else len(states)
        dt = 0.1
        for t in range(n_t):
            s = states[t]
            speed = math.hypot(s[VX], s[VY])
            for off in (0, 3, 6, 9):
                ta = t + off
                if ta >= tr.num_steps:
                    continue
                shift = (math.cos(s[H]) * speed * off * dt, math.sin(s[H]) * speed * off * dt)
                coords = [(x + shift[0], y + shift[1])
                          for x, y in list(areas[t]['poly'].exterior.coords)[:4]]
                proj = Polygon(coords)
                for m in range(n_agents):
                    if not self.valid[ta, m] or m in ignored:
                        continue
                    apoly = self._agent_poly(ta, m)
                    if not proj.intersects(apoly) or speed < 5e-3:
                        continue
                    ang = _angle((s[X], s[Y]), s[H], (apoly.centroid.x, apoly.centroid.y))
                    area = areas[t]['multiple'] or areas[t]['nondrivable'] or areas[t]['r_int']
                    if ang < math.radians(30) or (area and not ang > math.radians(150)):
                        ttc = 0.0
                    else:
                        ignored.add(m)
        # LK
        lk = 1.0
        count = 0
        for a in areas:
            if a['c_int']:
                continue
            if self.route_line.distance(Point(a['centre'])) > 0.5:
                count += 1
            else:
                count = 0
            if count >= 20:
                lk = 0.0
                break
        return dict(NC=nc, DAC=dac, DDC=ddc, TTC=ttc, LK=lk, raw=raw)


def ep(raw, mult, reference, v2):
    masked = raw * mult
    norm = max(reference, masked)
    if norm > 5.0:
        return min(max(raw / norm, 0.0), 1.0) if v2 else masked / norm
    return 1.0 if (v2 or mult > 0) else 0.0


def comfort_v1(states, dt=0.1):
    ax, ay = states[:, AX], states[:, AY]
    h = np.unwrap(states[:, H])

    def sg(y, w, p, d=0):
        return np.round(savgol_filter(y, min(w, len(y)), p, deriv=d, delta=dt), 8)
    checks = [
        (sg(ax, 41, 2), -4.05, 2.40),
        (sg(ay, 41, 2), -4.89, 4.89),
        (np.round(savgol_filter(sg(np.hypot(ax, ay), 8, 2), 41, 2, deriv=1, delta=dt), 8),
         -8.37, 8.37),
        (np.round(savgol_filter(sg(ax, 8, 2), 41, 2, deriv=1, delta=dt), 8), -4.13, 4.13),
        (sg(h, 5, 3, 2), -1.93, 1.93),
        (sg(h, 5, 2, 1), -0.95, 0.95),
    ]
    return float(all(np.all((v > lo) & (v < hi)) for v, lo, hi in checks))


def history_rows(scene, veh, dt=0.1):
    """
    Return NAVSIM's history states for HC, one row at a time, or None with under 6 logged poses.

    NAVSIM builds them with ego_status_to_ego_state: no steering, yaw rate or yaw acceleration.
    The rear axle's velocity and acceleration are central differences of the logged poses
    (np.gradient applied twice), rotated into the heading. NAVSIM drops the last two logged
    states (t = -0.1, 0 s); the two oldest, where the differences would be one-sided, go too.
    """
    hist = np.asarray(scene.ego_history, dtype=float).reshape(-1, 3)
    if len(hist) < 6:
        return None
    r = veh.rear_axle_to_center_m
    rear = [np.array([p[0] - r * math.cos(p[2]), p[1] - r * math.sin(p[2])]) for p in hist]
    rows = []
    for i in range(2, len(hist) - 2):
        vel = (rear[i + 1] - rear[i - 1]) / (2 * dt)
        acc = (rear[i + 2] - 2 * rear[i] + rear[i - 2]) / (4 * dt * dt)
        c, s = math.cos(hist[i, 2]), math.sin(hist[i, 2])
        row = np.zeros(11)
        row[[X, Y, H]] = rear[i][0], rear[i][1], hist[i, 2]
        row[VX], row[VY] = c * vel[0] + s * vel[1], -s * vel[0] + c * vel[1]
        row[AX], row[AY] = c * acc[0] + s * acc[1], -s * acc[0] + c * acc[1]
        rows.append(row)
    return np.array(rows)


def history_comfort(states, history, veh, dt=0.1):
    """HC: v2 comfort of the history rows followed by the simulated states (1 without history)."""
    if history is None:
        return 1.0
    full = np.concatenate([history, states])
    r = veh.rear_axle_to_center_m
    ax, ay = full[:, AX], full[:, AY]
    ax_c = ax + r * full[:, W] ** 2 + r * full[:, W_DOT]
    h = np.unwrap(full[:, H])

    def sg(y, w, p, d=0):
        return np.round(savgol_filter(y, min(w, len(y)), p, deriv=d, delta=dt), 8)
    lon = sg(ax_c, 8, 2)
    checks = [
        (lon, -4.05, 2.40),
        (sg(ay, 8, 2), -4.89, 4.89),
        (sg(sg(np.hypot(ax, ay), 8, 2), 15, 2, 1), -8.37, 8.37),
        (sg(lon, 15, 2, 1), -4.13, 4.13),
        (sg(h, 5, 3, 2), -1.93, 1.93),
        (sg(h, 5, 2, 1), -0.95, 0.95),
    ]
    return float(all(np.all((v > lo) & (v < hi)) for v, lo, hi in checks))


FILTER_COLUMNS = ('NC', 'DAC', 'DDC', 'TLC', 'EP', 'TTC', 'LK', 'HC')


def epdms(agent, human=None, ec_used=False):
    """
    EPDMS of one candidate from dicts of its sub-metrics, after NAVSIM's human filter.

    As navsim/evaluate/pdm_score.py does: for every metric column on which the human scores 0,
    the agent's column is set to 1, then the score is recomputed. EC is not a column there.
    Returns (score, names of the filtered columns).
    """
    agent = dict(agent)
    filtered = []
    if human is not None:
        for name in FILTER_COLUMNS:
            if human[name] == 0:
                agent[name] = 1.0
                filtered.append(name)
    weights = {'EP': 5.0, 'TTC': 5.0, 'LK': 2.0, 'HC': 2.0}
    if ec_used:
        weights['EC'] = 2.0
    weighted = sum(w * agent[k] for k, w in weights.items()) / sum(weights.values())
    return agent['NC'] * agent['DAC'] * agent['DDC'] * agent['TLC'] * weighted, filtered
