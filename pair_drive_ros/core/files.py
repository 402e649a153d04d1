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
Atomic file writes: a reader sees the old file or the whole new one, never a half-written one.

Readers are a planner loading a checkpoint, a trainer reading a cache, a resumed run reading a
manifest.

The data is written to a temporary file of this process's own in the target's folder (the same
file system, so the rename is atomic) and renamed over the target. Two processes writing the
same target at once each write a whole file and the last rename wins.
"""

from contextlib import contextmanager
import os
from pathlib import Path
import tempfile
from typing import Iterator


@contextmanager
def atomic_path(path: str | Path, suffix: str = '.tmp') -> Iterator[Path]:
    """
    Yield a temporary path next to `path`; rename it over `path` when the block succeeds.

    suffix: the temporary name's ending (np.savez appends '.npz' to a name without it, so pass
    '.tmp.npz' there). The parent folder is created; on an exception the temporary file is
    removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix=suffix)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write text to path atomically; return path."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)
