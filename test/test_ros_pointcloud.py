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

"""PointCloud2 codec: decoding against a struct oracle, round trips, NaN skipping, errors."""

import math
import struct

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest

pytest.importorskip('sensor_msgs.msg')

from sensor_msgs.msg import PointCloud2, PointField  # noqa: E402

from pair_drive_ros.ros import (CodecError, MalformedMessageError,  # noqa: E402
                                numpy_to_pointcloud, pointcloud_to_numpy, pointcloud_to_xyzi,
                                stamp_to_seconds, UnsupportedEncodingError)

STRUCT = {1: 'b', 2: 'B', 3: 'h', 4: 'H', 5: 'i', 6: 'I', 7: 'f', 8: 'd'}


@st.composite
def clouds(draw):
    """Return a random PointCloud2: fields in any order, gaps, padding, rows, either endianness."""
    n_fields = draw(st.integers(1, 4))
    fields, offset = [], 0
    for i in range(n_fields):
        datatype = draw(st.integers(1, 8))
        count = draw(st.integers(1, 3))
        offset += draw(st.integers(0, 3))  # gap before the field (unaligned offsets too)
        fields.append(PointField(name=f'f{i}', offset=offset, datatype=datatype, count=count))
        offset += struct.calcsize(STRUCT[datatype]) * count
    point_step = offset + draw(st.integers(0, 5))
    height, width = draw(st.integers(1, 3)), draw(st.integers(0, 5))
    row_step = width * point_step + draw(st.integers(0, 7))
    data = draw(st.binary(min_size=height * row_step, max_size=height * row_step))
    msg = PointCloud2(height=height, width=width, point_step=point_step, row_step=row_step,
                      is_bigendian=draw(st.booleans()))
    msg.fields = draw(st.permutations(fields))
    msg.data = data
    return msg


def same(a, b) -> bool:
    return a == b or (isinstance(a, float) and math.isnan(a) and math.isnan(b))


@settings(max_examples=150, deadline=None)
@given(msg=clouds())
def test_decode_matches_struct_oracle_and_round_trips(msg):
    points = pointcloud_to_numpy(msg)
    assert points.shape == (msg.height * msg.width,)
    order = '>' if msg.is_bigendian else '<'
    data = bytes(msg.data)
    for r in range(msg.height):
        for c in range(msg.width):
            point = points[r * msg.width + c]
            for f in msg.fields:
                size = struct.calcsize(STRUCT[f.datatype])
                base = r * msg.row_step + c * msg.point_step + f.offset
                fmt = order + STRUCT[f.datatype]
                expected = [struct.unpack_from(fmt, data, base + j * size)[0]
                            for j in range(f.count)]
                got = np.atleast_1d(point[f.name]).tolist()
                assert all(same(g, e) for g, e in zip(got, expected)), (f, got, expected)
    again = pointcloud_to_numpy(numpy_to_pointcloud(points, 'lidar', 2.5))
    assert again.dtype == points.dtype
    for name in points.dtype.names:
        np.testing.assert_array_equal(again[name], points[name])


def layout(msg):
    return [(f.name, f.offset, f.datatype, f.count) for f in msg.fields]


@settings(max_examples=40, deadline=None)
@given(msg=clouds())
def test_round_trip_keeps_byte_order_layout_and_padding(msg):
    points = pointcloud_to_numpy(msg)
    wire = points.astype(points.dtype.newbyteorder('>' if msg.is_bigendian else '<'))
    out = numpy_to_pointcloud(wire, 'lidar')
    assert out.point_step == msg.point_step and out.height == 1
    assert layout(out) == layout(msg)
    if any(f.datatype > 2 for f in msg.fields):
        assert bool(out.is_bigendian) == bool(msg.is_bigendian)
    again = pointcloud_to_numpy(out)
    for name in points.dtype.names:
        np.testing.assert_array_equal(again[name], points[name])


def xyzi_cloud(points: np.ndarray, big: bool = False, pad: int = 4) -> PointCloud2:
    """CARLA-like cloud: float32 x, y, z, intensity plus `pad` bytes of padding per point."""
    dtype = np.dtype({'names': ['x', 'y', 'z', 'intensity'], 'formats': ['f4'] * 4,
                      'offsets': [0, 4, 8, 12], 'itemsize': 16 + pad})
    arr = np.zeros(len(points), dtype.newbyteorder('>' if big else '<'))
    for i, name in enumerate(dtype.names):
        arr[name] = points[:, i]
    return numpy_to_pointcloud(arr, 'ego_vehicle/lidar', 12.75)


