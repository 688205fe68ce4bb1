"""The front door's aiohttp app: the one-box server's routes, with sessions on Ray actors.

    POST /v1/offer  placed on a worker (new session) or routed to its worker (viewer); the SDP
                    answer is the worker's. ``"output": "motion"`` places a motion-mode session
                    (no renderer; ``cluster.session_resources["motion"]``). New error: 503 ``cluster_full``; 503 ``worker_lost``
                    when the worker died while answering.
    GET  /v1/ws     relayed to the worker hosting the session (``SocketRelay``)
    GET  /healthz   {"ok", "sessions", "cluster": {"nodes", "sessions_by_node", "quarantined"}}
    GET  /metrics   the front door's metrics: sessions per node, signalling time, each node's
                    worst frame p95 and the saturated nodes (from the load checks); the workers'
                    full pipeline metrics are not collected here
    GET  /          the browser client

The same guard as the one-box server (engine.server): Origin check, token, per-IP limits (it
counts the WebSockets held here; WebRTC peers live on the workers and are not counted).
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid

from aiohttp import WSCloseCode, WSMsgType, web

from engine.cluster.frontdoor import FrontDoor, WorkerLost
from engine.cluster.placement import ClusterFull
from engine.config import Config
from engine.metrics import CONTENT_TYPE
from engine.safety import clip, parse_json
from engine.server import CONFIG_KEY, AppRoutes, _error, build_app, read_offer
from engine.sessions import creation_error, resolve_avatar

log = logging.getLogger(__name__)

FRONTDOOR_KEY = web.AppKey("frontdoor", FrontDoor)
CREATION_STATUS = {"bad_avatar": 400, "unknown_avatar": 404, "too_many_sessions": 503, "cluster_full": 503}


def check_avatar(config: Config, avatar: str | None) -> tuple[str, str] | None:
    """(code, message) when the avatar name is refused; checked here before placing anything
    (the workers have the same avatar folder: docs/deploy.md)."""
    try:
        resolve_avatar(config, avatar)
    except Exception as e:
        return creation_error(e)
    return None


async def _offer(request: web.Request) -> web.Response:
    fd: FrontDoor = request.app[FRONTDOOR_KEY]
    config: Config = request.app[CONFIG_KEY]
    offer = await read_offer(request, config)
    if isinstance(offer, web.Response):
        return offer
    t0 = time.perf_counter()
    sid, owned = offer["session_id"], offer["session_id"] is None
    output = offer["output"] or "video"
    if owned:
        refused = check_avatar(config, offer["avatar"])
        if refused:
            return _error(CREATION_STATUS.get(refused[0], 500), *refused)
        try:
            placement = await fd.place(offer["mode"], output)
        except ClusterFull as e:
            return _error(503, "cluster_full", str(e))
        except WorkerLost as e:
            return _error(503, "worker_lost", f"the worker chosen for the session did not start ({e}); try again")
        try:
            made = await fd.call(placement.actor.start_session.remote(offer["mode"], offer["avatar"], offer["mirror"],
                                                                      output),
                                 config.cluster.place_timeout_s)
        except WorkerLost as e:
            fd.lost(placement)
            return _error(503, "worker_lost", f"the worker died while starting the session ({e}); try again")
        if "error" in made:
            fd.release(placement)
            return _error(CREATION_STATUS.get(made["error"], 500), made["error"], made["message"])
        sid = made["session_id"]
        fd.adopt(placement, sid)
    else:
        placement = fd.routes.get(sid)
        if placement is None:
            return _error(404, "unknown_session", f"no session with id {clip(sid)}")
        if offer["output"] is not None and offer["output"] != placement.output:
            return _error(400, "bad_output", f"session {clip(sid)} has output {placement.output!r}, "
                                             f"not {offer['output']!r}")
    try:
        answer = await fd.call(placement.actor.answer.remote(offer["sdp"], offer["type"], sid, owned))
    except WorkerLost as e:
        fd.lost(placement)
        return _error(503, "worker_lost", f"the worker hosting the session died ({e})")
    if "error" in answer:
        if owned:
            fd.release(placement)
        return _error(answer.get("status", 500), answer["error"], answer["message"])
    took = time.perf_counter() - t0
    fd.observe("offer_new" if owned else "offer_view", took)
    if not owned:   # what the front door adds to the worker's own answer (the relay's cost)
        fd.observe("offer_view_overhead", max(0.0, took - answer.get("answer_s", 0.0)))
    return web.json_response({"sdp": answer["sdp"], "type": answer["type"], "session_id": sid})


class SocketRelay:
    """One client WebSocket relayed to the worker hosting its session."""

    def __init__(self, ws: web.WebSocketResponse, fd: FrontDoor, config: Config) -> None:
        self.ws, self.fd, self.config = ws, fd, config
        self.conn_id = uuid.uuid4().hex
        self.placement = None          # the worker this socket is relayed to
        self.placed_here = None        # a placement this socket made, until its session exists
        self.pump: asyncio.Task | None = None
        self.lost = False

    async def send(self, event: dict) -> None:
        if not self.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(json.dumps(event))

    async def error(self, code: str, message: str, fatal: bool = False) -> None:
        await self.send({"type": "error", "code": code, "message": message, "fatal": fatal})

    async def run(self) -> None:
        limit = self.config.server.max_ws_message_bytes
        try:
            async for msg in self.ws:
                if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                    break
                kind = "text" if msg.type == WSMsgType.TEXT else "binary"
                if self.placement is not None:
                    await self._forward([(kind, msg.data)])
                elif kind == "binary":
                    await self.error("no_session", "binary PCM before session.create / session.attach")
                elif len(msg.data.encode()) > limit:
                    await self.error("message_too_large", f"message exceeds server.max_ws_message_bytes = {limit}")
                else:
                    await self._before_session(msg.data)
                if self.lost:
                    break
        finally:
            await self._cleanup()

    async def _before_session(self, text: str) -> None:
        """Until the socket is bound, the front door answers; create/attach pick the worker."""
        try:
            msg = parse_json(text)
        except ValueError as e:
            return await self.error("bad_json", f"text message is not valid JSON: {clip(str(e), 200)}")
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            return await self.error("bad_message", 'a text message must be a JSON object with a string "type"')
        kind = msg["type"]
        if kind == "ping":
            return await self.send({"type": "pong", **({"id": msg["id"]} if "id" in msg else {})})
        if kind == "session.create":
            refused = self._refuse_create(msg)
            if refused:
                return await self.error(*refused)
            try:
                self.placed_here = await self.fd.place(msg.get("mode", "assistant"), msg.get("output", "video"))
            except ClusterFull as e:
                return await self.error("cluster_full", f"could not create a session: {e}")
            except WorkerLost as e:
                return await self.error("session_failed", f"could not create a session: the worker did not start ({e})")
            await self._bind(self.placed_here, text)
        elif kind == "session.attach":
            placement = self.fd.routes.get(msg.get("session_id")) if isinstance(msg.get("session_id"), str) else None
            if placement is None:
                return await self.error("unknown_session", f"no session with id {clip(msg.get('session_id'))}")
            await self._bind(placement, text)
        else:
            await self.error("no_session", f"{clip(kind)} before session.create / session.attach")

    def _refuse_create(self, msg: dict) -> tuple[str, str] | None:
        """(code, message) for a ``session.create`` the worker would refuse, found before placing
        it (the worker checks again: the protocol code there has the last word)."""
        from engine.transports.ws import WS_MODES, PcmFormat, ProtocolError, _parse_output
        mode, avatar = msg.get("mode", "assistant"), msg.get("avatar")
        if not isinstance(mode, str) or mode not in WS_MODES:
            return "bad_mode", f"mode {clip(mode)} is not available over the WebSocket; use one of {list(WS_MODES)}"
        try:
            _parse_output(msg)      # "output": "video" / "motion" picks the session's resources
        except ProtocolError as e:
            return e.code, e.message
        if avatar is not None and (not isinstance(avatar, str) or not avatar):
            return "bad_avatar", "'avatar' must be a non-empty string"
        try:
            PcmFormat.parse(msg.get("format"), list(self.config.audio.input_sample_rates))
        except ProtocolError as e:
            return e.code, e.message
        refused = check_avatar(self.config, avatar)
        return (refused[0], f"could not create a session: {refused[1]}") if refused else None

    async def _bind(self, placement, first_text: str) -> None:
        self.placement = placement
        try:
            await self.fd.call(placement.actor.open_socket.remote(self.conn_id))
        except WorkerLost as e:
            return await self._worker_lost(e)
        self.pump = asyncio.get_running_loop().create_task(self._pump())
        await self._forward([("text", first_text)])

    async def _forward(self, items: list) -> None:
        try:
            await self.fd.call(self.placement.actor.feed.remote(self.conn_id, items))
        except WorkerLost as e:
            await self._worker_lost(e)

    async def _pump(self) -> None:
        """Worker → client: long polls of the worker's outbox, in order."""
        wait_s = self.config.cluster.relay_poll_s
        actor = self.placement.actor
        try:
            while not self.ws.closed:
                items = await self.fd.call(actor.take.remote(self.conn_id, wait_s),
                                           wait_s + self.config.cluster.call_timeout_s)
                for item in items:
                    if item[0] == "close":
                        await self.ws.close(code=item[1], message=item[2].encode()[:120])
                        return
                    if item[0] == "binary":     # motion mode: a MotionFrame + its PCM
                        await self.ws.send_bytes(item[1])
                        continue
                    text = item[1]
                    if self.placed_here is not None and text.startswith('{"type": "session.ready"'):
                        ready = json.loads(text)
                        if ready.get("created"):
                            self.fd.adopt(self.placed_here, ready["session_id"])
                            self.placed_here = None
                    await self.ws.send_str(text)
        except WorkerLost as e:
            await self._worker_lost(e)
        except (ConnectionError, RuntimeError):
            pass    # the client went away; run()'s cleanup tells the worker

    async def _worker_lost(self, e: Exception) -> None:
        if self.lost:
            return
        self.lost = True
        if self.placement is not None and self.placement.released:   # its session ended first
            log.info("ws %s: the session's worker has ended", self.conn_id[:8])
        else:
            log.warning("ws %s: the worker hosting its session was lost: %s", self.conn_id[:8], e)
        await self.error("session_closed", "the session has been closed: the worker hosting it was lost "
                                           "(node or process failure)", fatal=True)
        if self.placement is not None:
            self.fd.lost(self.placement)
        with contextlib.suppress(Exception):
            await self.ws.close(code=WSCloseCode.GOING_AWAY, message=b"worker lost")

    async def _cleanup(self) -> None:
        if self.placement is not None and not self.lost:
            with contextlib.suppress(WorkerLost):
                await self.fd.call(self.placement.actor.close_socket.remote(self.conn_id))
        if self.pump is not None:
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self.pump), 2.0)
            self.pump.cancel()
        if self.placed_here is not None:   # it placed a worker but never got a session on it
            self.fd.release(self.placed_here)


