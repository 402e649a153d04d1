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

"""ament_python package setup for pair_drive_ros."""

from glob import glob
import os

from setuptools import find_packages, setup

package_name = 'pair_drive_ros'


def _files(pattern: str) -> list:
    return [f for f in glob(pattern) if os.path.isfile(f)]


setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'test.*', 'benchmarks']),
    data_files=[
        ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
        ('share/' + package_name, ['package.xml']),
        (os.path.join('share', package_name, 'launch'), _files('launch/*.launch.py')),
        (os.path.join('share', package_name, 'config'), _files('config/*')),
        (os.path.join('share', package_name, 'models'), _files('models/*')),
    ],
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='pair_drive_ros maintainers',
    maintainer_email='maintainers@pair-drive-ros.dev',
    description='PaIR-Drive parallel IL + RL planner for ROS 2',
    license='Apache-2.0',
    extras_require={'test': ['pytest']},
    entry_points={
        'console_scripts': [
            'pair-drive = pair_drive_ros.cli:main',
            'perception_node = pair_drive_ros.nodes.perception_node:main',
            'planner_node = pair_drive_ros.nodes.planner_node:main',
            'tracker_node = pair_drive_ros.nodes.tracker_node:main',
            'sim_bridge_node = pair_drive_ros.nodes.sim_bridge_node:main',
            'bag_player = pair_drive_ros.apps.bag_player:main',
        ],
    },
)
