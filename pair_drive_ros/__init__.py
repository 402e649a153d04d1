"""pair_drive_ros: PaIR-Drive (parallel imitation + reinforcement learning) planning for ROS 2."""

__version__ = '0.1.0'
