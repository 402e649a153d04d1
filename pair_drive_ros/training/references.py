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

"""Training references for the RL branch and the selector: perturbed IL plans."""

import numpy as np
import torch


def perturb_reference(reference: torch.Tensor, rng: np.random.Generator, fraction: float,
                      speed: float, lateral_m: float, jitter_m: float = 0.0) -> torch.Tensor:
    """
    Trajectories (B, 8, 3), a random `fraction` of them scaled along time and shifted sideways.

    Scale U(1 - speed, 1 + speed) on xy; lateral shift ramping up to U(-lateral_m, lateral_m);
    with jitter_m > 0 also N(0, jitter_m) noise on every waypoint's xy (an unsmooth plan);
    headings recomputed from the new path (finite differences), so the result is consistent.
    """
    b, n = reference.shape[:2]
    use = torch.as_tensor(rng.random(b) < fraction)
    scale = torch.as_tensor(rng.uniform(1 - speed, 1 + speed, b), dtype=reference.dtype)
    lateral = torch.as_tensor(rng.uniform(-lateral_m, lateral_m, b), dtype=reference.dtype)
    ramp = torch.linspace(1.0 / n, 1.0, n, dtype=reference.dtype)
    out = reference.clone()
    out[..., :2] = out[..., :2] * scale[:, None, None]
    out[..., 1] = out[..., 1] + lateral[:, None] * ramp
    if jitter_m > 0:
        noise = rng.normal(0.0, jitter_m, tuple(out[..., :2].shape))
        out[..., :2] = out[..., :2] + torch.as_tensor(noise, dtype=reference.dtype)
    xy = torch.cat([torch.zeros_like(out[:, :1, :2]), out[..., :2]], 1)
    d = xy[:, 1:] - xy[:, :-1]
    moving = d.norm(dim=-1) > 0.05
    out[..., 2] = torch.where(moving, torch.atan2(d[..., 1], d[..., 0]), reference[..., 2])
    return torch.where(use[:, None, None], out, reference)
