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

``StreamingGenerator`` implements that framing once (audio checks, sample counting, look-ahead,
flush padding, segments, reset, and the optional pause gate ``engine.motion.silence``); a
generator subclasses it and supplies its features and frames.

States: the live engine always generates in state "speaking". The speech stage runs the
generator only on the avatar's own speech, so it never hears listening-time audio; the avatar's
life while it listens or idles (blinks, breathing, nods) comes from ``engine.motion.idle``.
``STATES`` stays the model's conditioning layout (its weights depend on the order); "listening"
and "idle" are there for training data and offline use, not for the live engine.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from engine.motion.features import check_audio, flush_padding, frames_ready
from engine.motion.space import VECTOR_DIM


STATES: tuple[str, ...] = ("speaking", "listening", "idle")   # conditioning layout: order is fixed


@dataclass
class MotionControls:
    """What a generator is asked for besides the audio.

    ``state``: "speaking" (the default, and the only state the live engine uses: the generator
    runs on the avatar's own speech; listening/idle life comes from ``engine.motion.idle``);
    "listening" / "idle" condition the model as in its training data (offline use only)."""
    state: str = "speaking"          # speaking | listening | idle (see the docstring)
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


class StreamingGenerator:
    """The framing every ``SpeechMotionGenerator`` shares; subclasses supply the content.

    This class validates and counts the audio of the current segment, works out which frames
    are complete (``features.frames_ready``), pads the end of a segment with silence
    (``features.flush_padding``) and starts the next one. A subclass implements:

    * ``_take(audio)``: update its features with new (checked, float32) audio;
    * ``_emit(k_from, k_to)``: the (k_to - k_from, 58) frames ``k_from..k_to-1`` of the current
      segment (called in order, each frame once, only when its look-ahead has arrived);
    * ``_forget()``: drop feature history no future frame needs (after every push; optional);
    * ``_start_segment()``: clear per-segment features (segment frame 0 = the next sample);
    * ``_reset_state()``: clear everything else (called by ``reset``, before ``_start_segment``).

    ``self._next`` is the next frame to emit in this segment, ``self._segment_start`` the
    frames emitted in earlier segments since ``reset`` (so ``_segment_start + k`` is frame k's
    index since reset); ``self._seed`` the seed of the last ``reset``.
    """

    def __init__(self, fps: int, sample_rate: int, lookahead_samples: int, seed: int = 0,
                 controls: MotionControls | None = None):
        if sample_rate % fps:
            raise ValueError(f"fps {fps} must divide the sample rate {sample_rate}")
        self.fps, self.sample_rate = fps, sample_rate
        self.samples_per_frame = sample_rate // fps
        self.lookahead_samples = int(lookahead_samples)
        self._controls = controls or MotionControls()
        self._seed = int(seed)
        self._gate = None

    def set_silence_gate(self, gate) -> None:
        """Close the lips in pauses (``engine.motion.silence.SilenceGate``; None: off). It sees
        the same audio as the generator and gates the emitted frames."""
        self._gate = gate
        if gate is not None:
            gate.reset()

    # --- contract -------------------------------------------------------------------
    def reset(self, seed: int | None = None) -> None:
        if seed is not None:
            self._seed = int(seed)
        self._segment_start = 0
        self._reset_state()
        if self._gate is not None:
            self._gate.reset()
        self._new_segment()

    def set_controls(self, controls: MotionControls) -> None:
        self._controls = controls.validate()

    def push(self, samples: np.ndarray) -> np.ndarray:
        a = check_audio(samples)
        self._take(a)
        if self._gate is not None:
            self._gate.take(a)
        self._n_samples += len(a)
        ready = frames_ready(self._n_samples, self.samples_per_frame, self.lookahead_samples)
        out = None
        if ready > self._next:
            out = self._emit(self._next, ready)
            if self._gate is not None:
                out = self._gate.apply(out, self._next)
            self._next = ready
        self._forget()
        return out if out is not None else np.zeros((0, VECTOR_DIM), np.float32)

    def flush(self) -> np.ndarray:
        need = flush_padding(self._n_samples, self._next, self.samples_per_frame, self.lookahead_samples)
        out = self.push(np.zeros(need, np.float32)) if need else np.zeros((0, VECTOR_DIM), np.float32)
        self._segment_start += self._next
        self._new_segment()
        return out

    # --- for subclasses -------------------------------------------------------------
    def _new_segment(self) -> None:
        self._n_samples = 0
        self._next = 0
        if self._gate is not None:
            self._gate.start_segment()
        self._start_segment()

    def _take(self, audio: np.ndarray) -> None:
        raise NotImplementedError

    def _emit(self, k_from: int, k_to: int) -> np.ndarray:
        raise NotImplementedError

    def _forget(self) -> None:
        pass

    def _start_segment(self) -> None:
        pass

    def _reset_state(self) -> None:
        pass
