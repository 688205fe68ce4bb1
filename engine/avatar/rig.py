"""Face-space normalization and head-pose math shared by the rig and the renderer.

Head rotation (``MotionFrame.head_rotation`` = yaw, pitch, roll in radians), in
face space (x right, y down, z toward the viewer):

* yaw   > 0 turns the nose toward +x (image right, the subject's left);
* pitch > 0 tilts the nose down (+y), the face looks down;
* roll  > 0 turns the head clockwise on screen (+x toward +y).

``R = R_yaw @ R_pitch @ R_roll`` rotates about the avatar's ``head_pivot``.
Head translation is in inter-ocular units: x, y shift on screen; z toward the
viewer scales by ``CAMERA_DISTANCE / (CAMERA_DISTANCE - z)`` (weak perspective).
"""
from __future__ import annotations

import numpy as np

from engine.motion.pose import matrix_from_euler

CAMERA_DISTANCE = 8.0  # inter-ocular units (~50 cm) for the weak-perspective scale


def rotation_matrix(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """float32 head rotation (yaw about y, then pitch about x, then roll about z); the one
    convention, shared with the retargeter: ``engine.motion.pose.matrix_from_euler``."""
    return matrix_from_euler(yaw, pitch, roll).astype(np.float32)


def apply_pose(points: np.ndarray, rotation: np.ndarray, translation: np.ndarray,
               pivot: np.ndarray) -> np.ndarray:
    """Rigidly move face-space ``points`` (N, 3) by a head pose; z scales x, y (weak persp.)."""
    p = (points - pivot) @ rotation.T + pivot
    tx, ty, tz = (float(v) for v in translation)
    scale = CAMERA_DISTANCE / max(CAMERA_DISTANCE - tz, 1e-3)
    p[:, :2] *= scale
    p[:, 0] += tx
    p[:, 1] += ty
    return p


def face_frame(landmarks: np.ndarray) -> tuple[np.ndarray, float, float, float]:
    """(origin_xy, inter-ocular pixels, roll radians, origin_z) of a landmark set in pixels."""
    right, left = landmarks[468], landmarks[473]
    origin = (right[:2] + left[:2]) / 2
    d = left[:2] - right[:2]
    iod = float(np.hypot(*d))
    roll = float(np.arctan2(d[1], d[0]))
    return origin.astype(np.float32), iod, roll, float((right[2] + left[2]) / 2)


def to_face_space(landmarks: np.ndarray, origin: np.ndarray, iod: float, roll: float,
                  z0: float) -> np.ndarray:
    """Image-pixel landmarks (N, 3) -> normalized face space (N, 3)."""
    c, s = np.cos(roll), np.sin(roll)
    xy = (landmarks[:, :2] - origin) / iod
    x = c * xy[:, 0] + s * xy[:, 1]
    y = -s * xy[:, 0] + c * xy[:, 1]
    z = -(landmarks[:, 2] - z0) / iod
    return np.stack([x, y, z], 1).astype(np.float32)
