"""The facecast HTTP server (aiohttp).

    POST /v1/offer   {"sdp", "type": "offer", "mode"?, "session_id"?, "avatar"?}
                     → {"sdp", "type": "answer", "session_id"}
    GET  /metrics    Prometheus text
    GET  /healthz    {"ok": true, "sessions": n}
    GET  /v1/ws      the assistant WebSocket API (engine/transports/ws.py), when present
    GET  /           the browser client (clients/web)

An offer without ``session_id`` creates a session owned by that peer (closed
when the peer goes away); with one, the peer views an existing session (e.g.
one an assistant drives over the WebSocket). Errors are JSON
``{"error": code, "message": ...}`` with a 4xx/5xx status.
"""
from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
from pathlib import Path

from aiohttp import web

from engine.config import REPO_ROOT, Config
from engine.metrics import CONTENT_TYPE, Metrics
from engine.session import MODES
from engine.sessions import SessionRegistry, TooManySessionsError, UnknownSessionError
from engine.transports.webrtc import WebRTCPeer

log = logging.getLogger(__name__)

WEB_DIR = REPO_ROOT / "clients" / "web"
MAX_OFFER_BYTES = 256 * 1024

REGISTRY_KEY = web.AppKey("registry", SessionRegistry)
PEERS_KEY = web.AppKey("peers", set)
CONFIG_KEY = web.AppKey("config", Config)
METRICS_KEY = web.AppKey("metrics", Metrics)
WARMUP_KEY = web.AppKey("warmup", asyncio.Future)


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


async def _offer(request: web.Request) -> web.Response:
    registry: SessionRegistry = request.app[REGISTRY_KEY]
    config: Config = request.app[CONFIG_KEY]
    if request.content_length is not None and request.content_length > MAX_OFFER_BYTES:
        return _error(413, "too_large", f"offer bodies are limited to {MAX_OFFER_BYTES} bytes")
    try:
        body = json.loads(await request.text())
    except ValueError as e:
        return _error(400, "bad_json", f"request body is not valid JSON: {e}")
    if not isinstance(body, dict):
        return _error(400, "bad_request", "request body must be a JSON object")
    sdp, type_ = body.get("sdp"), body.get("type", "offer")
    mode, sid, avatar = body.get("mode", "assistant"), body.get("session_id"), body.get("avatar")
    if not isinstance(sdp, str) or not sdp.strip():
        return _error(400, "bad_sdp", "'sdp' must be a non-empty string")
    if type_ != "offer":
        return _error(400, "bad_type", f"'type' must be 'offer', got {type_!r}")
    if mode not in MODES:
        return _error(400, "bad_mode", f"'mode' must be one of {list(MODES)}, got {mode!r}")
    if sid is not None and not isinstance(sid, str):
        return _error(400, "bad_session_id", "'session_id' must be a string")
    if avatar is not None and (not isinstance(avatar, str) or not avatar):
        return _error(400, "bad_avatar", "'avatar' must be a non-empty string")
    if not sdp.lstrip().startswith("v=0"):
        return _error(400, "bad_sdp", "'sdp' is not an SDP offer (it must start with 'v=0')")

    owned = sid is None
    if owned:
        try:
            session = await registry.create(mode, avatar=avatar)
        except TooManySessionsError as e:
            return _error(503, "too_many_sessions", str(e))
        except FileNotFoundError as e:
            return _error(404, "unknown_avatar", str(e))
        except ValueError as e:
            return _error(400, "bad_request", str(e))
    else:
        try:
            session = registry.get(sid)
        except UnknownSessionError as e:
            return _error(404, "unknown_session", str(e))

    peers: set = request.app[PEERS_KEY]

    async def on_closed(peer: WebRTCPeer) -> None:
        peers.discard(peer)
        if owned:
            await registry.remove(session.id)

    peer = WebRTCPeer(session, config, on_closed)
    peers.add(peer)
    try:
        answer = await peer.answer(sdp, type_)
    except Exception as e:  # aiortc raises ValueError and friends for SDP it cannot use
        log.info("offer rejected: %s: %s", type(e).__name__, e)
        await peer.close()
        return _error(400, "bad_sdp", f"could not use the SDP offer: {type(e).__name__}: {e}")
    return web.json_response({"sdp": answer.sdp, "type": answer.type, "session_id": session.id})


async def _metrics(request: web.Request) -> web.Response:
    metrics: Metrics = request.app[METRICS_KEY]
    body = metrics.render_text()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "sessions": len(request.app[REGISTRY_KEY])})


async def _index(request: web.Request) -> web.StreamResponse:
    index = WEB_DIR / "index.html"
    if not index.is_file():
        return web.Response(text="facecast server: the browser client (clients/web) is not installed\n")
    return web.FileResponse(index)


def _warm(config: Config) -> None:
    """Import, load and JIT-compile the renderer and generator once, so the first viewer does
    not wait for it (runs in a worker thread while the server already answers)."""
    from engine.motion.generators import create_generator
    from engine.motion.space import MotionFrame
    from engine.pipeline.render import create_renderer
    try:
        create_renderer(config).render(MotionFrame.neutral())
        create_generator(config)
    except Exception as e:  # the first session will report the real error to its client
        log.warning("warm-up failed: %s: %s", type(e).__name__, e)


async def _startup(app: web.Application) -> None:
    loop = asyncio.get_running_loop()
    app[WARMUP_KEY] = loop.run_in_executor(None, _warm, app[CONFIG_KEY])


async def _shutdown(app: web.Application) -> None:
    for peer in list(app[PEERS_KEY]):
        await peer.close()
    await app[REGISTRY_KEY].close_all()


def create_app(config: Config, registry: SessionRegistry | None = None) -> web.Application:
    metrics = registry.metrics if registry is not None else Metrics()
    registry = registry or SessionRegistry(config, metrics)
    app = web.Application(client_max_size=max(MAX_OFFER_BYTES, config.server.max_ws_message_bytes))
    app[CONFIG_KEY] = config
    app[METRICS_KEY] = metrics
    app[REGISTRY_KEY] = registry
    app[PEERS_KEY] = set()
    app.router.add_post("/v1/offer", _offer)
    app.router.add_get("/metrics", _metrics)
    app.router.add_get("/healthz", _healthz)
    if importlib.util.find_spec("engine.transports.ws") is not None:
        from engine.transports import ws
        ws.add_routes(app, registry, config)
    app.router.add_get("/", _index)
    if WEB_DIR.is_dir():
        app.router.add_static("/", WEB_DIR, show_index=False)
    app.on_startup.append(_startup)
    app.on_shutdown.append(_shutdown)
    return app


def web_dir() -> Path:
    return WEB_DIR
