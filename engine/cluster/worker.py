"""``SessionWorker``: the Ray actor that hosts one session on a worker node.

The front door (frontdoor.py) creates one per session, pinned to the node it chose, holding the
session's resources (placement.py). Everything media runs here: the Session, its aiortc peers
(the SDP answer is made here, so the answer's ICE candidates are this node's addresses and media
flows between the client and this node), and the assistant WebSocket protocol of
engine/transports/ws.py over ``RelaySocket``s that the front door feeds and drains.

The methods are coroutines: Ray runs them on the actor's own event loop, which the session's
frame clock, the peers and the sockets share (a Session is driven from one loop). Errors a
client caused come back as ``{"error": code, "message": ...}``, never as exceptions, so the front
door can answer them as the one-box server does.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time

# One BLAS thread in the actor's process, set before numpy loads (engine.cli does the same for
# `facecast serve`): Ray sets OMP_NUM_THREADS = floor(the actor's CPUs), and OpenBLAS follows it,
# so an actor holding 2+ CPUs had a BLAS thread busy-waiting between frames (~1 core, measured).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from engine.cluster.relay import RelaySocket
from engine.config import Config
from engine.metrics import Metrics
from engine.sessions import SessionRegistry, creation_error

log = logging.getLogger(__name__)


class _OneSessionRegistry(SessionRegistry):
    """The worker's registry: at most one session; tells the worker when it ends."""

    def __init__(self, config: Config, metrics: Metrics, on_created) -> None:
        super().__init__(config, metrics)
        self.max_sessions = 1
        self._on_created = on_created

    async def create(self, *args, **kwargs):
        session = await super().create(*args, **kwargs)
        self._on_created(session)
        return session


