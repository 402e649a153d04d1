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

"""sensor_msgs/Image <-> numpy, with the semantics of ROS 2 cv_bridge but numpy only."""

import re
import sys
from typing import Any, Optional

import numpy as np

from pair_drive_ros.ros._fields import bool_field, byte_buffer, str_field, uint_field
from pair_drive_ros.ros.errors import CodecError, MalformedMessageError, UnsupportedEncodingError

# Named encodings: (dtype, channels).
NAMED_ENCODINGS = {
    'rgb8': ('u1', 3), 'bgr8': ('u1', 3), 'rgba8': ('u1', 4), 'bgra8': ('u1', 4),
    'mono8': ('u1', 1), 'mono16': ('u2', 1),
    'rgb16': ('u2', 3), 'bgr16': ('u2', 3), 'rgba16': ('u2', 4), 'bgra16': ('u2', 4),
}
# Generic OpenCV-style encodings such as 8UC3, 16UC1, 32FC1 (sensor_msgs/image_encodings.hpp).
_GENERIC = re.compile(r'^(8U|8S|16U|16S|32S|32F|64F)C([1-4])$')
_GENERIC_DTYPES = {'8U': 'u1', '8S': 'i1', '16U': 'u2', '16S': 'i2', '32S': 'i4', '32F': 'f4',
                   '64F': 'f8'}
# Channel order of the colour encodings that convert into one another; mono is luminance.
_COLOUR_ORDER = {'rgb8': 'RGB', 'bgr8': 'BGR', 'rgba8': 'RGBA', 'bgra8': 'BGRA', 'mono8': 'L'}
# ITU-R BT.601 luma weights, as OpenCV's RGB2GRAY uses.
_LUMA = {'R': 0.299, 'G': 0.587, 'B': 0.114}
_HOST_BIG = sys.byteorder == 'big'


def encoding_info(encoding: str) -> tuple[np.dtype, int]:
    """Return (dtype, channels) of an image encoding; UnsupportedEncodingError if unknown."""
    if not isinstance(encoding, str):
        raise UnsupportedEncodingError(f'Image.encoding must be a str, got {encoding!r}')
    if encoding in NAMED_ENCODINGS:
        code, channels = NAMED_ENCODINGS[encoding]
        return np.dtype(code), channels
    match = _GENERIC.match(encoding)
    if match is None:
        supported = ', '.join(list(NAMED_ENCODINGS) + ['<8U|8S|16U|16S|32S|32F|64F>C<1-4>'])
        raise UnsupportedEncodingError(
            f'Image.encoding {encoding!r} is not supported (supported: {supported})')
    return np.dtype(_GENERIC_DTYPES[match.group(1)]), int(match.group(2))


def image_to_numpy(msg: Any, desired_encoding: str = 'passthrough') -> np.ndarray:
    """
    Decode a sensor_msgs/Image into an array.

    Returns (H, W) for one channel, else (H, W, C), in the message's dtype. Without a byte swap or
    a conversion the result is a view of `msg.data` (zero copy; copy it before writing). Row
    padding (`step`) and `is_bigendian` are honoured. `desired_encoding` is 'passthrough', the
    message's own encoding, a generic name of the same layout (e.g. '8UC4' for bgra8: a view), or,
    between the colour encodings rgb8/bgr8/rgba8/bgra8/mono8, any other of them: a new contiguous
    array (alpha added as 255; mono is BT.601 luma, replicated when converting from mono).
    """
    encoding = str_field(msg, 'encoding', 'Image')
    dtype, channels = encoding_info(encoding)
    height = uint_field(msg, 'height', 'Image')
    width = uint_field(msg, 'width', 'Image')
    step = uint_field(msg, 'step', 'Image')
    big = bool_field(msg, 'is_bigendian', 'Image')
    buf = byte_buffer(msg, 'data', 'Image')
    pixel = dtype.itemsize * channels
    if step < width * pixel:
        raise MalformedMessageError(
            f'Image.step {step} is smaller than width {width} x {pixel} bytes per pixel '
            f'({encoding}) = {width * pixel}')
    if buf.size < height * step:
        raise MalformedMessageError(
            f'Image.data has {buf.size} bytes, fewer than height {height} x step {step} = '
            f'{height * step}')
    wire = dtype.newbyteorder('>' if big else '<')
    # Strided view straight onto the message buffer: handles any row padding without a copy.
    arr = np.ndarray((height, width, channels), dtype=wire, buffer=buf,
                     strides=(step, pixel, dtype.itemsize))
    if dtype.itemsize > 1 and big != _HOST_BIG:
        arr = arr.astype(dtype.newbyteorder('='))
    if channels == 1:
        arr = arr[:, :, 0]
    if desired_encoding in ('passthrough', encoding):
        return arr
    return _convert(arr, encoding, desired_encoding)


