"""FacecastProcessor in a real pipecat Pipeline, the engine in this process (InProcessAvatar).

TTS frames come from an espeak-ng wav (24 kHz, 20 ms chunks, as a Pipecat TTS service sends
them). Checked: every speech audio frame out follows the image that shows it, and together they
are exactly the wav re-timed to 48 kHz; TTSStarted/Stopped bracket the played speech; an
interruption (StartInterruptionFrame, or UserStartedSpeakingFrame when the pipeline allows
interruptions) stops the speech audio at once, and the next utterance plays; EndFrame lets
queued speech finish."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

pytest.importorskip("pipecat")

from pipecat.frames.frames import (EndFrame, ErrorFrame, OutputImageRawFrame, StartInterruptionFrame, TTSAudioRawFrame,
                                   TTSStartedFrame, TTSStoppedFrame, UserStartedSpeakingFrame)

from engine.integrations.avatar import InProcessAvatar
from engine.integrations.pipecat import FacecastProcessor
from avatar_support import SAMPLES_PER_FRAME, assert_retimed, expected_48k
from pipecat_support import RunningPipeline, UpstreamRecorder, audio_of, tts_frames
from ws_support import speech, write_wav



@pytest.fixture(scope="module")
def short_wav(tmp_path_factory):
    return write_wav(tmp_path_factory.mktemp("pc") / "short.wav", speech("Hello, nice to see you.", 24000), 24000)


@pytest.fixture(scope="module")
def long_wav(tmp_path_factory):
    text = "This is a much longer answer that the user will interrupt before it is over, I am sure of it."
    return write_wav(tmp_path_factory.mktemp("pc") / "long.wav", speech(text, 24000), 24000)


def check_av_pairs(frames) -> None:
    """Each speech audio frame comes right after the image that shows it, one frame long."""
    for prev, f in zip(frames, frames[1:]):
        if isinstance(f, TTSAudioRawFrame):
            assert isinstance(prev, OutputImageRawFrame), f"audio after {prev}, not after its image"
            assert (f.sample_rate, f.num_channels, len(f.audio)) == (48000, 1, 2 * SAMPLES_PER_FRAME)


async def test_tts_audio_in_images_and_retimed_audio_out(short_wav):
    proc = FacecastProcessor(InProcessAvatar())
    async with RunningPipeline([proc]) as (task, out):
        await out.wait_for(lambda: out.count(OutputImageRawFrame) >= 3, 60, "idle frames")
        assert out.count(TTSAudioRawFrame) == 0, "idle frames carry no audio"
        await task.queue_frames(tts_frames(short_wav))
        await out.wait_for(lambda: out.count(TTSStoppedFrame) == 1, 30, "the end of the segment")
        await task.stop_when_done()
    frames = [f for _, f in out.frames]
    check_av_pairs(frames)
    img = out.of(OutputImageRawFrame)[0]
    assert img.size == (512, 512) and img.format == "RGB" and len(img.image) == 512 * 512 * 3

    kinds = [type(f) for f in frames if isinstance(f, (TTSStartedFrame, TTSStoppedFrame, TTSAudioRawFrame))]
    assert kinds[0] is TTSStartedFrame and kinds[-1] is TTSStoppedFrame
    assert kinds.count(TTSStartedFrame) == 1 and kinds.count(TTSStoppedFrame) == 1

    got = audio_of(out.of(TTSAudioRawFrame))
    assert_retimed(got, expected_48k(short_wav))

    # paced by the avatar's clock: the speech frames span (about) the speech's duration
    times = [t for t, f in out.frames if isinstance(f, TTSAudioRawFrame)]
    assert times[-1] - times[0] > 0.7 * (len(got) / 48000 - 0.04)


@pytest.mark.parametrize("how", ["StartInterruptionFrame", "UserStartedSpeakingFrame"])
async def test_an_interruption_clears_the_avatar_at_once(how, long_wav, short_wav):
    proc = FacecastProcessor(InProcessAvatar())
    allow = how == "UserStartedSpeakingFrame"   # pipecat only barges in on user speech when allowed
    async with RunningPipeline([proc], allow_interruptions=allow) as (task, out):
        await task.queue_frames(tts_frames(long_wav))
        await out.wait_for(lambda: out.count(TTSAudioRawFrame) >= 12, 30, "half a second of speech")
        await task.queue_frame(StartInterruptionFrame() if how == "StartInterruptionFrame" else UserStartedSpeakingFrame())
        marker = StartInterruptionFrame if how == "StartInterruptionFrame" else UserStartedSpeakingFrame
        await out.wait_for(lambda: out.count(marker) == 1, 5, "the interruption to pass")
        at = next(i for i, (_, f) in enumerate(out.frames) if isinstance(f, marker))
        await out.wait_for(lambda: sum(isinstance(f, OutputImageRawFrame) for _, f in out.frames[at:]) >= 10,
                           10, "frames after the interruption")
        after = [f for _, f in out.frames[at:]]
        assert not any(isinstance(f, TTSAudioRawFrame) for f in after), "speech audio after the interruption"
        played = audio_of(out.of(TTSAudioRawFrame))
        assert len(played) < 0.6 * len(expected_48k(long_wav))

        # the next utterance plays in full
        await task.queue_frames(tts_frames(short_wav))
        await out.wait_for(lambda: out.count(TTSStoppedFrame) >= 1, 30, "the next utterance")
        again = audio_of([f for _, f in out.frames[at:] if isinstance(f, TTSAudioRawFrame)])
        assert_retimed(again, expected_48k(short_wav))
        await task.stop_when_done()
    check_av_pairs([f for _, f in out.frames])


async def test_end_frame_lets_queued_speech_play_out(short_wav):
    proc = FacecastProcessor(InProcessAvatar())
    async with RunningPipeline([proc]) as (task, out):
        await task.queue_frames([*tts_frames(short_wav), EndFrame()])
        await out.wait_for(lambda: out.count(EndFrame) == 1, 30, "the EndFrame")
    assert out.count(TTSStoppedFrame) == 1
    assert_retimed(audio_of(out.of(TTSAudioRawFrame)), expected_48k(short_wav))
    assert proc.avatar.session.closed


async def test_bad_tts_audio_is_an_error_frame_and_the_stream_goes_on(short_wav):
    up = UpstreamRecorder()
    proc = FacecastProcessor(InProcessAvatar())
    async with RunningPipeline([up, proc]) as (task, out):
        await task.queue_frames([TTSAudioRawFrame(audio=b"\x00\x01\x02", sample_rate=24000, num_channels=1),
                                 TTSAudioRawFrame(audio=b"\x00\x00" * 240, sample_rate=11025, num_channels=1),
                                 TTSStoppedFrame(), *tts_frames(short_wav)])
        await out.wait_for(lambda: out.count(TTSStoppedFrame) == 1, 30, "the good utterance")
        await task.stop_when_done()
    errors = [f.error for f in up.frames if isinstance(f, ErrorFrame)]
    assert len(errors) == 2 and "whole 16-bit samples" in errors[0] and "11025" in errors[1], errors
    assert_retimed(audio_of(out.of(TTSAudioRawFrame)), expected_48k(short_wav))
