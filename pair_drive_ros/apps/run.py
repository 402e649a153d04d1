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
`pair-drive run`: perception, planner and tracker nodes in one process and one executor.

Large sensor messages cross process boundaries slowly with default Fast DDS settings (see
docs), so the default deployment composes the nodes in one process. Parameters come from a
params file (config/pair_drive.yaml by default) with the same names as nodes/params.py.

Network exposure: the graph discovers peers on this machine only
(ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST) unless the environment already says otherwise or
`--network` is given (SUBNET: other machines of the local network; see README, Security).
A callback error is logged and survived (the spin loop never turns one into an exit); Ctrl-C
ends the command with exit status 130.
"""

import argparse
import logging
import os
from pathlib import Path

from pair_drive_ros.nodes.params import DEFAULT_CONFIG, NODE_NAMES, parameter_overrides
from pair_drive_ros.nodes.params import coerce_value, PARAMS_CLASSES, typed_values, yaml_params

LOG = logging.getLogger(__name__)
DISCOVERY_ENV = 'ROS_AUTOMATIC_DISCOVERY_RANGE'


def configure_discovery(network: bool = False, environ: dict | None = None) -> str:
    """
    Set the DDS discovery range of this process before rclpy starts; return it.

    LOCALHOST by default, SUBNET with `network`; a range the user already set in the
    environment is kept.
    """
    env = os.environ if environ is None else environ
    if DISCOVERY_ENV not in env:
        env[DISCOVERY_ENV] = 'SUBNET' if network else 'LOCALHOST'
    return env[DISCOVERY_ENV]


def add_network_argument(parser: argparse.ArgumentParser) -> None:
    """Add the --network switch shared by `run` and `demo`."""
    parser.add_argument('--network', action='store_true',
                        help=f'discover ROS peers on the local network (default: this machine '
                        f'only; {DISCOVERY_ENV} in the environment takes precedence)')


GRAPH_ORDER = ('sim_bridge_node', 'perception_node', 'planner_node', 'tracker_node')


def node_values(executable: str, params_file: str | Path | None = DEFAULT_CONFIG,
                overrides: dict | None = None) -> dict:
    """Parameter values of one node: params file section, then `overrides` (validated)."""
    values = yaml_params(params_file, NODE_NAMES[executable]) if params_file else {}
    values.update(overrides or {})
    # Fail early on bad names/values; pass each value with the type the node declares.
    typed = typed_values(PARAMS_CLASSES[executable], values)
    out = {k: typed[k] for k in values if k in typed}
    if 'use_sim_time' in values:
        out['use_sim_time'] = coerce_value(values['use_sim_time'], False, 'use_sim_time')
    return out


def make_nodes(executables: tuple, params_file: str | Path | None = DEFAULT_CONFIG,
               overrides: dict | None = None, **node_kwargs) -> list:
    """
    Create the nodes (in graph order) with their parameters.

    overrides: {executable: {name: value}}; node_kwargs (e.g. context=) go to every node.
    The lifecycle nodes (perception, planner) come back configured and active.
    """
    from pair_drive_ros.nodes.perception_node import PerceptionNode
    from pair_drive_ros.nodes.planner_node import PlannerNode
    from pair_drive_ros.nodes.sim_bridge_node import SimBridgeNode
    from pair_drive_ros.nodes.tracker_node import TrackerNode

    classes = {'sim_bridge_node': SimBridgeNode, 'perception_node': PerceptionNode,
               'planner_node': PlannerNode, 'tracker_node': TrackerNode}
    nodes = []
    for exe in GRAPH_ORDER:
        if exe not in executables:
            continue
        values = node_values(exe, params_file, (overrides or {}).get(exe))
        nodes.append(classes[exe](parameter_overrides=parameter_overrides(values),
                                  **node_kwargs))
    return nodes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument('--params', default=str(DEFAULT_CONFIG),
                        help='ROS params file (default: config/pair_drive.yaml)')
    parser.add_argument('--planner', default=None,
                        help='planner name (overrides the params file)')
    parser.add_argument('--no-tracker', action='store_true', help='do not run the tracker')
    parser.add_argument('--sim', default=None, metavar='SCENARIOS',
                        help="also run the embedded simulator bridge, e.g. 'highway:11000'")
    parser.add_argument('--wall-time', action='store_true',
                        help='use_sim_time false (inputs without /clock)')
    add_network_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Run the graph until Ctrl-C (KeyboardInterrupt propagates) or the simulator finishes."""
    LOG.info('DDS discovery range: %s', configure_discovery(getattr(args, 'network', False)))
    import rclpy
    from rclpy.executors import ExternalShutdownException
    from rclpy.signals import SignalHandlerOptions

    from pair_drive_ros.ros.executor import (freeze_startup_heap, make_executor, SpinErrors,
                                             spin_once_resilient, USER_ERRORS)

    exes = ['perception_node', 'planner_node']
    if not args.no_tracker:
        exes.append('tracker_node')
    overrides = {e: {} for e in PARAMS_CLASSES}
    if args.planner:
        overrides['planner_node']['planner'] = args.planner
    if args.sim:
        exes.append('sim_bridge_node')
        overrides['sim_bridge_node']['scenarios'] = args.sim
    for exe in exes:
        overrides[exe]['use_sim_time'] = not args.wall_time
    # Ctrl-C as a plain KeyboardInterrupt (rclpy's handler would shut the context down and
    # leave the loop as if the graph had finished).
    rclpy.init(signal_handler_options=SignalHandlerOptions.NO)
    nodes = []
    executor = None
    try:
        nodes = make_nodes(tuple(exes), args.params, overrides)
        executor = make_executor('multi')
        for node in nodes:
            executor.add_node(node)
        freeze_startup_heap()
        LOG.info('running %s', ', '.join(n.get_name() for n in nodes))
        sim = next((n for n in nodes if n.get_name() == 'sim_bridge'), None)
        errors = SpinErrors(nodes[0].get_logger() if nodes else None)
        while rclpy.ok() and not (sim is not None and sim.finished):
            spin_once_resilient(executor, 0.1, errors)
    except ExternalShutdownException:
        pass
    except USER_ERRORS as err:
        LOG.error('%s', err)
        return 1
    finally:
        if executor is not None:
            # Callbacks still running in the executor's threads finish before their nodes go
            # (else a timer of a destroyed node logs an error after Ctrl-C).
            executor.shutdown()
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
