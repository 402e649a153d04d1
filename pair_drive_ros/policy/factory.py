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

"""Build any planner by name, with the shipped checkpoints as defaults."""

import logging
from pathlib import Path

from pair_drive_ros.policy.base import AbstractPlanner

LOG = logging.getLogger(__name__)

PLANNERS = ('constant_velocity', 'expert', 'reference', 'transfuser', 'diffusiondrive', 'pair',
            'pair_variants')
PAIR_PLANNERS = ('pair', 'pair_variants')   # the planners with an RL branch and a selector
# The one table of shipped checkpoints (files in models/): every default checkpoint of the
# package, planners, trainers and reports alike, is named here.
DEFAULT_CHECKPOINTS = {
    'transfuser': 'transfuser_lite.pt',                       # IL-A
    'diffusiondrive': 'diffusiondrive_lite.pt',               # IL-B
    'rl_branch': 'pair_rl_branch.pt',                         # PaIR's RL tree branch
    'selector': 'pair_selector.pt',                           # PaIR's selector (all candidates)
    'selector_tree': 'pair_selector_tree.pt',                 # selector of the paper's set
    'sequential_transfuser': 'transfuser_lite_seq_grpo.pt',   # IL-A + sequential GRPO
    'sequential_diffusiondrive': 'diffusiondrive_lite_seq_grpo.pt',
}


def shipped(name: str) -> str:
    """Config default of a shipped checkpoint: 'models/<file>' (resolved like models_dir())."""
    if name not in DEFAULT_CHECKPOINTS:
        raise UnknownPlannerError(f'no shipped checkpoint named {name!r}')
    return f'models/{DEFAULT_CHECKPOINTS[name]}'


class UnknownPlannerError(ValueError):
    """No planner of that name."""


def models_dir() -> Path:
    """Return the shipped models folder: the source tree's models/, else the ament share dir."""
    source = Path(__file__).resolve().parents[2] / 'models'
    if source.is_dir():
        return source
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory('pair_drive_ros')) / 'models'
    except Exception:  # noqa: B902  (ament index missing or package not installed)
        return source


def default_checkpoint(name: str) -> Path:
    """Path of the shipped checkpoint for planner `name` (may not exist yet)."""
    if name not in DEFAULT_CHECKPOINTS:
        raise UnknownPlannerError(f'planner {name!r} has no shipped checkpoint')
    return models_dir() / DEFAULT_CHECKPOINTS[name]


def build_planner(name: str, *, il_checkpoint=None, rl_checkpoint=None,
                  selector_checkpoint=None, device: str = 'cpu', **kwargs) -> AbstractPlanner:
    """
    Return a planner by name (one of PLANNERS).

    il_checkpoint: checkpoint of 'transfuser' / 'diffusiondrive' (default: the shipped one) and
    the IL branch of 'pair' / 'pair_variants'. rl_checkpoint, selector_checkpoint: those two only.
    kwargs go to the planner's constructor.
    """
    if name == 'constant_velocity':
        from pair_drive_ros.policy.baselines import ConstantVelocityPlanner
        return ConstantVelocityPlanner(**kwargs)
    if name == 'expert':
        from pair_drive_ros.policy.baselines import ExpertPlanner
        return ExpertPlanner(**kwargs)
    if name == 'reference':
        from pair_drive_ros.policy.baselines import ReferencePlanner
        return ReferencePlanner(**kwargs)
    if name in ('transfuser', 'diffusiondrive'):
        from pair_drive_ros.policy.il_planner import load_il_planner
        path = il_checkpoint if il_checkpoint is not None else default_checkpoint(name)
        return load_il_planner(path, device=device, expect_model=name, **kwargs)
    if name in PAIR_PLANNERS:
        from pair_drive_ros.policy.ablations import VariantsOnlyPaIR
        from pair_drive_ros.policy.pair import PaIRPlanner

        # pair_variants: PaIR's selector over the IL plan and its variants, no tree leaves
        # (the attribution's no-RL row; fewer closed-loop collisions in docs/RESULTS.md).
        cls = PaIRPlanner if name == 'pair' else VariantsOnlyPaIR
        return cls.from_checkpoints(il_checkpoint=il_checkpoint,
                                    rl_checkpoint=rl_checkpoint,
                                    selector_checkpoint=selector_checkpoint,
                                    device=device, **kwargs)
    raise UnknownPlannerError(f'unknown planner {name!r}; choose one of {PLANNERS}')
