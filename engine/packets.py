"""The packet family that flows between the session's stages.

Every packet carries an integer ``pts`` in its own ``time_base`` (a Fraction of seconds) and
the session ``epoch`` it was made in. ``Session.interrupt`` bumps the session's epoch; stages
and transports compare a packet's epoch with the session's and drop (video) or silence
(audio) what is older. A published packet is never modified.

    push_speech ─▶ AudioChunk ┐
    end_segment ─▶ SegmentEnd ┴▶ [speech stage] ─▶ MotionPacket ─▶ [frame clock + render] ─▶ VideoFrame
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np

from engine.audio import MODEL_RATE
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
    """Mono float32 PCM in [-1, 1]; ``pts`` counts samples (time_base = 1/sample_rate).

    Input chunks count from the start of their segment; output chunks (one video frame long,
    inside a ``VideoFrame``) count from the start of the session."""
    samples: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))
    sample_rate: int = MODEL_RATE
    segment: int = 0          # the spoken segment it belongs to (0: none, e.g. silence)
    arrival: float = 0.0      # time.monotonic() when the audio reached the engine

    @property
    def duration(self) -> float:
        return len(self.samples) / self.sample_rate


@dataclass(slots=True)
class SegmentEnd(Packet):
    """End of a spoken segment (an assistant's utterance); ``pts`` = the segment's length in
    input samples (time_base = 1/sample_rate)."""
    segment: int = 0
    sample_rate: int = MODEL_RATE
    arrival: float = 0.0


@dataclass(slots=True)
class MotionPacket(Packet):
    """One video frame of speech: ``pts`` = frame index within its segment (time_base = 1/fps).

    ``motion`` is the generator's 58-float speech motion vector (layered over idle life by the
    frame clock); ``audio`` the exactly one frame of output audio it shows, so audio and the
    frame that shows it leave the pipeline together."""
    motion: np.ndarray = field(default_factory=lambda: np.zeros(58, np.float32))
    audio: AudioChunk = field(default_factory=AudioChunk)
    segment: int = 0
    last: bool = False        # the segment's final frame
    position_s: float = 0.0   # seconds of the segment played once this frame has played


@dataclass(slots=True)
class VideoFrame(Packet):
    """RGB uint8 HxWx3 image; ``pts`` counts video frames (time_base = 1/fps)."""
    image: np.ndarray = field(default_factory=lambda: np.zeros((1, 1, 3), np.uint8))
    audio: AudioChunk | None = None
    motion: MotionFrame | None = None
    repeated: bool = False  # True when this is a repeat of the previous image (deadline miss)

    def silenced(self) -> "VideoFrame":
        """A copy whose audio is silence (same pts and length): how a frame made before an
        interrupt is delivered after it. The frame itself is left as it was published."""
        if self.audio is None:
            return self
        audio = replace(self.audio, samples=np.zeros_like(self.audio.samples))
        return replace(self, audio=audio)


@dataclass(slots=True)
class MotionOutput(Packet):
    """A motion-mode session's output frame (no image): ``pts`` counts video frames
    (time_base = 1/fps); ``motion`` is what a renderer would show at frame ``pts`` and ``audio``
    the exactly one frame of output audio that goes with it (audio pts = pts · samples/frame).
    Transports send ``motion.to_bytes(pts)`` (244 bytes) beside that audio."""
    motion: MotionFrame = field(default_factory=MotionFrame)
    audio: AudioChunk | None = None

    def silenced(self) -> "MotionOutput":
        """A copy with silent audio: how a frame made before an interrupt is delivered after it."""
        if self.audio is None:
            return self
        return replace(self, audio=replace(self.audio, samples=np.zeros_like(self.audio.samples)))
