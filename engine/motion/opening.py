"""The lip opening of ARKit weights: the one convention the teacher, the model's loss, the
evaluation and the avatar's mouth all use.

ARKit's neutral has closed lips; the jaw opens them, the lip seal (mouthClose) and press close
them; the lips' own openers part them less than the jaw does, and rounding differs by shape:
mouthFunnel parts the lips (a trumpet), mouthPucker narrows the gap (a kiss). L/R pairs count
by their mean.
"""
from __future__ import annotations

import numpy as np

from engine.motion.space import INDEX

OPENING_TERMS = {"jawOpen": 1.0, "mouthClose": -1.0, "mouthPress": -0.2, "mouthLowerDown": 0.3,
                 "mouthUpperUp": 0.3, "mouthFunnel": 0.25, "mouthPucker": -0.15}


def opening_term(motion: np.ndarray, name: str) -> np.ndarray:
    """One term's weight in (..., >=52) motion (the mean of an L/R pair)."""
    if name in INDEX:
        return motion[..., INDEX[name]]
    return 0.5 * (motion[..., INDEX[name + "Left"]] + motion[..., INDEX[name + "Right"]])


def mouth_opening(motion: np.ndarray) -> np.ndarray:
    """Rig-free lip opening (weight units) of (..., >=52) motion: sum of ``OPENING_TERMS``, >= 0."""
    return np.maximum(sum(w * opening_term(motion, n) for n, w in OPENING_TERMS.items()), 0.0)
