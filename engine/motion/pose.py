"""Head rotation <-> (yaw, pitch, roll), in the avatar's face space.

Face space: x right, y down, z toward the viewer (``engine.avatar.asset``).
``matrix_from_euler(yaw, pitch, roll) = Ry(yaw) @ Rx(pitch) @ Rz(roll)``: roll
about the view axis first, then pitch about x, then yaw about the vertical.
Signs follow the warp renderer (checked by rendering and tracking, see
docs/retargeting.md).
"""
from __future__ import annotations

import numpy as np


def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def matrix_from_euler(yaw: float, pitch: float, roll: float) -> np.ndarray:
    return _ry(yaw) @ _rx(pitch) @ _rz(roll)


def euler_from_matrix(r: np.ndarray) -> tuple[float, float, float]:
    """Inverse of ``matrix_from_euler`` (pitch in [-pi/2, pi/2])."""
    # R = Ry Rx Rz: R[1,2] = -sin(pitch); R[0,2] = cos(p) sin(yaw), R[2,2] = cos(p) cos(yaw);
    # R[1,0] = cos(p) sin(roll), R[1,1] = cos(p) cos(roll)
    pitch = float(np.arcsin(np.clip(-r[1, 2], -1.0, 1.0)))
    yaw = float(np.arctan2(r[0, 2], r[2, 2]))
    roll = float(np.arctan2(r[1, 0], r[1, 1]))
    return yaw, pitch, roll
