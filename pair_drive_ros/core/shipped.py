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
Where the package's shipped files (config/, models/, launch/) are, however it was installed.

One resolver for every default path. Lookup order:

1. the ament share directory (`colcon build`, plain or `--symlink-install`, and a ROS
   distribution package): found through ament_index_python, imported lazily so that the
   ROS-free rooms import without ROS;
2. the source tree (a checkout, `pip install -e .`): the folder above the Python package;
3. `<sys.prefix>/share/pair_drive_ros` (a plain `pip install .`, which installs setup.py's
   data_files there but registers nothing in an ament index that is not on AMENT_PREFIX_PATH).

A plain colcon install puts the Python package in site-packages, where the source-tree guess
(`site-packages/config/...`) does not exist; that is why the share directory comes first.
"""

import functools
from pathlib import Path
import sys

PACKAGE = 'pair_drive_ros'
SHIPPED_DIRS = ('config', 'models', 'launch')


class ShippedFileError(FileNotFoundError):
    """A shipped file is in none of the places the package can be installed to."""


@functools.lru_cache(maxsize=1)
def _ament_share() -> Path | None:
    try:
        from ament_index_python.packages import get_package_share_directory
    except ImportError:
        return None
    try:
        return Path(get_package_share_directory(PACKAGE))
    except Exception:  # noqa: B902  (AMENT_PREFIX_PATH unset, or the package not in the index)
        return None


def share_roots() -> list[Path]:
    """Candidate roots holding config/, models/ and launch/, in lookup order."""
    roots = []
    share = _ament_share()
    if share is not None:
        roots.append(share)
    roots.append(Path(__file__).resolve().parents[2])
    roots.append(Path(sys.prefix) / 'share' / PACKAGE)
    return roots


def shipped_path(*parts: str) -> Path:
    """
    Return the first existing `root/parts` of share_roots (a file or a folder).

    Raises ShippedFileError naming every place looked at when none exists.
    """
    if not parts:
        raise ValueError('shipped_path needs a relative path')
    looked = []
    for root in share_roots():
        candidate = root.joinpath(*parts)
        if candidate.exists():
            return candidate
        looked.append(str(candidate))
    raise ShippedFileError(f'{"/".join(parts)} is not installed; looked at: '
                           + ', '.join(looked))


def shipped_default(*parts: str) -> Path:
    """
    Like shipped_path, but return the source-tree path when nothing exists.

    For module-level defaults (a missing file then fails where it is read, with its path).
    """
    try:
        return shipped_path(*parts)
    except ShippedFileError:
        return Path(__file__).resolve().parents[2].joinpath(*parts)
