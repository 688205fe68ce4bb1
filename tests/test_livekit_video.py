"""The LiveKit avatar contract, in-process, with the real livekit-agents types.

1. ``FacecastVideoGenerator`` driven directly with real ``rtc.AudioFrame``s from a wav: RGBA
   video frames; each speech ``rtc.AudioFrame`` (48 kHz mono, one video frame) right after the
   video frame that shows it; together the wav re-timed; ``AudioSegmentEnd`` after the last.
2. The same generator under LiveKit's own ``AvatarRunner`` (its AV synchronizer, audio and video
   sources, playback accounting), fed by LiveKit's in-process ``QueueAudioOutput`` as the agent's
   audio output: ``playback_finished`` with the played position, and on ``clear_buffer``
   (what ``lk.clear_buffer`` does) an interrupted one with the position reached and no speech
   after it. With no LiveKit server here the runner's tracks are not published (its
   ``_publish_track`` is the one thing replaced); everything else is LiveKit's code.
"""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("livekit.agents")

from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd, AvatarRunner, QueueAudioOutput

from avatar_support import SAMPLES_PER_FRAME, assert_retimed, expected_48k, read_wav
from engine.integrations.avatar import InProcessAvatar
from engine.integrations.livekit import FacecastVideoGenerator
from ws_support import speech, write_wav


@pytest.fixture(scope="module")
def short_wav(tmp_path_factory):
    return write_wav(tmp_path_factory.mktemp("lk") / "short.wav", speech("Hello, nice to see you.", 24000), 24000)


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory):
    text = "This is a much longer answer that the user will interrupt before it is over, I am sure of it."
    return write_wav(tmp_path_factory.mktemp("lk") / "long.wav", speech(text, 24000), 24000)


def audio_frames(path, chunk_ms: int = 20) -> list[rtc.AudioFrame]:
    pcm, rate = read_wav(path)
    step = rate * chunk_ms // 1000
    return [rtc.AudioFrame(pcm[i:i + step].tobytes(), rate, 1, len(pcm[i:i + step])) for i in range(0, len(pcm), step)]


async def test_video_generator_contract(short_wav):
    gen = FacecastVideoGenerator(InProcessAvatar())
    opts = gen.options()
    assert (opts.video_width, opts.video_height, opts.video_fps, opts.audio_sample_rate, opts.audio_channels) == \
        (512, 512, 25.0, 48000, 1)
    out: list = []

    async def consume():
        async for item in gen:
            out.append(item)
            if isinstance(item, AudioSegmentEnd):
                return

    task = asyncio.create_task(consume())
    try:
        with pytest.raises(TypeError, match="AudioFrame"):
            await gen.push_audio(b"\x00\x00")
        for f in audio_frames(short_wav):
            await gen.push_audio(f)
        await gen.push_audio(AudioSegmentEnd())
        await asyncio.wait_for(task, 30)
    finally:
        task.cancel()
        await gen.aclose()
    video = [x for x in out if isinstance(x, rtc.VideoFrame)]
    audio = [x for x in out if isinstance(x, rtc.AudioFrame)]
    assert video and all((v.width, v.height, v.type) == (512, 512, rtc.VideoBufferType.RGBA) for v in video)
    rgba = np.frombuffer(video[0].data, np.uint8).reshape(512, 512, 4)
    assert (rgba[..., 3] == 255).all() and rgba[..., :3].std() > 10, "a real picture, opaque"
    for prev, x in zip(out, out[1:]):
        if isinstance(x, rtc.AudioFrame):
            assert isinstance(prev, rtc.VideoFrame), "each audio frame follows the video frame that shows it"
            assert (x.sample_rate, x.num_channels, x.samples_per_channel) == (48000, 1, SAMPLES_PER_FRAME)
    assert isinstance(out[-1], AudioSegmentEnd) and isinstance(out[-2], rtc.AudioFrame)
    got = np.concatenate([np.frombuffer(a.data, np.int16) for a in audio])
    assert_retimed(got, expected_48k(short_wav))
    assert gen.audio_frames_out == len(audio)


class OfflineRunner(AvatarRunner):
    """LiveKit's AvatarRunner with no room to publish into (no LiveKit server here)."""

    async def _publish_track(self) -> None:
        self._video_publication = True   # (the runner only checks that it is set)


async def run_with_runner(wav, interrupt_after_frames: int | None):
    gen = FacecastVideoGenerator(InProcessAvatar())
    agent_audio = QueueAudioOutput(sample_rate=24000)   # the agent's audio output, in-process
    runner = OfflineRunner(rtc.Room(), audio_recv=agent_audio, video_gen=gen, options=gen.options())
    finished: list = []
    agent_audio.on("playback_finished", finished.append)
    await runner.start()
    try:
        for f in audio_frames(wav):
            await agent_audio.capture_frame(f)
        agent_audio.flush()
        at = None
        for _ in range(1500):
            if finished:
                break
            if interrupt_after_frames is not None and at is None and gen.audio_frames_out >= interrupt_after_frames:
                agent_audio.clear_buffer()
                at = gen.audio_frames_out
            await asyncio.sleep(0.01)
        assert finished, "no playback_finished"
        await asyncio.sleep(0.5)
        return finished, gen.audio_frames_out, at
    finally:
        await runner.aclose()
        await gen.aclose()


async def test_runner_reports_the_played_position(short_wav):
    finished, frames_out, _ = await run_with_runner(short_wav, None)
    assert len(finished) == 1 and finished[0].interrupted is False
    assert finished[0].playback_position == pytest.approx(frames_out * 0.04, abs=1e-6)
    pcm, rate = read_wav(short_wav)
    assert 0.6 * len(pcm) / rate < finished[0].playback_position <= len(pcm) / rate + 0.04


async def test_clear_buffer_interrupts_with_the_position_reached(long_wav):
    finished, frames_out, at = await run_with_runner(long_wav, 15)
    assert at is not None and len(finished) == 1
    ev = finished[0]
    assert ev.interrupted is True
    # what the runner had pushed on when the clear came: the frames handed out by then, give or take one
    assert abs(ev.playback_position - at * 0.04) <= 0.04 + 1e-6, (ev.playback_position, at)
    assert frames_out <= at + 1, "speech audio kept coming after clear_buffer"
    pcm, rate = read_wav(long_wav)
    assert ev.playback_position < 0.5 * len(pcm) / rate
