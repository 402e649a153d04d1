"""`ros2 run pair_drive_ros bag_player BAG`: `pair-drive replay` as a package executable.

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
    parser = argparse.ArgumentParser(prog='bag_player', description=__doc__.split('\n')[0])
    replay.add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format='[bag_player] %(message)s')
    return replay.run(parser.parse_args(argv[1:]))


if __name__ == '__main__':
    sys.exit(main())
