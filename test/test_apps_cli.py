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

"""Smoke runs of the node entry points: pair-drive demo (closed loop and --bag) and replay."""

import argparse
import json
import os
from pathlib import Path
import subprocess
import sys

import pytest

pytest.importorskip('rclpy')

pytestmark = pytest.mark.ros
ROOT = Path(__file__).resolve().parents[1]


def _args(module, argv):
    parser = argparse.ArgumentParser()
    module.add_arguments(parser)
    return parser.parse_args(argv)


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    from pair_drive_ros.apps import demo

    out = tmp_path_factory.mktemp('demo')
    domain = str(150 + os.getpid() % 40)
    rc = demo.run(_args(demo, ['--out', str(out), '--scenarios', 'highway:11000',
                               '--max-steps', '12', '--domain-id', domain]))
    return rc, out


def test_demo_closed_loop_writes_bag_metrics_and_picture(demo_run):
    from pair_drive_ros import ros

    rc, out = demo_run
    assert rc == 0
    data = json.loads((out / 'metrics.json').read_text())
    (episode,) = data['episodes']
    assert episode['scenario'] == 'highway' and episode['steps'] == 12
    assert not episode['collision'] and episode['progress_m'] > 0
    assert (out / 'drive.png').stat().st_size > 10_000
    assert '| highway | 11000 | 12 |' in (out / 'metrics.md').read_text()
    from pair_drive_ros.nodes.params import carla_topics, resolve
    from pair_drive_ros.nodes.tracker_node import pick_control_type

    # The tracker's output: CarlaEgoVehicleControl where carla_msgs is installed, else ...
    control = resolve(carla_topics()[pick_control_type('auto')[2]])
    topics = ros.bag_topics(out / 'graph_mcap')
    for topic in ('/clock', '/carla/ego_vehicle/lidar', '/carla/ego_vehicle/rgb_front/image',
                  '/perception/lidar_bev', '/planner/trajectory', '/diagnostics',
                  control, '/sim_bridge/episode_metrics'):
        assert topic in topics, topic
    paths = [m for _, _, m in ros.read_bag(out / 'graph_mcap', ['/planner/trajectory'])]
    assert len(paths) == data['summary']['plans'] == 12


def test_demo_over_a_recorded_bag(demo_run, tmp_path):
    from pair_drive_ros.apps import demo

    _, closed = demo_run
    out = tmp_path / 'bag_demo'
    domain = str(190 + os.getpid() % 30)
    # A quarter of real time, so that a slow machine's planner keeps up with every frame
    # (at 1.0 it drops the frames that arrive while it plans, and fewer frames get a plan).
    assert demo.run(_args(demo, ['--bag', str(closed / 'graph_mcap'), '--out', str(out),
                                 '--domain-id', domain, '--rate', '0.25'])) == 0
    (row,) = json.loads((out / 'metrics.json').read_text())['episodes']
    assert row['frames'] == 12 and row['plans_scored'] >= 1
    assert row['ade_vs_recorded_m'] < 1.0  # the recorded drive followed these very plans
    assert (out / 'drive.png').is_file()


def test_replay_cli_plays_a_bag(demo_run):
    _, closed = demo_run
    env = dict(os.environ, ROS_DOMAIN_ID=str(120 + os.getpid() % 30))
    result = subprocess.run([sys.executable, '-m', 'pair_drive_ros.cli', 'replay',
                             str(closed / 'graph_mcap'), '--rate', '20', '--topics',
                             '/carla/ego_vehicle/odometry', '/carla/ego_vehicle/waypoints'],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert 'published 13 messages' in result.stderr  # 12 odometry + the route


def test_replay_cli_reports_a_missing_bag(tmp_path):
    env = dict(os.environ, ROS_DOMAIN_ID=str(100 + os.getpid() % 20))
    result = subprocess.run([sys.executable, '-m', 'pair_drive_ros.cli', 'replay',
                             str(tmp_path / 'nope')], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 1 and 'cannot' in result.stderr
