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
Latency of the ROS message codecs on CARLA-sized inputs (p50/p95 over repeated calls).

Decodes an 800x600 bgra8 Image (passthrough view, rgb8 view, contiguous rgb8 copy), encodes it,
and decodes a 60,000-point x, y, z, intensity PointCloud2 (structured and (N, 4) float32).
With --write, replaces the '## ROS message codecs' section of docs/RESULTS.md.

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_codecs.py --write
"""

import argparse
import os
import platform
import time

import numpy as np

from pair_drive_ros.ros import (image_to_numpy, numpy_to_image, numpy_to_pointcloud,
                                pointcloud_to_numpy, pointcloud_to_xyzi)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(ROOT, 'docs', 'RESULTS.md')
SECTION = '## ROS message codecs'
COMMAND = 'OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_codecs.py --write'
TARGETS_MS = {'image': 1.0, 'cloud': 3.0}


def timeit(fn, repeat: int) -> tuple[float, float]:
    """Return p50, p95 [ms] of `repeat` calls after a few warm-up calls."""
    for _ in range(5):
        fn()
    times = np.empty(repeat)
    for i in range(repeat):
        t0 = time.perf_counter()
        fn()
        times[i] = time.perf_counter() - t0
    return float(np.percentile(times, 50) * 1e3), float(np.percentile(times, 95) * 1e3)


def carla_image() -> object:
    frame = np.random.default_rng(0).integers(0, 256, (600, 800, 4), dtype=np.uint8)
    return frame, numpy_to_image(frame, 'bgra8')


def carla_cloud() -> object:
    rng = np.random.default_rng(1)
    points = rng.normal(scale=20.0, size=(60_000, 4)).astype(np.float32)
    return numpy_to_pointcloud(points, 'ego_vehicle/lidar', 0.0)


def run(repeat: int) -> list[tuple[str, str, float, float]]:
    frame, image = carla_image()
    cloud = carla_cloud()
    rows = [
        ('image', '800x600 bgra8 -> numpy (passthrough, zero-copy view)',
         *timeit(lambda: image_to_numpy(image), repeat)),
        ('image', "800x600 bgra8 -> rgb8 (image_to_numpy(msg, 'rgb8'), contiguous copy)",
         *timeit(lambda: image_to_numpy(image, 'rgb8'), repeat)),
        ('other', '800x600 bgra8 -> rgb8 as a reversed view ([..., 2::-1], for comparison)',
         *timeit(lambda: image_to_numpy(image)[:, :, 2::-1], repeat)),
        ('other', '800x600 bgra8 numpy -> Image (numpy_to_image)',
         *timeit(lambda: numpy_to_image(frame, 'bgra8'), repeat)),
        ('cloud', '60,000-point x,y,z,intensity -> structured array (pointcloud_to_numpy)',
         *timeit(lambda: pointcloud_to_numpy(cloud), repeat)),
        ('cloud', '60,000-point x,y,z,intensity -> (N, 4) float32 (pointcloud_to_xyzi)',
         *timeit(lambda: pointcloud_to_xyzi(cloud), repeat)),
        ('cloud', '60,000-point cloud, skip_nans=True (pointcloud_to_numpy)',
         *timeit(lambda: pointcloud_to_numpy(cloud, skip_nans=True), repeat)),
    ]
    return rows


def table(rows, repeat: int) -> str:
    lines = [SECTION, '',
             f'Measured with `{COMMAND}` ({repeat} calls each after warm-up; '
             f'{platform.processor() or platform.machine()}, {os.cpu_count()} cores, '
             f'numpy {np.__version__}; load average {os.getloadavg()[0]:.1f} at the end, the '
             'machine being shared). Targets: image decode < 1 ms, cloud decode < 3 ms.', '',
             '| operation | p50 [ms] | p95 [ms] | target |', '|---|---|---|---|']
    for kind, name, p50, p95 in rows:
        target = TARGETS_MS.get(kind)
        verdict = '' if target is None else (f'< {target:g} ms (p50): ' +
                                             ('met' if p50 < target else 'MISSED'))
        lines.append(f'| {name} | {p50:.3f} | {p95:.3f} | {verdict} |')
    lines += ['', 'Passthrough decoding is a strided numpy view of `msg.data` (row padding and '
              'point_step handled by strides), so its cost does not grow with the size; a byte '
              'swap (big-endian data) or a colour conversion (one strided copy per channel into '
              'a contiguous array) costs a pass over the data. Encoding assigns `arr.tobytes()` '
              'to `msg.data`. The p95 of the sub-millisecond copies reflects preemption by other '
              'jobs on this shared 2-core machine (the same 3-channel copy into a preallocated '
              'array shows the same tail at load average ~4), not the codec.', '']
    return '\n'.join(lines)


def write_section(text: str) -> None:
    """Replace (or append) this benchmark's section of docs/RESULTS.md, leaving the rest."""
    old = open(RESULTS).read() if os.path.exists(RESULTS) else '# Results\n'
    start = old.find(SECTION + '\n')
    if start < 0:
        new = old.rstrip('\n') + '\n\n' + text
    else:
        end = old.find('\n## ', start + len(SECTION))
        new = old[:start] + text + ('' if end < 0 else old[end + 1:])
    with open(RESULTS, 'w') as f:
        f.write(new)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    parser.add_argument('--repeat', type=int, default=300)
    parser.add_argument('--write', action='store_true', help='update docs/RESULTS.md')
    args = parser.parse_args()
    rows = run(args.repeat)
    text = table(rows, args.repeat)
    print(text)
    if args.write:
        write_section(text)
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