class SessionWorker:
    """One session and its peers and sockets, on the node the front door chose."""

    def __init__(self, config: Config) -> None:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
        for name in ("aioice", "aiortc"):
            logging.getLogger(name).setLevel(logging.WARNING)
        self.config = config
        self.metrics = Metrics(keep_samples=True)
        self.registry = _OneSessionRegistry(config, self.metrics, self._created)
        self.peers: set = set()
        self.sockets: dict[str, RelaySocket] = {}
        self.session = None
        self._ended: asyncio.Event | None = None
        self._tasks: set[asyncio.Task] = set()
        self._speaker = None
        self._shared = None
        self._base = {"skipped": 0, "repeated": 0, "underruns": 0}    # counters at the last stats(reset=True)

    # ---- who and where -----------------------------------------------------------------------
    async def where(self) -> dict:
        """This actor's node (Ray node id, IP) and process: the front door records it."""
        import ray
        ctx = ray.get_runtime_context()
        return {"node_id": ctx.get_node_id(), "ip": ray.util.get_node_ip_address(), "pid": os.getpid()}

    async def warm(self, output: str = "video") -> None:
        """Import, load and JIT-compile the renderer and the model once (in a thread), so this
        actor's session starts without that wait (the one-box server's warm-up); a motion-mode
        actor (``output == "motion"``) runs no renderer and loads the model only."""
        from engine.server import _warm
        warm = _warm if output != "motion" else _warm_model
        await asyncio.get_running_loop().run_in_executor(None, warm, self.config)

    # ---- the session -----------------------------------------------------------------------
    def _created(self, session) -> None:
        self.session = session
        self._ended_event()
        self._spawn(self._watch(session))

    def _ended_event(self) -> asyncio.Event:
        if self._ended is None:
            self._ended = asyncio.Event()
        return self._ended

    async def _watch(self, session) -> None:
        events = session.events()
        try:
            async for _ in events:
                pass
        finally:
            self._ended_event().set()

    async def start_session(self, mode: str, avatar: str | None = None, mirror: bool | None = None,
                            output: str = "video") -> dict:
        """Create and start this worker's session (the offer path): {"session_id"} or an error;
        ``output`` "motion": a motion-mode session (no renderer, docs/protocol.md "Motion mode")."""
        try:
            session = await self.registry.create(mode, avatar=avatar, mirror=mirror, output=output)
        except Exception as e:
            code, message = creation_error(e)
            if code == "session_failed":
                log.exception("worker: session creation failed")
            return {"error": code, "message": message}
        return {"session_id": session.id}

    async def wait_ended(self) -> str | None:
        """Returns when this worker's session has closed (its id)."""
        await self._ended_event().wait()
        return self.session.id if self.session is not None else None

    # ---- WebRTC: the peer lives here; the front door only carries the SDP -----------------
    async def answer(self, sdp: str, type_: str, session_id: str, owned: bool) -> dict:
        from engine.sessions import UnknownSessionError
        from engine.transports.webrtc import WebRTCPeer
        try:
            session = self.registry.get(session_id)
        except UnknownSessionError as e:
            return {"error": "unknown_session", "message": str(e), "status": 404}
        if not owned:
            viewers = sum(1 for p in self.peers if not p.closed)
            cap = self.config.server.max_viewers_per_session
            if viewers >= cap:
                return {"error": "too_many_viewers", "status": 429,
                        "message": f"session {session_id} already has {viewers} viewers "
                                   f"(server.max_viewers_per_session = {cap})"}

        async def on_closed(peer) -> None:
            self.peers.discard(peer)
            if owned:
                await self.registry.remove(session.id)

        peer = WebRTCPeer(session, self.config, on_closed)
        self.peers.add(peer)
        t0 = time.perf_counter()
        try:
            answer = await peer.answer(sdp, type_)
        except Exception as e:   # aiortc raises ValueError and friends for SDP it cannot use
            await peer.close()
            return {"error": "bad_sdp", "status": 400,
                    "message": f"could not use the SDP offer: {type(e).__name__}: {str(e)[:200]}"}
        return {"sdp": answer.sdp, "type": answer.type, "session_id": session.id,
                "answer_s": time.perf_counter() - t0}   # aiortc's own time (ICE gathering included)

    # ---- the assistant WebSocket, relayed by the front door --------------------------------
    async def open_socket(self, conn_id: str) -> None:
        from engine.audio.tts import Speaker
        from engine.transports.ws import AssistantConnection, _Shared
        if self._speaker is None:
            self._speaker, self._shared = Speaker(self.config.tts), _Shared()
        sock = RelaySocket()
        self.sockets[conn_id] = sock
        conn = AssistantConnection(sock, self.registry, self.config, self._speaker, self._shared)

        async def run() -> None:
            try:
                await conn.run()
            finally:
                await sock.close(message=b"session ended")

        self._spawn(run())

    async def feed(self, conn_id: str, items: list) -> bool:
        """Client messages for socket ``conn_id``; False when that socket is gone."""
        sock = self.sockets.get(conn_id)
        if sock is None or sock.closed:
            return False
        sock.feed(items)
        return True

    async def take(self, conn_id: str, wait_s: float) -> list:
        """What socket ``conn_id`` sends the client (a long poll); a ("close", ...) entry ends it."""
        sock = self.sockets.get(conn_id)
        if sock is None:
            return [("close", 1001, "no such socket")]
        out = await sock.take(wait_s)
        if out and out[-1][0] == "close":     # the last thing it will send
            self.sockets.pop(conn_id, None)
        return out

    async def close_socket(self, conn_id: str) -> None:
        """The client's socket is gone: the connection cleans up (closing a session it owns)."""
        sock = self.sockets.pop(conn_id, None)
        if sock is not None:
            sock.client_closed()

    # ---- measurement and shutdown --------------------------------------------------------
    async def peers_info(self) -> list[dict]:
        """This worker's WebRTC peers: connection state and video frames sent (tests, debugging)."""
        return [{"state": p.pc.connectionState, "video_sent": p.video.sent, "closed": p.closed} for p in self.peers]

    async def stats(self, reset: bool = False) -> dict:
        """Frame-loop numbers of this worker's session since the last reset (`facecast bench
        cluster`): frames made, frame time (motion + render) and frame-clock wake lateness
        percentiles, ticks skipped because the loop fell behind, frames repeated (late render),
        speech underruns (frames due while speaking whose speech motion was not ready); and the
        class of the session's renderer (None in motion mode)."""
        samples = self.metrics.samples
        frame = np.asarray(samples.get("frame", []), np.float64) * 1000
        wake = np.asarray(samples.get("wake", []), np.float64) * 1000
        skipped = getattr(self.session, "skipped_ticks", 0)
        repeated = _count(self.metrics, "repeated")
        underruns = _underruns(self.metrics)
        pct = lambda a, q: round(float(np.percentile(a, q)), 3) if a.size else None
        out = {"frames": int(frame.size), "frame_p50_ms": pct(frame, 50), "frame_p95_ms": pct(frame, 95),
               "wake_p95_ms": pct(wake, 95), "skipped_ticks": skipped - self._base["skipped"],
               "repeated": repeated - self._base["repeated"],
               "underruns": underruns - self._base["underruns"],
               "renderer": _renderer_class(self.session)}
        if reset:
            samples.clear()
            self._base = {"skipped": skipped, "repeated": repeated, "underruns": underruns}
        return out

    async def shutdown(self) -> None:
        for sock in list(self.sockets.values()):
            sock.client_closed()
        for peer in list(self.peers):
            await peer.close()
        await self.registry.close_all()

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _warm_model(config: Config) -> None:
    """The model part of engine.server._warm (a motion-mode session has no renderer)."""
    from engine.motion.generators import create_generator
    try:
        create_generator(config)
    except Exception as e:  # the session will report the real error to its client
        log.warning("warm-up failed: %s: %s", type(e).__name__, e)


def _renderer_class(session) -> str | None:
    stage = getattr(session, "render_stage", None)
    return type(stage.renderer).__name__ if stage is not None else None


def _underruns(metrics: Metrics) -> int:
    with contextlib.suppress(Exception):
        return int(metrics.underruns._value.get())
    return 0


def _count(metrics: Metrics, kind: str) -> int:
    with contextlib.suppress(Exception):
        return int(metrics.frames.labels(kind=kind)._value.get())
    return 0
