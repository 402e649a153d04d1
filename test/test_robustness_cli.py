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

"""User errors are one line, outputs are not overwritten without --force, Ctrl-C exits 130."""

import os
from pathlib import Path
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from pair_drive_ros.runtime import safety
from pair_drive_ros.runtime.validate import ParameterRangeError, validate_params

ROOT = Path(__file__).resolve().parents[1]
ENV = dict(os.environ, PYTHONPATH=f'{ROOT}{os.pathsep}{os.environ.get("PYTHONPATH", "")}')


def _one_error_line(err: str, *words) -> None:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert 'Traceback' not in err
    assert any(all(w in ln for w in words) for ln in lines), err


def test_parameters_out_of_range_are_refused_with_one_clear_line():
    from pair_drive_ros.nodes.params import PlannerParams, SimBridgeParams, TrackerParams

    validate_params(PlannerParams())
    validate_params(TrackerParams())
    with pytest.raises(ParameterRangeError, match=r'stop_decel_mps2 = 0.0 is out of range'):
        validate_params(PlannerParams(stop_decel_mps2=0.0))
    with pytest.raises(ParameterRangeError, match=r'rate_hz = 0.0 is out of range \(0, '):
        validate_params(TrackerParams(rate_hz=0.0))
    with pytest.raises(ParameterRangeError, match='max_input_age_s = nan'):
        validate_params(PlannerParams(max_input_age_s=float('nan')))
    with pytest.raises(ParameterRangeError, match="tick_mode = 'fast' must be one of"):
        validate_params(SimBridgeParams(tick_mode='fast'))


def test_stopping_trajectory_is_bounded_whatever_the_speed():
    for v in (1e30, float('inf'), -5.0, float('nan')):
        poses = safety.stopping_trajectory(v, 2.5).poses
        assert np.all(np.isfinite(poses))
        assert poses[-1, 0] <= safety.MAX_STOP_SPEED_MPS ** 2 / (2 * 2.5) + 1e-9
    far = np.array([[1e308, 0.0], [2e308, 0.0]])
    np.testing.assert_allclose(safety.stopping_trajectory(10.0, 2.5, far).poses[:, 1], 0.0)
    np.testing.assert_allclose(safety.standstill_trajectory().poses, 0.0)


def test_a_10000_pose_route_is_resampled_not_refused():
    from pair_drive_ros.core.route import Route
    from pair_drive_ros.runtime.validate import cap_route, LIMITS

    xs = np.linspace(0.0, 5000.0, 10_000)
    capped = cap_route(Route(np.stack([xs, 0.5 * xs], -1)))
    assert capped.points.shape == (LIMITS.max_route_poses, 2)
    np.testing.assert_allclose(capped.points[[0, -1]], [[0.0, 0.0], [5000.0, 2500.0]])
    np.testing.assert_allclose(capped.length, np.hypot(5000.0, 2500.0))
    short = Route(np.stack([xs[:50], xs[:50]], -1))
    assert cap_route(short) is short


def test_discovery_defaults_to_localhost_and_keeps_the_users_choice():
    from pair_drive_ros.apps.run import configure_discovery

    env = {}
    assert configure_discovery(False, env) == 'LOCALHOST'
    assert configure_discovery(True, {}) == 'SUBNET'
    assert configure_discovery(False, {'ROS_AUTOMATIC_DISCOVERY_RANGE': 'OFF'}) == 'OFF'


def test_outputs_are_not_overwritten_without_force(tmp_path, capsys):
    from pair_drive_ros.cli import main

    out = tmp_path / 'eval'
    out.mkdir()
    (out / 'table.md').write_text('precious')
    code = main(['evaluate', '--planner', 'constant_velocity', '--data', str(tmp_path),
                 '--out', str(out)])
    assert code == 1
    _one_error_line(capsys.readouterr().err, 'exists', '--force')
    ckpt = tmp_path / 'model.pt'
    ckpt.write_bytes(b'trained')
    code = main(['train', 'il', '--model', 'transfuser', '--data', str(tmp_path),
                 '--export', str(ckpt)])
    assert code == 1 and ckpt.read_bytes() == b'trained'
    _one_error_line(capsys.readouterr().err, 'export checkpoint', 'exists')
    demo_out = tmp_path / 'demo'
    demo_out.mkdir()
    (demo_out / 'metrics.md').write_text('precious')
    assert main(['demo', '--out', str(demo_out)]) == 1
    assert (demo_out / 'metrics.md').read_text() == 'precious'


def test_export_is_atomic_and_complete(tmp_path):
    torch = pytest.importorskip('torch')
    from pair_drive_ros.training.train_il import export_checkpoint

    src = tmp_path / 'best.pt'
    from pair_drive_ros.policy.checkpoint import CHECKPOINT_SCHEMA_VERSION
    torch.save({'schema_version': CHECKPOINT_SCHEMA_VERSION, 'model': 'transfuser',
                'state_dict': {}, 'optimizer': {'lr': 1}}, src)
    dst = tmp_path / 'models' / 'out.pt'
    export_checkpoint(src, dst)
    assert 'optimizer' not in torch.load(dst, weights_only=False)
    assert [p.name for p in dst.parent.iterdir()] == ['out.pt']  # no temporary left


def test_bad_parameter_of_a_node_process_is_one_line():
    pytest.importorskip('rclpy')
    proc = subprocess.run(
        [sys.executable, '-m', 'pair_drive_ros.nodes.planner_node', '--ros-args', '-p',
         'planner:=constant_velocity', '-p', 'stop_decel_mps2:=0.0'],
        capture_output=True, text=True, env=ENV, timeout=60)
    assert proc.returncode == 1
    _one_error_line(proc.stderr, 'stop_decel_mps2', 'out of range')


def test_ctrl_c_ends_pair_drive_run_with_one_line_and_exit_130():
    pytest.importorskip('rclpy')
    env = dict(ENV, ROS_DOMAIN_ID=str(100 + os.getpid() % 100))
    # pytest started in the background by a non-interactive shell has SIGINT ignored, and a
    # child inherits that at exec unless this process handles it (reset to the default there).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    proc = subprocess.Popen([sys.executable, '-m', 'pair_drive_ros.cli', 'run', '--wall-time',
                             '--planner', 'constant_velocity'], stderr=subprocess.PIPE,
                            text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        err = ''
        while time.monotonic() < deadline:
            line = proc.stderr.readline()
            err += line
            if 'running' in line or not line:
                break
        assert 'running' in err, err
        assert 'DDS discovery range: LOCALHOST' in err
        time.sleep(0.5)
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=30)[1]
    finally:
        signal.signal(signal.SIGINT, previous)
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, rest
    assert 'Traceback' not in rest
    assert rest.strip().splitlines()[-1] == 'pair-drive run: interrupted'


@pytest.mark.parametrize('trainer', ['rl', 'selector', 'sequential'])
def test_trainers_do_not_replace_an_exported_model_without_force(trainer, tmp_path, capsys):
    from pair_drive_ros.cli import main

    model = tmp_path / 'model.pt'
    model.write_bytes(b'a model someone trained')
    assert main(['train', trainer, '--set', f'out={model}']) == 1
    _one_error_line(capsys.readouterr().err, 'exists', '--force')
    assert model.read_bytes() == b'a model someone trained'
