"""The assistant WebSocket API end to end: a real server on 127.0.0.1 (real sessions, renderer,
motion generator, real-time clock) and real WebSocket clients (the bundled `websockets` client).

Timing assertions here are about media time (pts on the session clock), which a slow machine
does not change; waits are generous.
"""
import asyncio
import time

import pytest

from ws_support import frame_mouth_weight, pcm16, speech

from facecast_client import FacecastClient, FacecastError

FPS = 25


def _types(history, *wanted):
    return [e["type"] for e in history if e["type"] in wanted]


async def test_full_protocol_sequence(server):
    async with await FacecastClient.connect(server.ws_url, sample_rate=24000) as c:
        ready = c.ready
        assert ready["type"] == "session.ready" and ready["protocol"] == 1
        assert ready["created"] is True and ready["mode"] == "assistant"
        assert ready["format"] == {"encoding": "s16le", "sample_rate": 24000, "channels": 1}
        assert ready["viewer"]["session_id"] == c.session_id
        assert server.registry.find(c.session_id) is not None

        await c.set_state("thinking")
        assert (await c.wait_for("state", timeout=5))["state"] in ("idle", "thinking")
        while (await c.wait_for("state", timeout=5))["state"] != "thinking":
            pass

        audio = speech("Hello there. This is the first segment.", rate=24000)
        await c.stream_pcm(pcm16(audio), chunk_ms=40, realtime=False)
        await c.end_segment()
        started = await c.wait_for("playback.started", timeout=20)
        finished = await c.wait_for("playback.finished", timeout=30)
        assert finished["segment"] == started["segment"]
        assert finished["interrupted"] is False
        assert finished["position_s"] == pytest.approx(len(audio) / 24000, abs=1 / FPS)

        # the next segment is server-side TTS
        await c.speak("And this one comes from the server.")
        queued = await c.wait_for("speak.queued", timeout=20)
        started2 = await c.wait_for("playback.started", timeout=20)
        finished2 = await c.wait_for("playback.finished", timeout=30)
        assert started2["segment"] > started["segment"] == finished["segment"]
        assert finished2["segment"] == started2["segment"] and not finished2["interrupted"]
        assert finished2["position_s"] == pytest.approx(queued["duration_s"], abs=1 / FPS)

        pong_wait = c.wait_for("pong", timeout=5)
        await c.send_json({"type": "ping", "id": 42})
        assert (await pong_wait)["id"] == 42

        states = [e["state"] for e in c.history if e["type"] == "state"]
        assert "thinking" in states and "speaking" in states
        assert states.index("speaking") > states.index("thinking")
        assert _types(c.history, "playback.started", "playback.finished") == [
            "playback.started", "playback.finished"] * 2
        sid = c.session_id
    for _ in range(50):  # the socket closed: the session it created is closed too
        if server.registry.find(sid) is None:
            break
        await asyncio.sleep(0.1)
    assert server.registry.find(sid) is None


async def test_positions_of_back_to_back_segments(server):
    """Segments pushed faster than real time play one after the other; each reports its length."""
    async with await FacecastClient.connect(server.ws_url, sample_rate=16000) as c:
        clips = [speech(t) for t in ("One.", "Two words here.", "A third and rather longer sentence.")]
        for clip in clips:
            await c.send_pcm(pcm16(clip))
            await c.end_segment()
        finished = [await c.wait_for("playback.finished", timeout=30) for _ in clips]
        for clip, ev in zip(clips, finished):
            assert not ev["interrupted"]
            assert ev["position_s"] == pytest.approx(len(clip) / 16000, abs=1 / FPS)
        assert [e["segment"] for e in finished] == sorted({e["segment"] for e in finished})


