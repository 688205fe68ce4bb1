"""PCM in the engine: validation, float <-> int16 conversion, audio-file loading.

Everything inside the engine is mono float32 in [-1, 1]. ``to_mono_float`` turns what callers
hand us into that, or raises ``AudioFormatError`` with a message that says what was wrong.

One int16 rule everywhere: float -> int16 is ``clip(round(x * 32768), -32768, 32767)`` (clip,
then round to nearest, ties to even) and int16 -> float is ``s / 32768``, so int16 -> float ->
int16 is exact and float -> int16 -> float is off by at most half a step.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

# Rates the engine resamples from (exact polyphase ratios stay small for these).
SUPPORTED_SAMPLE_RATES: tuple[int, ...] = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
S16_SCALE = 32768.0


class AudioFormatError(ValueError):
    """PCM that the engine cannot take: unsupported rate, bad shape, NaN/inf, unreadable file."""


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
    if a.ndim not in (1, 2):
        raise AudioFormatError(f"expected mono PCM of shape (n,), got shape {a.shape}")
    if a.ndim == 2 and a.shape[1] > 8:
        raise AudioFormatError(f"expected (samples, channels) PCM, got shape {a.shape}")
    if a.dtype == np.int16:
        a = s16_to_float(a)
    elif a.dtype.kind != "f":
        raise AudioFormatError(f"PCM must be int16 or float, got dtype {a.dtype}")
    if a.ndim == 2:
        a = a.mean(axis=1)
    out = a.astype(np.float32, copy=False)
    if not np.isfinite(out).all():
        raise AudioFormatError("PCM contains NaN or inf")
    return np.clip(out, -1.0, 1.0)


def s16_to_float(samples: np.ndarray) -> np.ndarray:
    """int16 samples (any shape) -> float32 in [-1, 1)."""
    a = np.asarray(samples)
    if a.dtype.kind not in "iu" or a.dtype.itemsize != 2:
        raise AudioFormatError(f"expected int16 PCM, got dtype {a.dtype}")
    return a.astype(np.float32) / np.float32(S16_SCALE)


def s16le_to_float(data: bytes) -> np.ndarray:
    """Little-endian signed 16-bit PCM bytes -> float32 (raises on an odd byte count)."""
    if len(data) % 2:
        raise AudioFormatError(f"s16le PCM needs an even number of bytes, got {len(data)}")
    return s16_to_float(np.frombuffer(data, "<i2"))


def float_to_s16(samples: np.ndarray) -> np.ndarray:
    """Float samples (any shape) -> int16: clip to [-1, 1], scale by 32768, round to nearest."""
    a = np.asarray(samples)
    if a.dtype.kind != "f":
        raise AudioFormatError(f"expected float PCM, got dtype {a.dtype}")
    if not np.isfinite(a).all():
        raise AudioFormatError("PCM contains NaN or inf")
    return np.clip(np.rint(np.clip(a, -1.0, 1.0) * S16_SCALE), -32768, 32767).astype(np.int16)


def float_to_s16le(samples: np.ndarray) -> bytes:
    """``float_to_s16`` as little-endian bytes (the wire format of the WebSocket API)."""
    return float_to_s16(samples).astype("<i2", copy=False).tobytes()


def load_audio(path: str | Path, sample_rate: int | None = None) -> tuple[np.ndarray, int]:
    """Read an audio (or video) file as mono float32 in [-1, 1]; returns ``(samples, rate)``.

    wav/flac/ogg (and whatever else libsndfile reads) through soundfile, anything else
    (mp3, mp4, m4a, ...) through PyAV (ffmpeg). Channels are averaged. With ``sample_rate``
    the samples are resampled to it (polyphase, as ``scipy.signal.resample_poly``) and
    ``rate == sample_rate``; otherwise ``rate`` is the file's own. Raises
    ``FileNotFoundError`` for a missing file, ``AudioFormatError`` for one without audio.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"audio file {path} does not exist")
    if sample_rate is not None and (isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer))
                                    or sample_rate <= 0):
        raise AudioFormatError(f"sample rate must be a positive integer, got {sample_rate!r}")
    try:
        audio, rate = _read_soundfile(path)
    except Exception:  # noqa: BLE001 - not a libsndfile format: let ffmpeg try
        audio, rate = _read_av(path)
    if audio.size == 0:
        raise AudioFormatError(f"{path} contains no audio samples")
    if not np.isfinite(audio).all():
        raise AudioFormatError(f"{path} contains NaN or inf samples")
    if sample_rate is not None and int(sample_rate) != rate:
        from scipy.signal import resample_poly
        ratio = Fraction(int(sample_rate), rate)
        audio = resample_poly(audio, ratio.numerator, ratio.denominator)
        rate = int(sample_rate)
    return np.clip(audio, -1.0, 1.0).astype(np.float32), rate


def _read_soundfile(path: Path) -> tuple[np.ndarray, int]:
    import soundfile as sf
    x, rate = sf.read(str(path), dtype="float32", always_2d=True)
    return x.mean(axis=1), int(rate)


def _read_av(path: Path) -> tuple[np.ndarray, int]:
    import av

    try:
        container = av.open(str(path))
    except av.error.FFmpegError as e:
        raise AudioFormatError(f"{path} is not a readable audio file: {e}") from e
    with container:
        if not container.streams.audio:
            raise AudioFormatError(f"{path} has no audio stream")
        rate = int(container.streams.audio[0].codec_context.sample_rate or 0)
        resampler = av.AudioResampler(format="fltp", rate=rate or None)
        parts: list[np.ndarray] = []
        try:
            for frame in container.decode(audio=0):
                rate = rate or int(frame.sample_rate)
                parts += [f.to_ndarray().mean(axis=0) for f in resampler.resample(frame)]
        except av.error.FFmpegError as e:
            raise AudioFormatError(f"could not decode {path}: {e}") from e
        parts += [f.to_ndarray().mean(axis=0) for f in resampler.resample(None)]
    if not rate:
        raise AudioFormatError(f"{path} has an audio stream without a sample rate")
    return (np.concatenate(parts) if parts else np.zeros(0, np.float32)).astype(np.float32), rate
