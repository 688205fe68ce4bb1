"""The avatar dispatcher: an HTTP service that sends facecast avatar workers into LiveKit rooms.

    POST /launch {"livekit_url": "wss://...", "token": "<jwt>", "room_name"?: "..."}
        -> 202 {"worker_id": "..."}; 400 bad request; 401 (when a token is set); 503 when full
    GET /workers -> {"workers": [{"worker_id", "room_name", "state", "error"?}], "max_workers"}
    GET /healthz -> {"ok": true, "workers": n, "max_workers": m}

The agent's ``AvatarSession.start`` calls ``/launch``. Each worker (engine/integrations/livekit/
worker.py) runs as a task in this process, one facecast session each, at most
``livekit.max_workers`` at once (the capacity of this box: docs/deploy.md). Started by
``facecast livekit-avatar``. With a token (``server.token`` / $FACECAST_TOKEN) ``/launch``
and ``/workers`` need ``Authorization: Bearer TOKEN``.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import secrets
from dataclasses import dataclass, field
from typing import Awaitable, Callable

from aiohttp import web

from engine.config import Config

log = logging.getLogger(__name__)

WORKERS_KEY = web.AppKey("workers", dict)
KEEP_FINISHED = 32   # ended workers listed by /workers

Launch = Callable[[str, str], Awaitable[None]]   # (livekit_url, token) -> runs until the worker leaves


@dataclass
class Worker:
    worker_id: str
    room_name: str
    state: str = "starting"          # starting → running → finished | failed
    error: str | None = None
    task: asyncio.Task | None = field(default=None, repr=False)

    def as_dict(self) -> dict:
        d = {"worker_id": self.worker_id, "room_name": self.room_name, "state": self.state}
        if self.error:
            d["error"] = self.error
        return d


def _bad(code: str, message: str, status: int = 400) -> web.Response:
    return web.json_response({"error": code, "message": message}, status=status)


def create_dispatcher_app(config: Config, launch: Launch | None = None, token: str = "") -> web.Application:
    """``launch`` runs one worker (default: ``run_avatar_worker`` with this config)."""
    if launch is None:
        from engine.integrations.livekit.worker import run_avatar_worker

        async def launch(url: str, jwt: str) -> None:
            await run_avatar_worker(url, jwt, config=config)

    app = web.Application(client_max_size=64 * 1024)
    workers: dict[str, Worker] = {}
    app[WORKERS_KEY] = workers
    limit = config.livekit.max_workers

    def authorized(request: web.Request) -> bool:
        if not token:
            return True
        got = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return hmac.compare_digest(got.encode(), token.encode())

    async def run(worker: Worker, url: str, jwt: str) -> None:
        worker.state = "running"
        try:
            await launch(url, jwt)
            worker.state = "finished"
        except asyncio.CancelledError:
            worker.state = "finished"
            raise
        except Exception as e:
            worker.state, worker.error = "failed", str(e)[:300]
            log.warning("avatar worker %s (room %s) failed: %s", worker.worker_id, worker.room_name, e)

    async def handle_launch(request: web.Request) -> web.Response:
        if not authorized(request):
            return _bad("unauthorized", "this dispatcher needs 'Authorization: Bearer TOKEN'", 401)
        try:
            body = await request.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _bad("bad_json", "the body must be a JSON object")
        if not isinstance(body, dict):
            return _bad("bad_json", "the body must be a JSON object")
        unknown = set(body) - {"livekit_url", "token", "room_name"}
        if unknown:
            return _bad("bad_message", f"unknown field(s) {sorted(unknown)[:5]}")
        url, jwt, room = body.get("livekit_url"), body.get("token"), body.get("room_name", "")
        if not isinstance(url, str) or not url.startswith(("ws://", "wss://", "http://", "https://")):
            return _bad("bad_url", "livekit_url must be the LiveKit server's ws(s):// URL")
        if not isinstance(jwt, str) or jwt.count(".") != 2 or len(jwt) > 8192:
            return _bad("bad_token", "token must be a LiveKit access token (a JWT)")
        if not isinstance(room, str) or len(room) > 256:
            return _bad("bad_room", "room_name must be a string of at most 256 characters")
        active = sum(w.state in ("starting", "running") for w in workers.values())
        if active >= limit:
            return _bad("too_many_workers", f"this dispatcher already runs {limit} avatar workers "
                        "(livekit.max_workers)", 503)
        done = [w.worker_id for w in workers.values() if w.state in ("finished", "failed")]
        for wid in done[:max(0, len(done) - KEEP_FINISHED)]:
            workers.pop(wid)   # /workers shows the last few that ended
        worker = Worker(secrets.token_hex(6), room)
        workers[worker.worker_id] = worker
        worker.task = asyncio.get_running_loop().create_task(run(worker, url, jwt))
        return web.json_response({"worker_id": worker.worker_id}, status=202)

    async def handle_workers(request: web.Request) -> web.Response:
        if not authorized(request):
            return _bad("unauthorized", "this dispatcher needs 'Authorization: Bearer TOKEN'", 401)
        return web.json_response({"workers": [w.as_dict() for w in workers.values()], "max_workers": limit})

    async def handle_health(request: web.Request) -> web.Response:
        active = sum(w.state in ("starting", "running") for w in workers.values())
        return web.json_response({"ok": True, "workers": active, "max_workers": limit})

    async def on_cleanup(app: web.Application) -> None:
        tasks = [w.task for w in workers.values() if w.task is not None and not w.task.done()]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    app.router.add_post("/launch", handle_launch)
    app.router.add_get("/workers", handle_workers)
    app.router.add_get("/healthz", handle_health)
    app.on_cleanup.append(on_cleanup)
    return app
