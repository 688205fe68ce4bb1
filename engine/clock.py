"""One media clock per session; audio is the master.

The session's output is a sequence of video frames, each carrying exactly one
frame's worth of output audio, so "frame k" and "audio samples
[k*spf, (k+1)*spf)" are the same instant by construction. The clock only says
*when* frame k is due: ``frame_time(k) = k / fps`` seconds after ``start``.

``RealtimeClock`` follows the monotonic wall clock (live sessions);
``VirtualClock`` jumps to whatever time is waited for (offline render, tests
that must not depend on machine speed).
"""
from __future__ import annotations

import asyncio
import time
from fractions import Fraction


class MediaClock:
    """Frame-indexed media time. Subclasses say how time passes."""

    realtime = True

    def __init__(self, fps: int) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = fps
        self.frame_duration = 1.0 / fps
        self.time_base = Fraction(1, fps)

    def frame_time(self, k: int) -> float:
        """Seconds since the clock started at which frame ``k`` is due."""
        return k / self.fps

    def frame_at(self, t: float) -> int:
        """Index of the frame on screen at media time ``t`` (seconds)."""
        return int(t * self.fps)

    def now(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    async def wait_until(self, t: float) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class RealtimeClock(MediaClock):
    """Media time = monotonic wall time since ``start()`` (or construction)."""

    def __init__(self, fps: int) -> None:
        super().__init__(fps)
        self._t0 = time.monotonic()

    def start(self) -> None:
        self._t0 = time.monotonic()

    def to_wall(self, t: float) -> float:
        """The ``time.monotonic()`` value at media time ``t``."""
        return self._t0 + t

    def now(self) -> float:
        return time.monotonic() - self._t0

    async def wait_until(self, t: float) -> None:
        delay = t - self.now()
        if delay > 0:
            await asyncio.sleep(delay)


class VirtualClock(MediaClock):
    """Time advances only when someone waits for a later instant (offline work)."""

    realtime = False

    def __init__(self, fps: int) -> None:
        super().__init__(fps)
        self._t = 0.0

    def start(self) -> None:
        self._t = 0.0

    def to_wall(self, t: float) -> float:
        return t

    def now(self) -> float:
        return self._t

    def advance(self, dt: float) -> None:
        if dt < 0:
            raise ValueError("a virtual clock cannot go backwards")
        self._t += dt

    async def wait_until(self, t: float) -> None:
        if t > self._t:
            self._t = t
        await asyncio.sleep(0)  # stay cooperative
