"""The one-euro filter (Casiez, Roussel & Vogel, CHI 2012), vectorized.

A low-pass filter whose cutoff rises with the signal's speed: still signals are
smoothed hard (no jitter), fast ones are followed closely (little lag). One
instance filters a whole vector (e.g. 52 blendshape weights) with per-element
``min_cutoff`` / ``beta`` if arrays are given.
"""
from __future__ import annotations

import numpy as np


def _alpha(cutoff: np.ndarray | float, dt: float) -> np.ndarray | float:
    tau = 1.0 / (2.0 * np.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


class OneEuroFilter:
    """Filter a stream of vectors sampled at (possibly irregular) times ``t`` in seconds.

    ``min_cutoff`` (Hz): cutoff for a still signal; lower = smoother, more lag.
    ``beta``: how fast the cutoff rises with speed; higher = less lag on fast moves.
    ``d_cutoff`` (Hz): cutoff of the speed estimate itself.
    """

    def __init__(self, min_cutoff: float | np.ndarray = 1.0, beta: float | np.ndarray = 0.0,
                 d_cutoff: float = 1.0) -> None:
        if np.any(np.asarray(min_cutoff) <= 0) or d_cutoff <= 0:
            raise ValueError("one-euro cutoffs must be > 0 Hz")
        if np.any(np.asarray(beta) < 0):
            raise ValueError("one-euro beta must be >= 0")
        self.min_cutoff = np.asarray(min_cutoff, np.float64)
        self.beta = np.asarray(beta, np.float64)
        self.d_cutoff = float(d_cutoff)
        self.reset()

    def reset(self) -> None:
        self._x: np.ndarray | None = None
        self._dx: np.ndarray | None = None
        self._t: float | None = None

    def __call__(self, x: np.ndarray, t: float) -> np.ndarray:
        x = np.asarray(x, np.float64)
        if self._x is None or self._t is None:
            self._x, self._dx, self._t = x.copy(), np.zeros_like(x), float(t)
            return x.copy()
        dt = float(t) - self._t
        if dt <= 0.0:  # repeated or out-of-order timestamp: keep the state, return it
            return self._x.copy()
        dx = (x - self._x) / dt
        a_d = _alpha(self.d_cutoff, dt)
        self._dx = a_d * dx + (1.0 - a_d) * self._dx
        cutoff = self.min_cutoff + self.beta * np.abs(self._dx)
        a = _alpha(cutoff, dt)
        self._x = a * x + (1.0 - a) * self._x
        self._t = float(t)
        return self._x.copy()
