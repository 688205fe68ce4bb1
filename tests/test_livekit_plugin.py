"""The LiveKit plugin's agent side and the avatar dispatcher, with everything that runs without
a LiveKit server real: LiveKit's AgentSession, rtc.Room and DataStreamAudioOutput, livekit-api's
tokens, the dispatcher's aiohttp app on a loopback port, and the real avatar worker, which
tries to join a "LiveKit server" that refuses (a closed port) or never answers (a silent TCP
listener). Joining a real room is not verified here (no LiveKit server can be installed)."""
from __future__ import annotations

import asyncio
import socket

import jwt
import pytest

pytest.importorskip("livekit.agents")

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer
from livekit import rtc
from livekit.agents import AgentSession
from livekit.agents.voice.avatar import DataStreamAudioOutput

from engine.config import load_config, replace
from engine.integrations.livekit.agent import AvatarSession, AvatarSessionError
from engine.integrations.livekit.dispatcher import WORKERS_KEY, create_dispatcher_app

KEY, SECRET = "devkey", "a-secret-that-is-long-enough-for-hs256-0123456789"


def closed_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


async def dispatcher(**livekit):
    config = replace(load_config(), livekit={"connect_timeout_s": 1.0, **livekit})
    srv = TestServer(create_dispatcher_app(config), host="127.0.0.1", port=0)
    await srv.start_server()
    return srv


async def wait_state(srv, wid: str, states: tuple, timeout: float = 20.0) -> dict:
    for _ in range(int(timeout / 0.05)):
        w = srv.app[WORKERS_KEY][wid]
        if w.state in states:
            return w.as_dict()
        await asyncio.sleep(0.05)
    raise AssertionError(f"worker {wid} still {srv.app[WORKERS_KEY][wid].state}")


async def test_avatar_session_launches_a_worker_and_routes_the_agent_audio():
    srv = await dispatcher()
    try:
        session, room = AgentSession(), rtc.Room()
        room._info.name = "demo-room"   # what connecting would have set (no LiveKit server here)
        avatar = AvatarSession(dispatcher_url=f"http://127.0.0.1:{srv.port}")
        url = f"ws://127.0.0.1:{closed_port()}"
        await avatar.start(session, room, livekit_url=url, livekit_api_key=KEY, livekit_api_secret=SECRET,
                           agent_identity="agent-123")
        out = session.output.audio
        assert isinstance(out, DataStreamAudioOutput) and out._destination_identity == "facecast-avatar"
        assert out.sample_rate == 24000
        # the real worker tried to join the (absent) LiveKit server and says why it could not
        w = await wait_state(srv, avatar.worker_id, ("failed",))
        assert "could not join the LiveKit room" in w["error"]

        assert srv.app[WORKERS_KEY][avatar.worker_id].room_name == "demo-room"
        claims = jwt.decode(avatar.avatar_token("demo-room", "agent-123", KEY, SECRET), SECRET, algorithms=["HS256"])
        assert claims["sub"] == "facecast-avatar" and claims["iss"] == KEY and claims["kind"] == "agent"
        assert claims["video"]["roomJoin"] is True and claims["video"]["room"] == "demo-room"
        assert claims["attributes"] == {"lk.publish_on_behalf": "agent-123"}
    finally:
        await srv.close()


async def test_avatar_session_errors_are_clear(monkeypatch):
    for k in ("LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(AvatarSessionError, match="LIVEKIT_API_KEY"):
        await AvatarSession(dispatcher_url="http://127.0.0.1:1").start(AgentSession(), rtc.Room(), agent_identity="a")
    with pytest.raises(AvatarSessionError, match="after joining it"):   # (and no agent identity to find)
        await AvatarSession(dispatcher_url="http://127.0.0.1:1").start(
            AgentSession(), rtc.Room(), livekit_url="ws://x", livekit_api_key=KEY, livekit_api_secret=SECRET)
    room = rtc.Room()
    room._info.name = "demo-room"
    with pytest.raises(AvatarSessionError, match="cannot reach the facecast avatar dispatcher"):
        await AvatarSession(dispatcher_url=f"http://127.0.0.1:{closed_port()}").start(
            AgentSession(), room, livekit_url="ws://x", livekit_api_key=KEY, livekit_api_secret=SECRET,
            agent_identity="a")


async def test_dispatcher_capacity_timeout_and_bad_requests():
    silent = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)   # accepts, never answers
    silent_url = f"ws://127.0.0.1:{silent.sockets[0].getsockname()[1]}"
    srv = await dispatcher(max_workers=1)
    base = f"http://127.0.0.1:{srv.port}"
    token = AvatarSession().avatar_token("demo-room", "agent", KEY, SECRET)
    try:
        async with ClientSession() as http:
            for body, code in [([], "bad_json"), ({"livekit_url": "x", "token": token}, "bad_url"),
                               ({"livekit_url": silent_url, "token": "nope"}, "bad_token"),
                               ({"livekit_url": silent_url, "token": token, "extra": 1}, "bad_message")]:
                async with http.post(base + "/launch", json=body) as r:
                    assert r.status == 400 and (await r.json())["error"] == code
            async with http.post(base + "/launch", json={"livekit_url": silent_url, "token": token}) as r:
                assert r.status == 202
                wid = (await r.json())["worker_id"]
            async with http.post(base + "/launch", json={"livekit_url": silent_url, "token": token}) as r:
                assert r.status == 503 and (await r.json())["error"] == "too_many_workers"
            async with http.get(base + "/healthz") as r:
                assert await r.json() == {"ok": True, "workers": 1, "max_workers": 1}
            w = await wait_state(srv, wid, ("failed",))   # livekit.connect_timeout_s = 1
            assert "within 1 s" in w["error"]
            async with http.post(base + "/launch", json={"livekit_url": silent_url, "token": token}) as r:
                assert r.status == 202, "a failed worker frees its place"
            async with http.get(base + "/workers") as r:
                states = [w["state"] for w in (await r.json())["workers"]]
                assert states[0] == "failed" and len(states) == 2
    finally:
        await srv.close()
        silent.close()


async def test_dispatcher_token():
    config = load_config()
    srv = TestServer(create_dispatcher_app(config, token="s3cret"), host="127.0.0.1", port=0)
    await srv.start_server()
    try:
        async with ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{srv.port}/launch", json={}) as r:
                assert r.status == 401
            async with http.post(f"http://127.0.0.1:{srv.port}/launch", json={},
                                 headers={"Authorization": "Bearer s3cret"}) as r:
                assert r.status == 400
    finally:
        await srv.close()
