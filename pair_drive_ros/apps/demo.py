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
`pair-drive demo` (`make demo`): the ROS graph driving the embedded simulator, recorded.

Closed loop (default): sim_bridge, perception, planner and tracker nodes in one process over
real DDS (rclpy), on a few test-split scenarios with the configured planner; every topic is
recorded to an MCAP bag (opens in Foxglove, or in RViz via `ros2 bag play`). Writes a metrics
table (metrics.md, metrics.json) and a picture of the drives (drive.png) and prints where they
are. `--bag FILE` does the same over a recorded bag: the bag is played into perception ->
planner -> tracker, and the table reports open-loop numbers (plans per frame, latency, the
displacement of each plan from the recorded future ego path).

The bag is flushed every second (a killed demo leaves a bag that the next reader recovers);
an existing output folder is not written into without --force; discovery is localhost-only
unless --network (see `pair-drive run`); Ctrl-C ends it with exit status 130.
"""

import argparse
from dataclasses import dataclass
from datetime import datetime, timezone
import json
import logging
from pathlib import Path
import time

import numpy as np

from pair_drive_ros import ros
from pair_drive_ros.apps.run import add_network_argument, configure_discovery
from pair_drive_ros.core.config import add_config_arguments, config_from_args, config_text
from pair_drive_ros.core.config import save_config
from pair_drive_ros.nodes.params import DEFAULT_CONFIG

LOG = logging.getLogger(__name__)
DEFAULT_SCENARIOS = 'highway:11000,merge:11000,intersection:11000'
LATCHED = ('/carla/ego_vehicle/waypoints', '/sim_bridge/episode_metrics')
INPUT_PREFIXES = ('/carla/', '/tf')


class TopicRecorder:
    """
    Record every topic of the graph (raw CDR) into a BagWriter; keep what the plots need.

    Topics are discovered with `scan()` (call it now and then); bag time is the node's clock
    (sim time under use_sim_time).
    """

    def __init__(self, node, writer: ros.BagWriter, path_topic: str = '/planner/trajectory'
                 ) -> None:
        from rclpy.callback_groups import MutuallyExclusiveCallbackGroup

        self.node = node
        self.writer = writer
        self.path_topic = path_topic
        self.counts: dict[str, int] = {}
        self._group = MutuallyExclusiveCallbackGroup()
        self._subs = {}
        self.odometry: list[tuple[float, float, float]] = []   # t, x, y
        self.paths: list[tuple[float, np.ndarray]] = []        # t0, (8, 2) map xy
        self.routes: list[np.ndarray] = []
        self.metrics: list[dict] = []
        self.episode_starts: list[int] = [0]                    # odometry index per episode
        self.agents: list[np.ndarray] = []                      # (M, 5) x, y, l, w, yaw
        self.final_agents: list[np.ndarray] = []                # agents at each episode's end

    def scan(self) -> None:
        """Subscribe to topics that appeared since the last scan."""
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        for topic, types in self.node.get_topic_names_and_types():
            if topic in self._subs or not types or topic.startswith('/rosout') \
                    or topic.startswith('/parameter_events'):
                continue
            try:
                cls = ros.message_class(types[0])
            except ros.BagError:
                continue
            latched = topic in LATCHED
            qos = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE,
                             durability=DurabilityPolicy.TRANSIENT_LOCAL if latched
                             else DurabilityPolicy.VOLATILE)
            self._subs[topic] = self.node.create_subscription(
                cls, topic, lambda data, t=topic, m=types[0], c=cls: self._callback(t, m, c, data),
                qos, raw=True, callback_group=self._group)

    def _callback(self, topic: str, msgtype: str, cls, data: bytes) -> None:
        # Sim time (0 before the first /clock): the bag then plays back on the graph's clock.
        now = self.node.get_clock().now().nanoseconds
        self.writer.write(topic, data, now, msgtype=msgtype, latched=topic in LATCHED)
        self.counts[topic] = self.counts.get(topic, 0) + 1
        if topic.endswith('/odometry') or topic == self.path_topic or topic in LATCHED \
                or topic == '/carla/markers':
            from rclpy.serialization import deserialize_message
            self._remember(topic, deserialize_message(data, cls))

    def _remember(self, topic: str, msg) -> None:
        if topic.endswith('/odometry'):
            p = msg.pose.pose.position
            self.odometry.append((ros.stamp_to_seconds(msg.header.stamp), p.x, p.y))
        elif topic == self.path_topic and msg.header.frame_id == 'map' and msg.poses:
            xy = np.array([[q.pose.position.x, q.pose.position.y] for q in msg.poses])
            self.paths.append((ros.stamp_to_seconds(msg.header.stamp), xy))
        elif topic.endswith('/waypoints'):
            self.routes.append(np.array([[q.pose.position.x, q.pose.position.y]
                                         for q in msg.poses]))
        elif topic.endswith('/episode_metrics'):
            self.metrics.append(json.loads(msg.data))
            self.episode_starts.append(len(self.odometry))
            self.final_agents.append(self.agents[-1] if self.agents else np.zeros((0, 5)))
        elif topic == '/carla/markers':
            self.agents.append(np.array([[m.pose.position.x, m.pose.position.y, m.scale.x,
                                          m.scale.y, 2.0 * np.arctan2(m.pose.orientation.z,
                                                                      m.pose.orientation.w)]
                                         for m in msg.markers if m.type == m.CUBE]
                                        ).reshape(-1, 5))


def metrics_table(rows: list[dict], columns: list[str]) -> str:
    """Markdown table of `rows` with these columns (floats with 2 decimals)."""
    def fmt(v):
        return f'{v:.2f}' if isinstance(v, float) else str(v)
    lines = ['| ' + ' | '.join(columns) + ' |', '|' + '---|' * len(columns)]
    lines += ['| ' + ' | '.join(fmt(r.get(c, '')) for c in columns) + ' |' for r in rows]
    return '\n'.join(lines)


def box_outline(x: float, y: float, length: float, width: float, yaw: float) -> np.ndarray:
    """(4, 2) corners of an oriented box."""
    from pair_drive_ros.core.se2 import box_corners

    return box_corners(np.array([x, y, yaw]), length, width)


def plot_drives(rec: TopicRecorder, path: Path, titles: list[str]) -> None:
    """One panel per episode: route, driven path, planned paths, last agent boxes."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    odo = np.array(rec.odometry).reshape(-1, 3)
    n = max(1, len(titles))
    fig, axes = plt.subplots(1, n, figsize=(5.5 * n, 5.0), squeeze=False)
    bounds = rec.episode_starts + [len(odo)]
    for i, ax in enumerate(axes[0]):
        seg = odo[bounds[i]:bounds[i + 1]] if i + 1 < len(bounds) else odo[:0]
        if i < len(rec.routes) and len(rec.routes[i]):
            ax.plot(rec.routes[i][:, 0], rec.routes[i][:, 1], color='0.7', lw=6, zorder=1,
                    label='route')
        if len(seg):
            t0, t1 = seg[0, 0], seg[-1, 0]
            for t, xy in rec.paths[::5]:
                if t0 <= t <= t1:
                    ax.plot(xy[:, 0], xy[:, 1], color='tab:orange', lw=0.8, alpha=0.7, zorder=2)
            if i < len(rec.final_agents):
                for x, y, length, width, yaw in rec.final_agents[i]:
                    corners = box_outline(x, y, length, width, yaw)
                    ax.fill(corners[:, 0], corners[:, 1], color='tab:red', alpha=0.5, zorder=2)
            ax.plot(seg[:, 1], seg[:, 2], color='tab:blue', lw=2, zorder=3, label='ego')
            ax.plot(seg[-1, 1], seg[-1, 2], 'o', color='tab:blue', zorder=4)
            pad = 30.0
            ax.set_xlim(seg[:, 1].min() - pad, seg[:, 1].max() + pad)
            ax.set_ylim(seg[:, 2].min() - pad, seg[:, 2].max() + pad)
        ax.plot([], [], color='tab:orange', lw=0.8, label='planned paths')
        ax.fill([], [], color='tab:red', alpha=0.5, label='agents at the end')
        ax.set_aspect('equal', adjustable='box')
        ax.set_title(titles[i] if i < len(titles) else '', fontsize=9)
        ax.legend(loc='upper left', fontsize=7)
        ax.set_xlabel('x [m] (map)')
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