async def test_interrupt_stops_lips_within_150ms_and_reports_position(server):
    async with await FacecastClient.connect(server.ws_url, sample_rate=48000) as c:
        session = server.registry.find(c.session_id)
        frames = session.video_frames(capacity=2000)   # tap the session's own output
        audio = speech("Hello there, this is a long sentence that will be cut off in the middle "
                       "by an interruption from the user.", rate=48000)
        await c.send_pcm(pcm16(audio[: len(audio) // 2]))
        await c.send_pcm(pcm16(audio[len(audio) // 2:]))
        started = await c.wait_for("playback.started", timeout=20)
        await asyncio.sleep(1.2)
        t_interrupt = time.monotonic()
        await c.interrupt()
        finished = await c.wait_for("playback.finished", timeout=10)
        assert finished["segment"] == started["segment"] and finished["interrupted"] is True
        # media time from the segment's first frame to the interrupt (frames leave the clock
        # render_lead_ms before they are due), independent of how late events reached us; plus
        # the silent frames a loaded machine skipped to stay on time (they count as played)
        first_pts = min(pts for pts, _ in session.arrivals)
        lead = server.config.pipeline.render_lead_ms / 1000
        clock = session.clock
        n_played = clock.frame_at(t_interrupt - clock.to_wall(0) + lead) - first_pts + 1
        n_played += getattr(session.speech, "silent_frames_dropped", 0)
        assert finished["position_s"] == pytest.approx(clock.frame_time(n_played), abs=2 / FPS)
        assert 1.0 < finished["position_s"] < len(audio) / 48000 - 1.0
        await asyncio.sleep(1.0)

        out = []
        while len(frames.channel):
            out.append(await frames.channel.get())
        await frames.aclose()
        due = [session.clock.to_wall(session.clock.frame_time(f.pts)) - t_interrupt for f in out]
        mouth = [frame_mouth_weight(f) for f in out]
        before = [m for d, m in zip(due, mouth) if -0.8 < d < 0]
        assert max(before) > 0.15, "the avatar was not speaking before the interrupt"
        after = [(d, m) for d, m in zip(due, mouth) if d >= 0]
        assert after and after[-1][0] > 0.8
        moving = [d for d, m in after if m > 0.02]
        lips_stop_s = max(moving) + 1 / FPS if moving else 0.0
        assert lips_stop_s <= 0.150, f"lips still moved {lips_stop_s * 1000:.0f} ms after the interrupt"

        # speech after the interrupt is a new, complete segment
        more = speech("Okay.", rate=48000)
        await c.send_pcm(pcm16(more))
        await c.end_segment()
        nxt = await c.wait_for("playback.finished", timeout=20)
        assert nxt["segment"] > finished["segment"] and not nxt["interrupted"]
        assert nxt["position_s"] == pytest.approx(len(more) / 48000, abs=1 / FPS)


async def test_interrupt_cancels_pending_server_tts(server):
    async with await FacecastClient.connect(server.ws_url) as c:
        await c.speak("This text is synthesized but interrupted before it can play. " * 4)
        await c.interrupt()
        await c.send_json({"type": "ping"})
        await c.wait_for("pong", timeout=10)
        await asyncio.sleep(1.0)
        assert not _types(c.history, "speak.queued", "playback.started")


async def test_attach_to_a_session_and_owner_lifetime(server):
    owner = await FacecastClient.connect(server.ws_url)
    helper = await FacecastClient.connect(server.ws_url, session_id=owner.session_id)
    assert helper.ready["created"] is False and helper.session_id == owner.session_id
    await helper.speak("Hi.")
    for c in (owner, helper):   # both sockets see the session's events
        assert not (await c.wait_for("playback.finished", timeout=30))["interrupted"]
    await helper.close()
    await asyncio.sleep(0.3)
    assert server.registry.find(owner.session_id) is not None  # an attached socket does not own it
    await owner.close()
    for _ in range(50):
        if server.registry.find(owner.session_id) is None:
            break
        await asyncio.sleep(0.1)
    assert server.registry.find(owner.session_id) is None

    with pytest.raises(FacecastError, match="unknown_session"):
        await FacecastClient.connect(server.ws_url, session_id="no-such-session")


async def test_attached_socket_is_told_when_the_session_closes(server):
    owner = await FacecastClient.connect(server.ws_url)
    viewer = await FacecastClient.connect(server.ws_url, session_id=owner.session_id)
    await server.registry.remove(owner.session_id)  # e.g. the WebRTC viewer that owned it left
    err = await viewer.wait_for("error", timeout=10)
    assert err["code"] == "session_closed" and err["fatal"] is True
    await asyncio.wait_for(viewer.ws.wait_closed(), 10)
    assert viewer.ws.close_code == 1001
    await owner.close()
    await viewer.close()


async def test_echo_mode_repeats_microphone_audio(server):
    """mode=echo: binary PCM is a microphone; each stretch of voice becomes one spoken segment."""
    import numpy as np
    async with await FacecastClient.connect(server.ws_url, sample_rate=48000, mode="echo") as c:
        assert c.ready["mode"] == "echo"
        voice = speech("Can you repeat this after me?", rate=48000)
        gap = np.zeros(48000, np.float32)
        await c.stream_pcm(pcm16(np.concatenate([gap[:24000], voice, gap])), chunk_ms=20, realtime=True)
        started = await c.wait_for("playback.started", timeout=20)
        finished = await c.wait_for("playback.finished", timeout=20)
        assert finished["segment"] == started["segment"] and not finished["interrupted"]
        # the voiced stretch, plus the VAD's pre-roll and hang-over of silence
        assert len(voice) / 48000 - 0.3 < finished["position_s"] < len(voice) / 48000 + 1.0
        states = [e["state"] for e in c.history if e["type"] == "state"]
        assert "speaking" in states
