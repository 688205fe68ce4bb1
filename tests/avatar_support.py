"""Checks shared by the framework integration tests (not a test module): the speech audio an
adapter hands out is the TTS audio re-timed to the video."""
from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

from engine.audio.pcm import float_to_s16, s16_to_float
from engine.config import load_config

SAMPLES_PER_FRAME = 1920   # 48 kHz / 25 fps
SILENT_RMS = 10 ** ((load_config().audio.vad_threshold_db - 5.0) / 20)   # the session's "silent frame"


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """int16 mono samples and rate of a 16-bit wav."""
    with wave.open(str(path), "rb") as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2").copy(), w.getframerate()


def expected_48k(path) -> np.ndarray:
    pcm, rate = read_wav(path)
    return float_to_s16(resample_poly(s16_to_float(pcm), 48000 // 8000, rate // 8000).astype(np.float32))


def assert_retimed(got: np.ndarray, want: np.ndarray) -> None:
    """``got`` is ``want`` (the TTS audio at 48 kHz) cut into frames, in order, every frame with
    sound present and equal (±2 LSB); only silent frames may be missing: the session's live
    catch-up skips silent frames of a segment pushed faster than real time (docs/streaming.md)."""
    n = SAMPLES_PER_FRAME
    want = np.concatenate([want, np.zeros(-len(want) % n, np.int16)]).reshape(-1, n).astype(int)
    got = got.reshape(-1, n).astype(int)
    silent = np.sqrt((s16_to_float(want.astype(np.int16)) ** 2).mean(axis=1)) < SILENT_RMS
    j = 0
    for i, frame in enumerate(got):
        while j < len(want) and np.abs(want[j] - frame).max() > 2:
            assert silent[j], f"output frame {i}: frame {j} of the TTS audio (with sound) is missing"
            j += 1
        assert j < len(want), f"output frame {i} is not in the TTS audio"
        j += 1
    assert silent[j:].all(), "the end of the TTS audio was not played"
    assert (~silent).sum() > 10


