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

"""sensor_msgs/PointCloud2 <-> numpy structured arrays."""

import sys
from typing import Any, Union

import numpy as np

from pair_drive_ros.ros._fields import (bool_field, byte_buffer, field, str_field,
                                        uint_field)
from pair_drive_ros.ros.errors import CodecError, MalformedMessageError, UnsupportedEncodingError
from pair_drive_ros.ros.stamps import as_stamp

# sensor_msgs/PointField datatype constants -> numpy type codes.
DATATYPES = {1: 'i1', 2: 'u1', 3: 'i2', 4: 'u2', 5: 'i4', 6: 'u4', 7: 'f4', 8: 'f8'}
_CODES = {np.dtype(code): datatype for datatype, code in DATATYPES.items()}
_HOST_BIG = sys.byteorder == 'big'


def _cloud_dtype(msg: Any, point_step: int, big: bool) -> np.dtype:
    fields = field(msg, 'fields', 'PointCloud2')
    try:
        fields = list(fields)
    except TypeError:
        raise MalformedMessageError(
            f'PointCloud2.fields must be a sequence, got {type(fields).__name__}') from None
    prefix = '>' if big else '<'
    names, formats, offsets = [], [], []
    for i, pf in enumerate(fields):
        name = str_field(pf, 'name', f'PointCloud2.fields[{i}]')
        kind = f'PointField {name!r}'
        offset = uint_field(pf, 'offset', kind)
        datatype = uint_field(pf, 'datatype', kind, bits=8)
        count = uint_field(pf, 'count', kind)
        if not name or name in names:
            raise MalformedMessageError(
                f'PointCloud2.fields[{i}].name {name!r} is empty or repeated (names: {names})')
        if datatype not in DATATYPES:
            raise UnsupportedEncodingError(
                f'{kind}: datatype {datatype} is not a PointField type (1..8)')
        if count < 1:
            raise MalformedMessageError(f'{kind}: count must be >= 1, got {count}')
        size = np.dtype(DATATYPES[datatype]).itemsize * count
        if offset + size > point_step:
            raise MalformedMessageError(
                f'PointCloud2.point_step {point_step} is smaller than field {name!r} '
                f'(offset {offset} + {count} x {size // count} bytes = {offset + size})')
        names.append(name)
        formats.append((prefix + DATATYPES[datatype], (count,)) if count > 1
                       else prefix + DATATYPES[datatype])
        offsets.append(offset)
    try:
        return np.dtype({'names': names, 'formats': formats, 'offsets': offsets,
                         'itemsize': point_step})
    except (TypeError, ValueError) as exc:
        raise MalformedMessageError(f'PointCloud2.fields {names} at offsets {offsets} with '
                                    f'point_step {point_step} are inconsistent: {exc}') from None


def _native(dtype: np.dtype) -> np.dtype:
    fields = dtype.fields
    return np.dtype({
        'names': list(dtype.names),
        'formats': [fields[n][0].newbyteorder('=') if fields[n][0].subdtype is None
                    else (fields[n][0].base.newbyteorder('='), fields[n][0].shape)
                    for n in dtype.names],
        'offsets': [fields[n][1] for n in dtype.names], 'itemsize': dtype.itemsize})


def pointcloud_to_numpy(msg: Any, skip_nans: bool = False) -> np.ndarray:
    """
    Decode a sensor_msgs/PointCloud2 into a 1-D structured array of H * W points.

    One named field per PointField (count > 1 gives a sub-array); the dtype keeps the message's
    offsets and point_step padding. A dense, native-endian cloud decodes as a view of `msg.data`
    (zero copy). `skip_nans` drops points with a NaN or inf in any floating-point field.
    """
    height = uint_field(msg, 'height', 'PointCloud2')
    width = uint_field(msg, 'width', 'PointCloud2')
    point_step = uint_field(msg, 'point_step', 'PointCloud2')
    row_step = uint_field(msg, 'row_step', 'PointCloud2')
    big = bool_field(msg, 'is_bigendian', 'PointCloud2')
    dtype = _cloud_dtype(msg, point_step, big)
    buf = byte_buffer(msg, 'data', 'PointCloud2')
    if not dtype.names and height * width:
        raise MalformedMessageError(
            f'PointCloud2 has {height * width} points but no fields')
    if point_step == 0 and height * width:
        raise MalformedMessageError(
            f'PointCloud2.point_step is 0 with {height} x {width} points')
    if row_step < width * point_step:
        raise MalformedMessageError(
            f'PointCloud2.row_step {row_step} is smaller than width {width} x point_step '
            f'{point_step} = {width * point_step}')
    if buf.size < height * row_step:
        raise MalformedMessageError(
            f'PointCloud2.data has {buf.size} bytes, fewer than height {height} x row_step '
            f'{row_step} = {height * row_step}')
    if row_step == width * point_step:
        points = np.frombuffer(buf, dtype=dtype, count=height * width)
    else:
        points = np.ndarray((height, width), dtype=dtype, buffer=buf,
                            strides=(row_step, point_step)).reshape(-1)
    if big != _HOST_BIG and any(dtype.fields[n][0].base.itemsize > 1 for n in dtype.names):
        points = points.astype(_native(dtype))
    if skip_nans:
        keep = np.ones(len(points), dtype=bool)
        for name in points.dtype.names:
            values = points[name]
            if values.dtype.kind == 'f':
                finite = np.isfinite(values)
                keep &= finite if finite.ndim == 1 else finite.all(axis=1)
        if not keep.all():
            points = points[keep]
    return points


