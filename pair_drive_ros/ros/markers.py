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

"""MarkerArray builders: planner candidates coloured by score, simulator agents as boxes."""

import numpy as np

from pair_drive_ros.core.agents import Agents
from pair_drive_ros.core.se2 import yaw_to_quaternion


def score_colors(scores: np.ndarray | None, k: int) -> np.ndarray:
    """(K, 4) RGBA: red (worst) to green (best), scores normalized over the set."""
    if scores is None or len(scores) != k:
        return np.tile([0.6, 0.6, 0.6, 0.5], (k, 1))
    s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
    finite = np.isfinite(s)
    lo, hi = (s[finite].min(), s[finite].max()) if finite.any() else (0.0, 0.0)
    u = np.where(finite, (s - lo) / (hi - lo) if hi > lo else 1.0, 0.0)
    return np.stack([1.0 - u, u, np.zeros(k), 0.3 + 0.6 * u], -1)


def candidate_markers(hdr, candidates_map: np.ndarray, scores: np.ndarray | None,
                      ns: str = 'candidates', width_m: float = 0.15):
    """DELETEALL, then one LINE_STRIP per candidate ((K, N, 3) map-frame poses), stable ids."""
    from geometry_msgs.msg import Point
    from visualization_msgs.msg import Marker, MarkerArray

    cands = np.asarray(candidates_map, dtype=np.float64)
    out = MarkerArray(markers=[Marker(header=hdr, ns=ns, action=Marker.DELETEALL)])
    if cands.ndim != 3 or len(cands) == 0:
        return out
    colors = score_colors(scores, len(cands))
    for i, (cand, rgba) in enumerate(zip(cands, colors)):
        m = Marker(header=hdr, ns=ns, id=i, type=Marker.LINE_STRIP, action=Marker.ADD)
        m.scale.x = width_m
        m.pose.orientation.w = 1.0
        m.color.r, m.color.g, m.color.b, m.color.a = (float(c) for c in rgba)
        m.points = [Point(x=float(x), y=float(y), z=0.1) for x, y in cand[:, :2]
                    if np.isfinite(x) and np.isfinite(y)]
        out.markers.append(m)
    return out


def agent_markers(hdr, agents: Agents, ns: str = 'agents'):
    """DELETEALL, then one CUBE per agent (map frame), id = track id."""
    from visualization_msgs.msg import Marker, MarkerArray

    out = MarkerArray(markers=[Marker(header=hdr, ns=ns, action=Marker.DELETEALL)])
    q = yaw_to_quaternion(agents.poses[:, 2]) if len(agents) else np.zeros((0, 4))
    for i in range(len(agents)):
        m = Marker(header=hdr, ns=ns, id=int(agents.ids[i]), type=Marker.CUBE,
                   action=Marker.ADD)
        m.pose.position.x, m.pose.position.y = (float(v) for v in agents.poses[i, :2])
        m.pose.position.z = float(agents.heights[i]) / 2.0
        m.pose.orientation.z, m.pose.orientation.w = float(q[i, 2]), float(q[i, 3])
        m.scale.x, m.scale.y = (float(v) for v in agents.sizes[i])
        m.scale.z = float(agents.heights[i])
        m.color.r, m.color.g, m.color.b, m.color.a = 0.2, 0.4, 0.9, 0.8
        out.markers.append(m)
    return out
