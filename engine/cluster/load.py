"""Admission by measured load: nodes whose sessions miss the frame budget take no new session.

``cluster.session_resources`` says how many sessions a node should hold; this checks that it
does. Every ``cluster.load_check_s`` the front door asks each session's worker for its frame
numbers since the last check (``SessionWorker.stats(reset=True)``). A node is *saturated* while
one of its sessions has, over the last check, a frame time (motion + render) p95 above
``cluster.saturated_frame_p95_ms``, skipped frame-clock ticks, or speech underruns (frames due
while speaking whose motion was not ready: the motion model falling behind, which is what runs
out first on motion-mode nodes) above ``MAX_UNDERRUN_SHARE`` of its frames; placement skips saturated
nodes until a later check finds them within budget again. ``saturated_frame_p95_ms = 0``
turns this off (admission by resources only).
"""
from __future__ import annotations

import asyncio
import contextlib
import logging

log = logging.getLogger(__name__)

MIN_FRAMES = 10   # a session with fewer frames in a check window says nothing about its node
MAX_UNDERRUN_SHARE = 0.05   # the bench's own criterion (`facecast bench cluster`)


def over_budget(stats: dict, limit_ms: float) -> bool:
    """Whether one session's numbers since the last check mean its node is saturated."""
    if stats.get("frames", 0) < MIN_FRAMES:
        return False
    return ((stats.get("frame_p95_ms") or 0.0) > limit_ms or stats.get("skipped_ticks", 0) > 0
            or stats.get("underruns", 0) > MAX_UNDERRUN_SHARE * stats["frames"])


class LoadWatch:
    def __init__(self, frontdoor) -> None:
        self.fd = frontdoor
        self.saturated: dict[str, dict] = {}     # node id → the stats that made it so
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self.fd.config.cluster.saturated_frame_p95_ms > 0 and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.fd.config.cluster.load_check_s)
            try:
                await self.check()
            except Exception:
                log.exception("load check failed")

    async def check(self) -> None:
        """One round: every session's numbers since the last round → the saturated nodes."""
        from engine.cluster.frontdoor import WorkerLost
        limit = self.fd.config.cluster.saturated_frame_p95_ms
        placements = list(self.fd.routes.values())

        async def one(p):
            with contextlib.suppress(WorkerLost):   # a lost worker is the watcher's business
                return p, await self.fd.call(p.actor.stats.remote(reset=True))
            return p, None

        hot: dict[str, dict] = {}
        worst: dict[str, float] = {}
        for p, stats in await asyncio.gather(*(one(p) for p in placements)):
            if stats is None:
                continue
            if stats.get("frame_p95_ms") is not None:
                worst[p.node_id] = max(worst.get(p.node_id, 0.0), stats["frame_p95_ms"])
            if over_budget(stats, limit):
                hot.setdefault(p.node_id, stats)
        self.fd.m_frame_p95.clear()
        for node_id, ms in worst.items():
            self.fd.m_frame_p95.labels(node=node_id[:12]).set(ms / 1000.0)
        self.fd.m_saturated.set(len(hot))
        for node_id in set(hot) - set(self.saturated):
            log.warning("node %s is over the frame budget (%s): no new sessions there for now",
                        node_id[:12], hot[node_id])
        self.saturated = hot
