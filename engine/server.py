"""The facecast HTTP server (aiohttp).

    POST /v1/offer   {"sdp", "type": "offer", "mode"?, "session_id"?, "avatar"?, "mirror"?, "output"?}
                     → {"sdp", "type": "answer", "session_id"}
    GET  /metrics    Prometheus text
    GET  /healthz    {"ok": true, "sessions": n}
    GET  /v1/ws      the assistant WebSocket API (engine/transports/ws.py), when present
    GET  /           the browser client (clients/web)
    GET  /vr         the WebXR client (clients/vr; three.js from clients/vr/node_modules)
    GET  /v1/avatar.glb?avatar=NAME   the avatar as glTF (engine.avatar.gltf), for client-side rendering

An offer without ``session_id`` creates a session owned by that peer (closed
when the peer goes away, or when it does not connect within
``webrtc.connect_timeout_s``); with one, the peer views an existing session (e.g.
one an assistant drives over the WebSocket). Errors are JSON
``{"error": code, "message": ...}`` with a 4xx/5xx status.

Who may connect (docs/security.md): browser ``Origin``s other than same-origin,
loopback and ``server.allowed_origins`` are refused (403) on ``/v1/offer`` and
``/v1/ws``; with a token (``server.token`` / ``FACECAST_TOKEN``) those two and
``/metrics`` need ``Authorization: Bearer TOKEN`` (or ``?token=TOKEN``, for the
browser's WebSocket).
"""
from __future__ import annotations

import asyncio
import hmac
import ipaddress
import logging
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from aiohttp import web

from engine.config import REPO_ROOT, Config
from engine.metrics import CONTENT_TYPE, Metrics
from engine.ratelimit import ConnectionCounts, TokenBuckets
from engine.session import MODES, OUTPUTS
from engine.safety import clip, parse_json
from engine.sessions import SessionRegistry, UnknownSessionError, creation_error
from engine.transports.webrtc import WebRTCPeer

log = logging.getLogger(__name__)

WEB_DIR = REPO_ROOT / "clients" / "web"
VR_DIR = REPO_ROOT / "clients" / "vr"
MAX_OFFER_BYTES = 256 * 1024   # the default of server.max_offer_bytes
PROTECTED_PATHS = ("/v1/offer", "/v1/ws", "/metrics", "/v1/avatar.glb")   # need the token, when one is set
ORIGIN_CHECKED_PATHS = ("/v1/offer", "/v1/ws")          # refuse foreign browser Origins
TOKEN_ENV = "FACECAST_TOKEN"
LOOPBACK_NAMES = ("localhost",)

REGISTRY_KEY = web.AppKey("registry", SessionRegistry)
PEERS_KEY = web.AppKey("peers", set)
CONFIG_KEY = web.AppKey("config", Config)
METRICS_KEY = web.AppKey("metrics", Metrics)
WARMUP_KEY = web.AppKey("warmup", asyncio.Future)
TOKEN_KEY = web.AppKey("token", str)
BUCKETS_KEY = web.AppKey("buckets", TokenBuckets)
CONNECTIONS_KEY = web.AppKey("connections", ConnectionCounts)
LIMITED_PATHS = ("/v1/offer", "/v1/ws")   # per-IP rate limit and connection cap


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


# ---- who may connect ---------------------------------------------------------------------------
def server_token(config: Config) -> str:
    """The bearer token clients must present ('' = none): ``server.token``, else $FACECAST_TOKEN."""
    return config.server.token or os.environ.get(TOKEN_ENV, "").strip()


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host in LOOPBACK_NAMES or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def origin_allowed(origin: str | None, request_host: str, allowed: list[str]) -> bool:
    """No Origin (a non-browser client), same-origin, a loopback origin, or one listed."""
    if origin is None:
        return True
    if "*" in allowed or origin in allowed:
        return True
    try:
        parts = urlsplit(origin)
        host = parts.hostname
    except ValueError:
        return False
    if parts.scheme not in ("http", "https") or not host:
        return False     # includes the literal "null" origin of sandboxed pages and files
    return parts.netloc.lower() == request_host.lower() or is_loopback_host(host)


