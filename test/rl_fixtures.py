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

"""Shared test helpers for the PaIR tests: a synthetic SceneSet scored by the real PDM scorer."""

from pathlib import Path
import sys

import numpy as np

from pair_drive_ros.core.features import STATUS_DIM
from pair_drive_ros.policy.backbone import BackboneConfig
from pair_drive_ros.training.rl_data import SceneSet

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scoring_scenes import make_scene, straight_trajectory  # noqa: E402

TINY_BACKBONE = BackboneConfig(channels=(4, 8, 8, 8), d_model=16, num_heads=2, num_agents=2,
                               semantic_channels=4)


class _Arrays:
    """The part of training.data.ILDataset a SceneSet reads: arrays and a length."""

    def __init__(self, n: int, seed: int = 0, lidar_channels: int = 2,
                 status_dim: int = STATUS_DIM) -> None:
        rng = np.random.default_rng(seed)
        self.speeds = rng.uniform(5.0, 15.0, n)
        self.arrays = {
            'lidar_bev': rng.random((n, lidar_channels, 64, 64), dtype=np.float32),
            'camera': rng.random((n, 3, 32, 64), dtype=np.float32),
            'route_raster': rng.random((n, 1, 64, 64), dtype=np.float32),
            'ego_status': np.zeros((n, status_dim), np.float32),
            'trajectory': np.stack([straight_trajectory(v).poses for v in self.speeds]
                                   ).astype(np.float32)}
        self.arrays['ego_status'][:, 1] = 1.0
        self.arrays['ego_status'][:, 4] = self.speeds

    def __len__(self) -> int:
        return len(self.speeds)


class SyntheticSceneSet(SceneSet):
    """Straight 3-lane road scenes (scoring_scenes.make_scene) at different speeds."""

    def __init__(self, n: int = 6, seed: int = 0, cache_file=None, perception=None) -> None:
        # perception: a PerceptionConfig whose LiDAR channels and status entries the arrays have
        sizes = {} if perception is None else {'lidar_channels': perception.lidar_channels,
                                               'status_dim': perception.status_dim}
        super().__init__(_Arrays(n, seed, **sizes), cache_file=cache_file)

    def scene(self, j: int):
        v = float(self.dataset.speeds[self.indices[j]])
        return make_scene(speed=v, expert=straight_trajectory(v), token=f'synthetic{j}')
