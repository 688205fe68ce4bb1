"""Motion mode over the assistant WebSocket: a real server (real session, motion model,
real-time clock) and a real aiohttp WebSocket client. The server sends one binary message per
frame: the 244-byte MotionFrame (pts = frame index) + that frame's s16le audio."""
import asyncio
import json
import time

import aiohttp
import numpy as np

from engine.motion.space import BINARY_SIZE, MotionFrame
from ws_support import MOUTH_INDICES, pcm16, speech

FPS, RATE, SPF = 25, 48000, 48000 // 25


class MotionSocket:
    """Collects the JSON events and the binary motion frames of one socket."""

    def __init__(self, ws):
        self.ws = ws
        self.events: list[tuple[float, dict]] = []
        self.frames: list[tuple[float, int, MotionFrame, np.ndarray]] = []   # (arrival, pts, motion, s16 audio)
        self.task = asyncio.ensure_future(self._read())

    async def _read(self):
        async for msg in self.ws:
            now = time.monotonic()
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.events.append((now, json.loads(msg.data)))
            elif msg.type == aiohttp.WSMsgType.BINARY:
                pts, motion = MotionFrame.from_bytes(msg.data[:BINARY_SIZE])
                self.frames.append((now, pts, motion, np.frombuffer(msg.data[BINARY_SIZE:], "<i2")))

    async def wait_event(self, kind, timeout=30.0, after=0):
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            for i, (_, e) in enumerate(self.events[after:], after):
                if e["type"] == kind:
                    return i, e
            await asyncio.sleep(0.02)
        raise AssertionError(f"no {kind} event within {timeout} s; got {[e for _, e in self.events]}")


async def _open(http, server, **extra):
    ws = await http.ws_connect(server.ws_url)
    await ws.send_json({"type": "session.create", "output": "motion",
                        "format": {"sample_rate": RATE}, **extra})
    sock = MotionSocket(ws)
    _, ready = await sock.wait_event("session.ready", timeout=20)
    return sock, ready


def _mouth(motion: MotionFrame) -> float:
    return float(np.abs(motion.to_vector()[MOUTH_INDICES]).max())


async def test_motion_stream_carries_frames_and_their_audio(server):
    audio = speech("Hello there. The motion stream carries the audio with it.", rate=RATE)
    async with aiohttp.ClientSession() as http:
        sock, ready = await _open(http, server)
        assert ready["output"] == "motion" and "video" not in ready
        assert ready["motion"] == {"fps": FPS, "frame_bytes": 244, "sample_rate": RATE, "samples_per_frame": SPF,
                                   "audio_encoding": "s16le", "message_bytes": 244 + 2 * SPF}
        session = server.registry.get(ready["session_id"])
        assert session.output == "motion" and session.render_stage is None and session._renderer is None
        published: set[int] = set()   # pts the session published

        async def record():
            async for f in session.motion_frames(capacity=64):
                published.add(f.pts)
        recorder = asyncio.ensure_future(record())
        await asyncio.sleep(0.5)
        await sock.ws.send_bytes(pcm16(audio))
        await sock.ws.send_json({"type": "segment.end"})
        # a second socket attaches to the same motion session and receives the same stream
        ws2 = await http.ws_connect(server.ws_url)
        await ws2.send_json({"type": "session.attach", "session_id": ready["session_id"], "output": "motion"})
        viewer = MotionSocket(ws2)
        _, ready2 = await viewer.wait_event("session.ready", timeout=10)
        assert ready2["created"] is False and ready2["output"] == "motion"
        await sock.wait_event("playback.finished", timeout=30)
        await asyncio.sleep(0.3)
        await ws2.close()
        await viewer.task
        recorder.cancel()
        await sock.ws.close()
        await sock.task

    # states and events as in video mode
    kinds = [(e["type"], e.get("state")) for _, e in sock.events]
    assert kinds.index(("state", "speaking")) < kinds.index(("playback.started", None)) \
        < kinds.index(("playback.finished", None)) < len(kinds) - 1 - kinds[::-1].index(("state", "idle"))
    finished = [e for _, e in sock.events if e["type"] == "playback.finished"][0]
    assert finished["interrupted"] is False and abs(finished["position_s"] - len(audio) / RATE) <= 1 / FPS
    # the attached socket got the same frames (same pts → same bytes) while it was attached
    mine = {p: (m.to_vector().tobytes(), a.tobytes()) for _, p, m, a in sock.frames}
    theirs = [(p, (m.to_vector().tobytes(), a.tobytes())) for _, p, m, a in viewer.frames]
    assert len(theirs) > FPS and all(mine.get(p) == x for p, x in theirs if p in mine)

    frames = sock.frames
    pts = np.array([p for _, p, _, _ in frames])
    assert len(frames) > 3 * FPS
    assert (np.diff(pts) > 0).all(), "frames must come in order"
    arrivals = np.array([t for t, _, _, _ in frames])
    # the session clock ticks at 25 Hz (pts per second of arrival); a loaded machine may skip a tick
    rate = (pts[-1] - pts[0]) / (arrivals[-1] - arrivals[0])
    assert 24.0 < rate < 26.0, f"motion arrived at {rate:.1f} Hz"
    # the socket loses nothing: every frame the session published in that span arrived (a
    # stalled machine makes the session skip ticks, which are pts gaps in both)
    made = {k for k in published if pts[0] <= k <= pts[-1]}
    assert len(set(pts.tolist()) & made) >= 0.95 * len(made)
    assert all(len(a) == SPF for _, _, _, a in frames)
    # the audio in the frames is exactly the speech sent (48 kHz in and out: bit-exact), in order
    # and frame-aligned; the real-time clock may insert a silent frame (a speech underrun on a
    # loaded machine) or skip a silent one to catch up, which shifts the alignment by whole frames
    sent = np.frombuffer(pcm16(audio), "<i2")
    loud = [(j, a) for j, (_, _, _, a) in enumerate(frames) if np.abs(a).max() > 1000]
    assert len(loud) > FPS
    pos, raw = -1, sent.tobytes()
    while (pos := raw.find(loud[0][1].tobytes(), pos + 1)) % 2:
        assert pos >= 0, "the first spoken frame's audio is not in the speech sent"
    offset, shifts, last = pos // 2 - loud[0][0] * SPF, 0, -1
    for j, a in loud:
        for d in sorted(range(-25, 26), key=abs):
            at = j * SPF + offset + d * SPF
            if 0 <= at <= len(sent) - SPF and np.array_equal(sent[at:at + SPF], a):
                break
        else:
            raise AssertionError(f"frame {j}'s audio is not in the speech sent (near where it belongs)")
        assert at > last, "speech audio came out of order"
        offset, shifts, last = offset + d * SPF, shifts + abs(d), at
    assert shifts <= 40   # (inserted + skipped silent frames: 0-14 seen at load 10-20)
    first_speech_frame = int(np.argmax([a.any() for _, _, _, a in frames]))
    # the mouth moves with that audio: open while voiced, at rest in the silence before
    loud = np.array([np.sqrt(np.mean((a / 32768.0) ** 2)) > 0.02 for _, _, _, a in frames])
    mouth = np.array([_mouth(m) for _, _, m, _ in frames])
    before = mouth[:max(1, first_speech_frame - 3)]
    assert loud.sum() > FPS
    assert mouth[loud].mean() > max(0.08, 3 * before.mean()), (mouth[loud].mean(), before.mean())


