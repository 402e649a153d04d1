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
Crash isolation for node callbacks (no ROS): count and drop what a callback cannot use.

`InputMonitor.guard(topic, fn)` wraps a subscription callback so that no input can raise out of
it: a `Dropped` (the node's own validation) is counted under its reason; a ValueError (the
codecs' CodecError included) counts as malformed input; any other exception counts as an
internal error of that input. Each is logged, throttled per kind, and the callback returns.
`guard_timer` does the same for timers. The counts, receipt rates and ages per topic are the
node's diagnostics (`values()`).

A callback that raises would end the executor's spin, and with it every node of the process.
"""

from collections import deque
from dataclasses import dataclass, field
import time
from typing import Any, Callable

RATE_WINDOW = 50           # receipts kept per topic for the rate estimate
LOG_THROTTLE_S = 2.0


class Dropped(Exception):
    """
    An input the node will not use. `reason` is a short key counted in diagnostics.

    `malformed`: the message itself is wrong (bad stamp, frame, value); False for good messages
    that came too late or too often (stale, overwritten).
    """

    def __init__(self, reason: str, detail: str = '', malformed: bool = True) -> None:
        super().__init__(f'{reason}: {detail}' if detail else reason)
        self.reason = reason
        self.detail = detail
        self.malformed = malformed


@dataclass
class TopicStats:
    """What one input topic delivered: receipts, drops per reason, malformed count."""

    received: int = 0
    malformed: int = 0
    dropped: int = 0
    reasons: dict = field(default_factory=dict)
    receipts: deque = field(default_factory=lambda: deque(maxlen=RATE_WINDOW))

    def rate_hz(self) -> float:
        """Receipt rate over the last RATE_WINDOW messages (nan with fewer than two)."""
        if len(self.receipts) < 2 or self.receipts[-1] <= self.receipts[0]:
            return float('nan')
        return (len(self.receipts) - 1) / (self.receipts[-1] - self.receipts[0])


class InputMonitor:
    """
    Per-topic receipt statistics and the guard that keeps callbacks from raising.

    `log(level, text)` receives 'warning' or 'error' lines, at most one per kind per
    `throttle_s` (each line carries the running counts, so nothing is hidden). `clock` is a
    monotonic time source in seconds (the node's steady clock).
    """

    def __init__(self, log: Callable[[str, str], None] | None = None,
                 throttle_s: float = LOG_THROTTLE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._log = log
        self.throttle_s = throttle_s
        self.clock = clock
        self.topics: dict[str, TopicStats] = {}
        self.errors = 0                      # exceptions no validation foresaw (inputs+timers)
        self._last_log: dict[str, float] = {}

    def stats(self, topic: str) -> TopicStats:
        """Return the statistics of `topic` (created on first use)."""
        st = self.topics.get(topic)
        if st is None:
            st = self.topics[topic] = TopicStats()
        return st

    def received(self, topic: str) -> None:
        """Count one receipt of `topic` now."""
        st = self.stats(topic)
        st.received += 1
        st.receipts.append(self.clock())

    def drop(self, topic: str, reason: str, detail: str = '', malformed: bool = True) -> None:
        """Count one dropped input of `topic` under `reason` and log it (throttled)."""
        st = self.stats(topic)
        st.dropped += 1
        st.malformed += int(malformed)
        st.reasons[reason] = st.reasons.get(reason, 0) + 1
        kind = 'dropping malformed' if malformed else 'dropping'
        self._throttled('warning', kind, f'{kind} {topic}: {reason}'
                        + (f' ({detail})' if detail else '')
                        + f' [{st.reasons[reason]} so far]')

    @property
    def malformed(self) -> int:
        """Malformed inputs over every topic."""
        return sum(st.malformed for st in self.topics.values())

    @property
    def dropped(self) -> int:
        """Return the dropped inputs (malformed or not) over every topic."""
        return sum(st.dropped for st in self.topics.values())

    def guard(self, topic: str, fn: Callable[[Any], Any]) -> Callable[[Any], None]:
        """`fn(msg)` as a callback that counts its receipt and never raises."""
        def callback(msg: Any) -> None:
            self.received(topic)
            self.call(topic, fn, msg)
        callback.__name__ = getattr(fn, '__name__', 'callback')
        return callback

    def call(self, topic: str, fn: Callable, *args: Any) -> Any:
        """Run `fn(*args)` for an input of `topic`; count and log what it raises; None then."""
        try:
            return fn(*args)
        except Dropped as err:
            self.drop(topic, err.reason, err.detail, err.malformed)
        except ValueError as err:  # the codecs' CodecError and numpy/value checks
            self.drop(topic, 'decode', _short(err))
        except Exception as err:  # noqa: B902  one bad input must not end the process
            self.errors += 1
            self.drop(topic, f'internal:{type(err).__name__}', _short(err))
            self._throttled('error', 'internal', f'{topic}: unexpected '
                            f'{type(err).__name__}: {_short(err)} (input dropped)')
        return None

    def guard_timer(self, name: str, fn: Callable[[], Any]) -> Callable[[], None]:
        """`fn()` as a timer callback that never raises (errors counted and logged)."""
        def callback() -> None:
            try:
                fn()
            except Exception as err:  # noqa: B902  a timer error must not end the process
                self.errors += 1
                st = self.stats(f'timer:{name}')
                key = f'internal:{type(err).__name__}'
                st.reasons[key] = st.reasons.get(key, 0) + 1
                self._throttled('error', f'timer:{name}',
                                f'timer {name} failed: {type(err).__name__}: {_short(err)}')
        callback.__name__ = getattr(fn, '__name__', name)
        return callback

    def values(self, prefix: str = '') -> dict[str, str]:
        """Diagnostic key/values: per topic rate, age of the last receipt, counts per reason."""
        now = self.clock()
        out = {f'{prefix}malformed_total': str(self.malformed),
               f'{prefix}dropped_total': str(self.dropped),
               f'{prefix}internal_errors': str(self.errors)}
        for topic, st in sorted(self.topics.items()):
            if topic.startswith('timer:'):
                for reason, n in sorted(st.reasons.items()):
                    out[f'{prefix}{topic} {reason}'] = str(n)
                continue
            age = now - st.receipts[-1] if st.receipts else float('nan')
            out[f'{prefix}{topic} rate_hz'] = f'{st.rate_hz():.2f}'
            out[f'{prefix}{topic} age_s'] = f'{age:.3f}'
            out[f'{prefix}{topic} received'] = str(st.received)
            out[f'{prefix}{topic} malformed'] = str(st.malformed)
            out[f'{prefix}{topic} dropped'] = str(st.dropped)
            for reason, n in sorted(st.reasons.items()):
                out[f'{prefix}{topic} dropped.{reason}'] = str(n)
        return out

    def _throttled(self, level: str, kind: str, text: str) -> None:
        if self._log is None:
            return
        now = self.clock()
        last = self._last_log.get(kind)
        if last is not None and now - last < self.throttle_s:
            return
        self._last_log[kind] = now
        try:
            self._log(level, text)
        except Exception:  # noqa: B902  logging must not turn into a crash either
            pass


def _short(err: BaseException, limit: int = 200) -> str:
    text = str(err) or type(err).__name__
    return text if len(text) <= limit else text[:limit] + '...'
