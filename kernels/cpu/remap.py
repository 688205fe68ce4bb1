"""CPU fast path: bilinear remap with OpenCV (SIMD, fixed-point 1/32-pixel weights).

Matches ``kernels.reference.remap`` to within a few levels (OpenCV quantizes the
sub-pixel fraction to 1/32); integer coordinates reproduce the source exactly.
"""
from __future__ import annotations

import cv2
import numpy as np


def remap_bilinear(src: np.ndarray, map_xy: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return cv2.remap(src, map_xy, None, cv2.INTER_LINEAR, dst=out, borderMode=cv2.BORDER_REPLICATE)
