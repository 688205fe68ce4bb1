"""Head rotation <-> (yaw, pitch, roll), in the avatar's face space.

The convention is the warp renderer's (``engine.avatar.rig.rotation_matrix``):
face space x right, y down, z toward the viewer; ``R = R_yaw @ R_pitch @ R_roll``;
yaw > 0 turns the nose toward +x (image right), pitch > 0 tilts the nose down
(+y), roll > 0 turns the head clockwise on screen. ``euler_from_matrix`` is its
inverse (pitch in [-pi/2, pi/2]); tests/test_retarget_synthetic.py checks that
``matrix_from_euler`` and the renderer's matrix agree.
"""
from __future__ import annotations

import numpy as np


def matrix_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    cy, sy = np.cos(yaw), np.sin(yaw)
    cp, sp = np.cos(pitch), np.sin(pitch)
    cr, sr = np.cos(roll), np.sin(roll)
    r_yaw = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    r_pitch = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])
    r_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
    return r_yaw @ r_pitch @ r_roll


def euler_from_matrix(r: np.ndarray) -> tuple[float, float, float]:
    """(yaw, pitch, roll) of a rotation ``matrix_from_euler`` made."""
    # R[1,2] = sin(p); R[0,2] = cos(p) sin(y), R[2,2] = cos(p) cos(y);
    # R[1,0] = cos(p) sin(r), R[1,1] = cos(p) cos(r)
    pitch = float(np.arcsin(np.clip(r[1, 2], -1.0, 1.0)))
    yaw = float(np.arctan2(r[0, 2], r[2, 2]))
    roll = float(np.arctan2(r[1, 0], r[1, 1]))
    return yaw, pitch, roll
