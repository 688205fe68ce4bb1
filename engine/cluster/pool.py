"""Warm session actors: on each node with room, up to ``cluster.warm_workers_per_node`` actors
already started, with the renderer and the model loaded, waiting for a session.

Starting a worker process and importing the engine takes seconds; taking a warm actor takes
none, so a new session costs only its own start. An idle actor holds a session's resources, so
only free slots are kept warm (never more than ``capacity - sessions`` on a node); the pool is
topped up after every placement and release, and re-checked every few node refreshes (nodes
that joined, left or are in quarantine). Warm actors are made for the resources of an
``assistant`` video session; a session needing other resources (a motion-mode session, whose
actor loads no renderer) gets a new actor; warm actors on its node are ended only when the node's resources could not hold
them next to its sessions (the pool tops up again where video slots are still free; slots count
what motion sessions hold).
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import logging

from engine.cluster.placement import capacity, session_resources

log = logging.getLogger(__name__)
WARM_FOR_MODE = "assistant"
RECHECK_REFRESHES = 5


class WarmPool:
    def __init__(self, frontdoor) -> None:
        self.fd = frontdoor
        self.idle: dict[str, list] = collections.defaultdict(list)    # node id → placements
        self._dirty: asyncio.Event | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self.fd.config.cluster.warm_workers_per_node <= 0 or self._task is not None:
            return
        self._dirty = asyncio.Event()
        self._dirty.set()
        self._task = asyncio.get_running_loop().create_task(self._run())

    def changed(self) -> None:
        """Something changed (a placement, a release, an actor ready or dead): top up soon."""
        if self._dirty is not None:
            self._dirty.set()

    def take(self, node_id: str, need: dict, total: dict | None = None):
        """A warm (or still warming) actor on ``node_id`` for ``need``, or None. ``total``: the
        node's resources; when the sessions placed there (this one included) and the warm actors
        of another size would not fit in them together, warm actors are ended to make room
        (without ``total``: one is)."""
        from engine.cluster.frontdoor import kill
        pool = self.idle.get(node_id) or []
        for p in list(pool):
            if _failed(p):
                pool.remove(p)
                kill(p)
            elif p.need == need:
                pool.remove(p)
                return p
        if total is None:
            if pool:
                kill(pool.pop())
            return None
        held = self.fd.held.get(node_id, {})
        while pool and any(held.get(r, 0.0) + sum(p.need.get(r, 0.0) for p in pool) > total.get(r, 0.0) + 1e-9
                           for r in {*held, *(r for p in pool for r in p.need)}):
            kill(pool.pop())    # warm actors of another size hold this node's resources
        return None

    def count(self) -> int:
        return sum(len(v) for v in self.idle.values())

    async def _run(self) -> None:
        period = self.fd.config.cluster.node_refresh_s * RECHECK_REFRESHES
        while True:
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._dirty.wait(), period)
            self._dirty.clear()
            try:
                await self._fill()
            except Exception:
                log.exception("warm pool: top-up failed")

    async def _fill(self) -> None:
        from engine.cluster.frontdoor import kill
        c = self.fd.config.cluster
        need = session_resources(self.fd.config, WARM_FOR_MODE)
        nodes = await self.fd.nodes()
        avoid = self.fd.avoided()
        usable = {n.node_id for n in nodes} - avoid
        for node_id in [n for n in self.idle if n not in usable]:
            for p in self.idle.pop(node_id):
                kill(p)
        for node in nodes:
            if node.node_id not in usable:
                continue
            free = capacity(node, need, c.node_resource) - self.fd.slots_used(need).get(node.node_id, 0)
            want = max(0, min(c.warm_workers_per_node, free))
            pool = self.idle[node.node_id]
            for p in [p for p in pool if _failed(p)]:
                pool.remove(p)
                kill(p)
            while len(pool) > want:
                kill(pool.pop())
            while len(pool) < want:
                p = self.fd.spawn(node.node_id, need)
                p.ready.add_done_callback(lambda _t: self.changed())
                pool.append(p)

    def close(self) -> None:
        from engine.cluster.frontdoor import kill
        if self._task is not None:
            self._task.cancel()
            self._task = None
        for pool in self.idle.values():
            for p in pool:
                kill(p)
        self.idle.clear()


def _failed(p) -> bool:
    return p.ready is not None and p.ready.done() and (p.ready.cancelled() or p.ready.exception() is not None)
