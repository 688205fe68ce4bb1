"""Energy voice-activity detection for the user's microphone.

Frames of ``frame_ms`` are voiced when their RMS level is above
``threshold_db`` (dBFS); activity starts after ``min_speech_ms`` of voiced
frames (clicks do not count) and ends ``hangover_ms`` after the last voiced
frame. Good enough to drive listening behaviour and echo-mode segments; it is
not a speech/noise classifier.
"""
from __future__ import annotations

import numpy as np


class VoiceActivityDetector:
    def __init__(self, sample_rate: int, threshold_db: float = -45.0, hangover_ms: int = 300,
                 min_speech_ms: int = 40, frame_ms: int = 20) -> None:
        self.sample_rate = sample_rate
        self.threshold_db = threshold_db
        self.frame_len = max(1, sample_rate * frame_ms // 1000)
        self.hangover_frames = max(0, hangover_ms // frame_ms)
        self.min_speech_frames = max(1, min_speech_ms // frame_ms)
        self.reset()

    def reset(self) -> None:
        self._pending = np.zeros(0, np.float32)
        self._voiced_run = 0
        self._since_voiced = 10**9
        self.active = False
        self.level_db = -120.0

    def push(self, samples: np.ndarray) -> list[tuple[int, bool]]:
        """Feed mono float PCM; return ``(sample_offset, active)`` for every change of
        state, offset counted from the start of this call's samples."""
        x = np.concatenate([self._pending, np.asarray(samples, np.float32)])
        n_frames = len(x) // self.frame_len
        changes: list[tuple[int, bool]] = []
        base = -len(self._pending)
        for i in range(n_frames):
            f = x[i * self.frame_len:(i + 1) * self.frame_len]
            rms = float(np.sqrt(np.mean(f.astype(np.float64) ** 2)) + 1e-12)
            self.level_db = 20.0 * np.log10(rms)
            if self.level_db > self.threshold_db:
                self._voiced_run += 1
                self._since_voiced = 0
            else:
                self._voiced_run = 0
                self._since_voiced += 1
            if not self.active and self._voiced_run >= self.min_speech_frames:
                self.active = True
                changes.append((base + (i + 1 - self.min_speech_frames) * self.frame_len, True))
            elif self.active and self._since_voiced > self.hangover_frames:
                self.active = False
                changes.append((base + (i + 1) * self.frame_len, False))
        self._pending = x[n_frames * self.frame_len:].copy()
        return changes
