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
rosbag2 (MCAP or sqlite3) writing and reading of rclpy messages, on top of `rosbags`.

Durability: `BagWriter.flush()` puts everything written so far on disk as complete MCAP chunks;
a recording killed afterwards (kill -9, power loss) has no metadata.yaml and no MCAP footer, and
`recover_bag` (run by every reader on such a bag, as `ros2 bag reindex` would be) rebuilds a
readable bag from the complete records, keeping the damaged file next to it.
"""

import importlib
import logging
import os
import threading
from pathlib import Path
import shutil
import struct
from typing import Any, Iterable, Iterator, Optional, Union

from pair_drive_ros.ros.errors import BagError

STORAGES = ('mcap', 'sqlite3')
LOG = logging.getLogger(__name__)
MCAP_MAGIC = b'\x89MCAP0\r\n'


def msgtype_of(msg: Any) -> str:
    """Return the ROS type name ('sensor_msgs/msg/Image') of an rclpy message instance."""
    module = type(msg).__module__.split('.')
    if len(module) < 2 or module[1] not in ('msg', 'srv', 'action'):
        raise BagError(f'cannot tell the ROS type of {type(msg).__module__}.{type(msg).__name__};'
                       ' pass msgtype=')
    return f'{module[0]}/{module[1]}/{type(msg).__name__}'


def message_class(msgtype: str) -> Any:
    """Return the rclpy message class for a type name such as 'nav_msgs/msg/Path'."""
    parts = msgtype.split('/')
    if len(parts) == 2:
        parts = [parts[0], 'msg', parts[1]]
    if len(parts) != 3 or not all(parts):
        raise BagError(f'message type {msgtype!r} is not of the form pkg/msg/Name')
    try:
        return getattr(importlib.import_module(f'{parts[0]}.{parts[1]}'), parts[2])
    except (ImportError, AttributeError) as exc:
        raise BagError(f'message type {msgtype!r} has no importable rclpy class ({exc}); '
                       'read it with raw=True') from None


def _typestore() -> Any:
    from rosbags.typesys import get_typestore, Stores

    return get_typestore(Stores.ROS2_KILTED)


def _register_installed(typestore: Any, msgtype: str) -> bool:
    """
    Add an installed interface package's message (e.g. carla_msgs) to the typestore.

    Reads `<prefix>/share/<pkg>/msg/<Name>.msg` of the ament prefixes (and the interpreter's);
    its dependencies must be in the store already. False when the definition is not found.
    """
    import os
    import sys

    from rosbags.typesys import get_types_from_msg

    pkg, _, name = msgtype.partition('/msg/')
    prefixes = [p for p in os.environ.get('AMENT_PREFIX_PATH', '').split(os.pathsep) if p]
    for prefix in prefixes + [sys.prefix]:
        path = Path(prefix) / 'share' / pkg / 'msg' / f'{name}.msg'
        if path.is_file():
            typestore.register(get_types_from_msg(path.read_text(), msgtype))
            return msgtype in typestore.fielddefs
    return False


class BagWriter:
    """
    Write a rosbag2 (version 9) from rclpy messages or serialized CDR bytes.

    Use as a context manager: ``with BagWriter(path) as bag: bag.write('/topic', msg, t_ns)``.
    `storage` is 'mcap' or 'sqlite3'; the directory `path` must not exist yet. Thread-safe:
    the recorder's callbacks write from executor threads while the owner flushes, and an MCAP
    chunk closed in the middle of a write comes out corrupt.
    """

    def __init__(self, path: Union[str, Path], storage: str = 'mcap') -> None:
        if storage not in STORAGES:
            raise BagError(f'BagWriter storage must be one of {STORAGES}, got {storage!r}')
        self.path = Path(path)
        self.storage = storage
        self._writer = None
        self._connections: dict[str, Any] = {}
        self._typestore = None
        self._lock = threading.RLock()

    def __enter__(self) -> 'BagWriter':
        from rosbags.rosbag2 import StoragePlugin, Writer, WriterError

        plugin = StoragePlugin.MCAP if self.storage == 'mcap' else StoragePlugin.SQLITE3
        self._typestore = _typestore()
        try:
            self._writer = Writer(self.path, version=9, storage_plugin=plugin)
            self._writer.open()
        except (WriterError, OSError) as exc:
            raise BagError(f'cannot create bag {self.path}: {exc}') from None
        return self

    def flush(self) -> None:
        """
        Write what is buffered as a complete MCAP chunk and hand it to the OS.

        Everything written before a flush survives the process being killed (see
        `recover_bag`). sqlite3 bags commit per write already.
        """
        with self._lock:
            storage = getattr(self._writer, 'storage', None)
            chunk = getattr(storage, 'chunk', None)
            if chunk is None or not hasattr(storage, 'close_chunk'):
                return
            if chunk.bio.tell():
                storage.close_chunk()
            storage.bio.flush()
            os.fsync(storage.bio.fileno())

    def __exit__(self, *exc_info: Any) -> None:
        with self._lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None

    def write(self, topic: str, msg_or_bytes: Any, t_ns: int, msgtype: Optional[str] = None,
              latched: bool = False) -> None:
        """
        Write one message at receive time `t_ns` [ns].

        `msg_or_bytes` is an rclpy message (serialized with rclpy) or CDR bytes (then `msgtype`
        is required on a topic's first write). `latched` records transient-local QoS for the
        topic (players then republish it latched, e.g. /tf_static or a route).
        """
        if self._writer is None:
            raise BagError(f'BagWriter({self.path}) is not open; use it in a with block')
        if isinstance(msg_or_bytes, (bytes, bytearray, memoryview)):
            data = bytes(msg_or_bytes)
        else:
            from rclpy.serialization import serialize_message

            msgtype = msgtype or msgtype_of(msg_or_bytes)
            try:
                data = serialize_message(msg_or_bytes)
            except Exception as exc:  # rclpy raises TypeError/ValueError/AssertionError variants
                raise BagError(f'cannot serialize {msgtype} for {topic}: {exc}') from None
        if isinstance(t_ns, bool) or not isinstance(t_ns, int) or t_ns < 0:
            raise BagError(f'bag timestamp t_ns must be a non-negative int, got {t_ns!r}')
        with self._lock:
            if self._writer is None:
                raise BagError(f'BagWriter({self.path}) was closed')
            conn = self._connections.get(topic)
            if conn is None:
                conn = self._add_connection(topic, msgtype, latched)
            elif msgtype is not None and msgtype != conn.msgtype:
                raise BagError(f'topic {topic!r} was opened with type {conn.msgtype}, '
                               f'got a {msgtype}')
            self._writer.write(conn, t_ns, data)

    def _add_connection(self, topic: str, msgtype: Optional[str], latched: bool) -> Any:
        from rosbags.interfaces import (Qos, QosDurability, QosHistory, QosLiveliness,
                                        QosReliability, QosTime)

        if msgtype is None:
            raise BagError(f'first write to {topic!r} with raw bytes needs msgtype=')
        if msgtype not in self._typestore.fielddefs and not _register_installed(
                self._typestore, msgtype):
            raise BagError(f'message type {msgtype!r} is not in the rosbags Kilted typestore '
                           'and its .msg definition is not installed')
        zero = QosTime(0, 0)
        qos = Qos(QosHistory.KEEP_LAST, 1 if latched else 10, QosReliability.RELIABLE,
                  QosDurability.TRANSIENT_LOCAL if latched else QosDurability.VOLATILE,
                  zero, zero, QosLiveliness.AUTOMATIC, zero, False)
        conn = self._writer.add_connection(topic, msgtype, typestore=self._typestore,
                                           offered_qos_profiles=[qos])
        self._connections[topic] = conn
        return conn


def _read_str(buf: bytes, pos: int) -> tuple[str, int]:
    (n,) = struct.unpack_from('<I', buf, pos)
    return buf[pos + 4:pos + 4 + n].decode(), pos + 4 + n


def _scan_records(buf: bytes, schemas: dict, channels: dict, messages: list) -> None:
    """Collect schema, channel and message records of MCAP data; stop at a truncated record."""
    pos = 0
    while pos + 9 <= len(buf):
        op, size = buf[pos], struct.unpack_from('<Q', buf, pos + 1)[0]
        body = buf[pos + 9:pos + 9 + size]
        if len(body) < size:
            return  # the record the writer was killed in
        pos += 9 + size
        if op == 0x03:
            (sid,) = struct.unpack_from('<H', body, 0)
            name, q = _read_str(body, 2)
            schemas[sid] = name
        elif op == 0x04:
            cid, sid = struct.unpack_from('<HH', body, 0)
            topic, q = _read_str(body, 4)
            _, q = _read_str(body, q)  # message encoding
            (map_len,) = struct.unpack_from('<I', body, q)
            meta = body[q + 4:q + 4 + map_len].decode(errors='replace')
            channels[cid] = (topic, sid, 'transient_local' in meta.lower()
                             or 'durability: 1' in meta)
        elif op == 0x05:
            cid, _, log_time = struct.unpack_from('<HIQ', body, 0)
            messages.append((cid, log_time, bytes(body[22:])))
        elif op == 0x06:
            compression, q = _read_str(body, 28)
            (n,) = struct.unpack_from('<Q', body, q)
            records = body[q + 8:q + 8 + n]
            if compression:
                from rosbags.rosbag2.storage_mcap import decompress, ReaderError
                size, crc = struct.unpack_from('<QI', body, 16)
                try:
                    records = decompress(records, compression, size, crc)
                except ReaderError:
                    continue  # a damaged or unknown chunk: the others are still good
            _scan_records(records, schemas, channels, messages)


def recover_bag(path: Union[str, Path]) -> int:
    """
    Rebuild a readable bag from an MCAP recording that was never closed; messages kept.

    Does nothing (returns -1) for a bag with metadata.yaml. The damaged file is kept as
    `<name>.mcap.damaged` beside the rebuilt one; messages after the last complete record
    (at most what was written since the last `BagWriter.flush`) are lost.
    """
    path = Path(path)
    if (path / 'metadata.yaml').exists():
        return -1
    files = sorted(path.glob('*.mcap'))
    if not files:
        raise BagError(f'cannot recover bag {path}: no metadata.yaml and no .mcap file')
    schemas: dict = {}
    channels: dict = {}
    messages: list = []
    for f in files:
        data = f.read_bytes()
        if not data.startswith(MCAP_MAGIC):
            raise BagError(f'cannot recover bag {path}: {f.name} is not an MCAP file')
        try:
            _scan_records(data[len(MCAP_MAGIC):], schemas, channels, messages)
        except (struct.error, UnicodeDecodeError, ValueError, ImportError) as exc:
            raise BagError(f'cannot recover bag {path}: {f.name}: {exc}') from None
    tmp = path / f'{path.name}_recovered'
    if tmp.exists():
        shutil.rmtree(tmp)
    messages.sort(key=lambda m: m[1])
    with BagWriter(tmp) as writer:
        for cid, t_ns, data in messages:
            if cid not in channels or channels[cid][1] not in schemas:
                continue
            topic, sid, latched = channels[cid]
            writer.write(topic, data, t_ns, msgtype=schemas[sid], latched=latched)
    for f in files:
        f.rename(f.with_name(f.name + '.damaged'))
    for item in tmp.iterdir():
        item.rename(path / item.name)
    tmp.rmdir()
    LOG.warning('recovered bag %s: %d messages (the damaged file is kept as .damaged)',
                path, len(messages))
    return len(messages)


def _reader(path: Union[str, Path]) -> Any:
    from rosbags.rosbag2 import Reader, ReaderError

    if Path(path).is_dir() and not (Path(path) / 'metadata.yaml').exists() \
            and any(Path(path).glob('*.mcap')):
        recover_bag(path)
    try:
        reader = Reader(Path(path))
        reader.open()
    except (ReaderError, OSError, ValueError) as exc:
        raise BagError(f'cannot open bag {path}: {exc}') from None
    return reader


def bag_topics(path: Union[str, Path]) -> dict[str, str]:
    """Return {topic: message type} of a rosbag2 directory."""
    reader = _reader(path)
    try:
        return {conn.topic: conn.msgtype for conn in reader.connections}
    finally:
        reader.close()


def read_bag(path: Union[str, Path], topics: Optional[Iterable[str]] = None,
             raw: bool = False) -> Iterator[tuple[str, int, Any]]:
    """Yield (topic, t_ns, message) in time order; rclpy messages, or CDR bytes when `raw`."""
    from rosbags.rosbag2 import ReaderError

    reader = _reader(path)
    wanted = None if topics is None else set(topics)
    try:
        connections = [c for c in reader.connections if wanted is None or c.topic in wanted]
        classes = {} if raw else {c.msgtype: message_class(c.msgtype) for c in connections}
        if not connections:
            return
        if not raw:
            from rclpy.serialization import deserialize_message
        try:
            for conn, t_ns, data in reader.messages(connections=connections):
                if raw:
                    yield conn.topic, t_ns, bytes(data)
                    continue
                try:
                    msg = deserialize_message(bytes(data), classes[conn.msgtype])
                except Exception as exc:  # rclpy raises bare RuntimeError/TypeError here
                    raise BagError(f'cannot deserialize {conn.msgtype} on {conn.topic} at '
                                   f'{t_ns} ns: {exc}') from None
                yield conn.topic, t_ns, msg
        except ReaderError as exc:
            raise BagError(f'cannot read bag {path}: {exc}') from None
    finally:
        reader.close()
