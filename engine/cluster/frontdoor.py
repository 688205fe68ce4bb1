"""The cluster front door: HTTP, the assistant WebSocket and the static client on one port;
every session on a ``SessionWorker`` Ray actor on a node with room (docs/deploy.md, "Ray cluster").

What it holds: a routing table (session id → its actor and node), how many sessions it placed on
each node, and the nodes in quarantine. Placement: ``choose_node`` over the live nodes of
``ray.nodes()`` (re-read every ``cluster.node_refresh_s``), then an actor pinned to that node
(``NodeAffinitySchedulingStrategy``, hard) holding ``cluster.session_resources`` — so Ray's own
accounting agrees with ours. No room: 503 ``cluster_full`` (WebSocket: an ``error`` event with
code ``cluster_full``).

Signalling only: ``POST /v1/offer`` hands the SDP offer to the actor and returns the actor's
answer (the peer, and the media, are on the worker). ``/v1/ws`` is relayed: the protocol runs on
the worker (engine/transports/ws.py over a RelaySocket); the front door passes messages both
ways and only reads ``session.create`` / ``session.attach`` to know where to send the socket.

Faults: a call to an actor that died (its node was lost, or the process) raises a RayError; the
sockets relayed to it get ``{"type": "error", "code": "session_closed", "fatal": true}`` and are
closed, the route is dropped and the node is avoided for ``cluster.lost_node_quarantine_s``.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge, Histogram

from engine.cluster.load import LoadWatch
from engine.cluster.placement import ClusterFull, Node, actor_options, choose_node, session_resources, slots_used
from engine.cluster.pool import WarmPool
from engine.config import REPO_ROOT, Config
from engine.safety import clip

log = logging.getLogger(__name__)


class WorkerLost(RuntimeError):
    """The actor hosting a session is gone (its node or its process died)."""


@dataclass
class Placement:
    """One session actor: where it runs, and the session it hosts once known."""
    actor: object
    node_id: str
    ip: str = ""
    need: dict = field(default_factory=dict)
    session_id: str | None = None
    mode: str = "assistant"
    output: str = "video"                  # "motion": no renderer (its own, smaller, session_resources)
    ready: asyncio.Task | None = None      # started and warmed (FrontDoor.spawn)
    released: bool = False


class FrontDoor:
    """Placement, routing and fault handling; the aiohttp handlers below drive it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.routes: dict[str, Placement] = {}
        self.placed: collections.Counter = collections.Counter()      # node id → sessions (incl. starting)
        self.held: dict[str, collections.Counter] = {}                  # node id → resources those sessions hold
        self.quarantine: dict[str, float] = {}                          # node id → until (monotonic)
        self.lost_sessions = 0
        self._nodes: list[Node] = []
        self._nodes_at = -1e9
        self._worker_cls = None
        self._started_ray = False
        self._watchers: set[asyncio.Task] = set()
        self.pool = WarmPool(self)
        self.load = LoadWatch(self)
        self.registry = CollectorRegistry()
        self.m_sessions = Gauge("facecast_cluster_sessions", "Sessions placed, by node", ["node"],
                                registry=self.registry)
        self.m_nodes = Gauge("facecast_cluster_nodes", "Live nodes that can host a session", registry=self.registry)
        self.m_signal = Histogram("facecast_cluster_signalling_seconds", "Front door signalling time by step",
                                  ["step"], registry=self.registry,
                                  buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
        self.m_frame_p95 = Gauge("facecast_cluster_node_frame_p95_seconds", "Worst session frame time p95 per "
                                 "node at the last load check", ["node"], registry=self.registry)
        self.m_saturated = Gauge("facecast_cluster_saturated_nodes", "Nodes over the frame budget (no new "
                                 "sessions)", registry=self.registry)
        self.samples: dict[str, list[float]] = collections.defaultdict(list)

    # ---- Ray ---------------------------------------------------------------------------------
    def connect(self) -> None:
        """Join the configured Ray cluster (or reuse the connection this process already has).
        ``auto``: the local Ray if one runs (``ray start --head``), else start one in-process whose
        only node hosts sessions."""
        import ray
        if ray.is_initialized():
            return
        c = self.config.cluster
        common = {"namespace": c.namespace, "log_to_driver": False}
        if c.address == "auto":
            try:
                ray.init(address="auto", **common)
            except ConnectionError:
                resources = {c.node_resource: 1} if c.node_resource else None
                ray.init(resources=resources, include_dashboard=False, **common)
        else:
            check_reachable(c.address)
            ray.init(address=c.address, **common)
        self._started_ray = True

    def start(self) -> None:
        """Begin keeping warm actors (call from the running event loop)."""
        self.pool.start()
        self.load.start()

    def close(self) -> None:
        self.pool.close()
        self.load.close()
        for p in list(self.routes.values()):
            self.release(p)
        for t in list(self._watchers):
            t.cancel()
        if self._started_ray:
            import ray
            ray.shutdown()

    async def nodes(self, fresh: bool = False) -> list[Node]:
        """Live nodes (cached for ``cluster.node_refresh_s``)."""
        now = time.monotonic()
        if fresh or now - self._nodes_at > self.config.cluster.node_refresh_s:
            import ray
            raw = await asyncio.get_running_loop().run_in_executor(None, ray.nodes)
            self._nodes = [Node(n["NodeID"], n.get("NodeManagerAddress", ""), dict(n.get("Resources", {})))
                           for n in raw if n.get("Alive")]
            self._nodes_at = now
            self.m_nodes.set(len(self._nodes))
        return self._nodes

    def avoided(self) -> set[str]:
        now = time.monotonic()
        for node_id, until in list(self.quarantine.items()):
            if until <= now:
                del self.quarantine[node_id]
        return set(self.quarantine)

    def _worker_class(self):
        if self._worker_cls is None:
            import ray
            from engine.cluster.worker import SessionWorker
            self._worker_cls = ray.remote(SessionWorker)
        return self._worker_cls

    async def call(self, ref, timeout_s: float | None = -1.0):
        """Await an actor call (``timeout_s``: -1 = ``cluster.call_timeout_s``, None = no limit);
        a dead actor or a timeout becomes ``WorkerLost``."""
        import ray
        if timeout_s is not None and timeout_s < 0:
            timeout_s = self.config.cluster.call_timeout_s
        try:
            return await asyncio.wait_for(ref, timeout_s)
        except (ray.exceptions.RayError, asyncio.TimeoutError) as e:
            raise WorkerLost(f"{type(e).__name__}: {clip(str(e), 200)}") from None

    # ---- placement ---------------------------------------------------------------------------
    def spawn(self, node_id: str, need: dict[str, float], output: str = "video") -> Placement:
        """A new actor pinned to ``node_id`` holding ``need``; ``placement.ready`` finishes when it
        runs and has loaded the renderer (not for ``output == "motion"``) and the model (raises
        WorkerLost if it does not)."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
        pythonpath = os.pathsep.join(p for p in (str(REPO_ROOT), os.environ.get("PYTHONPATH", "")) if p)
        actor = self._worker_class().options(
            **actor_options(need), max_restarts=0, max_task_retries=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
            runtime_env={"env_vars": {"PYTHONPATH": pythonpath}},
        ).remote(self.config)
        placement = Placement(actor, node_id, need=dict(need), output=output)

        async def ready() -> None:
            timeout = self.config.cluster.place_timeout_s
            placement.ip = (await self.call(actor.where.remote(), timeout))["ip"]
            await self.call(actor.warm.remote(output), timeout)

        placement.ready = asyncio.get_running_loop().create_task(ready())
        placement.ready.add_done_callback(lambda t: t.cancelled() or t.exception())   # retrieved here
        return placement

    def slots_used(self, need: dict[str, float]) -> dict[str, int]:
        """Node id → slots of size ``need`` that the sessions placed there take up (placement.py)."""
        return slots_used(self.held, need)

    async def place(self, mode: str, output: str = "video") -> Placement:
        """A started actor on a node with room for one more ``mode`` session (``output`` "video" or
        "motion"): a warm one from the pool when that node has one of its size, else a new one.
        Raises ClusterFull, or WorkerLost when the actor did not come up (its node is then
        quarantined)."""
        c = self.config.cluster
        t0 = time.perf_counter()
        need = session_resources(self.config, mode, output)
        try:
            node = choose_node(await self.nodes(), self.slots_used(need), need, c.node_resource,
                               self.avoided() | set(self.load.saturated))
        except ClusterFull as e:
            if self.load.saturated:
                raise ClusterFull(f"{e} ({len(self.load.saturated)} node(s) with free slots are over the frame "
                                  f"budget, cluster.saturated_frame_p95_ms)") from None
            raise
        self.placed[node.node_id] += 1          # reserved now: concurrent offers cannot overbook it
        self.held.setdefault(node.node_id, collections.Counter()).update(need)
        self.m_sessions.labels(node=node.node_id[:12]).set(self.placed[node.node_id])
        placement = self.pool.take(node.node_id, need, node.resources)
        warm = placement is not None
        if placement is None:
            placement = self.spawn(node.node_id, need, output)
        placement.mode, placement.output = mode, output
        try:
            await asyncio.shield(placement.ready)
        except WorkerLost:
            self.lost(placement)
            raise
        finally:
            self.pool.changed()
        self.observe("place_warm" if warm else "place_cold", time.perf_counter() - t0)
        log.info("placed a %s %s session on node %s (%s, %s actor)", mode, output, node.node_id[:12], placement.ip,
                 "warm" if warm else "new")
        return placement

    def adopt(self, placement: Placement, session_id: str) -> None:
        """The actor's session exists: route to it, and release the actor when it ends."""
        placement.session_id = session_id
        self.routes[session_id] = placement
        task = asyncio.get_running_loop().create_task(self._watch(placement))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _watch(self, placement: Placement) -> None:
        try:
            await self.call(placement.actor.wait_ended.remote(), timeout_s=None)
        except WorkerLost as e:
            log.warning("session %s: its worker on node %s was lost (%s)", placement.session_id,
                        placement.node_id[:12], e)
            self.lost(placement)
            return
        log.info("session %s ended on node %s", placement.session_id, placement.node_id[:12])
        self.release(placement)

    def lost(self, placement: Placement) -> None:
        """The actor died under a session: avoid its node for a while, forget the session."""
        if not placement.released:
            self.lost_sessions += 1
            self.quarantine_node(placement.node_id)
        self.release(placement)

    def quarantine_node(self, node_id: str) -> None:
        self.quarantine[node_id] = time.monotonic() + self.config.cluster.lost_node_quarantine_s
        self._nodes_at = -1e9      # re-read the node list before the next placement

    def release(self, placement: Placement) -> None:
        """Forget the session and end its actor (no error if it is already gone)."""
        if placement.released:
            return
        placement.released = True
        if placement.session_id is not None and self.routes.get(placement.session_id) is placement:
            del self.routes[placement.session_id]
        self.placed[placement.node_id] -= 1
        if self.placed[placement.node_id] <= 0:
            del self.placed[placement.node_id]
        held = self.held.get(placement.node_id)
        if held is not None:
            held.subtract(placement.need)
            if self.placed.get(placement.node_id, 0) <= 0 or all(v <= 1e-9 for v in held.values()):
                del self.held[placement.node_id]
        self.m_sessions.labels(node=placement.node_id[:12]).set(self.placed.get(placement.node_id, 0))
        kill(placement)
        self.pool.changed()

    def observe(self, step: str, seconds: float) -> None:
        self.m_signal.labels(step=step).observe(seconds)
        self.samples[step].append(seconds)

    def placements_by_node(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = collections.defaultdict(list)
        for sid, p in self.routes.items():
            out[p.node_id].append(sid)
        return dict(out)


def kill(placement: Placement) -> None:
    """End a placement's actor (no error if it is already gone)."""
    import ray
    if placement.ready is not None and not placement.ready.done():
        placement.ready.cancel()
    if placement.actor is None or not ray.is_initialized():   # ray.kill would start a local Ray
        return
    with contextlib.suppress(Exception):
        ray.kill(placement.actor, no_restart=True)


REACH_TIMEOUT_S = 5.0


def check_reachable(address: str) -> None:
    """Raise ConnectionError at once when nothing listens at a cluster address (``ray.init``
    itself retries an unreachable GCS for minutes)."""
    import socket
    hostport = address.removeprefix("ray://")
    host, _, port = hostport.rpartition(":")
    try:
        socket.create_connection((host.strip("[]"), int(port)), REACH_TIMEOUT_S).close()
    except (OSError, ValueError) as e:
        raise ConnectionError(f"nothing answers at {hostport} ({e})") from None
