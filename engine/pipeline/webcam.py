"""Webcam stage: the user's camera drives the avatar's face (``webcam`` mode).

Frames are retargeted in a worker thread by
``engine.tracking.webcam.WebcamRetargeter``; while it is busy, only the newest
frame waits (older ones are dropped — the face should show *now*). If the
retargeter or the avatar's rig is unavailable, the stage says so once and
the session degrades to idle motion.
"""
from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


class WebcamStage:
    def __init__(self, config, avatar_path: str | Path, executor: ThreadPoolExecutor, metrics=None) -> None:
        self.config, self.avatar_path, self.executor, self.metrics = config, avatar_path, executor, metrics
        self.retargeter = None
        self.error: str | None = None
        self.latest: np.ndarray | None = None     # (58,) motion vector
        self.latest_time = 0.0
        self._pending: tuple[np.ndarray, float] | None = None
        self._busy = False
        self.dropped = 0
        self._t0 = time.monotonic()

    def load(self) -> None:
        """Build the retargeter (runs in a worker thread: loads the avatar and face mesh)."""
        try:
            from engine.avatar.asset import load_avatar
            from engine.tracking.webcam import WebcamRetargeter
            self.retargeter = WebcamRetargeter(load_avatar(self.avatar_path), self.config)
        except Exception as e:  # degrade gracefully to idle motion
            self.error = f"webcam retargeting unavailable ({type(e).__name__}: {e}); showing idle motion"
            log.warning(self.error)

    def push(self, rgb: np.ndarray) -> None:
        if self.retargeter is None:
            return
        if self._pending is not None:
            self.dropped += 1
            if self.metrics is not None:
                self.metrics.dropped.labels(what="webcam_frame").inc()
        self._pending = (rgb, time.monotonic() - self._t0)
        if not self._busy:
            self._busy = True
            asyncio.get_running_loop().create_task(self._drain())

    async def _drain(self) -> None:
        loop = asyncio.get_running_loop()
        try:
            while self._pending is not None:
                rgb, t = self._pending
                self._pending = None
                t0 = time.perf_counter()
                try:
                    motion = await loop.run_in_executor(self.executor, self.retargeter.push_frame, rgb, t)
                except Exception as e:
                    log.warning("webcam frame rejected: %s", e)
                    continue
                if self.metrics is not None:
                    self.metrics.observe_stage("webcam", time.perf_counter() - t0)
                if motion is not None:
                    self.latest = motion.to_vector()
                    self.latest_time = time.monotonic()
        finally:
            self._busy = False
