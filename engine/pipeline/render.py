"""Render stage: MotionFrame → RGB image in a worker thread, with a deadline.

Before rendering frame k the stage predicts its finish time from recent render
times; a frame that would miss its deadline is skipped and the previous image
repeated (its audio still goes out — audio is never dropped). Repeats in a row are
bounded: one while the frame can still be on time, up to ``max_repeats_when_late``
once the clock is already past its deadline (a stalled loop catches up fast). A render
that finishes late is still used but counted as a deadline miss. The worker thread
keeps the event loop free (numba / OpenCV release the GIL), and its thread
counts come from ``pipeline.render_threads``.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from engine.clock import MediaClock
from engine.config import Config, replace
from engine.motion.space import MotionFrame

log = logging.getLogger(__name__)


def set_worker_threads(n: int) -> None:
    """Thread counts for numeric libraries used inside a worker thread."""
    try:
        import cv2
        cv2.setNumThreads(n)
    except Exception:  # pragma: no cover - cv2 is a dependency
        pass
    try:
        import numba
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    except Exception:
        pass
    try:
        import sys
        if "torch" in sys.modules:
            sys.modules["torch"].set_num_threads(n)
    except Exception:
        pass


def create_renderer(config: Config, avatar_path: str | Path | None = None):
    """The configured renderer for ``avatar_path`` (default: ``render.avatar``)."""
    cfg = config if avatar_path is None else replace(config, render={"avatar": str(avatar_path)})
    if cfg.render.renderer == "splat":
        from engine.render.splat import SplatRenderer
        return SplatRenderer.from_config(cfg)
    if cfg.render.renderer != "warp":
        raise ValueError(f"render.renderer = {cfg.render.renderer!r} is not available")
    from engine.render.warp import WarpRenderer
    return WarpRenderer.from_config(cfg)


class RenderStage:
    def __init__(self, renderer, clock: MediaClock, executor: ThreadPoolExecutor, metrics=None,
                 history: int = 25, max_repeats_when_late: int = 3) -> None:
        self.renderer = renderer
        self.clock = clock
        self.executor = executor
        self.metrics = metrics
        self._times: collections.deque[float] = collections.deque(maxlen=history)
        self.last_image: np.ndarray | None = None
        self.deadline_misses = 0
        self.repeated = 0
        self.rendered = 0
        self._repeats = 0          # repeats in a row
        self.max_repeats_when_late = max_repeats_when_late

    def predicted_s(self) -> float:
        """Expected render time: the median of recent renders. A frame is given up only when even
        a typical render would be late; one slow outlier does not cost a whole run of repeats."""
        if not self._times:
            return 0.0
        return statistics.median(self._times)

    async def warm_up(self, motion: MotionFrame) -> np.ndarray:
        """First render (JIT compilation, caches) off the clock."""
        loop = asyncio.get_running_loop()
        image = await loop.run_in_executor(self.executor, self.renderer.render, motion)
        self.last_image = image
        return image

    async def render(self, motion: MotionFrame, deadline: float) -> tuple[np.ndarray, bool]:
        """Image for a frame due at media time ``deadline``; returns (image, repeated)."""
        now = self.clock.now() if self.clock.realtime else 0.0
        # Repeats in a row are limited (the picture and the estimate stay fresh); a frame that is
        # already past its deadline may repeat a little more, so a stalled loop catches up fast.
        limit = self.max_repeats_when_late if now > deadline else 1
        if (self.last_image is not None and self.clock.realtime and self._repeats < limit
                and now + self.predicted_s() > deadline):
            self._repeats += 1
            self._miss(repeated=True)
            return self.last_image, True
        self._repeats = 0
        loop = asyncio.get_running_loop()
        t0 = time.perf_counter()
        if self.clock.realtime:
            image = await loop.run_in_executor(self.executor, self.renderer.render, motion)
        else:   # offline: nothing else waits on the loop, and thread hand-offs cost more than they save
            image = self.renderer.render(motion)
        dt = time.perf_counter() - t0
        self._times.append(dt)
        self.rendered += 1
        if self.metrics is not None:
            self.metrics.observe_stage("render", dt)
            self.metrics.frames.labels(kind="rendered").inc()
        if self.clock.realtime and self.clock.now() > deadline:
            self._miss(repeated=False)
        self.last_image = image
        return image, False

    def _miss(self, repeated: bool) -> None:
        self.deadline_misses += 1
        if self.metrics is not None:
            self.metrics.deadline_misses.inc()
        if repeated:
            self.repeated += 1
            if self.metrics is not None:
                self.metrics.frames.labels(kind="repeated").inc()
