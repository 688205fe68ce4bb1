"""NumPy reference: bilinear sampling of a uint8 image through a backward map.

``out[y, x] = bilinear(src, map[y, x])`` with source pixel centres at integer
coordinates and coordinates clamped to the image (border replicate); rounded to
the nearest uint8.
"""
from __future__ import annotations

import numpy as np


def remap_bilinear(src: np.ndarray, map_xy: np.ndarray) -> np.ndarray:
    h, w = src.shape[:2]
    x = np.clip(map_xy[..., 0].astype(np.float64), 0, w - 1)
    y = np.clip(map_xy[..., 1].astype(np.float64), 0, h - 1)
    xi, yi = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = (x - xi)[..., None], (y - yi)[..., None]
    x1, y1 = np.minimum(xi + 1, w - 1), np.minimum(yi + 1, h - 1)
    s = src.astype(np.float64)
    top = s[yi, xi] * (1 - fx) + s[yi, x1] * fx
    bot = s[y1, xi] * (1 - fx) + s[y1, x1] * fx
    out = top * (1 - fy) + bot * fy
    return np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