def _presented_token(request: web.Request) -> str | None:
    auth = request.headers.get("Authorization", "")
    if auth[:7].lower() == "bearer ":
        return auth[7:].strip()
    return request.query.get("token")


@web.middleware
async def _guard(request: web.Request, handler):
    config: Config = request.app[CONFIG_KEY]
    path = request.path
    if path in ORIGIN_CHECKED_PATHS:
        origin = request.headers.get("Origin")
        if not origin_allowed(origin, request.host, config.server.allowed_origins):
            log.warning("refused %s from Origin %s (not in server.allowed_origins)", path, clip(origin))
            return _error(403, "forbidden_origin", f"Origin {clip(origin)} may not use this server "
                                                   "(server.allowed_origins; see docs/security.md)")
    if path in LIMITED_PATHS:
        refused = _per_ip_limits(request, config)
        if refused is not None:
            return refused
    if path in PROTECTED_PATHS:
        token = request.app[TOKEN_KEY]
        if token:
            given = _presented_token(request)
            if given is None or not hmac.compare_digest(given.encode(), token.encode()):
                return web.json_response(
                    {"error": "unauthorized",
                     "message": "a valid token is required: 'Authorization: Bearer TOKEN' (or ?token=TOKEN)"},
                    status=401, headers={"WWW-Authenticate": 'Bearer realm="facecast"'})
    if path == "/v1/ws":   # the handler runs for the socket's whole life: count it meanwhile
        counts, ip = request.app[CONNECTIONS_KEY], client_ip(request)
        counts.add(ip)
        try:
            return await handler(request)
        finally:
            counts.remove(ip)
    return await handler(request)


def client_ip(request: web.Request) -> str:
    """The peer address of the TCP connection (a reverse proxy's, behind one: docs/security.md)."""
    return request.remote or "unknown"


def connections_of(app: web.Application, ip: str) -> int:
    """WebSockets plus live WebRTC peers this IP holds."""
    peers = sum(1 for p in app[PEERS_KEY] if getattr(p, "client_ip", None) == ip and not p.closed)
    return app[CONNECTIONS_KEY].get(ip) + peers


def _per_ip_limits(request: web.Request, config: Config) -> web.Response | None:
    ip = client_ip(request)
    cap = config.server.max_connections_per_ip
    if cap and connections_of(request.app, ip) >= cap:
        return _error(429, "too_many_connections", f"this address already holds {cap} connections "
                                                   f"(server.max_connections_per_ip = {cap}); close one first")
    wait = request.app[BUCKETS_KEY].take(ip)
    if wait > 0:
        s = config.server
        resp = _error(429, "rate_limited", f"too many requests from this address (server.rate_limit_requests = "
                                           f"{s.rate_limit_requests} per {s.rate_limit_window_s:g} s); "
                                           f"retry in {wait:.1f} s")
        resp.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
        return resp
    return None


def security_warnings(config: Config, host: str) -> list[str]:
    """What ``facecast serve`` warns about at start (docs/security.md)."""
    warnings = []
    if not server_token(config) and not is_loopback_host(host):
        warnings.append(f"!!! facecast is listening on {host}, beyond this machine, WITHOUT a token: anyone "
                        f"who can reach it may open sessions. Set server.token or {TOKEN_ENV} "
                        "(docs/security.md). !!!")
    if "*" in config.server.allowed_origins:
        warnings.append('server.allowed_origins contains "*": any web page may drive this server')
    return warnings


# ---- POST /v1/offer ----------------------------------------------------------------------------
async def _read_bounded(request: web.Request, limit: int) -> bytes | None:
    """The body, or None once it exceeds ``limit`` bytes (whatever Content-Length claims, and
    with chunked transfer encoding too)."""
    chunks, size = [], 0
    while True:
        chunk = await request.content.read(64 * 1024)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)


