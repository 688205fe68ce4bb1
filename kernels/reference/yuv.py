"""NumPy reference: RGB -> I420 (planar Y, then U, V at half resolution), BT.601 limited range.

Chroma is the mean of each 2x2 block. Width and height must be even. The (H * 3 / 2, W)
buffer holds the three planes back to back (as PyAV's ``yuv420p`` arrays do), so for
heights that are not multiples of 4 the U/V planes do not start on a row boundary.
"""
from __future__ import annotations

import numpy as np

# BT.601 "studio swing" coefficients (Y in 16..235, U/V in 16..240)
Y_COEF = (0.256788, 0.504129, 0.097906)
U_COEF = (-0.148223, -0.290993, 0.439216)
V_COEF = (0.439216, -0.367788, -0.071427)


def rgb_to_yuv420(rgb: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (H * 3 // 2, W) uint8 I420."""
    h, w = rgb.shape[:2]
    f = rgb.astype(np.float64)
    y = f @ np.array(Y_COEF) + 16.0
    blocks = f.reshape(h // 2, 2, w // 2, 2, 3).mean(axis=(1, 3))
    u = blocks @ np.array(U_COEF) + 128.0
    v = blocks @ np.array(V_COEF) + 128.0
    out = np.empty((h * 3 // 2, w), np.uint8)
    flat = out.reshape(-1)          # planes are contiguous: Y (h*w), U (h*w/4), V (h*w/4)
    n, q = h * w, h * w // 4
    flat[:n] = np.clip(np.floor(y + 0.5), 0, 255).reshape(-1)
    flat[n:n + q] = np.clip(np.floor(u + 0.5), 0, 255).reshape(-1)
    flat[n + q:] = np.clip(np.floor(v + 0.5), 0, 255).reshape(-1)
    return out


def planes(i420: np.ndarray, h: int, w: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Views (Y (h, w), U (h/2, w/2), V (h/2, w/2)) into an I420 buffer."""
    flat = i420.reshape(-1)
    n, q = h * w, h * w // 4
    return (flat[:n].reshape(h, w), flat[n:n + q].reshape(h // 2, w // 2),
            flat[n + q:n + 2 * q].reshape(h // 2, w // 2))
