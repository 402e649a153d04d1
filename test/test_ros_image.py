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

"""Image codec: round trips for every encoding, padding, endianness, conversions, errors."""

from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp
import numpy as np
import pytest

pytest.importorskip('sensor_msgs.msg')

from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from pair_drive_ros.ros import (CodecError, encoding_info, image_to_numpy,  # noqa: E402
                                MalformedMessageError, numpy_to_image,
                                UnsupportedEncodingError)

ENCODINGS = ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16', '8UC1', '8UC3', '8UC4',
             '16UC1', '32FC1', '16SC2', '32SC1', '64FC1', 'rgb16']
COLOUR = ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8']


def padded_image(arr: np.ndarray, encoding: str, pad: int, big: bool,
                 pad_byte: int = 0xAB) -> Image:
    """Build an Image by hand (the test's oracle): rows of raw bytes followed by `pad` bytes."""
    dtype, channels = encoding_info(encoding)
    wire = arr.astype(dtype.newbyteorder('>' if big else '<'))
    height, width = arr.shape[:2]
    rows = wire.reshape(height, -1).view(np.uint8).reshape(height, -1)
    padding = np.full((height, pad), pad_byte, dtype=np.uint8)
    msg = Image(height=height, width=width, encoding=encoding, is_bigendian=big,
                step=width * channels * dtype.itemsize + pad)
    msg.data = np.concatenate([rows, padding], axis=1).tobytes()
    return msg


@st.composite
def images(draw, encoding):
    dtype, channels = encoding_info(encoding)
    h = draw(st.integers(1, 9))
    w = draw(st.integers(1, 9))
    shape = (h, w) if channels == 1 else (h, w, channels)
    elements = None
    if dtype.kind == 'f':
        elements = st.floats(width=dtype.itemsize * 8, allow_nan=True, allow_infinity=True)
    return draw(hnp.arrays(dtype, shape, elements=elements))


@pytest.mark.parametrize('encoding', ENCODINGS)
def test_round_trip_every_encoding(encoding):
    @settings(max_examples=25, deadline=None)
    @given(arr=images(encoding), pad=st.integers(0, 13), big=st.booleans())
    def check(arr, pad, big):
        dense = image_to_numpy(numpy_to_image(arr, encoding))
        np.testing.assert_array_equal(dense, arr)
        assert dense.dtype == arr.dtype and dense.dtype.isnative
        padded = image_to_numpy(padded_image(arr, encoding, pad, big))
        np.testing.assert_array_equal(padded, arr)
        assert padded.dtype.isnative and padded.shape == arr.shape

    check()


def test_big_endian_array_encodes_with_flag_and_decodes_native():
    arr = (np.arange(12).reshape(3, 4) * 257).astype('>u2')
    msg = numpy_to_image(arr, 'mono16')
    assert msg.is_bigendian and msg.step == 8
    assert bytes(msg.data[:4]) == b'\x00\x00\x01\x01'
    out = image_to_numpy(msg)
    assert out.dtype == np.dtype('=u2')
    np.testing.assert_array_equal(out, arr)


def test_decode_is_zero_copy_and_encode_fills_fields():
    arr = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    header = Header(frame_id='ego_vehicle/rgb_front')
    header.stamp.sec = 7
    msg = numpy_to_image(arr, 'bgra8', header)
    assert (msg.height, msg.width, msg.step, msg.encoding) == (2, 3, 12, 'bgra8')
    assert msg.header.frame_id == 'ego_vehicle/rgb_front' and msg.header.stamp.sec == 7
    out = image_to_numpy(msg)
    assert np.shares_memory(out, np.frombuffer(msg.data, np.uint8))


def test_padding_bytes_are_not_read():
    arr = np.array([[1, 2], [3, 4]], dtype=np.uint8)
    msg = padded_image(arr, 'mono8', pad=3, big=False, pad_byte=99)
    assert msg.step == 5 and len(msg.data) == 10
    np.testing.assert_array_equal(image_to_numpy(msg), arr)


PIXEL = {'R': 10, 'G': 20, 'B': 30, 'A': 40}
ORDER = {'rgb8': 'RGB', 'bgr8': 'BGR', 'rgba8': 'RGBA', 'bgra8': 'BGRA'}


