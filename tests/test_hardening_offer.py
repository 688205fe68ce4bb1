"""POST /v1/offer against a real server on loopback: half-open and junk offers leave no session
behind, bodies are bounded however they are sent, bad input is a 4xx with a short message that
names no server path, viewers per session are capped (docs/security.md). Each probe runs beside a
well-behaved assistant session (tests/bystander.py) that must keep its frame rate and events."""
import asyncio
import json
import time

import pytest
from aiohttp import ClientSession

from engine.config import REPO_ROOT
from engine.server import PEERS_KEY
from bystander import bystander
from rtc_client import Viewer, use_loopback_ice
from ws_support import LiveServer

CONNECT_TIMEOUT_S = 1.5


@pytest.fixture
async def server(monkeypatch):
    use_loopback_ice(monkeypatch)
    srv = await LiveServer(webrtc={"connect_timeout_s": CONNECT_TIMEOUT_S},
                           server={"max_viewers_per_session": 2}).start()
    yield srv
    await srv.close()


async def _offer_sdp() -> str:
    """A complete aiortc offer (createOffer gathers the ICE candidates first)."""
    v = Viewer()
    await v.pc.setLocalDescription(await v.pc.createOffer())
    sdp = v.pc.localDescription.sdp
    await v.close()
    return sdp


async def _post(http, srv, **kw):
    async with http.post(f"{srv.http_url}/v1/offer", **kw) as resp:
        return resp.status, await resp.json()


async def _until(predicate, timeout_s: float) -> float | None:
    """Seconds until predicate() held, or None (polled at most timeout_s / 0.05 times)."""
    t0 = time.monotonic()
    for _ in range(int(timeout_s / 0.05) + 1):
        if predicate():
            return time.monotonic() - t0
        await asyncio.sleep(0.05)
    return None


async def test_junk_and_incomplete_offers_are_refused_without_a_session(server):
    async with bystander(server) as by:
        sdp = await _offer_sdp()
        assert "a=candidate:" in sdp and "m=audio" in sdp   # what a real (non-trickle) offer carries
        no_candidates = "\r\n".join(l for l in sdp.split("\r\n")
                                    if not l.startswith(("a=candidate:", "a=end-of-candidates")))
        async with ClientSession() as http:
            for body, words in [({"sdp": "v=0\r\n"}, "m= line"),
                                ({"sdp": "v=0\r\n" * 5, "type": "offer"}, "m= line"),
                                ({"sdp": no_candidates, "type": "offer"}, "ICE candidates")]:
                for _ in range(6):   # more than max_sessions would have been enough to fill it before
                    status, err = await _post(http, server, json=body)
                    assert (status, err["error"]) == (400, "bad_sdp") and words in err["message"], err
            assert by.others() == []   # (the bystander's session aside)
            status, err = await _post(http, server, data=json.dumps({"sdp": sdp}),
                                      headers={"Content-Type": "text/plain"})
            assert (status, err["error"]) == (415, "unsupported_media_type") and "application/json" in err["message"]
            assert by.others() == []   # (the bystander's session aside)


async def test_a_peer_that_never_connects_is_closed_with_its_session(server):
    async with bystander(server) as by:
        sdp = await _offer_sdp()   # its peer is gone: the server's ICE checks never succeed
        async with ClientSession() as http:
            status, answer = await _post(http, server, json={"sdp": sdp, "type": "offer"})
        assert status == 200, answer
        assert answer["session_id"] in server.registry
        took = await _until(lambda: not by.others(), CONNECT_TIMEOUT_S + 5.0)
        assert took is not None, "the half-open peer's session was never removed"
        assert took >= CONNECT_TIMEOUT_S - 0.5, f"removed after {took:.2f} s: before the timeout?"


async def test_a_connected_peer_outlives_the_connect_timeout(server):
    async with bystander(server) as by:
        v = Viewer()
        try:
            async with ClientSession() as http:
                answer = await v.connect(http, server.http_url)
            assert await _until(lambda: len(v.video) > 0, 15.0) is not None
            await asyncio.sleep(CONNECT_TIMEOUT_S + 0.5)
            assert answer["session_id"] in server.registry
        finally:
            await v.close()


async def test_bodies_are_bounded_and_bad_json_is_a_400(server):
    async with bystander(server) as by:
        limit = server.config.server.max_offer_bytes

        async def chunked():
            for _ in range(limit // 4096 + 8):
                yield b" " * 4096

        async with ClientSession() as http:
            status, err = await _post(http, server, data=chunked(), headers={"Content-Type": "application/json"})
            assert (status, err["error"]) == (413, "too_large")
            for raw in ["[" * 100_000 + "]" * 100_000, '{"sdp": "v=0", "n": 1e999}', '{"sdp": NaN}',
                        b'{"sdp": "\xff"}']:
                data = raw if isinstance(raw, bytes) else raw.encode()
                status, err = await _post(http, server, data=data, headers={"Content-Type": "application/json"})
                assert (status, err["error"]) == (400, "bad_json"), (raw[:20], err)
                assert len(err["message"]) < 400
        assert by.others() == []   # (the bystander's session aside)


async def test_errors_are_short_and_name_no_server_path(server):
    async with bystander(server) as by:
        sdp = await _offer_sdp()
        async with ClientSession() as http:
            cases = [({"avatar": "a" * 300}, 400, "bad_avatar"),
                     ({"avatar": "x/" * 200}, 400, "bad_avatar"),
                     ({"avatar": "../../etc/passwd"}, 400, "bad_avatar"),
                     ({"avatar": "nobody"}, 404, "unknown_avatar"),
                     ({"type": "t" * 200_000}, 400, "bad_type"),
                     ({"mode": "m" * 200_000}, 400, "bad_mode"),
                     ({"session_id": "s" * 200_000}, 404, "unknown_session")]
            for extra, code_status, code in cases:
                status, err = await _post(http, server, json={"sdp": sdp, "type": "offer", **extra})
                assert (status, err["error"]) == (code_status, code), (list(extra), err)
                assert len(err["message"]) < 400, len(err["message"])
                assert str(REPO_ROOT) not in err["message"] and "/assets/" not in err["message"], err
        assert by.others() == []   # (the bystander's session aside)


async def test_viewers_per_session_are_capped(server):
    async with bystander(server) as by:
        session = await server.registry.create("assistant")
        sdp = await _offer_sdp()
        async with ClientSession() as http:
            for _ in range(2):
                status, answer = await _post(http, server, json={"sdp": sdp, "type": "offer", "session_id": session.id})
                assert status == 200, answer
            status, err = await _post(http, server, json={"sdp": sdp, "type": "offer", "session_id": session.id})
            assert (status, err["error"]) == (429, "too_many_viewers") and "max_viewers_per_session" in err["message"]
            # the two viewers never connect: they time out and free their places; the session stays
            assert await _until(lambda: not server.app[PEERS_KEY],
                                CONNECT_TIMEOUT_S + 5.0) is not None
            status, answer = await _post(http, server, json={"sdp": sdp, "type": "offer", "session_id": session.id})
            assert status == 200, answer
        assert session.id in server.registry
