"""Layering of speech motion over idle (or webcam) motion, with cross-fades.

The speech generator gives mouth, jaw and speech-driven head/brow motion; the
base layer (idle life or the webcam) gives blinks, breathing, gaze and head
sway. Speech is added on top with a weight that eases in at a segment's start,
eases out at its end (holding the last speech pose while it fades) and drops
fast on an interruption, so there is never a jump and lips stop promptly.

Blinks: a generator that blinks by itself (the learned model does; the baseline
does not) takes the eyelids over while it speaks (cross-fade), so blinks never
come from both layers at once; otherwise idle blinks continue under speech.
"""
from __future__ import annotations

import numpy as np

from engine.motion.space import INDEX, NUM_BLENDSHAPES, VECTOR_DIM

BLINKS = np.array([INDEX["eyeBlinkLeft"], INDEX["eyeBlinkRight"]])
GENERATOR_BLINK = 0.3   # a speech frame with eyelids this closed: the generator blinks by itself


class SpeechBlend:
    def __init__(self, fps: int, fade_in_ms: float, fade_out_ms: float, interrupt_fade_ms: float) -> None:
        self.step_in = 1.0 / max(1.0, fade_in_ms * fps / 1000.0)
        self.step_out = 1.0 / max(1.0, fade_out_ms * fps / 1000.0)
        self.step_cut = 1.0 / max(1.0, interrupt_fade_ms * fps / 1000.0)
        self.weight = 0.0
        self._held = np.zeros(VECTOR_DIM, np.float32)
        self._cut = False
        self.bad_frames = 0
        self.generator_blinks = False

    def interrupt(self) -> None:
        self._cut = True

    def mix(self, base: np.ndarray, speech: np.ndarray | None) -> tuple[np.ndarray, float]:
        """Return (motion vector, speech weight) for one frame."""
        if speech is not None and not np.isfinite(speech).all():
            speech = None    # a broken generator frame: keep the face, drop the bad motion
            self.bad_frames += 1
        if speech is not None:
            self._cut = False
            self._held = speech
            self.weight = min(1.0, self.weight + self.step_in)
        else:
            self.weight = max(0.0, self.weight - (self.step_cut if self._cut else self.step_out))
        if speech is not None and not self.generator_blinks and speech[BLINKS].max() > GENERATOR_BLINK:
            self.generator_blinks = True
        out = base.astype(np.float32).copy()
        if self.weight > 0.0:
            out += self.weight * self._held
            if self.generator_blinks:
                out[BLINKS] = (1.0 - self.weight) * base[BLINKS] + self.weight * self._held[BLINKS]
        out[:NUM_BLENDSHAPES] = np.clip(out[:NUM_BLENDSHAPES], 0.0, 1.0)
        return out, self.weight
