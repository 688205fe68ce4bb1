"""Emotion controls as ARKit offsets, shared by the baseline and the model's training.

Each emotion is a set of ARKit weights added at ``intensity`` 1 (scaled linearly below 1).
The learned model is trained with these offsets applied to teacher motion, conditioned on the
emotion class and intensity, so both generators mean the same thing by "happy, 0.6".
"""
from __future__ import annotations

import numpy as np

from engine.motion.space import INDEX, VECTOR_DIM

EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "surprised")

_OFFSETS: dict[str, dict[str, float]] = {
    "neutral": {},
    "happy": {"mouthSmileLeft": 0.55, "mouthSmileRight": 0.55, "cheekSquintLeft": 0.3,
              "cheekSquintRight": 0.3, "eyeSquintLeft": 0.2, "eyeSquintRight": 0.2,
              "mouthDimpleLeft": 0.15, "mouthDimpleRight": 0.15},
    "sad": {"mouthFrownLeft": 0.45, "mouthFrownRight": 0.45, "browInnerUp": 0.5,
            "browDownLeft": 0.1, "browDownRight": 0.1, "mouthPressLeft": 0.15,
            "mouthPressRight": 0.15},
    "angry": {"browDownLeft": 0.6, "browDownRight": 0.6, "noseSneerLeft": 0.3,
              "noseSneerRight": 0.3, "eyeSquintLeft": 0.3, "eyeSquintRight": 0.3,
              "mouthPressLeft": 0.25, "mouthPressRight": 0.25},
    "surprised": {"browInnerUp": 0.6, "browOuterUpLeft": 0.6, "browOuterUpRight": 0.6,
                  "eyeWideLeft": 0.45, "eyeWideRight": 0.45, "jawOpen": 0.08},
}


def emotion_index(name: str) -> int:
    if name not in EMOTIONS:
        raise ValueError(f"unknown emotion {name!r}; expected one of {list(EMOTIONS)}")
    return EMOTIONS.index(name)


def emotion_offset(name: str, intensity: float) -> np.ndarray:
    """(58,) float32 offset vector for one emotion at one intensity in [0, 1]."""
    emotion_index(name)
    if not 0.0 <= float(intensity) <= 1.0:
        raise ValueError(f"emotion intensity must be in [0, 1], got {intensity}")
    v = np.zeros(VECTOR_DIM, np.float32)
    for k, w in _OFFSETS[name].items():
        v[INDEX[k]] = w * float(intensity)
    return v
