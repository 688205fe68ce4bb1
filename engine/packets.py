"""The one packet family that flows between pipeline stages.

Every packet carries an integer ``pts`` in its own ``time_base`` (a Fraction of
seconds) and the session ``epoch`` it belongs to. ``interrupt`` bumps the
session epoch; stages drop packets whose epoch is older than the session's.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from engine.motion.space import MotionFrame


@dataclass(slots=True)
class Packet:
    pts: int
    time_base: Fraction
    epoch: int = 0

    @property
    def time(self) -> float:
        """Presentation time in seconds."""
        return float(self.pts * self.time_base)


@dataclass(slots=True)
class AudioChunk(Packet):
    """Mono float32 PCM in [-1, 1]; ``pts`` counts samples (time_base = 1/sample_rate)."""
    samples: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    sample_rate: int = 16000

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(slots=True)
class MotionPacket(Packet):
    """One video frame's motion; ``pts`` counts video frames (time_base = 1/fps).

    ``audio`` is the speech audio this frame shows (re-timed, one video frame long),
    so audio and the frames that show it leave the pipeline together.
    """
    motion: MotionFrame = field(default_factory=MotionFrame)
    audio: AudioChunk | None = None
    speaking: bool = False


@dataclass(slots=True)
class VideoFrame(Packet):
    """RGB uint8 HxWx3 image; ``pts`` counts video frames (time_base = 1/fps)."""
    image: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 3), np.uint8))
    audio: AudioChunk | None = None
    motion: MotionFrame | None = None
    repeated: bool = False  # True when this is a repeat of the previous image (deadline miss)


@dataclass(slots=True)
class SegmentEnd(Packet):
    """End of a spoken segment (an assistant's utterance); pts in the input audio's samples."""
    segment_id: int = 0


@dataclass(slots=True)
class Control(Packet):
    """Out-of-band control (state hints, etc.); jumps ahead of media in channels."""
    kind: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
