"""CPU fast path (numba): seam smoothing, same arithmetic as ``kernels.reference.seams``."""
from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def _smooth_seams(frame, map_xy, threshold, out):
    h, w = frame.shape[0], frame.shape[1]
    for y in range(h):
        for x in range(w):
            u, v = map_xy[y, x, 0], map_xy[y, x, 1]
            seam = False
            for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
                yy, xx = y + dy, x + dx
                if 0 <= yy < h and 0 <= xx < w:
                    if (abs(float(map_xy[yy, xx, 0]) - float(u)) > threshold
                            or abs(float(map_xy[yy, xx, 1]) - float(v)) > threshold):
                        seam = True
                        break
            if not seam:
                continue
            for c in range(3):
                s = 0
                for dy in range(-1, 2):
                    yy = min(max(y + dy, 0), h - 1)
                    for dx in range(-1, 2):
                        xx = min(max(x + dx, 0), w - 1)
                        s += frame[yy, xx, c]
                out[y, x, c] = np.uint8(np.floor(s / 9.0 + 0.5))
    return out


def smooth_seams(frame: np.ndarray, map_xy: np.ndarray, threshold: float) -> np.ndarray:
    out = frame.copy()
    return _smooth_seams(np.ascontiguousarray(frame), np.ascontiguousarray(map_xy, np.float32),
                         float(threshold), out)