@pytest.mark.parametrize('big', [False, True])
def test_xyzi_padding_and_big_endian(big):
    pts = np.random.default_rng(3).normal(size=(50, 4)).astype(np.float32)
    msg = xyzi_cloud(pts, big=big)
    assert msg.point_step == 20 and msg.row_step == 1000 and bool(msg.is_bigendian) == big
    assert msg.header.frame_id == 'ego_vehicle/lidar'
    assert stamp_to_seconds(msg.header.stamp) == 12.75
    np.testing.assert_array_equal(pointcloud_to_xyzi(msg), pts)


def test_float_array_input_and_missing_intensity():
    pts = np.arange(12, dtype=np.float64).reshape(4, 3)
    msg = numpy_to_pointcloud(pts, 'lidar', None)
    assert [f.name for f in msg.fields] == ['x', 'y', 'z'] and msg.point_step == 12
    xyzi = pointcloud_to_xyzi(msg)
    assert xyzi.dtype == np.float32
    np.testing.assert_array_equal(xyzi, np.c_[pts, np.zeros(4)])


def test_organized_cloud_with_row_padding():
    grid = np.zeros((2, 3), dtype=[('x', 'f4'), ('ring', 'u2')])
    grid['x'] = np.arange(6).reshape(2, 3)
    grid['ring'] = [[0, 0, 0], [1, 1, 1]]
    msg = numpy_to_pointcloud(grid, 'lidar')
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (2, 3, 6, 18)
    # Re-pack with 5 bytes of padding after each row.
    data = np.frombuffer(bytes(msg.data), np.uint8).reshape(2, 18)
    msg.data = np.concatenate([data, np.full((2, 5), 7, np.uint8)], axis=1).tobytes()
    msg.row_step = 23
    points = pointcloud_to_numpy(msg)
    np.testing.assert_array_equal(points['x'], np.arange(6))
    np.testing.assert_array_equal(points['ring'], [0, 0, 0, 1, 1, 1])


def test_skip_nans_drops_points_with_any_non_finite_float():
    pts = np.ones((5, 4), dtype=np.float32)
    pts[1, 0] = np.nan
    pts[3, 3] = np.inf
    msg = numpy_to_pointcloud(pts, 'lidar')
    assert not msg.is_dense
    assert len(pointcloud_to_numpy(msg)) == 5
    kept = pointcloud_to_numpy(msg, skip_nans=True)
    assert len(kept) == 3
    assert pointcloud_to_xyzi(msg, skip_nans=True).shape == (3, 4)
    assert numpy_to_pointcloud(np.ones((2, 3)), 'lidar').is_dense


def test_dense_native_decode_is_zero_copy():
    msg = numpy_to_pointcloud(np.ones((10, 4), np.float32), 'lidar')
    points = pointcloud_to_numpy(msg)
    assert np.shares_memory(points, np.frombuffer(msg.data, np.uint8))


def _cloud(**overrides):
    msg = numpy_to_pointcloud(np.zeros((4, 4), np.float32), 'lidar')
    for key, value in overrides.items():
        setattr(msg, key, value)
    return msg


def test_malformed_clouds_name_field_and_values():
    with pytest.raises(MalformedMessageError, match='point_step 12 is smaller than field '
                                                    "'intensity'.*= 16"):
        pointcloud_to_numpy(_cloud(point_step=12))
    msg = _cloud()
    msg.fields[1].datatype = 9
    with pytest.raises(UnsupportedEncodingError, match="'y': datatype 9"):
        pointcloud_to_numpy(msg)
    with pytest.raises(MalformedMessageError, match='row_step 60 is smaller than width 4 x '
                                                    'point_step 16 = 64'):
        pointcloud_to_numpy(_cloud(row_step=60))
    with pytest.raises(MalformedMessageError, match='63 bytes.*height 1 x row_step 64 = 64'):
        pointcloud_to_numpy(_cloud(data=bytes(63)))
    msg = _cloud()
    msg.fields[2].name = 'x'
    with pytest.raises(MalformedMessageError, match="name 'x' is empty or repeated"):
        pointcloud_to_numpy(msg)
    msg = _cloud()
    del msg.fields[0]
    with pytest.raises(MalformedMessageError, match="no field 'x'"):
        pointcloud_to_xyzi(msg)


def test_encode_rejects_unrepresentable_points():
    with pytest.raises(CodecError, match=r'\(N, 3\) / \(N, 4\).*shape \(4, 5\)'):
        numpy_to_pointcloud(np.zeros((4, 5)), 'lidar')
    with pytest.raises(CodecError, match="field 'x' has dtype int64"):
        numpy_to_pointcloud(np.zeros(3, dtype=[('x', 'i8')]), 'lidar')
