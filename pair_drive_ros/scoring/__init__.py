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
NAVSIM-style PDM scorer (PDMS, EPDMS) and the privileged reference planner.

Pipeline (pure functions): simulate (LQR tracker + kinematic bicycle) -> sub-metrics ->
aggregation. See docs/RESULTS.md "PDM scorer" for deviations from NAVSIM.
"""

from pair_drive_ros.scoring.config import (HIGHWAY_ENV_VEHICLE, load_config, Metric,
                                           PACIFICA_VEHICLE, ScorerConfig, SimConfig,
                                           VehicleParams)
from pair_drive_ros.scoring.metrics import prepare_scene, PreparedScene
from pair_drive_ros.scoring.reference import (constant_velocity_trajectory, idm_proposals,
                                              reference_plan, reference_progress)
from pair_drive_ros.scoring.scorer import (aggregate_epdms, aggregate_pdms, human_filter_mask,
                                           score_candidates, score_scenes, ScoreTable)
from pair_drive_ros.scoring.simulation import initial_state, simulate, StateIndex

__all__ = [
    'HIGHWAY_ENV_VEHICLE', 'Metric', 'PACIFICA_VEHICLE', 'PreparedScene', 'ScoreTable',
    'ScorerConfig', 'SimConfig', 'StateIndex', 'VehicleParams', 'aggregate_epdms',
    'aggregate_pdms', 'constant_velocity_trajectory', 'human_filter_mask', 'idm_proposals',
    'initial_state', 'load_config',
    'prepare_scene', 'reference_plan', 'reference_progress', 'score_candidates', 'score_scenes',
    'simulate',
]
