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
`ros2 run pair_drive_ros bag_player BAG`: `pair-drive replay` as a package executable.

What bag_replay.launch.py starts where rosbag2 is not installed (a colcon install puts it in
lib/pair_drive_ros/, where `ros2 run` and launch_ros find it). ROS arguments (`--ros-args ...`)
are accepted and left to rclpy.
"""

import argparse
import logging
import sys

from pair_drive_ros.apps import replay


def main(args: list | None = None) -> int:
    from rclpy.utilities import remove_ros_args

    argv = remove_ros_args(args=sys.argv if args is None else ['bag_player'] + list(args))
    parser = argparse.ArgumentParser(prog='bag_player',
                                     description=__doc__.strip().splitlines()[0])
    replay.add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format='[bag_player] %(message)s')
    return replay.run(parser.parse_args(argv[1:]))


if __name__ == '__main__':
    sys.exit(main())
