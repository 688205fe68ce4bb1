"""A session created over the WebSocket is watched and heard by a real aiortc peer that joins
it with the id from `session.ready`; and the bundled CLI streams a wav into a session."""
import asyncio
import json
import os
import sys
import time

import numpy as np
import pytest
from aiohttp import ClientSession
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

from engine.audio.pcm import s16_to_float
from ws_support import CLIENT_DIR, speech, write_wav

from facecast_client import FacecastClient


async def _watch(server, session_id):
    """A receive-only viewer of ``session_id``; returns (pc, video frame times, audio rms log)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    video_times, audio_log, tasks = [], [], []

    async def pull(track):
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    video_times.append(time.monotonic())
                else:
                    x = s16_to_float(frame.to_ndarray())
                    audio_log.append((time.monotonic(), float(np.sqrt((x ** 2).mean()))))
        except MediaStreamError:
            pass

    pc.on("track", lambda track: tasks.append(asyncio.ensure_future(pull(track))))
    await pc.setLocalDescription(await pc.createOffer())
    async with ClientSession() as http:
        body = {"sdp": pc.localDescription.sdp, "type": "offer", "session_id": session_id}
        async with http.post(server.http_url + "/v1/offer", json=body) as resp:
            assert resp.status == 200, await resp.text()
            answer = await resp.json()
    assert answer["session_id"] == session_id
    await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
    return pc, video_times, audio_log, tasks


async def test_viewer_joins_a_websocket_session_and_hears_it(server):
    async with await FacecastClient.connect(server.ws_url) as c:
        pc, video, audio, tasks = await _watch(server, c.ready["viewer"]["session_id"])
        for _ in range(300):
            if len(video) >= 10:
                break
            await asyncio.sleep(0.1)
        assert len(video) >= 10, "the viewer received no video"
        await asyncio.sleep(1.0)
        t_speak = time.monotonic()
        await c.speak("Can you hear me now? I am speaking through the web socket.")
        finished = await c.wait_for("playback.finished", timeout=60)
        await asyncio.sleep(0.5)
        quiet = [r for t, r in audio if t < t_speak]
        loud = [r for t, r in audio if t > t_speak]
        assert quiet and max(quiet) < 0.01, "the idle avatar should be silent"
        assert np.percentile(loud, 90) > 0.05, "the viewer did not hear the speech"
        span = [t for t in video if t_speak <= t <= t_speak + finished["position_s"]]
        assert len(span) >= 15 * finished["position_s"], f"{len(span)} frames in {finished['position_s']} s"
        await pc.close()
        for t in tasks:
            t.cancel()


async def test_cli_streams_a_wav_and_prints_events(server, tmp_path):
    audio = speech("Hello from the command line client.", rate=24000)
    wav = write_wav(tmp_path / "speech.wav", audio, 24000)
    env = {**os.environ, "PYTHONPATH": str(CLIENT_DIR)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "facecast_client", "stream", str(wav), "--url", server.ws_url,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()
    events = [json.loads(line) for line in out.decode().splitlines()]
    types = [e["type"] for e in events]
    assert types[0] == "session.ready" and "playback.started" in types
    assert types[-1] == "playback.finished"
    assert events[-1]["position_s"] == pytest.approx(len(audio) / 24000, abs=0.04)
    # streamed in real time: the last event comes about one wav-length after the first
    assert events[-1]["t"] >= len(audio) / 24000 * 0.9

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "facecast_client", "stream", str(tmp_path / "missing.wav"),
        "--url", server.ws_url, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1 and b"missing.wav" in err and b"Traceback" not in err
