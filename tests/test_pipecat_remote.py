"""FacecastProcessor in a real pipecat Pipeline driving a real facecast server (RemoteAvatar):
speech over the assistant WebSocket API, picture and sound back over a real WebRTC viewer.

Checked: images of the server's video size; the played speech comes out as audio frames right
after their images, bracketed by one TTSStarted/Stopped, about as long as the speech (Opus is
lossy, and which received audio belongs to the segment follows the events, within a frame or
two) and loud where the wav is loud; an interruption stops it at once."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("pipecat")

from pipecat.frames.frames import (OutputImageRawFrame, StartInterruptionFrame, TTSAudioRawFrame,
                                   TTSStartedFrame, TTSStoppedFrame)

from engine.audio.pcm import s16_to_float
from engine.integrations.pipecat import FacecastProcessor
from engine.integrations.remote import RemoteAvatar
from avatar_support import read_wav
from pipecat_support import RunningPipeline, audio_of, tts_frames
from ws_support import speech, write_wav


@pytest.fixture(scope="module")
def wav(tmp_path_factory):
    text = "Hello from the server. This avatar is rendered remotely and sent back over WebRTC."
    return write_wav(tmp_path_factory.mktemp("pcr") / "speech.wav", speech(text, 24000), 24000)


def test_bad_arguments_are_refused_clearly():
    with pytest.raises(Exception, match="WebSocket"):
        RemoteAvatar("http://127.0.0.1:8080/")
    with pytest.raises(ValueError, match="sample_rate"):
        RemoteAvatar("ws://127.0.0.1:8080/v1/ws", sample_rate=22050)


async def test_remote_avatar_speaks_a_tts_utterance(server, wav):
    proc = FacecastProcessor(RemoteAvatar(server.ws_url, sample_rate=24000))
    async with RunningPipeline([proc]) as (task, out):
        await out.wait_for(lambda: out.count(OutputImageRawFrame) >= 5, 60, "video from the server")
        with pytest.raises(ValueError, match="24000 Hz"):
            await proc.avatar.push_audio(np.zeros(160, np.int16), 16000)
        await task.queue_frames(tts_frames(wav))
        await out.wait_for(lambda: out.count(TTSStoppedFrame) == 1, 60, "the end of the segment")
        underruns = server.registry.find(proc.avatar.client.session_id).speech.underruns
        await task.stop_when_done()
    frames = [f for _, f in out.frames]
    img = out.of(OutputImageRawFrame)[0]
    assert img.size == (512, 512) and len(img.image) == 512 * 512 * 3
    for prev, f in zip(frames, frames[1:]):
        if isinstance(f, TTSAudioRawFrame):
            assert isinstance(prev, OutputImageRawFrame) and len(f.audio) % (2 * 1920) == 0
    kinds = [type(f) for f in frames if isinstance(f, (TTSStartedFrame, TTSStoppedFrame, TTSAudioRawFrame))]
    assert kinds[0] is TTSStartedFrame and kinds[-1] is TTSStoppedFrame and kinds.count(TTSStoppedFrame) == 1

    pcm, rate = read_wav(wav)
    got = s16_to_float(audio_of(out.of(TTSAudioRawFrame)))
    duration = len(pcm) / rate
    # silent frames of a faster-than-real-time push may be skipped by the session, and a late
    # input makes it insert silent frames (underruns), which the remote stream carries too
    assert 0.6 * duration <= len(got) / 48000 <= duration + 0.04 * underruns + 0.2, \
        (len(got) / 48000, duration, underruns)
    loud = lambda x, n: np.sqrt((x[: len(x) // n * n].reshape(-1, n) ** 2).mean(axis=1))
    assert np.percentile(loud(got, 1920), 75) > 0.5 * np.percentile(loud(s16_to_float(pcm), rate // 25), 75)


async def test_remote_interruption_stops_the_speech_at_once(server, wav):
    proc = FacecastProcessor(RemoteAvatar(server.ws_url, sample_rate=24000))
    async with RunningPipeline([proc]) as (task, out):
        await task.queue_frames(tts_frames(wav))
        await out.wait_for(lambda: out.count(TTSAudioRawFrame) >= 15, 60, "speech from the server")
        await task.queue_frame(StartInterruptionFrame())
        await out.wait_for(lambda: out.count(StartInterruptionFrame) == 1, 5, "the interruption")
        at = next(i for i, (_, f) in enumerate(out.frames) if isinstance(f, StartInterruptionFrame))
        await out.wait_for(lambda: sum(isinstance(f, OutputImageRawFrame) for _, f in out.frames[at:]) >= 15,
                           15, "frames after the interruption")
        assert not any(isinstance(f, TTSAudioRawFrame) for _, f in out.frames[at:])
        await task.stop_when_done()


async def test_a_server_side_close_is_reported_upstream(server):
    proc = FacecastProcessor(RemoteAvatar(server.ws_url, sample_rate=24000))
    async with RunningPipeline([proc]) as (task, out):
        await out.wait_for(lambda: out.count(OutputImageRawFrame) >= 3, 60, "video from the server")
        await server.registry.remove(proc.avatar.client.session_id)   # the server ends the session
        for _ in range(200):
            if task.has_finished():
                break
            await asyncio.sleep(0.05)
        assert task.has_finished(), "a fatal ErrorFrame stops the pipeline task"
    assert proc.error is not None and "ended" in str(proc.error)


async def test_an_unreachable_server_stops_the_pipeline_with_an_error():
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()   # nothing listens there
    proc = FacecastProcessor(RemoteAvatar(f"ws://127.0.0.1:{port}/v1/ws", timeout_s=5))
    async with RunningPipeline([proc]) as (task, out):
        for _ in range(200):
            if task.has_finished():
                break
            await asyncio.sleep(0.05)
        assert task.has_finished(), "a fatal ErrorFrame stops the pipeline task"
    assert proc.error is not None and out.count(OutputImageRawFrame) == 0
