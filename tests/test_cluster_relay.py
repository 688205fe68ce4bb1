"""The worker's end of a relayed WebSocket (engine/cluster/relay.py), with the real
AssistantConnection of engine/transports/ws.py driving it — no Ray, no session needed."""
from __future__ import annotations

import asyncio
import json

from aiohttp import WSCloseCode

from engine.cluster.relay import RelaySocket
from engine.config import load_config
from engine.sessions import SessionRegistry
from engine.audio.tts import Speaker
from engine.transports.ws import AssistantConnection


async def test_relay_keeps_order_both_ways_and_ends_with_the_close():
    sock = RelaySocket()
    conn = AssistantConnection(sock, SessionRegistry(load_config()), load_config(), Speaker())
    task = asyncio.ensure_future(conn.run())
    sock.feed([("text", json.dumps({"type": "ping", "id": i})) for i in range(5)])
    sock.feed([("binary", b"\x00\x00"), ("text", "{not json")])
    got = []
    while len(got) < 7:
        got += await sock.take(2.0)
    events = [json.loads(text) for kind, text in got]
    assert [e.get("id") for e in events[:5]] == [0, 1, 2, 3, 4]
    assert [e["code"] for e in events[5:]] == ["no_session", "bad_json"]
    assert await sock.take(0.05) == []                      # a poll with nothing to say returns empty
    sock.feed([("text", json.dumps({"type": "session.close"}))])     # no session yet: refused, not closed
    assert json.loads((await sock.take(2.0))[0][1])["code"] == "no_session"
    await sock.close(code=WSCloseCode.GOING_AWAY, message=b"bye")     # the worker side hangs up
    assert await sock.take(2.0) == [("close", int(WSCloseCode.GOING_AWAY), "bye")]
    await asyncio.wait_for(task, 2.0)                                 # and the connection's loop ends
    sock.feed([("text", "{}")])                                       # nothing is taken in after the close
    assert sock.closed and await sock.take(0.05) == []


async def test_a_client_that_leaves_ends_the_connection():
    sock = RelaySocket()
    conn = AssistantConnection(sock, SessionRegistry(load_config()), load_config(), Speaker())
    task = asyncio.ensure_future(conn.run())
    sock.client_closed()
    await asyncio.wait_for(task, 2.0)
    assert sock.peer_gone


async def test_binary_motion_messages_keep_their_place_and_a_lagging_poll_drops_the_oldest():
    from engine.cluster.relay import MAX_BINARY_QUEUED
    sock = RelaySocket()
    await sock.send_str('{"type": "session.ready"}')
    await sock.send_bytes(b"frame-0")
    await sock.send_str('{"type": "playback.started"}')
    assert await sock.take(1.0) == [("text", '{"type": "session.ready"}'), ("binary", b"frame-0"),
                                    ("text", '{"type": "playback.started"}')]
    for i in range(MAX_BINARY_QUEUED + 7):       # the front door did not poll for a while
        await sock.send_bytes(f"frame-{i}".encode())
        if i == 3:
            await sock.send_str("{}")            # text is never dropped
    got = await sock.take(1.0)
    frames = [data for kind, data in got if kind == "binary"]
    assert len(frames) == MAX_BINARY_QUEUED and sock.dropped_binary == 7
    assert frames[0] == b"frame-7" and frames[-1] == f"frame-{MAX_BINARY_QUEUED + 6}".encode()
    assert ("text", "{}") in got
    await sock.close()
    try:
        await sock.send_bytes(b"late")
    except ConnectionResetError:
        pass
    else:
        raise AssertionError("send_bytes on a closed relay socket")
