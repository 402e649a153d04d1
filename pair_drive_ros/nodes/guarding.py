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
Node-side glue of the callback guard: logger, steady clock, /diagnostics publisher.

`NodeGuard(node, period_s, status)` gives a node an InputMonitor logging through the node's
logger and timed by its steady clock, and publishes a diagnostic_msgs/DiagnosticArray on
/diagnostics every `period_s` (steady time, so it keeps coming when /clock stops) with the
per-topic receipt rates, ages and drop counts plus what `status()` adds.
"""

from typing import Callable

from rclpy.clock import Clock, ClockType

from pair_drive_ros import ros
from pair_drive_ros.runtime import safety
from pair_drive_ros.runtime.guard import Dropped, InputMonitor
from pair_drive_ros.runtime.validate import check_stamp, Limits, LIMITS


class NodeGuard:
    """An InputMonitor bound to a node, with its diagnostics timer."""

    def __init__(self, node, period_s: float = 1.0,
                 status: Callable[[], tuple[int, str, dict]] | None = None,
                 hardware_id: str = '', publish: bool = True, limits: Limits = LIMITS) -> None:
        from diagnostic_msgs.msg import DiagnosticArray

        self.node = node
        self.limits = limits
        self.steady = Clock(clock_type=ClockType.STEADY_TIME)
        logger = node.get_logger()

        def log(level: str, text: str) -> None:
            (logger.error if level == 'error' else logger.warning)(text)

        self.monitor = InputMonitor(log=log, clock=self.steady_s)
        self._status = status
        self._hardware_id = hardware_id
        self._pub = None
        self._malformed_seen = 0
        self._guard_clock_subscription()
        if publish:
            self._pub = node.create_publisher(DiagnosticArray, '/diagnostics',
                                              ros.reliable_qos(10))
            node.create_timer(period_s, self.monitor.guard_timer('diagnostics', self.publish),
                              clock=self.steady)

    def _guard_clock_subscription(self) -> None:
        # rclpy's own /clock subscription (use_sim_time) raises on a negative time, out of
        # every node's reach; validated and counted here like any other input. (Private rclpy
        # attributes: where they differ, the resilient spin loop still survives the error.)
        sub = getattr(getattr(self.node, '_time_source', None), '_clock_sub', None)
        if sub is None or not callable(getattr(sub, 'callback', None)):
            return
        original = sub.callback

        def clock_callback(msg) -> None:
            t_ns = ros.stamp_to_nanoseconds(msg.clock)
            if t_ns < 0:
                raise Dropped('negative_clock', f'{t_ns * 1e-9:.3f} s')
            original(msg)
        sub.callback = self.monitor.guard('clock', clock_callback)

    def steady_s(self) -> float:
        """Return the node's steady clock [s]."""
        return self.steady.now().nanoseconds * 1e-9

    def stamp_ns(self, header, what: str) -> int:
        """Decode the header's stamp and check it against the node clock (see check_stamp)."""
        stamp_ns = ros.stamp_to_nanoseconds(header.stamp)
        return check_stamp(stamp_ns, self.node.get_clock().now().nanoseconds, self.limits)

    def publish(self) -> None:
        """Publish this node's DiagnosticStatus now."""
        if self._pub is None:
            return
        level, message, values = (self._status() if self._status is not None
                                  else (safety.OK, 'running', {}))
        malformed = self.monitor.malformed
        if malformed > self._malformed_seen and level == safety.OK:
            level, message = safety.WARN, f'{message}; dropping malformed input'
        self._malformed_seen = malformed
        payload = {'level': level, 'message': message,
                   'values': dict(values, **self.monitor.values())}
        status = safety.diagnostic_status(payload, f'{self.node.get_name()}: inputs',
                                          hardware_id=self._hardware_id)
        self._pub.publish(safety.diagnostic_array([status], self.node.get_clock().now().to_msg()))
