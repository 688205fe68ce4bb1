"""The WebSocket API under abuse, against a real server on loopback with real clients: floods of
tiny segments, PCM queued behind `speak`, one huge PCM message, too many sockets or syntheses,
odd JSON (docs/security.md). Each probe runs beside a well-behaved assistant session
(tests/bystander.py) that must keep its frame rate and events; the flood test runs its own."""
import asyncio
import json
import time

import numpy as np
import pytest
import websockets
from aiohttp import ClientSession

from bystander import bystander
from ws_support import LiveServer, pcm16, speech

from facecast_client import FacecastClient


async def _recv_until(ws, pred, timeout_s: float, max_msgs: int = 20000) -> list[dict]:
    """Events until one satisfies pred (bounded in time and count); the list includes it."""
    out, deadline = [], time.monotonic() + timeout_s
    for _ in range(max_msgs):
        left = deadline - time.monotonic()
        if left <= 0:
            break
        try:
            ev = json.loads(await asyncio.wait_for(ws.recv(), left))
        except asyncio.TimeoutError:
            break
        out.append(ev)
        if pred(ev):
            return out
    raise AssertionError(f"not seen within {timeout_s} s; last events: {out[-5:]}")


async def _create(ws, **msg) -> dict:
    await ws.send(json.dumps({"type": "session.create", **msg}))
    return (await _recv_until(ws, lambda e: e["type"] in ("session.ready", "error"), 30))[-1]


async def test_tiny_segment_flood_is_refused_and_the_loop_stays_responsive():
    srv = await LiveServer().start()
    try:
        good = await FacecastClient.connect(srv.ws_url)
        frames = srv.registry.get(good.session_id).video_frames()
        got = []

        async def watch():
            async for f in frames:
                got.append(time.monotonic())

        watcher = asyncio.create_task(watch())
        await good.stream_pcm(pcm16(speech("The well behaved session keeps talking while another floods.")),
                              realtime=False)
        await good.end_segment()

        cap = srv.config.pipeline.max_queued_segments
        flood = {}

        def flood_from_another_thread():
            """The flooding client runs in its own thread, so the server's loop does only server work."""
            from websockets.sync.client import connect
            with connect(srv.ws_url, open_timeout=30) as bad:
                bad.send(json.dumps({"type": "session.create"}))
                flood["ready"] = json.loads(bad.recv(timeout=30))
                t0 = time.monotonic()
                for _ in range(3000):
                    bad.send(b"\x00\x00")
                    bad.send('{"type": "segment.end"}')
                flood["sent_s"] = time.monotonic() - t0
                for _ in range(20000):   # bounded: replies until the refusal (or 10 s)
                    ev = json.loads(bad.recv(timeout=max(0.01, t0 + 10 - time.monotonic())))
                    if ev.get("code") == "too_many_segments":
                        flood["error"], flood["first_error_s"] = ev, time.monotonic() - t0
                        break
                session = srv.registry.get(flood["ready"]["session_id"])
                flood["segments"], flood["buffered_s"] = len(session.speech.segments), session.speech.buffered_s()

        latencies = []
        async with ClientSession() as http:
            async with http.get(srv.http_url + "/healthz") as r:   # warm the connection
                assert r.status == 200
            flooder = asyncio.create_task(asyncio.to_thread(flood_from_another_thread))
            for _ in range(60):   # /healthz round trips while the flood is handled (bounded: 60)
                t0 = time.monotonic()
                async with http.get(srv.http_url + "/healthz") as r:
                    assert r.status == 200
                latencies.append(time.monotonic() - t0)
                await asyncio.sleep(0.05)
            await asyncio.wait_for(flooder, 30)
        assert "max_queued_segments" in flood["error"]["message"] and not flood["error"]["fatal"]
        assert flood["segments"] <= cap
        # each tiny segment counts one frame (40 ms): what is queued is at most what the cap allows
        assert flood["buffered_s"] <= cap / srv.config.video.fps + 1e-6
        first_error_s = flood["first_error_s"]
        print(f"flood: first too_many_segments after {first_error_s:.3f} s; "
              f"/healthz max {max(latencies) * 1000:.0f} ms, median {np.median(latencies) * 1000:.0f} ms")
        assert max(latencies) < 0.5, f"/healthz took up to {max(latencies):.2f} s during the flood"
        assert first_error_s < 5.0
        # the well-behaved session kept producing frames all along (25 fps; allow gaps up to 0.5 s)
        assert len(got) > 25 and max(np.diff(got)) < 0.5, f"{len(got)} frames, max gap {max(np.diff(got)):.2f} s"
        watcher.cancel()
        await good.close()
    finally:
        await srv.close()


async def test_pcm_queued_behind_speak_counts_against_the_buffer_at_once():
    srv = await LiveServer(pipeline={"max_buffered_speech_s": 10.0}).start()
    try:
        async with bystander(srv) as by:
            async with websockets.connect(srv.ws_url) as ws:
                assert (await _create(ws))["type"] == "session.ready"
                second = pcm16(np.zeros(16000, np.float32) + 0.01)
                await ws.send(json.dumps({"type": "speak", "text": "Hello there, this is a test."}))
                for _ in range(20):          # 20 s of PCM while the speak is pending: 10 s fit
                    await ws.send(second)
                refused = []
                events = await _recv_until(ws, lambda e: e.get("code") == "buffer_full" and refused.append(e) is None
                                           and len(refused) == 10, 30)
                # refused when queued, while the speak they wait behind was still pending; before, they
                # were pushed (and only then refused) after its speech was queued
                assert not [e for e in events if e["type"] in ("speak.queued", "playback.started")], events
                session = srv.registry.get(by.others()[0])   # the probe's session, not the bystander's
                assert session.speech.buffered_s() + session.speech._reserved <= 10.0 + 1e-6
    finally:
        await srv.close()