async def test_motion_stream_interrupt_silences_and_stops_the_lips(server):
    audio = speech("This is a long sentence that will be cut off in the middle by the user, "
                   "who has something else to say.", rate=RATE)
    async with aiohttp.ClientSession() as http:
        sock, ready = await _open(http, server)
        await sock.ws.send_bytes(pcm16(audio))
        await sock.ws.send_json({"type": "segment.end"})
        i, _ = await sock.wait_event("playback.started", timeout=20)
        await asyncio.sleep(1.2)
        n_before = len(sock.frames)
        await sock.ws.send_json({"type": "interrupt"})
        j, fin = await sock.wait_event("playback.finished", timeout=10, after=i)
        t_fin = sock.events[j][0]
        await asyncio.sleep(1.0)
        await sock.ws.close()
        await sock.task
    assert fin["interrupted"] is True and 0.8 < fin["position_s"] < len(audio) / RATE - 0.5
    assert any(np.abs(a).max() > 1000 for _, _, _, a in sock.frames[:n_before]), "no speech before the interrupt"
    after = [(t, p, m, a) for t, p, m, a in sock.frames if t > t_fin]
    assert len(after) > 15
    # at most the one frame that was already being sent may still carry speech
    assert sum(np.abs(a).max() > 0 for _, _, _, a in after[1:]) == 0
    # lips at rest within 150 ms of media time after the interrupt
    assert max(_mouth(m) for _, _, m, _ in after[int(0.15 * FPS) + 1:]) < 0.05


async def test_motion_output_is_validated(server):
    async with aiohttp.ClientSession() as http:
        ws = await http.ws_connect(server.ws_url)
        await ws.send_json({"type": "session.create", "output": "pixels"})
        err = await ws.receive_json(timeout=10)
        assert err["type"] == "error" and err["code"] == "bad_output" and "pixels" in err["message"]
        # a video session has no motion stream to attach to
        await ws.send_json({"type": "session.create"})
        ready = await ws.receive_json(timeout=20)
        ws2 = await http.ws_connect(server.ws_url)
        await ws2.send_json({"type": "session.attach", "session_id": ready["session_id"], "output": "motion"})
        err = await ws2.receive_json(timeout=10)
        assert err["type"] == "error" and err["code"] == "bad_output"
        await ws2.close()
        await ws.close()


async def test_python_client_reads_the_motion_stream(server):
    """The bundled client (clients/python, its own parser) against the server's frames."""
    from facecast_client import FacecastClient
    audio = speech("One two three four five six.", rate=RATE)   # ~2 s: twice the frame bound below
    async with await FacecastClient.connect(server.ws_url, sample_rate=RATE, output="motion") as c:
        assert c.ready["motion"]["message_bytes"] == 244 + 2 * SPF
        session = server.registry.get(c.session_id)
        published: dict[int, np.ndarray] = {}

        async def record():
            async for f in session.motion_frames(capacity=64):
                published[f.pts] = f.motion.to_vector()
        recorder = asyncio.ensure_future(record())
        await c.send_pcm(pcm16(audio))
        await c.end_segment()
        got = []
        async for m in c.motion_frames():
            got.append(m)
            if any(e["type"] == "playback.finished" for e in c.history) or len(got) > 400:
                break
        recorder.cancel()
    assert len(got) > FPS and all(len(m.pcm) == 2 * SPF for m in got)
    same = [m for m in got if m.pts in published]
    assert len(same) > 10
    for m in same:   # parsed by the client = what the session made, bit for bit
        np.testing.assert_array_equal(np.concatenate([m.blendshapes, m.head_rotation, m.head_translation]),
                                      published[m.pts])
    spoken = [m for m in got if np.abs(np.frombuffer(m.pcm, "<i2")).max() > 1000]
    assert spoken and max(float(m.blendshapes[17]) for m in spoken) > 0.1   # jawOpen opens