FLUSH_PERIOD_S = 1.0


@dataclass(frozen=True)
class DemoConfig:
    """Settings of `pair-drive demo` (YAML via --config, `--set key=value`, `--<field>`)."""

    out: str = ''                        # output folder ('' : runs/demo__<utc>)
    scenarios: str = DEFAULT_SCENARIOS   # comma-separated scenario:seed list (closed loop)
    max_steps: int = 80                  # cap of each episode at 10 Hz (80 = 8 s)
    planner: str = ''                    # planner ('' : the params file's)
    params: str = str(DEFAULT_CONFIG)    # ROS params file of the nodes
    bag: str = ''                        # drive over this recorded bag instead ('' : simulator)
    rate: float = 1.0                    # bag playback rate
    timeout: float = 240.0               # stop after this many wall seconds
    domain_id: int | None = None         # DDS domain (None: ROS_DOMAIN_ID or 0)


DEMO_FLAGS = ('out', 'scenarios', 'max_steps', 'planner', 'params', 'bag', 'rate', 'timeout',
              'domain_id')


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_config_arguments(parser, None, DEMO_FLAGS)
    parser.add_argument('--force', action='store_true',
                        help='write into an existing --out folder (replacing its bag)')
    add_network_argument(parser)


def run(args: argparse.Namespace) -> int:
    import shutil

    LOG.info('DDS discovery range: %s', configure_discovery(getattr(args, 'network', False)))
    import rclpy
    from rclpy.context import Context
    from rclpy.node import Node
    from rclpy.parameter import Parameter
    from rclpy.signals import SignalHandlerOptions

    from pair_drive_ros.apps.run import make_nodes
    from pair_drive_ros.apps.replay import BagPlayer
    from pair_drive_ros.ros.executor import (make_executor, SpinErrors, spin_once_resilient,
                                             USER_ERRORS)

    cfg = config_from_args(DemoConfig, args)
    LOG.info('pair-drive demo config:\n%s', config_text(cfg))
    utc = datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%SZ')
    out = Path(cfg.out or f'runs/demo__{utc}')
    bag_path = out / 'graph_mcap'
    if out.exists() and any(out.iterdir()) and not getattr(args, 'force', False):
        LOG.error('%s exists and is not empty; choose another --out or pass --force', out)
        return 1
    out.mkdir(parents=True, exist_ok=True)
    save_config(cfg, out)
    if bag_path.exists():
        shutil.rmtree(bag_path)  # --force
    closed_loop = not cfg.bag
    exes = ('perception_node', 'planner_node', 'tracker_node') + (
        ('sim_bridge_node',) if closed_loop else ())
    overrides = {e: {'use_sim_time': True} for e in exes}
    if cfg.planner:
        overrides['planner_node']['planner'] = cfg.planner
    if closed_loop:
        overrides['sim_bridge_node'].update(scenarios=cfg.scenarios,
                                            max_steps=int(cfg.max_steps))
    ctx = Context()
    init_kwargs = {} if cfg.domain_id is None else {'domain_id': cfg.domain_id}
    rclpy.init(context=ctx, signal_handler_options=SignalHandlerOptions.NO, **init_kwargs)
    nodes = []
    t_start = time.monotonic()
    try:
        nodes = make_nodes(exes, cfg.params, overrides, context=ctx)
        rec_node = Node('demo_recorder', context=ctx,
                        parameter_overrides=[Parameter('use_sim_time', value=True)])
        nodes.append(rec_node)
        by_name = {n.get_name(): n for n in nodes}
        player = None
        if not closed_loop:
            # Play the inputs only (CARLA bridge topics, TF): a bag recorded from this graph
            # also holds perception and planner outputs, which the live nodes now produce.
            inputs = [t for t in ros.bag_topics(cfg.bag) if t.startswith(INPUT_PREFIXES)]
            player = BagPlayer(rec_node, cfg.bag, rate=cfg.rate, topics=inputs)
        executor = make_executor('multi', context=ctx)
        for node in nodes:
            executor.add_node(node)
        with ros.BagWriter(bag_path) as writer:
            rec = TopicRecorder(rec_node, writer)
            rec.scan()
            last_scan = last_flush = 0.0
            bag_done_at = None
            last_frames, last_activity = -1, 0.0
            errors = SpinErrors(rec_node.get_logger())
            if player is not None:
                # Do not play into the void: wait until perception and the recorder matched.
                sensors = [t for t in player.topics if t.endswith(('/lidar', '/odometry',
                                                                   '/image'))]
                ready_by = time.monotonic() + 5.0
                while not player.subscribed(sensors, 2) and time.monotonic() < ready_by:
                    spin_once_resilient(executor, 0.01, errors)
            while time.monotonic() - t_start < cfg.timeout:
                spin_once_resilient(executor, 0.01, errors)
                now = time.monotonic()
                if now - last_scan > 0.5:
                    rec.scan()
                    last_scan = now
                if now - last_flush > FLUSH_PERIOD_S:
                    writer.flush()
                    last_flush = now
                if closed_loop and by_name['sim_bridge'].finished:
                    break
                if player is not None and bag_done_at is None and not player.step():
                    bag_done_at = now
                if bag_done_at is not None:
                    # Let the last frames through a loaded graph: end after 1 s without a new
                    # planner frame (at most 5 s after the bag ended).
                    frames = by_name['planner'].health.frames
                    if frames != last_frames:
                        last_frames, last_activity = frames, now
                    if now - max(bag_done_at, last_activity) > 1.0 or now - bag_done_at > 5.0:
                        break
            else:
                LOG.warning('demo stopped after the %.0f s timeout', cfg.timeout)
            end = time.monotonic() + 0.5
            while time.monotonic() < end:  # drain what is in flight
                spin_once_resilient(executor, 0.01, errors)
        planner = by_name['planner']
        wall_s = time.monotonic() - t_start
        if closed_loop:
            rows = by_name['sim_bridge'].results
            cols = ['scenario', 'seed', 'steps', 'collision', 'off_road', 'route_completion',
                    'progress_m', 'comfort_violations']
            titles = [f'{r["scenario"]}:{r["seed"]} RC {r["route_completion"]:.2f} '
                      f'{"COLLISION" if r["collision"] else "no collision"}' for r in rows]
        else:
            rows = [bag_metrics(rec, planner)]
            cols = list(rows[0])
            titles = [Path(cfg.bag).name]
        lat = np.asarray(planner.latencies_ms)
        summary = {'planner': planner.health.model_ids, 'wall_s': round(wall_s, 1),
                   'frames': planner.health.frames, 'plans': planner.health.plans,
                   'stops': planner.health.stops, 'dropped_frames': planner.health.dropped,
                   'inference_ms_p50': round(float(np.percentile(lat, 50)), 3) if len(lat)
                   else None,
                   'messages_recorded': int(sum(rec.counts.values())),
                   'topics_recorded': len(rec.counts)}
        table = metrics_table(rows, cols)
        (out / 'metrics.md').write_text(
            f'# pair-drive demo ({utc})\n\n{table}\n\n' + '\n'.join(
                f'- {k}: {v}' for k, v in summary.items()) + '\n')
        (out / 'metrics.json').write_text(json.dumps({'episodes': rows, 'summary': summary},
                                                     indent=2, default=str))
        plot_drives(rec, out / 'drive.png', titles)
        print(table)
        print('\n'.join(f'{k}: {v}' for k, v in summary.items()))
        print(f'bag (MCAP, {len(rec.counts)} topics): {bag_path}')
        print(f'metrics: {out / "metrics.md"}')
        print(f'picture: {out / "drive.png"}')
        return 0
    except USER_ERRORS as err:
        LOG.error('%s', err)
        return 1
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=ctx)