def check_sdp_offer(sdp: str) -> str | None:
    """Why this SDP cannot be a complete (non-trickle) offer, or None. The server answers once,
    without trickle ICE, so the offer must carry its media and its ICE candidates (aiortc's
    createOffer gathers them first; browsers after iceGatheringState == "complete")."""
    if not sdp.lstrip().startswith("v=0"):
        return "'sdp' is not an SDP offer (it must start with 'v=0')"
    lines = [line.strip() for line in sdp.splitlines()]
    if not any(line.startswith("m=") for line in lines):
        return "the SDP offer has no media section (m= line)"
    if not any(line.startswith(("a=candidate:", "a=end-of-candidates")) for line in lines):
        return ("the SDP offer carries no ICE candidates (a=candidate:); send it once ICE gathering "
                "is complete (this server does not take trickled candidates)")
    return None


async def read_offer(request: web.Request, config: Config) -> dict | web.Response:
    """The validated body of ``POST /v1/offer`` — keys sdp, type, mode, session_id, avatar,
    mirror, output — or the error response to send (also used by the cluster front door)."""
    limit = config.server.max_offer_bytes
    if request.content_type != "application/json":
        return _error(415, "unsupported_media_type",
                      f"send the offer as JSON with 'Content-Type: application/json' (got {clip(request.content_type)})")
    if request.content_length is not None and request.content_length > limit:
        return _error(413, "too_large", f"offer bodies are limited to {limit} bytes (server.max_offer_bytes)")
    raw = await _read_bounded(request, limit)
    if raw is None:
        return _error(413, "too_large", f"offer bodies are limited to {limit} bytes (server.max_offer_bytes)")
    try:
        body = parse_json(raw.decode("utf-8"))
    except ValueError as e:   # UnicodeDecodeError is a ValueError too
        return _error(400, "bad_json", f"request body is not valid JSON: {clip(str(e), 200)}")
    if not isinstance(body, dict):
        return _error(400, "bad_request", "request body must be a JSON object")
    sdp, type_, mirror = body.get("sdp"), body.get("type", "offer"), body.get("mirror")
    mode, sid, avatar = body.get("mode", "assistant"), body.get("session_id"), body.get("avatar")
    output = body.get("output")
    if not isinstance(sdp, str) or not sdp.strip():
        return _error(400, "bad_sdp", "'sdp' must be a non-empty string")
    if type_ != "offer":
        return _error(400, "bad_type", f"'type' must be 'offer', got {clip(type_)}")
    if not isinstance(mode, str) or mode not in MODES:
        return _error(400, "bad_mode", f"'mode' must be one of {list(MODES)}, got {clip(mode)}")
    if sid is not None and not isinstance(sid, str):
        return _error(400, "bad_session_id", "'session_id' must be a string")
    if avatar is not None and (not isinstance(avatar, str) or not avatar):
        return _error(400, "bad_avatar", "'avatar' must be a non-empty string")
    if mirror is not None and not isinstance(mirror, bool):
        return _error(400, "bad_mirror", f"'mirror' must be true or false, got {clip(mirror)}")
    if output is not None and (not isinstance(output, str) or output not in OUTPUTS):
        return _error(400, "bad_output", f"'output' must be one of {list(OUTPUTS)}, got {clip(output)}")
    why = check_sdp_offer(sdp)
    if why:
        return _error(400, "bad_sdp", why)
    if output == "motion" and not any(line.strip().startswith("m=application") for line in sdp.splitlines()):
        return _error(400, "no_data_channel", "a motion-mode offer must carry a data channel labelled 'motion' "
                                              "(create it before createOffer); the motion frames travel on it")
    return {"sdp": sdp, "type": type_, "mode": mode, "session_id": sid, "avatar": avatar, "mirror": mirror,
            "output": output}