async def test_pending_speaks_and_concurrent_syntheses_are_capped():
    srv = await LiveServer(tts={"max_pending_per_socket": 2, "max_concurrent": 1}).start()
    try:
        async with bystander(srv) as by:
            async with websockets.connect(srv.ws_url) as a, websockets.connect(srv.ws_url) as b:
                assert (await _create(a))["type"] == "session.ready"
                assert (await _create(b))["type"] == "session.ready"
                for _ in range(6):
                    await a.send(json.dumps({"type": "speak", "text": "One more sentence to say."}))
                events = await _recv_until(a, lambda e: e.get("code") == "too_many_pending", 10)
                assert "max_pending_per_socket" in events[-1]["message"]
                # one synthesis server-wide: a long one on A, then one on B is refused while it runs
                await a.send(json.dumps({"type": "interrupt"}))
                long_text = "This sentence is long enough to keep the synthesizer busy for a while. " * 60
                await a.send(json.dumps({"type": "speak", "text": long_text}))
                await asyncio.sleep(0.05)
                await b.send(json.dumps({"type": "speak", "text": "Me too."}))
                ev = (await _recv_until(b, lambda e: e["type"] in ("error", "speak.queued"), 30))[-1]
                assert ev.get("code") == "tts_busy" and "tts.max_concurrent" in ev["message"], ev
    finally:
        await srv.close()


async def test_one_big_pcm_message_starts_playing_quickly():
    """20 s of audio in one message. Before the split into 200 ms jobs, playback started only
    after the whole message was processed (32 s took 11.5 s); measured here ~0.2–0.5 s."""
    srv = await LiveServer().start()
    try:
        async with bystander(srv) as by:
            async with websockets.connect(srv.ws_url) as ws:
                assert (await _create(ws))["type"] == "session.ready"
                x = np.tile(speech("Twenty seconds of speech arrive in one message."), 10)[:20 * 16000]
                data = pcm16(x)
                assert len(data) <= srv.config.server.max_ws_message_bytes
                t0 = time.monotonic()
                await ws.send(data)
                await ws.send(json.dumps({"type": "segment.end"}))
                await _recv_until(ws, lambda e: e["type"] == "playback.started", 30)
                took = time.monotonic() - t0
                print(f"20 s in one message: playback.started after {took:.3f} s")
                assert took < 1.5, f"playback.started after {took:.2f} s"
    finally:
        await srv.close()


async def test_sockets_per_session_are_capped():
    srv = await LiveServer(server={"max_sockets_per_session": 2}).start()
    try:
        async with bystander(srv) as by:
            owner = await FacecastClient.connect(srv.ws_url)
            second = await FacecastClient.connect(srv.ws_url, session_id=owner.session_id)
            async with websockets.connect(srv.ws_url) as third:
                await third.send(json.dumps({"type": "session.attach", "session_id": owner.session_id}))
                ev = (await _recv_until(third, lambda e: e["type"] in ("error", "session.ready"), 10))[-1]
                assert ev.get("code") == "too_many_sockets" and "max_sockets_per_session" in ev["message"], ev
                await second.close()
                ok = None
                for _ in range(50):   # the closed socket's place is given back
                    await third.send(json.dumps({"type": "session.attach", "session_id": owner.session_id}))
                    ok = (await _recv_until(third, lambda e: e["type"] in ("error", "session.ready"), 10))[-1]
                    if ok["type"] == "session.ready":
                        break
                    await asyncio.sleep(0.1)
                assert ok["type"] == "session.ready", ok
            await owner.close()
    finally:
        await srv.close()


async def test_odd_json_and_long_values_get_short_clear_errors():
    srv = await LiveServer().start()
    try:
        async with bystander(srv) as by:
            async with websockets.connect(srv.ws_url, max_size=None) as ws:
                cases = [('{"type": "ping", "id": 1e999}', "bad_json"),
                         ("[" * 100_000 + "]" * 100_000, "bad_json"),
                         (json.dumps({"type": "x" * (512 * 1024)}), "unknown_type"),
                         (json.dumps({"type": "session.create", "avatar": "a" * 300}), "bad_avatar"),
                         (json.dumps({"type": "session.create", "avatar": "nobody"}), "unknown_avatar"),
                         (json.dumps({"type": "session.create", "mode": "m" * 100_000}), "bad_mode")]
                for text, code in cases:
                    await ws.send(text)
                    ev = (await _recv_until(ws, lambda e: e["type"] == "error", 10))[-1]
                    assert ev["code"] == code, (text[:30], ev)
                    assert len(ev["message"]) < 400 and "/assets" not in ev["message"], ev
                await ws.send(json.dumps({"type": "ping", "id": 7}))
                assert (await _recv_until(ws, lambda e: e["type"] == "pong", 10))[-1]["id"] == 7
            assert by.others() == []   # (the bystander's session aside)
    finally:
        await srv.close()
