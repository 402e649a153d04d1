"""Typed errors raised by the message codecs for bad input."""


class CodecError(ValueError):
    """A message or array could not be converted; the text names the field and its values."""


class UnsupportedEncodingError(CodecError):
    """An image encoding (or point field datatype) the codecs do not handle."""


class MalformedMessageError(CodecError):
    """A message whose fields contradict each other or hold impossible values."""


class BagError(CodecError):
    """A rosbag2 file that cannot be opened, read or written as asked."""
