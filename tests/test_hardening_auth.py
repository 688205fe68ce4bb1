"""Who may connect: the optional bearer token on /v1/offer, /v1/ws and /metrics, and the Origin
allow-list on /v1/offer and /v1/ws, against a real server on loopback (docs/security.md). Each
probe runs beside a well-behaved assistant session with the token (tests/bystander.py) that must
keep its frame rate and events."""
import json

import pytest
import websockets
from aiohttp import ClientSession
from websockets.exceptions import InvalidStatus

from engine.server import origin_allowed, security_warnings
from engine.config import load_config
from bystander import bystander
from ws_support import LiveServer

from facecast_client import FacecastClient

TOKEN = "s3cret-test-token"


@pytest.fixture
async def server():
    srv = await LiveServer(server={"token": TOKEN, "allowed_origins": ["https://app.example.com"]}).start()
    yield srv
    await srv.close()


async def _ws_status(url: str, **kw) -> int:
    """HTTP status of the WebSocket handshake (101 when it opened)."""
    try:
        async with websockets.connect(url, open_timeout=10, **kw):
            return 101
    except InvalidStatus as e:
        return e.response.status_code


async def test_missing_or_wrong_token_is_401_on_every_protected_route(server):
    async with bystander(server, TOKEN) as by:
        bearer = lambda t: {"Authorization": f"Bearer {t}"}
        async with ClientSession() as http:
            for headers in ({}, bearer("wrong-token-123"), {"Authorization": TOKEN}):
                async with http.get(server.http_url + "/metrics", headers=headers) as r:
                    assert r.status == 401 and (await r.json())["error"] == "unauthorized"
                async with http.post(server.http_url + "/v1/offer", json={"sdp": "v=0"}, headers=headers) as r:
                    assert r.status == 401 and (await r.json())["error"] == "unauthorized"
                assert await _ws_status(server.ws_url, additional_headers=headers) == 401
            assert await _ws_status(server.ws_url + "?token=nope") == 401
            async with http.get(server.http_url + "/metrics", headers=bearer(TOKEN)) as r:
                assert r.status == 200
            async with http.post(server.http_url + "/v1/offer", json={"sdp": "v=0"}, headers=bearer(TOKEN)) as r:
                assert (await r.json())["error"] == "bad_sdp"   # past the guard
            async with http.get(server.http_url + "/healthz") as r:   # not protected
                assert r.status == 200
        assert await _ws_status(server.ws_url + f"?token={TOKEN}") == 101   # the browser's way
        assert by.others() == []   # (the bystander's session aside)


async def test_the_python_client_connects_with_the_token(server, monkeypatch):
    async with bystander(server, TOKEN) as by:
        c = await FacecastClient.connect(server.ws_url, token=TOKEN)
        assert c.session_id in server.registry
        await c.close()
        monkeypatch.setenv("FACECAST_TOKEN", TOKEN)
        c = await FacecastClient.connect(server.ws_url)
        assert c.ready["type"] == "session.ready"
        await c.close()
        monkeypatch.setenv("FACECAST_TOKEN", "")
        with pytest.raises(InvalidStatus):
            await FacecastClient.connect(server.ws_url)


async def test_foreign_origins_are_403_and_local_or_listed_ones_pass(server):
    async with bystander(server, TOKEN) as by:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        port = server.server.port
        async with ClientSession() as http:
            for origin, allowed in [("https://evil.example", False), ("null", False),
                                    ("http://127.0.0.1.evil.example", False), (f"http://localhost:{port}", True),
                                    (f"http://127.0.0.1:{port}", True), ("http://[::1]:3000", True),
                                    ("https://app.example.com", True)]:
                async with http.post(server.http_url + "/v1/offer", json={"sdp": "v=0"},
                                     headers={**auth, "Origin": origin}) as r:
                    body = await r.json()
                    assert (r.status, body["error"]) == ((400, "bad_sdp") if allowed else (403, "forbidden_origin")), origin
                status = await _ws_status(server.ws_url, additional_headers=auth, origin=origin)
                assert status == (101 if allowed else 403), origin
        assert by.others() == []   # (the bystander's session aside)


def test_origin_rules_and_the_start_warning(monkeypatch):
    assert origin_allowed(None, "example.org", [])                       # not a browser
    assert origin_allowed("https://example.org", "example.org", [])      # same origin
    assert not origin_allowed("https://other.org", "example.org", [])
    assert origin_allowed("https://other.org", "example.org", ["*"])
    monkeypatch.delenv("FACECAST_TOKEN", raising=False)
    cfg = load_config()
    assert security_warnings(cfg, "127.0.0.1") == []
    loud = security_warnings(cfg, "0.0.0.0")
    assert loud and "WITHOUT a token" in loud[0]
    monkeypatch.setenv("FACECAST_TOKEN", TOKEN)
    assert security_warnings(cfg, "0.0.0.0") == []