async def _offer(request: web.Request) -> web.Response:
    registry: SessionRegistry = request.app[REGISTRY_KEY]
    config: Config = request.app[CONFIG_KEY]
    offer = await read_offer(request, config)
    if isinstance(offer, web.Response):
        return offer
    sdp, type_, mode, sid = offer["sdp"], offer["type"], offer["mode"], offer["session_id"]
    avatar, mirror, output = offer["avatar"], offer["mirror"], offer["output"]
    peers: set = request.app[PEERS_KEY]
    owned = sid is None
    if owned:
        try:
            kwargs = {"output": output} if output == "motion" else {}
            session = await registry.create(mode, avatar=avatar, mirror=mirror, **kwargs)
        except Exception as e:
            code, message = creation_error(e)
            if code == "session_failed":
                log.exception("offer: session creation failed")
            status = {"bad_avatar": 400, "unknown_avatar": 404, "too_many_sessions": 503}.get(code, 500)
            return _error(status, code, message)
    else:
        try:
            session = registry.get(sid)
        except UnknownSessionError as e:
            return _error(404, "unknown_session", str(e))
        if output is not None and output != session.output:
            return _error(400, "bad_output", f"session {clip(sid)} has output {session.output!r}, not {output!r}")
        viewers = sum(1 for p in peers if p.session is session and not p.closed)
        cap = config.server.max_viewers_per_session
        if viewers >= cap:
            return _error(429, "too_many_viewers", f"session {clip(sid)} already has {viewers} viewers "
                                                   f"(server.max_viewers_per_session = {cap})")

    async def on_closed(peer: WebRTCPeer) -> None:
        peers.discard(peer)
        if owned:
            await registry.remove(session.id)

    peer = WebRTCPeer(session, config, on_closed)
    peer.client_ip = client_ip(request)   # counts toward server.max_connections_per_ip while alive
    peers.add(peer)
    try:
        answer = await peer.answer(sdp, type_)
    except Exception as e:  # aiortc raises ValueError and friends for SDP it cannot use
        log.info("offer rejected: %s: %s", type(e).__name__, clip(str(e), 300))
        await peer.close()
        return _error(400, "bad_sdp", f"could not use the SDP offer: {type(e).__name__}: {clip(str(e), 200)}")
    return web.json_response({"sdp": answer.sdp, "type": answer.type, "session_id": session.id})


async def _metrics(request: web.Request) -> web.Response:
    metrics: Metrics = request.app[METRICS_KEY]
    body = metrics.render_text()
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


async def _healthz(request: web.Request) -> web.Response:
    body = {"ok": True, "sessions": len(request.app[REGISTRY_KEY])}
    warm = request.app.get(WARMUP_KEY)
    if warm is not None and not warm.done():
        body["warming"] = True     # the model and renderer are still loading (the browser page says so)
    return web.json_response(body)


async def _index(request: web.Request) -> web.StreamResponse:
    index = WEB_DIR / "index.html"
    if not index.is_file():
        return web.Response(text="facecast server: the browser client (clients/web) is not installed\n")
    return web.FileResponse(index)


GLB_CACHE_KEY = web.AppKey("glb_cache", dict)


async def _avatar_glb(request: web.Request) -> web.Response:
    """The avatar (``?avatar=NAME`` in the avatar folder, default the server's) as GLB, made once
    per file version and kept in memory."""
    from engine.sessions import BadAvatarError, UnknownAvatarError, resolve_avatar
    config: Config = request.app[CONFIG_KEY]
    try:
        path = resolve_avatar(config, request.query.get("avatar"))
    except BadAvatarError as e:
        return _error(400, "bad_avatar", str(e))
    except UnknownAvatarError as e:
        return _error(404, "unknown_avatar", str(e))
    cache = request.app[GLB_CACHE_KEY]   # path → (file version, GLB): one entry per avatar file
    version = path.stat().st_mtime_ns
    if cache.get(str(path), (None,))[0] != version:
        from engine.avatar.asset import AvatarError, load_avatar
        from engine.avatar.gltf import avatar_to_glb
        try:
            avatar = await asyncio.get_running_loop().run_in_executor(None, load_avatar, path)
            glb = await asyncio.get_running_loop().run_in_executor(
                None, avatar_to_glb, avatar, (config.video.width, config.video.height))
        except AvatarError:
            log.exception("avatar.glb: could not export %s", path)
            return _error(500, "bad_avatar", "the avatar could not be exported (details are in the server log)")
        cache[str(path)] = (version, glb)
    return web.Response(body=cache[str(path)][1], content_type="model/gltf-binary")


