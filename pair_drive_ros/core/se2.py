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
SE(2) helpers.

Poses are (..., 3) arrays of x [m], y [m], yaw [rad]; points are (..., 2) arrays of x, y [m].
"""

import numpy as np


def wrap_angle(angle_rad: np.ndarray) -> np.ndarray:
    """Wrap angles to [-pi, pi)."""
    return (np.asarray(angle_rad) + np.pi) % (2.0 * np.pi) - np.pi


def as_poses(poses: np.ndarray, name: str = 'poses') -> np.ndarray:
    """Validate and return (..., 3) float64 poses."""
    arr = np.asarray(poses, dtype=np.float64)
    if arr.ndim < 1 or arr.shape[-1] != 3:
        raise ValueError(f'{name} must have shape (..., 3), got shape {arr.shape}')
    return arr


def rotation(yaw_rad: np.ndarray) -> np.ndarray:
    """Return (..., 2, 2) rotation matrices for the given yaws."""
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    return np.stack([np.stack([c, -s], -1), np.stack([s, c], -1)], -2)


def transform_points(origin: np.ndarray, points_local: np.ndarray) -> np.ndarray:
    """
    Map points from the frame of `origin` (3,) into its parent frame.

    `points_local`: (..., 2). Returns (..., 2).
    """
    origin = as_poses(origin, 'origin')
    pts = np.asarray(points_local, dtype=np.float64)
    c, s = np.cos(origin[..., 2]), np.sin(origin[..., 2])
    x = pts[..., 0] * c - pts[..., 1] * s + origin[..., 0]
    y = pts[..., 0] * s + pts[..., 1] * c + origin[..., 1]
    return np.stack([x, y], -1)


def inverse_transform_points(origin: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Map points from the parent frame into the frame of `origin` (3,). Returns (..., 2)."""
    origin = as_poses(origin, 'origin')
    pts = np.asarray(points, dtype=np.float64)
    dx = pts[..., 0] - origin[..., 0]
    dy = pts[..., 1] - origin[..., 1]
    c, s = np.cos(origin[..., 2]), np.sin(origin[..., 2])
    return np.stack([dx * c + dy * s, -dx * s + dy * c], -1)


def se2_compose(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Compose poses a ∘ b: pose b (in a's frame) expressed in a's parent frame. Broadcasts."""
    a = as_poses(a, 'a')
    b = as_poses(b, 'b')
    xy = transform_points(a, b[..., :2])
    return np.concatenate([xy, wrap_angle(a[..., 2] + b[..., 2])[..., None]], -1)


def se2_inverse(pose: np.ndarray) -> np.ndarray:
    """Inverse pose: the parent frame's origin expressed in the frame of `pose`."""
    pose = as_poses(pose)
    c, s = np.cos(pose[..., 2]), np.sin(pose[..., 2])
    x = -(pose[..., 0] * c + pose[..., 1] * s)
    y = pose[..., 0] * s - pose[..., 1] * c
    return np.stack([x, y, wrap_angle(-pose[..., 2])], -1)


def poses_to_global(origin: np.ndarray, poses_local: np.ndarray) -> np.ndarray:
    """Poses (..., 3) in the frame of `origin` (3,) -> parent frame."""
    return se2_compose(as_poses(origin, 'origin'), poses_local)


def poses_to_local(origin: np.ndarray, poses_global: np.ndarray) -> np.ndarray:
    """Poses (..., 3) in the parent frame -> frame of `origin` (3,)."""
    return se2_compose(se2_inverse(origin), poses_global)


def yaw_to_quaternion(yaw_rad: np.ndarray) -> np.ndarray:
    """Yaw about z -> (..., 4) quaternion x, y, z, w."""
    half = 0.5 * np.asarray(yaw_rad, dtype=np.float64)
    zeros = np.zeros_like(half)
    return np.stack([zeros, zeros, np.sin(half), np.cos(half)], -1)


def quaternion_to_yaw(quaternion_xyzw: np.ndarray) -> np.ndarray:
    """(..., 4) quaternion x, y, z, w -> yaw [rad] (rotation about z; roll and pitch ignored)."""
    q = np.asarray(quaternion_xyzw, dtype=np.float64)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    return np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


def box_corners(poses: np.ndarray, length_m: np.ndarray, width_m: np.ndarray) -> np.ndarray:
    """
    Corners of oriented boxes centred at `poses` (..., 3).

    Returns (..., 4, 2): front-left, front-right, rear-right, rear-left.
    """
    poses = as_poses(poses)
    half_l = 0.5 * np.asarray(length_m, dtype=np.float64)
    half_w = 0.5 * np.asarray(width_m, dtype=np.float64)
    local = np.stack([
        np.stack([half_l, half_w], -1),
        np.stack([half_l, -half_w], -1),
        np.stack([-half_l, -half_w], -1),
        np.stack([-half_l, half_w], -1),
    ], -2)
    local = np.broadcast_to(local, poses.shape[:-1] + (4, 2))
    return transform_points(poses[..., None, :], local)
