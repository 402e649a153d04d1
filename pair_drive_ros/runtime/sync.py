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
Input joining for the nodes (no ROS): approximate-time sync, exact-stamp join, newest slot.

All stamps are integer nanoseconds so that exact joins are exact.
"""

from collections import deque
from dataclasses import dataclass, field
import threading
from typing import Any


class TimeJump(Exception):
    """A stamp went backwards by more than the tolerance (bag loop, simulator reset)."""


@dataclass
class StampSync:
    """
    Match one message per key whose stamps lie within `slop_ns` of the anchor key's stamp.

    `add(key, stamp_ns, item)` returns `(stamp_ns, {key: item})` for the newest complete set (the
    anchor's stamp), and drops everything at or before it; otherwise None. The same frame sent
    again (equal stamps) is matched again. A stamp more than
    `jump_tolerance_ns` older than the last emitted set raises TimeJump after clearing the
    buffers, so the caller can log it and carry on.
    """

    keys: tuple
    anchor: str
    slop_ns: int
    queue_size: int = 10
    jump_tolerance_ns: int = 500_000_000
    last_emitted_ns: int | None = None
    _queues: dict = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.anchor not in self.keys:
            raise ValueError(f'anchor {self.anchor!r} must be one of {self.keys}')
        self._queues = {k: deque(maxlen=max(1, self.queue_size)) for k in self.keys}

    def reset(self) -> None:
        """Forget every buffered message and the last emitted stamp."""
        for q in self._queues.values():
            q.clear()
        self.last_emitted_ns = None

    def add(self, key: str, stamp_ns: int, item: Any) -> tuple[int, dict] | None:
        """Buffer one message; return a matched set if this completes one."""
        if key not in self._queues:
            raise KeyError(f'unknown sync key {key!r}; keys are {self.keys}')
        stamp_ns = int(stamp_ns)
        last = self.last_emitted_ns
        if last is not None and stamp_ns < last - self.jump_tolerance_ns:
            self.reset()
            self._queues[key].append((stamp_ns, item))
            raise TimeJump(f'{key} stamp {stamp_ns * 1e-9:.3f} s is '
                           f'{(last - stamp_ns) * 1e-9:.3f} s before the last frame')
        if last is not None and stamp_ns < last:
            return None  # late message of a frame already emitted
        # A stamp equal to the last emitted one is kept: a simulator that resends its frame
        # (the first exchange was lost while the graph was starting) must be answered again.
        self._queues[key].append((stamp_ns, item))
        return self._match()

    def _match(self) -> tuple[int, dict] | None:
        for t_anchor, anchor_item in reversed(self._queues[self.anchor]):
            chosen = {self.anchor: anchor_item}
            for key in self.keys:
                if key == self.anchor:
                    continue
                best = min(self._queues[key], key=lambda e: abs(e[0] - t_anchor), default=None)
                if best is None or abs(best[0] - t_anchor) > self.slop_ns:
                    break
                chosen[key] = best[1]
            else:
                self._drop_through(t_anchor)
                self.last_emitted_ns = t_anchor
                return t_anchor, chosen
        return None

    def _drop_through(self, t_ns: int) -> None:
        for key, q in self._queues.items():
            limit = t_ns if key == self.anchor else t_ns + self.slop_ns
            while q and q[0][0] <= limit:
                q.popleft()

    @property
    def buffered(self) -> dict:
        """Return the number of buffered messages per key."""
        return {k: len(q) for k, q in self._queues.items()}


@dataclass
class ExactJoin:
    """
    Join messages of several keys that carry exactly the same stamp.

    Keeps at most `max_pending` partial stamps (dropping the oldest). `add` returns the complete
    set when the last part arrives; older partial stamps are then dropped and counted in
    `dropped`.
    """

    keys: tuple
    max_pending: int = 4
    dropped: int = 0
    _pending: dict = field(default_factory=dict, repr=False)

    def add(self, key: str, stamp_ns: int, item: Any) -> tuple[int, dict] | None:
        """Add one part; return (stamp_ns, parts) when the stamp is complete."""
        if key not in self.keys:
            raise KeyError(f'unknown join key {key!r}; keys are {self.keys}')
        parts = self._pending.setdefault(int(stamp_ns), {})
        parts[key] = item
        if len(parts) == len(self.keys):
            stale = [t for t in self._pending if t < stamp_ns]
            self.dropped += len(stale)
            for t in stale:
                del self._pending[t]
            del self._pending[int(stamp_ns)]
            return int(stamp_ns), parts
        while len(self._pending) > self.max_pending:
            del self._pending[min(self._pending)]
            self.dropped += 1
        return None

    def clear(self) -> None:
        """Drop every partial stamp."""
        self._pending.clear()


class LatestSlot:
    """A one-item mailbox between threads: `put` replaces (counting overwrites), `take` empties."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item = None
        self.overwritten = 0

    def put(self, item: Any) -> None:
        """Store `item`, replacing (and counting) an item nobody took."""
        with self._lock:
            if self._item is not None:
                self.overwritten += 1
            self._item = item

    def offer(self, item: Any) -> bool:
        """Store `item` only if the slot is empty (a newer item wins); return whether it was."""
        with self._lock:
            if self._item is not None:
                return False
            self._item = item
            return True

    def take(self) -> Any:
        """Return the newest item (or None) and empty the slot."""
        with self._lock:
            item, self._item = self._item, None
            return item
