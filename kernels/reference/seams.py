"""NumPy reference: soften the hard edges where a backward map jumps (layer and fold seams).

A pixel whose map differs from a 4-neighbour's by more than ``threshold`` source pixels
(in x or y) lies on a seam: the mouth or eye opening, a face silhouette folding over
the background. Such pixels get the rounded mean of their 3x3 neighbourhood (image
border replicated); every other pixel is unchanged. A 1-pixel anti-aliasing pass.
"""
from __future__ import annotations

import numpy as np


def seam_mask(map_xy: np.ndarray, threshold: float) -> np.ndarray:
    m = map_xy.astype(np.float64)
    jump = np.zeros(m.shape[:2])
    dx = np.abs(m[:, 1:] - m[:, :-1]).max(-1)
    dy = np.abs(m[1:] - m[:-1]).max(-1)
    jump[:, 1:] = np.maximum(jump[:, 1:], dx)
    jump[:, :-1] = np.maximum(jump[:, :-1], dx)
    jump[1:] = np.maximum(jump[1:], dy)
    jump[:-1] = np.maximum(jump[:-1], dy)
    return jump > threshold


def smooth_seams(frame: np.ndarray, map_xy: np.ndarray, threshold: float) -> np.ndarray:
    """A new (H, W, 3) uint8 frame with seam pixels replaced by their 3x3 mean."""
    mask = seam_mask(map_xy, threshold)
    p = np.pad(frame.astype(np.int64), ((1, 1), (1, 1), (0, 0)), mode="edge")
    h, w = frame.shape[:2]
    box = sum(p[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3))
    mean = np.floor(box / 9.0 + 0.5).astype(np.uint8)
    return np.where(mask[..., None], mean, frame)