async def _ws(request: web.Request) -> web.StreamResponse:
    from engine.transports.ws import accept_websocket
    config: Config = request.app[CONFIG_KEY]
    ws = await accept_websocket(request, config)
    if isinstance(ws, web.WebSocketResponse):
        await SocketRelay(ws, request.app[FRONTDOOR_KEY], config).run()
    return ws


async def _healthz(request: web.Request) -> web.Response:
    fd: FrontDoor = request.app[FRONTDOOR_KEY]
    nodes = await fd.nodes()
    return web.json_response({"ok": True, "sessions": len(fd.routes), "cluster": {
        "nodes": len(nodes), "sessions_by_node": {k[:12]: len(v) for k, v in fd.placements_by_node().items()},
        "quarantined": len(fd.quarantine), "warm_workers": fd.pool.count()}})


async def _metrics(request: web.Request) -> web.Response:
    from prometheus_client import generate_latest
    return web.Response(body=generate_latest(request.app[FRONTDOOR_KEY].registry),
                        headers={"Content-Type": CONTENT_TYPE})


async def _startup(app: web.Application) -> None:
    app[FRONTDOOR_KEY].start()


async def _shutdown(app: web.Application) -> None:
    app[FRONTDOOR_KEY].close()


def create_cluster_app(config: Config, frontdoor: FrontDoor | None = None) -> web.Application:
    """The front door app (engine.server.build_app with the front door's handlers);
    ``frontdoor`` already connected to Ray (else one is made and connected)."""
    if frontdoor is None:
        frontdoor = FrontDoor(config)
        frontdoor.connect()
    routes = AppRoutes(offer=_offer, metrics=_metrics, healthz=_healthz, websocket=_ws,
                       on_startup=(_startup,), on_shutdown=(_shutdown,))
    return build_app(config, routes, {FRONTDOOR_KEY: frontdoor})
