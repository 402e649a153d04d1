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
Embedded simulator: highway-env scenarios, experts, synthetic sensors and scene logs.

Import the sub-modules directly. `logs`, `sensors` and `raster` need numpy only; `hw`, `suite`,
`tracking`, `experts`, `closed_loop` and `generate` import highway-env.
"""
