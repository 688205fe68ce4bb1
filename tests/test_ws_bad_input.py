"""Bad input over the WebSocket gets a clear error event or a clean close, and never disturbs
another session: session A speaks a long utterance in real time while B misbehaves in every
way the protocol names, then vanishes mid-stream."""
import asyncio
import json

import pytest
import websockets

from ws_support import pcm16, speech

from facecast_client import FacecastClient

MAX_MSG = 64 * 1024
SMALL_MESSAGES = {"server": {"max_ws_message_bytes": MAX_MSG}}


async def _raw_error(url: str, first: str | bytes) -> dict:
    async with websockets.connect(url) as ws:
        await ws.send(first)
        return json.loads(await asyncio.wait_for(ws.recv(), 10))


async def test_unsupported_formats_are_refused_without_a_session(live_server):
    server = await live_server(**SMALL_MESSAGES)
    cases = [
        ({"sample_rate": 44100}, "unsupported_format", "44100"),
        ({"sample_rate": 8000}, "unsupported_format", "16000, 24000, 48000"),
        ({"encoding": "f32le"}, "unsupported_format", "s16le"),
        ({"channels": 2}, "unsupported_format", "mono"),
        ({"sample_rate": "16000"}, "unsupported_format", "sample_rate"),
        ({"bits": 16}, "bad_format", "bits"),
    ]
    for fmt, code, words in cases:
        err = await _raw_error(server.ws_url, json.dumps({"type": "session.create", "format": fmt}))
        assert err["type"] == "error" and err["code"] == code and words in err["message"], err
    err = await _raw_error(server.ws_url, json.dumps({"type": "session.create", "mode": "webcam"}))
    assert err["code"] == "bad_mode"
    err = await _raw_error(server.ws_url, json.dumps({"type": "session.create", "avatar": "../../etc/passwd"}))
    assert err["code"] == "bad_avatar" and "avatar" in err["message"] and "avatar folder" in err["message"]
    err = await _raw_error(server.ws_url, b"\x00\x01")
    assert err["code"] == "no_session"
    assert len(server.registry) == 0

    # a corrected session.create on the same socket works
    async with websockets.connect(server.ws_url) as ws:
        await ws.send(json.dumps({"type": "session.create", "format": {"sample_rate": 44100}}))
        assert json.loads(await ws.recv())["code"] == "unsupported_format"
        await ws.send(json.dumps({"type": "session.create", "format": {"sample_rate": 48000}}))
        ready = json.loads(await asyncio.wait_for(ws.recv(), 30))
        assert ready["type"] == "session.ready" and ready["format"]["sample_rate"] == 48000


async def test_misbehaving_client_does_not_disturb_another_session(live_server):
    server = await live_server(**SMALL_MESSAGES)
    a = await FacecastClient.connect(server.ws_url, sample_rate=16000)
    audio = speech("This session keeps talking while another client sends garbage, "
                   "oversized messages, and then disappears without a word.")
    sender = asyncio.create_task(a.stream_pcm(pcm16(audio), chunk_ms=40, realtime=True))

    b = await FacecastClient.connect(server.ws_url, sample_rate=16000)
    b_session = b.session_id
    bad_text = [
        ("{not json", "bad_json"),
        ('{"type": "state", "state": NaN}', "bad_json"),
        ("[1, 2, 3]", "bad_message"),
        ('{"kind": "speak"}', "bad_message"),
        ('{"type": "dance"}', "unknown_type"),
        ('{"type": "interrupt", "now": true}', "bad_message"),
        ('{"type": "state", "state": "sleeping"}', "bad_state"),
        ('{"type": "speak", "text": ""}', "tts_failed"),
        ('{"type": "speak", "text": 42}', "bad_text"),
        ('{"type": "speak", "text": "hi", "voice": "zz-none"}', "tts_failed"),
        ('{"type": "session.create"}', "session_exists"),
        ('{"type": "state", "state": "' + "x" * MAX_MSG + '"}', "message_too_large"),
    ]
    for text, code in bad_text:
        await b.ws.send(text)
        err = await b.wait_for("error", timeout=15)
        assert err["code"] == code and err["message"], (text[:60], err)
        assert err["fatal"] is False
    for data, code in [(b"\x01\x02\x03", "bad_pcm"), (b"\x00" * (MAX_MSG + 2), "message_too_large")]:
        await b.send_pcm(data)
        err = await b.wait_for("error", timeout=15)
        assert err["code"] == code and str(len(data)) in err["message"]
    # ... the socket is still usable after all that
    await b.stream_pcm(pcm16(speech("Still here.")), realtime=False)
    await b.end_segment()
    assert not (await b.wait_for("playback.finished", timeout=30))["interrupted"]

    # B starts speaking again and vanishes mid-stream (TCP reset, no close frame)
    await b.stream_pcm(pcm16(speech("I will vanish in the middle of this sentence.")), realtime=False)
    await b.wait_for("playback.started", timeout=20)
    b.ws.transport.abort()
    for _ in range(100):
        if server.registry.find(b_session) is None:
            break
        await asyncio.sleep(0.1)
    assert server.registry.find(b_session) is None, "the vanished client's session was not closed"

    # a message too large even to read closes that socket with 1009 (message too big)
    c = await FacecastClient.connect(server.ws_url)
    await c.send_pcm(b"\x00" * (5 * MAX_MSG))
    await asyncio.wait_for(c.ws.wait_closed(), 10)
    assert c.ws.close_code == 1009
    await c.close()

    # A played its whole utterance, uninterrupted, while all of this happened
    await sender
    await a.end_segment()
    finished = await a.wait_for("playback.finished", timeout=30)
    assert finished["interrupted"] is False
    assert finished["position_s"] == pytest.approx(len(audio) / 16000, abs=0.04)
    assert not [e for e in a.history if e["type"] == "error"]
    assert server.registry.ids() == [a.session_id]
    await a.close()


async def test_session_limit_is_a_clear_error_and_frees_up(live_server):
    srv = await live_server(server={"max_sessions": 1})
    first = await FacecastClient.connect(srv.ws_url)
    err = await _raw_error(srv.ws_url, json.dumps({"type": "session.create"}))
    assert err["code"] == "session_failed" and "max_sessions" in err["message"]
    await first.close()
    for _ in range(50):
        if len(srv.registry) == 0:
            break
        await asyncio.sleep(0.1)
    second = await FacecastClient.connect(srv.ws_url)  # the slot was given back
    assert second.session_id != first.session_id
    await second.close()
