"""Motion mode over WebRTC: a real server and a real aiortc peer that offers an audio receiver
and a "motion" data channel (no video). Checks that motion frames arrive at 25 Hz on the data
channel, that the Opus audio, mapped through the `clock` message's RTP origin to session sample
indices, is the audio the session published at those indices (so frame pts k ↔ samples
[k·1920, (k+1)·1920) on the client too), that the mouth moves with it, and interruption."""
import asyncio
import json
import time

import aiohttp
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from engine.audio.pcm import s16_to_float
from engine.motion.space import MotionFrame
from ws_support import MOUTH_INDICES, speech

FPS, RATE, SPF = 25, 48000, 48000 // 25


class MotionPeer:
    def __init__(self):
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("audio", direction="recvonly")
        self.channel = self.pc.createDataChannel("motion", ordered=False, maxRetransmits=0)
        self.texts: list[dict] = []
        self.frames: list[tuple[float, int, MotionFrame]] = []
        self.audio: list[tuple[int, np.ndarray]] = []   # (receiver pts, mono float)
        self.tracks: list[str] = []
        self.tasks = []

        @self.channel.on("message")
        def on_message(msg):
            if isinstance(msg, str):
                self.texts.append(json.loads(msg))
            else:
                pts, motion = MotionFrame.from_bytes(msg)
                self.frames.append((time.monotonic(), pts, motion))

        @self.pc.on("track")
        def on_track(track):
            self.tracks.append(track.kind)
            self.tasks.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track):
        try:
            while True:
                f = await track.recv()
                self.audio.append((f.pts, s16_to_float(f.to_ndarray()).reshape(-1, len(f.layout.channels)).mean(axis=1)))
        except MediaStreamError:
            pass

    async def connect(self, http, url, **body):
        await self.pc.setLocalDescription(await self.pc.createOffer())
        resp = await http.post(f"{url}/v1/offer", json={"sdp": self.pc.localDescription.sdp, "type": "offer", **body})
        answer = await resp.json()
        assert resp.status == 200, answer
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        return answer

    def audio_by_sample(self, rtp_origin: int) -> dict[int, np.ndarray]:
        """Received 20 ms audio frames keyed by the session's sample index (via the RTP origin)."""
        mapper = self.pc.getReceivers()[0]._RTCRtpReceiver__timestamp_mapper
        return {(pts + mapper._origin - rtp_origin) % 2**32: pcm for pts, pcm in self.audio}

    async def close(self):
        await self.pc.close()
        for t in self.tasks:
            t.cancel()


def _mouth(m: MotionFrame) -> float:
    return float(np.abs(m.to_vector()[MOUTH_INDICES]).max())


