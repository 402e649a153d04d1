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
`pair-drive replay BAG`: play a rosbag2 (MCAP or sqlite3) without rosbag2, with /clock.

Messages are published as raw CDR bytes (no deserialization) on publishers of their own types;
before each message /clock is set to its bag time, so nodes with use_sim_time see bag time.
Options: rate, loop (time jumps back at each restart, as with `ros2 bag play --loop`), start
offset, topic selection. Topics recorded as TRANSIENT_LOCAL (routes, /tf_static) are republished
latched. `ros2 bag play --clock` remains the native route where ROS is installed.
"""

import argparse
import logging
from pathlib import Path
import time

from pair_drive_ros import ros

LOG = logging.getLogger(__name__)
LATCHED_SUFFIXES = ('/tf_static', '/waypoints', '/vehicle_info', '/episode_metrics')


def latched_topics(path: str | Path) -> set[str]:
    """Topics the bag recorded with TRANSIENT_LOCAL durability (or known to be latched)."""
    from rosbags.interfaces import QosDurability
    from rosbags.rosbag2 import Reader

    out = set()
    try:
        with Reader(Path(path)) as reader:
            for conn in reader.connections:
                profiles = getattr(conn.ext, 'offered_qos_profiles', None) or []
                if any(q.durability == QosDurability.TRANSIENT_LOCAL for q in profiles):
                    out.add(conn.topic)
    except Exception as err:  # noqa: B902  (rosbags raises several unrelated types)
        raise ros.BagError(f'cannot read bag {path}: {err}') from None
    return out | {t for t in ros.bag_topics(path) if t.endswith(LATCHED_SUFFIXES)}


def node_topic(topic: str) -> str:
    """
    Return the name the player publishes a recorded topic under.

    Relative, so a player started in a namespace feeds a namespaced graph (without a namespace
    the name is the recorded one); /clock, /tf and /tf_static stay global.
    """
    from pair_drive_ros.apps.launch_helpers import GLOBAL_TOPICS

    return topic if topic in GLOBAL_TOPICS else topic.lstrip('/')


class BagPlayer:
    """
    Publish a bag's messages on `node` at their recorded pace (call `step` often).

    `step()` publishes every message that is due and returns False once the bag is exhausted
    (never with `loop`). Topics whose type has no importable rclpy class are skipped (logged).
    """

    def __init__(self, node, path: str | Path, rate: float = 1.0, loop: bool = False,
                 start_offset_s: float = 0.0, topics: list[str] | None = None,
                 clock: bool = True) -> None:
        from rosgraph_msgs.msg import Clock

        if not rate > 0:
            raise ValueError(f'rate must be positive, got {rate}')
        self.node = node
        self.path = Path(path)
        self.rate = float(rate)
        self.loop = loop
        self.start_offset_ns = int(start_offset_s * 1e9)
        types = ros.bag_topics(self.path)
        wanted = set(topics) if topics else set(types)
        latched = latched_topics(self.path)
        self._pubs = {}
        for topic, msgtype in sorted(types.items()):
            if topic not in wanted or (clock and topic == '/clock'):
                continue
            try:
                cls = ros.message_class(msgtype)
            except ros.BagError as err:
                node.get_logger().warning(f'skipping {topic}: {err}')
                continue
            qos = ros.latched_qos() if topic in latched else ros.reliable_qos(10)
            self._pubs[topic] = node.create_publisher(cls, node_topic(topic), qos)
        self._clock_pub = node.create_publisher(Clock, '/clock', ros.reliable_qos(10)) \
            if clock else None
        self._clock_cls = Clock
        self.published = 0
        self.loops = 0
        self._restart()

    def subscribed(self, topics, count: int = 1) -> bool:
        """Whether every one of these played topics has at least `count` matched subscribers."""
        return all(self._pubs[t].get_subscription_count() >= count
                   for t in topics if t in self._pubs)

    @property
    def topics(self) -> list[str]:
        """Topics being played."""
        return sorted(self._pubs)

    def _restart(self) -> None:
        self._messages = ros.read_bag(self.path, topics=list(self._pubs), raw=True)
        self._next = None
        self._bag_t0 = None
        self._wall_t0 = None

    def step(self) -> bool:
        """Publish all due messages; False when the bag is done (and not looping)."""
        while True:
            if self._next is None:
                self._next = next(self._messages, None)
                if self._next is None:
                    if not self.loop:
                        return False
                    self.loops += 1
                    self._restart()
                    continue
            topic, t_ns, data = self._next
            if self._bag_t0 is None:
                self._bag_t0 = t_ns + self.start_offset_ns
                self._wall_t0 = time.monotonic()
            if t_ns < self._bag_t0:
                self._next = None  # before the start offset
                continue
            due = self._wall_t0 + (t_ns - self._bag_t0) * 1e-9 / self.rate
            if time.monotonic() < due:
                return True
            if self._clock_pub is not None:
                self._clock_pub.publish(self._clock_cls(clock=ros.nanoseconds_to_stamp(t_ns)))
            self._pubs[topic].publish(bytes(data))
            self.published += 1
            self._next = None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('bag', help='rosbag2 directory (MCAP or sqlite3)')
    parser.add_argument('--rate', type=float, default=1.0, help='playback speed factor')
    parser.add_argument('--loop', action='store_true', help='restart at the end')
    parser.add_argument('--start-offset', type=float, default=0.0, metavar='S',
                        help='skip the first S seconds of the bag')
    parser.add_argument('--topics', nargs='*', default=None, help='play only these topics')
    parser.add_argument('--no-clock', action='store_true', help='do not publish /clock')


def run(args: argparse.Namespace) -> int:
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.node import Node

    rclpy.init()
    node = None
    try:
        node = Node('bag_player')
        player = BagPlayer(node, args.bag, rate=args.rate, loop=args.loop,
                           start_offset_s=args.start_offset, topics=args.topics,
                           clock=not args.no_clock)
        LOG.info('playing %s: %s', args.bag, ', '.join(player.topics))
        while rclpy.ok() and player.step():
            rclpy.spin_once(node, timeout_sec=0.002)
        LOG.info('published %d messages', player.published)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (ros.BagError, ValueError) as err:
        LOG.error('%s', err)
        return 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
