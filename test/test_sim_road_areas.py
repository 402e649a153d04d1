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

"""Drivable patches where connected lanes meet."""

import numpy as np
import shapely
from shapely.geometry import Point, Polygon

from pair_drive_ros.core.road import Lane
from pair_drive_ros.sim.road_areas import connection_areas


def _lanes():
    # A straight entry lane ending at node 'b', and a successor leaving 'b' at 40 degrees: the
    # outside of the bend has a wedge-shaped gap between the two lane strips.
    entry = Lane('a:b:0', np.c_[np.linspace(-20.0, 0.0, 11), np.zeros(11)], 4.0)
    angle = np.deg2rad(40.0)
    s = np.linspace(0.0, 20.0, 11)
    ring = Lane('b:c:0', np.c_[s * np.cos(angle), s * np.sin(angle)], 4.0)
    other = Lane('x:y:0', np.c_[np.linspace(100.0, 120.0, 5), np.zeros(5)], 4.0)
    return [entry, ring, other]


def test_patch_covers_the_gap_between_a_lane_and_its_successor():
    lanes = _lanes()
    strips = shapely.union_all([Polygon(ln.polygon) for ln in lanes])
    gap = Point(1.0, -1.6)   # outside both strips, in the wedge on the outside of the bend
    assert not strips.contains(gap)
    areas = connection_areas(lanes)
    assert len(areas) == 1   # only a:b -> b:c is connected
    assert Polygon(areas[0]).contains(gap)


def test_patch_stays_local():
    areas = connection_areas(_lanes(), patch_length_m=6.0)
    hull = Polygon(areas[0])
    assert not hull.contains(Point(-15.0, 0.0))    # far back on the entry lane
    assert not hull.contains(Point(110.0, 0.0))    # the unconnected lane
    assert hull.area < 6.0 * 4.0 * 2 + 20.0
