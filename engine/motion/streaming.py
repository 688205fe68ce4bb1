"""The streaming speech-to-motion contract shared by the learned model and the baseline.

Audio is mono float32 at ``sample_rate`` (16 kHz). Video frame ``k`` shows audio
samples ``[k*spf, (k+1)*spf)`` with ``spf = sample_rate // fps``. A generator
emits frame ``k`` once it has seen samples up to ``(k+1)*spf + lookahead_samples``
(its look-ahead), so ``push`` returns zero or more new frames and ``flush``
(end of a segment: the future is silence) returns the rest.

Frames are motion vectors (``engine.motion.space.VECTOR_DIM`` = 58 floats:
52 ARKit weights, then yaw/pitch/roll, then translation). A generator produces
speech motion (mouth, jaw, speech-driven head and brows); idle life (blinks,
breathing) is layered by ``engine.motion.idle``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


STATES: tuple[str, ...] = ("speaking", "listening", "idle")


@dataclass
class MotionControls:
    state: str = "speaking"          # speaking | listening | idle
    emotion: str = "neutral"
    emotion_intensity: float = 0.0
    head_motion_scale: float = 1.0
    blink_rate_per_min: float = 17.0

    def validate(self) -> "MotionControls":
        """Raise ValueError naming the first field out of range; return self."""
        from engine.motion.emotion import emotion_offset
        if self.state not in STATES:
            raise ValueError(f"unknown state {self.state!r}; expected one of {list(STATES)}")
        emotion_offset(self.emotion, self.emotion_intensity)   # validates both
        if not 0.0 <= self.head_motion_scale <= 10.0:
            raise ValueError(f"head_motion_scale out of range: {self.head_motion_scale}")
        if not 0.0 <= self.blink_rate_per_min <= 120.0:
            raise ValueError(f"blink_rate_per_min out of range: {self.blink_rate_per_min}")
        return self


@runtime_checkable
class SpeechMotionGenerator(Protocol):
    fps: int
    sample_rate: int
    lookahead_samples: int

    def reset(self, seed: int | None = None) -> None:
        """Forget all audio and state (new segment or after an interrupt)."""
        ...

    def set_controls(self, controls: MotionControls) -> None:
        ...

    def push(self, samples: np.ndarray) -> np.ndarray:
        """Feed audio; return (n, 58) float32 motion vectors for newly complete frames."""
        ...

    def flush(self) -> np.ndarray:
        """End of segment: treat the future as silence; return the remaining frames."""
        ...
