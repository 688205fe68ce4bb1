"""Closed lips in the pauses of speech: a gate on the mouth's articulation.

Real mouths close (or settle at rest) between phrases; a generator that has learned soft
rounding and slightly parted lips leaves them ajar through every pause (on the real test
clips the rendered lips were closed in 44 % of pause frames). The gate watches the audio a
generator is given and, for a frame whose neighbourhood (``back_ms`` before its instant to
``ahead_ms`` after it, within the generator's look-ahead) is all silence, eases the
articulation weights (jaw, lip opening, rounding, presses) to zero: the avatar's neutral,
closed-lip rest. Expression (smiles, brows), head pose and idle life are left alone.

Silence is relative to the speaker: 10 ms blocks in dB against two followers, a speech level
(peak follower that decays ``level_decay_db_s``) and a noise floor (minimum follower that
rises ``floor_rise_db_s``); a block is silent below ``floor + threshold * (level - floor)``,
and nothing is silent until the speech rose ``min_contrast_db`` above the floor (a steady
noise or hum is not a pause). Blocks below ``DIGITAL_SILENCE_DB`` (synthesized pauses, the
silence a segment's end is padded with) are silent and leave both followers alone. The gate closes over ``close_frames`` frames and opens at once
(the look-ahead already opens the lips before the sound).
"""
from __future__ import annotations

import numpy as np

from engine.motion.space import INDEX

BLOCK_S = 0.010
DIGITAL_SILENCE_DB = -70.0
GATED = tuple(INDEX[n] for n in (
    "jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthUpperUpLeft", "mouthUpperUpRight",
    "mouthLowerDownLeft", "mouthLowerDownRight", "mouthRollLower", "mouthRollUpper",
    "mouthPressLeft", "mouthPressRight", "mouthShrugLower", "mouthShrugUpper"))


class SilenceGate:
    def __init__(self, fps: int, sample_rate: int, available_ahead_s: float, *, back_ms: float = 100.0,
                 ahead_ms: float = 60.0, threshold: float = 0.3, min_contrast_db: float = 15.0,
                 level_decay_db_s: float = 3.0, floor_rise_db_s: float = 1.0, close_frames: int = 2):
        self.fps, self.block = fps, int(round(BLOCK_S * sample_rate))
        self.back = int(round(back_ms / 1000 / BLOCK_S))
        self.ahead = int(round(min(ahead_ms / 1000, available_ahead_s) / BLOCK_S))
        self.threshold, self.min_contrast = threshold, min_contrast_db
        self.decay, self.rise = level_decay_db_s * BLOCK_S, floor_rise_db_s * BLOCK_S
        self.step = 1.0 / max(close_frames, 1)
        self.blocks_per_frame = 1 / (fps * BLOCK_S)
        self.reset()

    def reset(self) -> None:
        self.level = self.floor = None
        self.gain = 1.0
        self.start_segment()

    def start_segment(self) -> None:
        self._pending = np.zeros(0, np.float32)
        self._silent: list[bool] = []

    def take(self, audio: np.ndarray) -> None:
        """Audio of the current segment, in order (the same samples the generator gets)."""
        a = np.concatenate([self._pending, audio])
        n = len(a) // self.block
        self._pending = a[n * self.block:]
        if not n:
            return
        db = 10 * np.log10(np.mean(a[:n * self.block].reshape(n, self.block).astype(np.float64) ** 2, 1) + 1e-10)
        for d in db:
            if d < DIGITAL_SILENCE_DB:
                self._silent.append(True)
                continue
            self.level = d if self.level is None else max(d, self.level - self.decay)
            self.floor = d if self.floor is None else min(d, self.floor + self.rise)
            contrast = self.level - self.floor
            self._silent.append(contrast >= self.min_contrast and d < self.floor + self.threshold * contrast)

    def apply(self, frames: np.ndarray, k_from: int) -> np.ndarray:
        """Gate segment frames ``k_from ...`` (frame k shows the instant k / fps)."""
        if not len(frames):
            return frames
        out = frames.copy()
        for i in range(len(frames)):
            c = int(round((k_from + i) * self.blocks_per_frame))
            window = self._silent[max(c - self.back, 0): c + self.ahead + 1]
            silent = c + self.ahead < len(self._silent) and all(window)
            self.gain = max(self.gain - self.step, 0.0) if silent else 1.0
            if self.gain < 1.0:
                out[i, list(GATED)] *= self.gain
        return out