def _convert(arr: np.ndarray, src: str, dst: str) -> np.ndarray:
    dst_dtype, dst_channels = encoding_info(dst)
    src_dtype, src_channels = encoding_info(src)
    if src not in _COLOUR_ORDER or dst not in _COLOUR_ORDER:
        if (dst_dtype, dst_channels) == (src_dtype, src_channels):
            return arr  # the same bytes under another name (e.g. bgra8 as 8UC4)
        raise UnsupportedEncodingError(
            f'cannot convert Image.encoding {src!r} to desired_encoding {dst!r}')
    src_order, dst_order = _COLOUR_ORDER[src], _COLOUR_ORDER[dst]
    if src_order == 'L':
        src_order = 'RGB'  # grey replicated into every colour channel
        arr = arr[:, :, None]
        index = {'R': 0, 'G': 0, 'B': 0}
    else:
        index = {c: i for i, c in enumerate(src_order)}
    if dst_order == 'L':
        luma = sum(_LUMA[c] * arr[:, :, index[c]].astype(np.float32) for c in 'RGB')
        return np.round(luma).astype(np.uint8)
    # One strided copy per channel into a contiguous array: ~4x faster than a fancy-index or
    # np.ascontiguousarray of a reversed view, and the result is safe for torch.from_numpy.
    out = np.empty(arr.shape[:2] + (len(dst_order),), dtype=np.uint8)
    for i, c in enumerate(dst_order):
        if c in index:
            out[:, :, i] = arr[:, :, index[c]]
        else:
            out[:, :, i] = 255  # alpha added to an encoding without one
    return out


def numpy_to_image(array: np.ndarray, encoding: str, header: Optional[Any] = None) -> Any:
    """
    Encode an (H, W) or (H, W, C) array into a sensor_msgs/Image.

    The array's dtype must match the encoding's (byte order may differ: `is_bigendian` follows
    it). The message is dense (`step = W * C * itemsize`); `header` is copied in when given.
    """
    from sensor_msgs.msg import Image

    dtype, channels = encoding_info(encoding)
    try:
        arr = np.asarray(array)
    except (TypeError, ValueError) as exc:
        raise CodecError(f'numpy_to_image: array is not array-like: {exc}') from None
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] != channels:
        raise CodecError(f'numpy_to_image: encoding {encoding!r} needs shape (H, W) or '
                         f'(H, W, {channels}) with {channels} channels, got shape {arr.shape}')
    if arr.dtype.newbyteorder('=') != dtype:
        raise CodecError(f'numpy_to_image: encoding {encoding!r} needs dtype {dtype}, '
                         f'got {arr.dtype}')
    height, width = arr.shape[:2]
    if dtype.itemsize == 1:
        big = False
    else:
        order = arr.dtype.byteorder
        big = order == '>' or (order == '=' and _HOST_BIG)
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height = int(height)
    msg.width = int(width)
    msg.encoding = encoding
    msg.is_bigendian = big
    msg.step = int(width * channels * dtype.itemsize)
    # Assigning bytes is ~1000x faster than assigning an ndarray (rclpy iterates over arrays).
    msg.data = arr.tobytes()
    return msg


# Colour encodings whose RGB channels are a strided view of the message (channel order).
_RGB_VIEWS = {'rgb8': slice(0, 3), 'rgba8': slice(0, 3), 'bgr8': slice(2, None, -1),
              'bgra8': slice(2, None, -1)}


def image_to_rgb(msg: Any) -> np.ndarray:
    """
    Colour Image (rgb8, bgr8, rgba8, bgra8, mono8) -> (H, W, 3) uint8 RGB.

    A view of `msg.data` (do not write into it) for the rgb/bgr(a) encodings (CARLA's bgra8
    included): copying a 800x600 frame into a contiguous RGB array costs ~0.5 ms per frame,
    and the feature builder only samples it. mono8 is converted (a new array).
    """
    channels = _RGB_VIEWS.get(getattr(msg, 'encoding', None))
    if channels is None:
        return image_to_numpy(msg, 'rgb8')
    return image_to_numpy(msg)[:, :, channels]
