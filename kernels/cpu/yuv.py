"""CPU fast path (numba): RGB -> I420, same arithmetic as ``kernels.reference.yuv``."""
from __future__ import annotations

import numba
import numpy as np

from kernels.reference.yuv import U_COEF, V_COEF, Y_COEF


@numba.njit(cache=True, nogil=True)
def _rgb_to_yuv420(rgb, out, yc, uc, vc):
    h, w = rgb.shape[0], rgb.shape[1]
    hw = w // 2
    n, q = h * w, (h // 2) * hw
    for y in range(h):
        for x in range(w):
            r, g, b = float(rgb[y, x, 0]), float(rgb[y, x, 1]), float(rgb[y, x, 2])
            out[y * w + x] = min(max(np.floor(yc[0] * r + yc[1] * g + yc[2] * b + 16.0 + 0.5), 0.0), 255.0)
    for by in range(h // 2):
        for bx in range(hw):
            r = g = b = 0.0
            for dy in range(2):
                for dx in range(2):
                    r += float(rgb[2 * by + dy, 2 * bx + dx, 0])
                    g += float(rgb[2 * by + dy, 2 * bx + dx, 1])
                    b += float(rgb[2 * by + dy, 2 * bx + dx, 2])
            r, g, b = r / 4.0, g / 4.0, b / 4.0
            k = by * hw + bx
            u = uc[0] * r + uc[1] * g + uc[2] * b + 128.0
            v = vc[0] * r + vc[1] * g + vc[2] * b + 128.0
            out[n + k] = min(max(np.floor(u + 0.5), 0.0), 255.0)
            out[n + q + k] = min(max(np.floor(v + 0.5), 0.0), 255.0)
    return out


def rgb_to_yuv420(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    out = np.empty((h * 3 // 2, w), np.uint8)
    _rgb_to_yuv420(np.ascontiguousarray(rgb), out.reshape(-1), np.array(Y_COEF), np.array(U_COEF),
                   np.array(V_COEF))
    return out
