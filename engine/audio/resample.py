"""Streaming polyphase resampling with exact, chunking-independent output.

``StreamingResampler(src, dst)`` produces the same samples as
``scipy.signal.resample_poly`` over the whole signal (zero-phase Kaiser FIR,
10 zero crossings per side), whatever the chunk sizes: output sample ``n``
sits exactly at time ``n / dst``. That exactness is what keeps the 16 kHz
model audio and the 48 kHz output audio aligned to the same video frame.
Output sample ``n`` needs input up to ``(n*down + half_len) / up``: a tiny
look-ahead (< 1 ms for the usual rates); ``flush()`` treats the future as silence.
"""
from __future__ import annotations

from math import gcd

import numpy as np
from scipy.signal import firwin

from engine.audio.pcm import SUPPORTED_SAMPLE_RATES, check_sample_rate

_ZERO_CROSSINGS = 10  # per side, as scipy.signal.resample_poly
_KAISER_BETA = 5.0
_MIN_ROWS_PER_PHASE = 8   # below this many outputs per filter phase, one gather beats per-phase products


def _design(up: int, down: int) -> tuple[np.ndarray, int]:
    max_rate = max(up, down)
    half_len = _ZERO_CROSSINGS * max_rate
    h = firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", _KAISER_BETA)) * up
    return h.astype(np.float64), half_len


class StreamingResampler:
    def __init__(self, src_rate: int, dst_rate: int) -> None:
        check_sample_rate(src_rate, SUPPORTED_SAMPLE_RATES)
        check_sample_rate(dst_rate, SUPPORTED_SAMPLE_RATES)
        g = gcd(src_rate, dst_rate)
        self.src_rate, self.dst_rate = src_rate, dst_rate
        self.up, self.down = dst_rate // g, src_rate // g
        self.identity = self.up == self.down
        if not self.identity:
            h, self.half_len = _design(self.up, self.down)
            # Output n (upsampled position u = n*down) uses inputs i in
            # [ceil((u - half_len)/up), floor((u + half_len)/up)] with weight h[u - i*up + half_len].
            self.taps = (2 * self.half_len) // self.up + 2
            self._table = np.zeros((self.up, self.taps), np.float64)  # by phase = u mod up
            for phase in range(self.up):
                first = -((self.half_len - phase) // self.up)  # relative to u // up
                for j in range(self.taps):
                    idx = phase - (first + j) * self.up + self.half_len
                    if 0 <= idx < len(h):
                        self._table[phase, j] = h[idx]
            self._first_rel = np.array([-((self.half_len - p) // self.up) for p in range(self.up)])
        self.reset()

    def reset(self) -> None:
        pad = 0 if self.identity else self.taps + 1
        self._buf = np.zeros(pad, np.float64)  # input samples, buf[0] is input index _buf_start
        self._buf_start = -pad
        self._n_in = 0       # input samples received
        self._n_out = 0      # output samples emitted

    @property
    def lookahead_samples(self) -> int:
        """Input samples past an output instant needed before that output exists."""
        return 0 if self.identity else self.half_len // self.up + 1

    def push(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, np.float32).reshape(-1)
        if self.identity:
            self._n_in += len(x)
            self._n_out += len(x)
            return x.copy()
        self._buf = np.concatenate([self._buf, x.astype(np.float64)])
        self._n_in += len(x)
        # Largest n whose last needed input index < n_in:  (n*down + half_len)//up < n_in
        n_end = max(self._n_out, -(-(self._n_in * self.up - self.half_len) // self.down))
        return self._produce(n_end)

    def flush(self) -> np.ndarray:
        """The future is silence: emit every output sample before time n_in/src_rate."""
        if self.identity:
            return np.zeros(0, np.float32)
        n_end = -(-(self._n_in * self.up) // self.down)
        self._buf = np.concatenate([self._buf, np.zeros(self.taps + 1)])
        out = self._produce(n_end)
        self.reset()
        return out

    def _produce(self, n_end: int) -> np.ndarray:
        count = n_end - self._n_out
        if count <= 0:
            return np.zeros(0, np.float32)
        buf = np.concatenate([self._buf, np.zeros(self.taps)])  # window tails carry zero weights
        if count >= _MIN_ROWS_PER_PHASE * self.up:
            y = self._by_phase(buf, count)
        else:
            y = self._gathered(buf, count)
        self._n_out = n_end
        # Keep only the input still needed by future outputs.
        next_first = (n_end * self.down) // self.up - self.taps - 1
        drop = next_first - self._buf_start
        if drop > 0:
            self._buf = self._buf[drop:]
            self._buf_start += drop
        return y.astype(np.float32)

    def _by_phase(self, buf: np.ndarray, count: int) -> np.ndarray:
        """Outputs n ≡ r (mod up) share one filter phase and their first inputs step by ``down``:
        each residue class is one strided matrix-vector product over a sliding-window view of
        the buffer (no index arrays, no gathered copies). Fast when ``up`` is small."""
        windows = np.lib.stride_tricks.sliding_window_view(buf, self.taps)
        y = np.empty(count, np.float64)
        for r in range(self.up):
            u = (self._n_out + r) * self.down
            phase = u % self.up
            first = u // self.up + self._first_rel[phase] - self._buf_start
            y[r::self.up] = windows[first::self.down][: len(range(r, count, self.up))] @ self._table[phase]
        return y

    def _gathered(self, buf: np.ndarray, count: int) -> np.ndarray:
        """The same sums by one gather (better when ``up`` is large and each phase has few outputs)."""
        n = np.arange(self._n_out, self._n_out + count, dtype=np.int64)
        u = n * self.down
        phase = u % self.up
        first = u // self.up + self._first_rel[phase] - self._buf_start
        idx = first[:, None] + np.arange(self.taps)[None, :]
        return np.einsum("ij,ij->i", buf[idx], self._table[phase])


def resample(x: np.ndarray, src_rate: int, dst_rate: int) -> np.ndarray:
    """Whole-signal resampling (same samples the streaming path gives)."""
    r = StreamingResampler(src_rate, dst_rate)
    return np.concatenate([r.push(x), r.flush()])
