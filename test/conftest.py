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

"""Shared fixtures: isolated rclpy contexts and a deterministic spin helper."""

import itertools
import os
import time

import pytest

# Each test that touches DDS gets its own domain id; offset by the process id so that parallel
# pytest runs on one machine do not talk to each other.
_DOMAIN_IDS = itertools.count(1 + (os.getpid() % 20) * 10)


def spin_until(executor, done, timeout_s: float = 2.0) -> bool:
    """Spin `executor` one callback at a time until `done()` holds or the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.02)
    return done()


@pytest.fixture
def ros_context():
    """Return a fresh rclpy Context on its own domain id, shut down after the test."""
    rclpy = pytest.importorskip('rclpy')
    from rclpy.context import Context

    ctx = Context()
    rclpy.init(context=ctx, domain_id=next(_DOMAIN_IDS) % 230)
    try:
        yield ctx
    finally:
        rclpy.try_shutdown(context=ctx)
