"""Streaming audio features for speech-to-motion: log-mel at 100 Hz, strictly causal.

Feature frame ``j`` is computed from the ``win_length`` samples that END at sample
``(j + 1) * hop`` (zeros before the start of the stream), so it never looks past that
point. The offline ``log_mel`` (used for training) and the streaming ``StreamingLogMel``
(used at run time) produce the same numbers: both call ``_frames_to_log_mel``.

``RunningNorm`` is the causal normalisation: a per-bin exponential running mean
(started from the corpus mean, updated only on frames above an energy gate) subtracted,
divided by the corpus std.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.audio import MODEL_RATE


def logsumexp(x: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    """log(sum(exp(x))) along ``axis``, computed stably (NumPy; scipy's version costs ~20x more
    per call on the small per-chunk arrays of the streaming path)."""
    x = np.asarray(x, np.float64)
    m = np.max(x, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out.squeeze(axis) if axis is not None else float(out.reshape(()))

@dataclass(frozen=True)
class MelSpec:
    sample_rate: int = MODEL_RATE
    n_fft: int = 512
    win_length: int = 400      # 25 ms
    hop: int = 160             # 10 ms -> 100 Hz
    n_mels: int = 80
    fmin: float = 20.0
    fmax: float = 7600.0
    log_floor: float = 1e-10   # power floor before the log

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def check_audio(samples: np.ndarray, what: str = "audio") -> np.ndarray:
    """Validate mono float audio; returns float32 1-D. Raises ValueError on bad input."""
    a = np.asarray(samples)
    if a.ndim == 2 and 1 in a.shape:
        a = a.reshape(-1)
    if a.ndim != 1:
        raise ValueError(f"{what} must be mono 1-D samples, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"{what} must be float samples in [-1, 1], got dtype {a.dtype}")
    a = a.astype(np.float32, copy=False)
    if a.size and not np.isfinite(a).all():
        raise ValueError(f"{what} contains NaN or inf")
    return a


def _hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, np.float64) / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, np.float64) / 2595.0) - 1.0)


def mel_filterbank(spec: MelSpec = MelSpec()) -> np.ndarray:
    """(n_mels, n_fft//2+1) triangular HTK-mel filters (float32)."""
    n_bins = spec.n_fft // 2 + 1
    freqs = np.linspace(0.0, spec.sample_rate / 2, n_bins)
    pts = _mel_to_hz(np.linspace(_hz_to_mel(spec.fmin), _hz_to_mel(spec.fmax), spec.n_mels + 2))
    fb = np.zeros((spec.n_mels, n_bins))
    for m in range(spec.n_mels):
        lo, c, hi = pts[m], pts[m + 1], pts[m + 2]
        up = (freqs - lo) / max(c - lo, 1e-9)
        down = (hi - freqs) / max(hi - c, 1e-9)
        fb[m] = np.clip(np.minimum(up, down), 0.0, None)
    return fb.astype(np.float32)


def mel_center_hz(spec: MelSpec = MelSpec()) -> np.ndarray:
    """Centre frequency of each mel bin (Hz)."""
    return _mel_to_hz(np.linspace(_hz_to_mel(spec.fmin), _hz_to_mel(spec.fmax), spec.n_mels + 2))[1:-1]


class _MelCore:
    def __init__(self, spec: MelSpec):
        self.spec = spec
        self.window = np.hanning(spec.win_length + 1)[:-1].astype(np.float32)
        self.fb = mel_filterbank(spec)

    def frames_to_log_mel(self, frames: np.ndarray) -> np.ndarray:
        """frames: (T, win_length) -> (T, n_mels) float32 natural-log mel power."""
        if len(frames) == 0:
            return np.zeros((0, self.spec.n_mels), np.float32)
        spec = np.fft.rfft(frames * self.window, n=self.spec.n_fft, axis=-1)
        power = (spec.real ** 2 + spec.imag ** 2).astype(np.float32)
        mel = power @ self.fb.T
        return np.log(np.maximum(mel, self.spec.log_floor)).astype(np.float32)


_CORES: dict[MelSpec, _MelCore] = {}


def _core(spec: MelSpec) -> _MelCore:
    if spec not in _CORES:
        _CORES[spec] = _MelCore(spec)
    return _CORES[spec]


def _causal_frames(padded: np.ndarray, n_frames: int, spec: MelSpec) -> np.ndarray:
    """Windows ending at (j+1)*hop, from a signal already left-padded by win-hop zeros."""
    idx = np.arange(spec.win_length)[None, :] + spec.hop * np.arange(n_frames)[:, None]
    return padded[idx]


def log_mel(audio: np.ndarray, spec: MelSpec = MelSpec()) -> np.ndarray:
    """Offline causal log-mel of a whole signal: (len(audio)//hop, n_mels) float32."""
    a = check_audio(audio)
    n = len(a) // spec.hop
    padded = np.concatenate([np.zeros(spec.win_length - spec.hop, np.float32), a])
    return _core(spec).frames_to_log_mel(_causal_frames(padded, n, spec))


class StreamingLogMel:
    """Push audio, get the newly complete 100 Hz log-mel frames (same numbers as ``log_mel``)."""

    def __init__(self, spec: MelSpec = MelSpec()):
        self.spec = spec
        self.reset()

    def reset(self) -> None:
        self._buf = np.zeros(self.spec.win_length - self.spec.hop, np.float32)
        self.frames_out = 0

    def push(self, samples: np.ndarray) -> np.ndarray:
        a = check_audio(samples)
        buf = np.concatenate([self._buf, a])
        n = (len(buf) - (self.spec.win_length - self.spec.hop)) // self.spec.hop
        out = _core(self.spec).frames_to_log_mel(_causal_frames(buf, n, self.spec))
        self._buf = buf[n * self.spec.hop:]
        self.frames_out += n
        return out


@dataclass
class NormStats:
    mean: np.ndarray   # (n_mels,)
    std: np.ndarray    # (n_mels,)
    time_constant_frames: float = 300.0   # 3 s at 100 Hz
    gate_db: float = -5.0      # frames quieter than this (dB vs the corpus-mean frame) leave the mean alone
    prior_frames: float = 30.0  # the corpus mean counts as this many frames: a new voice/channel takes over fast

    @property
    def alpha(self) -> float:
        return 1.0 / self.time_constant_frames

    @property
    def gate_log_power(self) -> float:
        return float(logsumexp(self.mean)) + self.gate_db * np.log(10.0) / 10.0


def _update_weights(mel: np.ndarray, stats: NormStats, n_seen: float) -> tuple[np.ndarray, float]:
    """Per frame: the running-mean step, 0 below the energy gate; else max(alpha, 1/(prior+n+1))
    with n the gated frames seen so far (a cumulative mean first, an exponential one later).
    Returns the steps and the updated count."""
    active = logsumexp(mel.astype(np.float64), axis=1) > stats.gate_log_power
    n = n_seen + np.cumsum(active) - active          # frames seen before each frame
    steps = np.maximum(stats.alpha, 1.0 / (stats.prior_frames + n + 1.0))
    return np.where(active, steps, 0.0), float(n_seen + active.sum())


def normalise_offline(mel: np.ndarray, stats: NormStats) -> np.ndarray:
    """Causal running normalisation of a whole utterance (same recurrence as ``RunningNorm``).

    Running mean r_t = (1 - a_t) r_{t-1} + a_t x_t with r_{-1} = 0 (the corpus mean) and
    a_t from ``_update_weights``: 0 for near-silent frames (long silences do not drag the mean
    down, which would make silence look like average speech), a cumulative mean over the first
    speech frames (a new voice or channel is taken over within ~0.3 s), then exponential."""
    if len(mel) == 0:
        return mel.astype(np.float32)
    x = mel.astype(np.float64) - stats.mean[None, :]
    a, _ = _update_weights(mel, stats, 0.0)
    r = np.empty_like(x)
    prev = np.zeros(x.shape[1])
    for t in range(len(x)):
        prev = prev + a[t] * (x[t] - prev)
        r[t] = prev
    return ((x - r) / stats.std[None, :]).astype(np.float32)


class RunningNorm:
    """Streaming form of ``normalise_offline``."""

    def __init__(self, stats: NormStats):
        self.stats = stats
        self.reset()

    def reset(self) -> None:
        self._r = np.zeros_like(self.stats.mean, dtype=np.float64)
        self._n = 0.0

    def __call__(self, mel: np.ndarray) -> np.ndarray:
        out = np.empty(mel.shape, np.float32)
        if not len(mel):
            return out
        a, self._n = _update_weights(mel, self.stats, self._n)
        r = self._r
        for t, row in enumerate(mel):
            x = row.astype(np.float64) - self.stats.mean
            r = r + a[t] * (x - r)
            out[t] = (x - r) / self.stats.std
        self._r = r
        return out


def frames_ready(n_samples: int, samples_per_frame: int, lookahead_samples: int) -> int:
    """How many video frames k satisfy (k+1)*spf + lookahead <= n_samples."""
    return max(0, (n_samples - lookahead_samples) // samples_per_frame)


def flush_padding(n_samples: int, next_frame: int, samples_per_frame: int, lookahead_samples: int) -> int:
    """Samples of silence to push at the end of a segment so that every frame holding audio
    (the last one may be partial) gets emitted; 0 when no such frame is pending."""
    total = -(-n_samples // samples_per_frame)
    if total <= next_frame:
        return 0
    return total * samples_per_frame + lookahead_samples - n_samples