@pytest.mark.parametrize('src', list(ORDER))
@pytest.mark.parametrize('dst', list(ORDER))
def test_colour_conversions_reorder_channels(src, dst):
    arr = np.array([[[PIXEL[c] for c in ORDER[src]]]], dtype=np.uint8).repeat(3, 1)
    out = image_to_numpy(numpy_to_image(arr, src), dst)
    alpha = PIXEL['A'] if 'A' in ORDER[src] else 255
    expected = [alpha if c == 'A' else PIXEL[c] for c in ORDER[dst]]
    assert out.shape == (1, 3, len(ORDER[dst]))
    np.testing.assert_array_equal(out[0, 0], expected)


def test_bgra_to_rgb_is_a_contiguous_copy():
    arr = np.random.default_rng(0).integers(0, 256, (4, 5, 4), dtype=np.uint8)
    msg = numpy_to_image(arr, 'bgra8')
    out = image_to_numpy(msg, 'rgb8')
    np.testing.assert_array_equal(out, arr[:, :, [2, 1, 0]])
    assert out.flags.c_contiguous and out.flags.writeable
    assert not np.shares_memory(out, np.frombuffer(msg.data, np.uint8))


def test_mono_conversions():
    rgb = np.array([[[255, 0, 0], [0, 255, 0], [0, 0, 255], [100, 100, 100]]], dtype=np.uint8)
    grey = image_to_numpy(numpy_to_image(rgb, 'rgb8'), 'mono8')
    np.testing.assert_array_equal(grey, [[76, 150, 29, 100]])  # BT.601: round(255 * weight)
    mono = np.array([[5, 6]], dtype=np.uint8)
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(mono, 'mono8'), 'bgra8'),
                                  [[[5, 5, 5, 255], [6, 6, 6, 255]]])


def test_generic_alias_and_unsupported_conversion():
    arr = np.zeros((2, 2, 4), np.uint8)
    msg = numpy_to_image(arr, 'bgra8')
    assert image_to_numpy(msg, '8UC4').shape == (2, 2, 4)
    with pytest.raises(UnsupportedEncodingError, match="'bgra8' to desired_encoding '32FC1'"):
        image_to_numpy(msg, '32FC1')
    with pytest.raises(UnsupportedEncodingError, match='yuv422'):
        image_to_numpy(msg, 'yuv422')


def test_malformed_images_name_field_and_values():
    msg = numpy_to_image(np.zeros((4, 5, 3), np.uint8), 'rgb8')
    msg.encoding = 'bayer_rggb8'
    with pytest.raises(UnsupportedEncodingError, match="'bayer_rggb8'"):
        image_to_numpy(msg)
    msg.encoding = 'rgb8'
    msg.step = 14
    with pytest.raises(MalformedMessageError, match='step 14 .* width 5 x 3 .* = 15'):
        image_to_numpy(msg)
    msg.step = 15
    msg.data = bytes(59)
    with pytest.raises(MalformedMessageError, match='59 bytes.*height 4 x step 15 = 60'):
        image_to_numpy(msg)
    msg.data = bytes(60)
    msg.height = -1
    with pytest.raises(MalformedMessageError, match='height'):
        image_to_numpy(msg)


def test_encode_rejects_wrong_dtype_and_shape():
    with pytest.raises(CodecError, match='dtype uint8, got float64'):
        numpy_to_image(np.zeros((2, 2, 3)), 'rgb8')
    with pytest.raises(CodecError, match=r'\(H, W, 4\).*got shape \(2, 2, 3\)'):
        numpy_to_image(np.zeros((2, 2, 3), np.uint8), 'bgra8')
    with pytest.raises(UnsupportedEncodingError):
        numpy_to_image(np.zeros((2, 2), np.uint8), 'jpeg')


def test_matches_cv_bridge_when_available():
    cv_bridge = pytest.importorskip(
        'cv_bridge', reason='cv_bridge is not importable here (not on PyPI; the PyPI copy is '
        'broken with current numpy/OpenCV, see shared/design/ros2.md section 4)')
    bridge = cv_bridge.CvBridge()
    rng = np.random.default_rng(1)
    for encoding in ['rgb8', 'bgr8', 'rgba8', 'bgra8', 'mono8', 'mono16', '16UC1', '32FC1']:
        dtype, channels = encoding_info(encoding)
        shape = (5, 7) if channels == 1 else (5, 7, channels)
        arr = (rng.random(shape) * 200).astype(dtype)
        for big in (False, True):
            msg = padded_image(arr, encoding, pad=4, big=big)
            np.testing.assert_array_equal(image_to_numpy(msg), bridge.imgmsg_to_cv2(msg))
        ours = numpy_to_image(arr, encoding)
        theirs = bridge.cv2_to_imgmsg(arr, encoding)
        assert bytes(ours.data) == bytes(theirs.data) and ours.step == theirs.step