async def _vr_index(request: web.Request) -> web.StreamResponse:
    if not (VR_DIR / "index.html").is_file():
        return web.Response(status=404, text="the VR client (clients/vr) is not installed\n")
    if not (VR_DIR / "node_modules" / "three" / "build").is_dir():
        return web.Response(status=503, text="the VR client needs three.js: run ./facecast.sh setup "
                                             "(npm ci --prefix clients/vr)\n")
    return web.FileResponse(VR_DIR / "index.html")


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


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
AppHook = Callable[[web.Application], Awaitable[None]]


@dataclass(frozen=True)
class AppRoutes:
    """The handlers behind the routes every facecast HTTP app serves: what differs between the
    one-box server (``create_app``) and the cluster front door (``engine.cluster.app``)."""
    offer: Handler                                        # POST /v1/offer
    metrics: Handler                                      # GET /metrics
    healthz: Handler                                      # GET /healthz
    websocket: Handler | None = None                      # GET /v1/ws (None: not served)
    more_get: tuple[tuple[str, Handler], ...] = ()        # more GET routes: (path, handler)
    static: tuple[tuple[str, Path], ...] = ()             # (URL prefix, folder), served when the folder exists
    on_startup: tuple[AppHook, ...] = ()
    on_shutdown: tuple[AppHook, ...] = ()


def build_app(config: Config, routes: AppRoutes, state: dict | None = None) -> web.Application:
    """The one aiohttp application both front-ends serve: the guard middleware (Origin check,
    token, per-IP limits), its state (config, token, rate buckets, connection counts, the WebRTC
    peers), ``state``'s own keys, the routes, and the browser client at ``/`` (last: its static
    prefix matches every path)."""
    app = web.Application(client_max_size=max(config.server.max_offer_bytes, config.server.max_ws_message_bytes),
                          middlewares=[_guard])
    app[CONFIG_KEY] = config
    app[TOKEN_KEY] = server_token(config)
    app[PEERS_KEY] = set()
    app[BUCKETS_KEY] = TokenBuckets(config.server.rate_limit_requests, config.server.rate_limit_window_s)
    app[CONNECTIONS_KEY] = ConnectionCounts()
    for key, value in (state or {}).items():
        app[key] = value
    app.router.add_post("/v1/offer", routes.offer)
    app.router.add_get("/metrics", routes.metrics)
    app.router.add_get("/healthz", routes.healthz)
    if routes.websocket is not None:
        app.router.add_get("/v1/ws", routes.websocket)
    for path, handler in routes.more_get:
        app.router.add_get(path, handler)
    for prefix, folder in routes.static:
        if folder.is_dir():
            app.router.add_static(prefix, folder, show_index=False)
    app.router.add_get("/", _index)
    if WEB_DIR.is_dir():
        app.router.add_static("/", WEB_DIR, show_index=False)
    app.on_startup.extend(routes.on_startup)
    app.on_shutdown.extend(routes.on_shutdown)
    return app


def create_app(config: Config, registry: SessionRegistry | None = None) -> web.Application:
    """The one-box server: sessions in this process (``registry``; made here when None)."""
    from engine.transports.ws import websocket_handler
    metrics = registry.metrics if registry is not None else Metrics()
    registry = registry or SessionRegistry(config, metrics)
    routes = AppRoutes(offer=_offer, metrics=_metrics, healthz=_healthz,
                       websocket=websocket_handler(registry, config),
                       more_get=(("/v1/avatar.glb", _avatar_glb), ("/vr", _vr_index)),
                       static=(("/vr/", VR_DIR),), on_startup=(_startup,), on_shutdown=(_shutdown,))
    return build_app(config, routes, {METRICS_KEY: metrics, REGISTRY_KEY: registry, GLB_CACHE_KEY: {}})


def web_dir() -> Path:
    return WEB_DIR
