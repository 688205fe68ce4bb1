"""Validation of PCM the session is given: rate, shape, dtype, finiteness.

Everything inside the engine is mono float32 in [-1, 1]. ``to_mono_float``
turns what callers hand us into that, or raises ``AudioFormatError`` with a
message that says what was wrong.
"""
from __future__ import annotations

import numpy as np

# Rates the engine resamples from (exact polyphase ratios stay small for these).
SUPPORTED_SAMPLE_RATES: tuple[int, ...] = (8000, 16000, 22050, 24000, 32000, 44100, 48000)


class AudioFormatError(ValueError):
    """PCM that the engine cannot take: unsupported rate, bad shape, NaN/inf."""


def check_sample_rate(sample_rate: int, allowed: tuple[int, ...] | list[int] = SUPPORTED_SAMPLE_RATES) -> int:
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise AudioFormatError(f"sample rate must be an integer, got {sample_rate!r}")
    if int(sample_rate) not in allowed:
        raise AudioFormatError(
            f"unsupported sample rate {sample_rate} Hz; supported: {', '.join(map(str, allowed))}")
    return int(sample_rate)


def to_mono_float(samples: np.ndarray, sample_rate: int,
                  allowed: tuple[int, ...] | list[int] = SUPPORTED_SAMPLE_RATES) -> np.ndarray:
    """Validate and convert PCM to mono float32 in [-1, 1].

    Accepts int16 (scaled by 1/32768) or float arrays, shape (n,) or (n, channels)
    (channels are averaged). Raises ``AudioFormatError`` on anything else.
    """
    check_sample_rate(sample_rate, allowed)
    a = np.asarray(samples)
    if a.ndim == 2:
        if a.shape[1] > 8:
            raise AudioFormatError(f"expected (samples, channels) PCM, got shape {a.shape}")
        a = a.mean(axis=1) if a.dtype.kind == "f" else a.astype(np.float64).mean(axis=1).astype(a.dtype)
    elif a.ndim != 1:
        raise AudioFormatError(f"expected mono PCM of shape (n,), got shape {a.shape}")
    if a.dtype == np.int16:
        return (a.astype(np.float32) / 32768.0)
    if a.dtype.kind != "f":
        raise AudioFormatError(f"PCM must be int16 or float, got dtype {a.dtype}")
    out = a.astype(np.float32, copy=False)
    if not np.isfinite(out).all():
        raise AudioFormatError("PCM contains NaN or inf")
    return np.clip(out, -1.0, 1.0)


def s16le_to_float(data: bytes) -> np.ndarray:
    """Little-endian signed 16-bit PCM bytes → float32 (raises on an odd byte count)."""
    if len(data) % 2:
        raise AudioFormatError(f"s16le PCM needs an even number of bytes, got {len(data)}")
    return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0


def float_to_s16(samples: np.ndarray) -> np.ndarray:
    return (np.clip(samples, -1.0, 1.0) * 32767.0).round().astype(np.int16)
