"""One aiohttp app factory (engine.server.build_app) behind both front-ends: the one-box server
(engine.server.create_app) and the cluster front door (engine.cluster.app.create_cluster_app).

Both apps are built for real and served on loopback; the front door's FrontDoor is made but never
connected to Ray (every request here is answered before a handler would need it). Checked: the
same guard (Origin, token, per-IP limits) and state, the routes each serves, the browser client
last, and the same answers from the shared parts over real HTTP.
"""
from __future__ import annotations

import contextlib

import pytest
from aiohttp import ClientSession, web

from engine.config import load_config, replace
from engine.server import (BUCKETS_KEY, CONFIG_KEY, CONNECTIONS_KEY, PEERS_KEY, REGISTRY_KEY, TOKEN_KEY,
                           WEB_DIR, _guard, create_app)


def cluster_app(config):
    from engine.cluster.app import FRONTDOOR_KEY, create_cluster_app
    from engine.cluster.frontdoor import FrontDoor
    # no warm pool, no load checks: started, they would talk to Ray
    config = replace(config, cluster={"warm_workers_per_node": 0, "saturated_frame_p95_ms": 0.0})
    app = create_cluster_app(config, FrontDoor(config))     # a FrontDoor not connected: no Ray needed
    assert isinstance(app[FRONTDOOR_KEY], FrontDoor)
    return app


def routes_of(app: web.Application) -> list[tuple[str, str]]:
    """(method, path or static prefix) in the order aiohttp matches them."""
    out = []
    for route in app.router.routes():
        info = route.resource.get_info()
        out.append((route.method, info.get("path") or info.get("formatter") or info.get("prefix")))
    return out


@pytest.fixture
def apps():
    config = load_config()
    return {"one-box": create_app(config), "cluster": cluster_app(config)}


def test_both_apps_share_the_guard_and_its_state(apps):
    for name, app in apps.items():
        assert list(app.middlewares) == [_guard], name
        for key in (CONFIG_KEY, TOKEN_KEY, PEERS_KEY, BUCKETS_KEY, CONNECTIONS_KEY):
            assert key in app, (name, key)
        assert app._client_max_size == max(app[CONFIG_KEY].server.max_offer_bytes,
                                           app[CONFIG_KEY].server.max_ws_message_bytes), name
    assert REGISTRY_KEY in apps["one-box"] and REGISTRY_KEY not in apps["cluster"]


def test_each_app_serves_its_routes_with_the_client_last(apps):
    shared = {("POST", "/v1/offer"), ("GET", "/metrics"), ("GET", "/healthz"), ("GET", "/v1/ws"), ("GET", "/")}
    one_box, cluster = routes_of(apps["one-box"]), routes_of(apps["cluster"])
    assert shared <= set(one_box) and shared <= set(cluster)
    assert {("GET", "/v1/avatar.glb"), ("GET", "/vr"), ("HEAD", "/vr"), ("HEAD", "/v1/avatar.glb")} <= set(one_box)
    assert not {p for _, p in cluster} & {"/v1/avatar.glb", "/vr", "/vr/"}   # the front door serves no VR client
    if WEB_DIR.is_dir():   # the static client's prefix matches every path: it must come last
        for name, app in apps.items():
            last = list(app.router.resources())[-1].get_info()
            assert last.get("directory") == WEB_DIR and last.get("prefix") == "", name


@contextlib.asynccontextmanager
async def serving(app: web.Application):
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()


async def _answers(app: web.Application) -> dict:
    """What the shared parts answer (no request here reaches a front door handler that needs Ray)."""
    out = {}
    async with serving(app) as base, ClientSession() as http:
        async with http.post(f"{base}/v1/offer", json={}, headers={"Origin": "https://evil.example"}) as r:
            out["foreign origin"] = (r.status, (await r.json())["error"])
        async with http.get(f"{base}/metrics") as r:
            out["metrics without token"] = (r.status, (await r.json())["error"])
        async with http.get(f"{base}/v1/ws?token=s3cret-token") as r:
            out["plain GET /v1/ws"] = (r.status, (await r.text()).split(";")[0])
        async with http.post(f"{base}/v1/offer?token=s3cret-token", data=b"x", headers={"Content-Type": "text/plain"}) as r:
            out["offer not JSON"] = (r.status, (await r.json())["error"])
        async with http.get(f"{base}/") as r:
            out["client"] = r.status
    return out


async def test_the_shared_parts_answer_alike_over_http():
    config = replace(load_config(), server={"token": "s3cret-token"})
    one_box, cluster = await _answers(create_app(config)), await _answers(cluster_app(config))
    assert one_box == cluster
    assert one_box["foreign origin"] == (403, "forbidden_origin")
    assert one_box["metrics without token"] == (401, "unauthorized")
    assert one_box["plain GET /v1/ws"] == (426, "this endpoint speaks WebSocket")
    assert one_box["offer not JSON"] == (415, "unsupported_media_type")
    assert one_box["client"] == 200