def bag_metrics(rec: TopicRecorder, planner) -> dict:
    """
    Open-loop numbers over a bag: plans per frame, ADE of plans vs the recorded ego path.

    ADE uses the poses whose time lies in the same gap-free stretch of recorded odometry as the
    plan's stamp (episodes in one bag are separated by time gaps).
    """
    odo = np.array(rec.odometry).reshape(-1, 3)
    odo = odo[np.argsort(odo[:, 0], kind='stable')]
    gap = np.r_[0, np.cumsum(np.diff(odo[:, 0]) > 0.5)] if len(odo) else np.zeros(0)
    errors = []
    for t0, xy in rec.paths:
        k = np.searchsorted(odo[:, 0], t0)
        if k >= len(odo) or odo[k, 0] != t0:
            continue  # not a frame stamp (e.g. a stopping path after the inputs ended)
        seg = odo[gap == gap[k]]
        times = t0 + 0.5 * np.arange(1, len(xy) + 1)
        ok = times <= seg[-1, 0]
        if not ok.any():
            continue
        ex = np.interp(times[ok], seg[:, 0], seg[:, 1])
        ey = np.interp(times[ok], seg[:, 0], seg[:, 2])
        errors.append(float(np.mean(np.hypot(xy[ok, 0] - ex, xy[ok, 1] - ey))))
    return {'frames': planner.health.frames, 'paths': len(rec.paths),
            'stops': planner.health.stops, 'dropped_frames': planner.health.dropped,
            'ade_vs_recorded_m': float(np.mean(errors)) if errors else float('nan'),
            'plans_scored': len(errors), 'odometry_msgs': len(odo)}
