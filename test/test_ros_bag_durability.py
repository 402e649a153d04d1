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

"""A recording killed with SIGKILL is readable afterwards (flushed messages kept)."""

import os
from pathlib import Path
import signal
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip('rosbags')
pytest.importorskip('std_msgs.msg')

ROOT = Path(__file__).resolve().parents[1]

WRITER = textwrap.dedent("""
    import sys, time
    from std_msgs.msg import String
    from pair_drive_ros import ros
    with ros.BagWriter(sys.argv[1]) as bag:
        bag.write('/route', String(data='latched'), 1, latched=True)
        for k in range(1, 100000):
            bag.write('/chatter', String(data=f'msg {k}'), 1000 + k)
            if k == 200:
                bag.flush()
                print('flushed', flush=True)
            if k > 200:
                time.sleep(0.001)
""")


def test_kill_9_while_recording_leaves_a_readable_bag(tmp_path):
    from pair_drive_ros import ros

    bag = tmp_path / 'rec'
    env = dict(os.environ, PYTHONPATH=f'{ROOT}{os.pathsep}{os.environ.get("PYTHONPATH", "")}')
    proc = subprocess.Popen([sys.executable, '-c', WRITER, str(bag)], stdout=subprocess.PIPE,
                            env=env, text=True)
    try:
        assert proc.stdout.readline().strip() == 'flushed'
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert not (bag / 'metadata.yaml').exists()
    topics = ros.bag_topics(bag)  # recovers on open
    assert topics == {'/route': 'std_msgs/msg/String', '/chatter': 'std_msgs/msg/String'}
    msgs = list(ros.read_bag(bag, ['/chatter']))
    assert len(msgs) >= 200
    assert [m.data for _, _, m in msgs[:200]] == [f'msg {k}' for k in range(1, 201)]
    assert [t for _, t, _ in msgs[:3]] == [1001, 1002, 1003]
    assert (bag / 'metadata.yaml').exists() and list(bag.glob('*.mcap.damaged'))
    # The route stays latched (TRANSIENT_LOCAL) in the rebuilt bag.
    from pair_drive_ros.apps.replay import latched_topics
    assert '/route' in latched_topics(bag)
    assert ros.recover_bag(bag) == -1  # a readable bag is left alone


def test_recover_rejects_a_folder_without_a_bag(tmp_path):
    from pair_drive_ros import ros

    (tmp_path / 'x.mcap').write_bytes(b'not an mcap')
    with pytest.raises(ros.BagError, match='not an MCAP'):
        ros.recover_bag(tmp_path)
