"""Offer endpoint errors, viewers of existing sessions (H.264), peers that leave or vanish."""
import asyncio
import os
import signal
import sys
from pathlib import Path

import numpy as np
from aiohttp import ClientSession

from engine.server import REGISTRY_KEY

from rtc_client import Viewer

TESTS = Path(__file__).parent

VANISHING_PEER = """
import asyncio, sys
sys.path.insert(0, {tests!r})
from aiohttp import ClientSession
from rtc_client import Viewer, use_loopback_ice
use_loopback_ice()
async def main():
    v = Viewer()
    async with ClientSession() as http:
        await v.connect(http, {base!r}, mode="assistant")
    while True:
        await asyncio.sleep(0.2)
        if len(v.video) > 10:
            print("receiving", flush=True)
asyncio.run(main())
"""


SERVER_CONFIG = {"webrtc": {"peer_timeout_s": 2.0}, "server": {"max_sessions": 3}}


async def _until(predicate, timeout_s: float) -> bool:
    for _ in range(int(timeout_s / 0.1)):
        if predicate():
            return True
        await asyncio.sleep(0.1)
    return predicate()


async def test_bad_offers_get_clear_json_errors(live_server):
    server = await live_server(**SERVER_CONFIG)
    base, app = server.http_url, server.app
    offer = Viewer()
    await offer.pc.setLocalDescription(await offer.pc.createOffer())
    good_sdp = offer.pc.localDescription.sdp
    await offer.close()
    cases = [
        (b"{not json", 400, "bad_json"),
        ({"type": "offer"}, 400, "bad_sdp"),
        ({"sdp": "hello", "type": "offer"}, 400, "bad_sdp"),
        ({"sdp": "v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=garbage\r\n", "type": "offer"}, 400, "bad_sdp"),
        ({"sdp": good_sdp, "type": "answer"}, 400, "bad_type"),
        ({"sdp": good_sdp, "type": "offer", "mode": "karaoke"}, 400, "bad_mode"),
        ({"sdp": good_sdp, "type": "offer", "session_id": "no-such-session"}, 404, "unknown_session"),
        ({"sdp": good_sdp, "type": "offer", "avatar": "../../etc/passwd"}, 400, "bad_avatar"),
        ({"sdp": good_sdp, "type": "offer", "avatar": "nobody"}, 404, "unknown_avatar"),
        ({"sdp": "v=0\r\n" + "a=x\r\n" * 60000, "type": "offer"}, 413, "too_large"),
    ]
    async with ClientSession() as http:
        for body, status, code in cases:
            kw = ({"data": body, "headers": {"Content-Type": "application/json"}} if isinstance(body, bytes)
                  else {"json": body})
            resp = await http.post(f"{base}/v1/offer", **kw)
            err = await resp.json()
            assert (resp.status, err["error"]) == (status, code), (body, err)
            assert err["message"]
    assert len(app[REGISTRY_KEY]) == 0, "a rejected offer must not leave a session behind"


async def test_viewer_of_an_existing_session_with_h264(live_server):
    server = await live_server(**SERVER_CONFIG)
    base, app = server.http_url, server.app
    registry = app[REGISTRY_KEY]
    session = await registry.create("assistant")
    viewer = Viewer(video_codec="H264")
    async with ClientSession() as http:
        answer = await viewer.connect(http, base, session_id=session.id)
    assert answer["session_id"] == session.id
    assert "H264" in answer["sdp"] and "VP8" not in answer["sdp"]
    session.push_speech(np.zeros(16000, np.float32), 16000)
    assert await _until(lambda: len(viewer.video) >= 10 and len(viewer.audio) >= 20, 15)
    await viewer.close()
    await asyncio.sleep(0.5)
    assert session.id in registry and not session.closed   # the viewer did not own it


async def test_a_peer_that_leaves_or_vanishes_is_cleaned_up_and_others_keep_running(live_server):
    server = await live_server(**SERVER_CONFIG)
    base, app = server.http_url, server.app
    registry = app[REGISTRY_KEY]
    stay = Viewer()
    leave = Viewer()
    async with ClientSession() as http:
        await stay.connect(http, base, mode="assistant")
        await leave.connect(http, base, mode="assistant")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", VANISHING_PEER.format(tests=str(TESTS), base=base),
        stdout=asyncio.subprocess.PIPE, cwd=TESTS.parent)
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), 60)
        assert line.decode().strip() == "receiving"
        assert len(registry) == 3
        extra = Viewer()
        async with ClientSession() as http:                  # server.max_sessions = 3
            await extra.pc.setLocalDescription(await extra.pc.createOffer())
            resp = await http.post(f"{base}/v1/offer", json={"sdp": extra.pc.localDescription.sdp, "type": "offer"})
            assert resp.status == 503 and (await resp.json())["error"] == "too_many_sessions"
        await extra.close()
        await leave.close()                                  # a clean goodbye
        assert await _until(lambda: len(registry) == 2, 10)
        os.kill(proc.pid, signal.SIGKILL)                    # no goodbye at all
        await proc.wait()
        seen = len(stay.video)
        assert await _until(lambda: len(registry) == 1, 12), "vanished peer's session was not cleaned up"
        n = len(stay.video)
        assert n > seen + 25                                 # kept streaming meanwhile
        assert await _until(lambda: len(stay.video) > n + 10, 5)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await stay.close()