async def _wait(cond, timeout, what):
    t0 = time.monotonic()
    while not cond():
        assert time.monotonic() - t0 < timeout, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_motion_over_data_channel_tied_to_the_opus_audio(server):
    audio = speech("Hello there. Motion travels on the data channel, the voice on the audio track.", rate=RATE)
    peer = MotionPeer()
    async with aiohttp.ClientSession() as http:
        answer = await peer.connect(http, server.http_url, output="motion")
        assert "m=video" not in answer["sdp"]
        session = server.registry.get(answer["session_id"])
        assert session.output == "motion" and session.render_stage is None
        published: dict[int, np.ndarray] = {}   # what the session put out, by sample index

        async def record():
            async for f in session.motion_frames(capacity=64):
                published[f.audio.pts] = f.audio.samples
        recorder = asyncio.ensure_future(record())
        await _wait(lambda: peer.texts and len(peer.frames) > 10, 20, "motion frames")
        session.push_speech(audio, RATE)
        session.end_segment()
        await asyncio.sleep(len(audio) / RATE + 1.5)
        recorder.cancel()
        await peer.close()

    start = peer.texts[0]
    assert start == {"type": "motion.start", "session_id": session.id, "fps": FPS, "frame_bytes": 244,
                     "sample_rate": RATE, "samples_per_frame": SPF}
    assert peer.tracks == ["audio"]
    clocks = [t for t in peer.texts if t["type"] == "clock"]
    assert clocks and len({c["audio_rtp_origin"] for c in clocks}) == 1
    # 25 Hz, in order
    t = np.array([a for a, _, _ in peer.frames])
    pts = np.array([p for _, p, _ in peer.frames])
    # the session clock ticks at 25 Hz (pts per second of arrival); a loaded machine may skip a tick
    rate = (pts[-1] - pts[0]) / (t[-1] - t[0])
    assert 24.0 < rate < 26.0, f"motion arrived at {rate:.1f} Hz"
    # the transport loses nothing: every frame the session published in that span arrived (a
    # stalled machine makes the session skip ticks, which are pts gaps in both)
    made = {k // SPF for k in published if pts[0] <= k // SPF <= pts[-1]}
    assert set(pts.tolist()) <= made | set(range(pts[0], pts[0] + 10)) and len(set(pts.tolist()) & made) >= 0.95 * len(made)
    assert (np.diff(pts) > 0).mean() > 0.97   # (unordered channel: a rare swap is fine)
    # the received audio sits at the sample indices the session published it at
    received = peer.audio_by_sample(clocks[0]["audio_rtp_origin"])
    assert all(s % 960 == 0 for s in received)
    sess = np.concatenate([published.get(k, np.zeros(SPF, np.float32)) for k in range(0, max(published) + SPF, SPF)])
    rx = np.zeros_like(sess)
    for s, pcm in received.items():
        if s + len(pcm) <= len(rx):
            rx[s:s + len(pcm)] = pcm
    assert np.abs(sess).max() > 0.3 and np.abs(rx).max() > 0.3
    lags = range(-480, 481, 24)    # ±10 ms
    score = [float(np.dot(sess[960:-960], np.roll(rx, -lag)[960:-960])) for lag in lags]
    best = list(lags)[int(np.argmax(score))]
    assert abs(best) <= 480 and max(score) > 0.5 * float(np.dot(sess, sess))
    # (libopus delays its output by its 6.5 ms look-ahead: the lag is that, not a frame)
    assert abs(best) < 0.010 * RATE
    # the mouth moves with the audio that plays at the frame's samples
    loud = np.array([np.sqrt(np.mean(rx[p * SPF:(p + 1) * SPF] ** 2)) > 0.03 for p in pts])
    mouth = np.array([_mouth(m) for _, _, m in peer.frames])
    assert loud.sum() > FPS
    assert mouth[loud].mean() > max(0.08, 3 * mouth[~loud][:5].mean())


async def test_motion_peer_interrupt(server):
    audio = speech("This long sentence is going to be interrupted before it is over, you will see.", rate=RATE)
    peer = MotionPeer()
    async with aiohttp.ClientSession() as http:
        answer = await peer.connect(http, server.http_url, output="motion")
        session = server.registry.get(answer["session_id"])
        events = session.events()
        await _wait(lambda: len(peer.frames) > 5, 20, "motion frames")
        session.push_speech(audio, RATE)
        session.end_segment()
        await asyncio.sleep(1.5)
        k_int = session.frame_index
        session.interrupt()
        await asyncio.sleep(1.0)
        await peer.close()
    got = []
    while (e := events.channel.get_nowait()) is not None:
        got.append(e)
    assert any(e["type"] == "playback.finished" and e["interrupted"] for e in got)
    clock = [t for t in peer.texts if t["type"] == "clock"][0]
    received = peer.audio_by_sample(clock["audio_rtp_origin"])
    # nothing is heard from 2 frames after the interrupt on; lips rest by 150 ms
    late = [np.abs(pcm).max() for s, pcm in received.items() if s >= (k_int + 2) * SPF]
    assert len(late) > 20 and max(late) < 0.01
    after = [_mouth(m) for _, p, m in peer.frames if p >= k_int + int(0.15 * FPS) + 1]
    assert after and max(after) < 0.05


async def test_motion_offer_needs_a_data_channel(server):
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with aiohttp.ClientSession() as http:
        resp = await http.post(f"{server.http_url}/v1/offer",
                               json={"sdp": pc.localDescription.sdp, "type": "offer", "output": "motion"})
        assert resp.status == 400 and (await resp.json())["error"] == "no_data_channel"
        resp = await http.post(f"{server.http_url}/v1/offer",
                               json={"sdp": pc.localDescription.sdp, "type": "offer", "output": 3})
        assert resp.status == 400 and (await resp.json())["error"] == "bad_output"
    await pc.close()
