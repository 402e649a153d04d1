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
Scorer configuration: NAVSIM version behaviours, weights, thresholds and vehicle geometry.

Every threshold carries its unit and the NAVSIM code it follows: "v1" is navsim tag v1.1,
"v2" is navsim main at 0a380a9 (autonomousvision/navsim on GitHub: the scorer is
navsim/planning/simulation/planner/pdm_planner/scoring/pdm_scorer.py, the human filter
navsim/evaluate/pdm_score.py).
"""

from dataclasses import dataclass, field, fields
from enum import IntEnum
from pathlib import Path

NAVSIM_VERSIONS = ('v1', 'v2')


class Metric(IntEnum):
    """Rows of the sub-metric table."""

    NC = 0   # no at-fault collision {0, 0.5, 1}
    DAC = 1  # drivable-area compliance {0, 1}
    DDC = 2  # driving-direction compliance {0, 0.5, 1}
    TLC = 3  # traffic-light compliance {0, 1}; always 1 (no traffic lights in our maps)
    EP = 4   # ego progress [0, 1]
    TTC = 5  # time to collision within bound {0, 1}
    C = 6    # comfort (v1) {0, 1}
    LK = 7   # lane keeping (v2) {0, 1}
    HC = 8   # history comfort (v2) {0, 1}
    EC = 9   # extended (two-frame) comfort (v2) {0, 1}


# Metrics that multiply the score in EPDMS.
EPDMS_MULTIPLIERS = (Metric.NC, Metric.DAC, Metric.DDC, Metric.TLC)
# Metric columns the EPDMS human filter acts on: every column of NAVSIM's per-proposal result
# (navsim/evaluate/pdm_score.py), multipliers and weighted metrics alike. EC is not one: NAVSIM
# adds it after the filter, from two consecutive frames.
HUMAN_FILTER_METRICS = (Metric.NC, Metric.DAC, Metric.DDC, Metric.TLC, Metric.EP, Metric.TTC,
                        Metric.LK, Metric.HC)
PDMS_MULTIPLIERS = (Metric.NC, Metric.DAC)


@dataclass(frozen=True)
class VehicleParams:
    """
    Ego box and bicycle geometry.

    length_m, width_m: box size [m]. rear_axle_to_center_m: distance [m] from the rear axle
    (the bicycle model's reference point) forward to the box centre (the scene's reference
    point). wheelbase_m: [m].
    """

    length_m: float = 5.0
    width_m: float = 2.0
    rear_axle_to_center_m: float = 2.5
    wheelbase_m: float = 5.0

    def __post_init__(self) -> None:
        for name in ('length_m', 'width_m', 'wheelbase_m'):
            if not getattr(self, name) > 0:
                raise ValueError(f'VehicleParams.{name} must be positive, '
                                 f'got {getattr(self, name)}')


# highway-env vehicles: a 5 m x 2 m box whose kinematic bicycle has lr = lf = 2.5 m about the
# box centre (heading rate v sin(beta) / 2.5, tan(beta) = tan(delta) / 2, i.e. ~ v delta / 5 m),
# so the equivalent rear-axle model has its axle 2.5 m behind the centre and a 5 m wheelbase.
HIGHWAY_ENV_VEHICLE = VehicleParams()
# nuPlan's Chrysler Pacifica (get_pacifica_parameters), what NAVSIM scores with.
PACIFICA_VEHICLE = VehicleParams(length_m=5.176, width_m=2.297, rear_axle_to_center_m=1.461,
                                 wheelbase_m=3.089)


@dataclass(frozen=True)
class SimConfig:
    """LQR tracker and kinematic bicycle (navsim batch_lqr.py, batch_kinematic_bicycle.py)."""

    dt_s: float = 0.1                   # discretisation [s] (interval_length of 41 x 0.1 s)
    num_steps: int = 40                 # simulated steps after t = 0
    tracking_horizon: int = 10          # LQR look-ahead [steps]
    q_longitudinal: float = 10.0
    r_longitudinal: float = 1.0
    q_lateral: tuple = (1.0, 10.0, 0.0)  # lateral error, heading error, steering
    r_lateral: float = 1.0
    jerk_penalty: float = 1e-4          # speed-fit regulariser weight
    curvature_rate_penalty: float = 1e-2
    initial_curvature_penalty: float = 1e-10
    stopping_gain: float = 0.5          # P stop controller gain [1/s]
    stopping_velocity_mps: float = 0.2  # [m/s]
    max_steering_rad: float = 1.0471975511965976  # pi / 3
    accel_time_constant_s: float = 0.2
    steering_time_constant_s: float = 0.05
    # NAVSIM's _make_banded_difference_matrix overwrites its first band, so the speed fit damps
    # accelerations ([-I | e_last]) instead of jerk; False uses nuPlan's true difference matrix.
    navsim_banded_matrix: bool = True


@dataclass(frozen=True)
class ScorerConfig:
    """
    Everything the scorer needs besides the scene.

    navsim_version 'v2' (default) or 'v1' selects the behaviours that differ between the two:
    EP formula and multiplier mask, TTC steps checked, removal of agents overlapping the ego at
    step 0, DDC skipping intersection steps.
    """

    navsim_version: str = 'v2'
    vehicle: VehicleParams = field(default_factory=VehicleParams)
    sim: SimConfig = field(default_factory=SimConfig)
    # PDMS (v1) weights
    pdms_ep_weight: float = 5.0
    pdms_ttc_weight: float = 5.0
    pdms_c_weight: float = 2.0
    # EPDMS (v2) weights
    epdms_ep_weight: float = 5.0
    epdms_ttc_weight: float = 5.0
    epdms_lk_weight: float = 2.0
    epdms_hc_weight: float = 2.0
    epdms_ec_weight: float = 2.0
    # thresholds
    ego_stopped_speed_mps: float = 5e-2     # collision type: ego stopped (nuplan collision_utils)
    track_stopped_speed_mps: float = 5e-2   # collision type: track stopped (is_track_stopped)
    ttc_stopped_speed_mps: float = 5e-3     # TTC skipped below this ego speed (v1, v2)
    ttc_future_steps: tuple = (0, 3, 6, 9)  # constant-velocity projections [0.1 s steps] (v1, v2)
    ahead_angle_deg: float = 30.0           # is_agent_ahead tolerance (nuplan idm utils)
    behind_angle_deg: float = 150.0         # is_agent_behind tolerance (nuplan idm utils)
    ddc_horizon_steps: int = 10             # rolling window k-10..k (1.1 s) (v1, v2)
    ddc_compliance_m: float = 2.0           # < 2 m -> 1 (v1, v2)
    ddc_violation_m: float = 6.0            # < 6 m -> 0.5, else 0 (v1, v2)
    progress_threshold_m: float = 5.0       # EP = 1 when the normaliser is <= 5 m (v1, v2)
    lk_deviation_m: float = 0.5             # lane keeping limit [m] (v2, from Hydra-MDP++)
    lk_window_steps: int = 20               # 2.0 s of consecutive deviation (v2)
    ec_thresholds: tuple = (0.7, 0.5, 0.1, 0.1)  # RMS |a| [m/s^2], jerk [m/s^3], yaw rate
    # [rad/s], yaw accel [rad/s^2] (v2)
    ec_frame_offset_steps: int = 5          # consecutive frames 0.5 s apart (v2)
    human_filter: bool = True               # EPDMS human filter, fixed version (navsim 359c7f7)

    def __post_init__(self) -> None:
        if self.navsim_version not in NAVSIM_VERSIONS:
            raise ValueError(f'navsim_version must be one of {NAVSIM_VERSIONS}, '
                             f'got {self.navsim_version!r}')
        if isinstance(self.vehicle, dict):
            object.__setattr__(self, 'vehicle', VehicleParams(**self.vehicle))
        if isinstance(self.sim, dict):
            object.__setattr__(self, 'sim', SimConfig(**self.sim))

    @property
    def is_v2(self) -> bool:
        """Whether v2 behaviours apply."""
        return self.navsim_version == 'v2'

    @property
    def num_states(self) -> int:
        """Return the number of simulated states including t = 0 (41)."""
        return self.sim.num_steps + 1


VEHICLE_PRESETS = {'highway-env': HIGHWAY_ENV_VEHICLE, 'pacifica': PACIFICA_VEHICLE}


def load_config(path: str | Path) -> ScorerConfig:
    """Read a ScorerConfig from YAML (see config/scorer.yaml); unknown keys raise ValueError."""
    import yaml
    data = yaml.safe_load(Path(path).read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f'{path}: expected a mapping of ScorerConfig fields')
    known = {f.name for f in fields(ScorerConfig)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f'{path}: unknown ScorerConfig keys {unknown}')
    vehicle = data.get('vehicle')
    if isinstance(vehicle, str):
        if vehicle not in VEHICLE_PRESETS:
            raise ValueError(f'{path}: vehicle must be one of {sorted(VEHICLE_PRESETS)} or a '
                             f'mapping, got {vehicle!r}')
        data['vehicle'] = VEHICLE_PRESETS[vehicle]
    for key, value in data.items():
        if isinstance(value, list):
            data[key] = tuple(value)
    if isinstance(data.get('sim'), dict):
        data['sim'] = SimConfig(**{k: tuple(v) if isinstance(v, list) else v
                                   for k, v in data['sim'].items()})
    return ScorerConfig(**data)