def pointcloud_to_xyzi(msg: Any, skip_nans: bool = False) -> np.ndarray:
    """
    Decode a PointCloud2 into an (N, 4) float32 array of x, y, z [m] and intensity.

    Intensity is 0 when the cloud has no 'intensity' field. `skip_nans` drops points with a
    non-finite x, y, z or intensity.
    """
    points = pointcloud_to_numpy(msg)
    names = points.dtype.names or ()
    out = np.zeros((len(points), 4), dtype=np.float32)
    for i, name in enumerate(('x', 'y', 'z', 'intensity')):
        if name not in names:
            if i < 3:
                raise MalformedMessageError(
                    f'PointCloud2 has no field {name!r} (fields: {list(names)})')
            continue
        values = points[name]
        if values.ndim != 1:
            raise MalformedMessageError(
                f'PointCloud2 field {name!r} has count {values.shape[1]}, expected 1')
        out[:, i] = values
    if skip_nans:
        out = out[np.isfinite(out).all(axis=1)]
    return out


def numpy_to_pointcloud(points: np.ndarray, frame_id: str = '',
                        stamp: Union[Any, float, None] = None) -> Any:
    """
    Encode points into a sensor_msgs/PointCloud2.

    `points`: a structured array, 1-D (height 1) or 2-D (organized, height x width), whose fields
    are scalars or 1-D sub-arrays of int8..uint32/float32/float64 (its offsets, padding and byte
    order are kept when all fields share one byte order), or an (N, 3) / (N, 4) float array
    giving float32 x, y, z[, intensity]. `stamp`: builtin_interfaces/Time, seconds, or None (0).
    """
    from sensor_msgs.msg import PointCloud2, PointField

    arr = _as_structured(points)
    if arr.ndim == 1:
        height, width = 1, arr.shape[0]
    elif arr.ndim == 2:
        height, width = arr.shape
    else:
        raise CodecError(f'numpy_to_pointcloud: points must be 1-D or 2-D, got shape {arr.shape}')
    dtype = arr.dtype
    orders = {dtype.fields[n][0].base.byteorder for n in dtype.names
              if dtype.fields[n][0].base.itemsize > 1}
    orders = {'>' if o == '>' or (o == '=' and _HOST_BIG) else '<' for o in orders}
    if len(orders) > 1:
        dtype = _native(dtype)
        arr = arr.astype(dtype)
    big = orders == {'>'} if len(orders) == 1 else _HOST_BIG
    fields = []
    for name in dtype.names:
        sub, offset = dtype.fields[name][:2]
        count = int(np.prod(sub.shape)) if sub.shape else 1
        fields.append(PointField(name=name, offset=int(offset),
                                 datatype=_CODES[sub.base.newbyteorder('=')], count=count))
    msg = PointCloud2()
    msg.header.frame_id = frame_id
    msg.header.stamp = as_stamp(stamp)
    msg.height = int(height)
    msg.width = int(width)
    msg.fields = fields
    msg.is_bigendian = bool(big)
    msg.point_step = int(dtype.itemsize)
    msg.row_step = int(dtype.itemsize * width)
    finite = [np.isfinite(arr[n]).all() for n in dtype.names if dtype.fields[n][0].kind == 'f']
    msg.is_dense = bool(all(finite))
    msg.data = np.ascontiguousarray(arr).tobytes()
    return msg


def _as_structured(points: Any) -> np.ndarray:
    try:
        arr = np.asarray(points)
    except (TypeError, ValueError) as exc:
        raise CodecError(f'numpy_to_pointcloud: points are not array-like: {exc}') from None
    if arr.dtype.names:
        for name in arr.dtype.names:
            sub = arr.dtype.fields[name][0]
            if sub.base.newbyteorder('=') not in _CODES or len(sub.shape) > 1:
                raise CodecError(f'numpy_to_pointcloud: field {name!r} has dtype {sub}; '
                                 f'PointCloud2 needs scalars or 1-D sub-arrays of '
                                 f'{sorted(str(d) for d in _CODES)}')
        return arr
    if arr.ndim != 2 or arr.shape[1] not in (3, 4) or arr.dtype.kind not in 'fiu':
        raise CodecError('numpy_to_pointcloud: points must be a structured array or an (N, 3) '
                         f'/ (N, 4) numeric array, got shape {arr.shape} dtype {arr.dtype}')
    names = ['x', 'y', 'z', 'intensity'][:arr.shape[1]]
    out = np.empty(len(arr), dtype=[(n, 'f4') for n in names])
    for i, name in enumerate(names):
        out[name] = arr[:, i]
    return out
