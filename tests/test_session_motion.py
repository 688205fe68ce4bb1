"""Motion-mode sessions on a virtual clock (machine-speed independent): the same session as video
mode minus the render stage — same motion, same audio, same events, frame for frame."""
import numpy as np
import pytest

from engine.clock import VirtualClock
from engine.motion.generators import create_generator
from engine.packets import MotionOutput, VideoFrame
from engine.session import Session

from media_probe import speech_bursts

FPS, SPF = 25, 48000 // 25


async def _run(config, output, audio, n, renderer=None):
    s = Session(config, clock=VirtualClock(FPS), generator=create_generator(config), renderer=renderer, output=output)
    await s.start()
    events = s.events()
    frames = s.video_frames() if output == "video" else s.motion_frames()
    for i in range(0, len(audio), 24000):
        s.push_speech(audio[i:i + 24000], 48000)
    s.end_segment()
    got = []
    async for f in frames:
        got.append(f)
        if len(got) == n:
            break
    out_events = []
    while (e := events.channel.get_nowait()) is not None:
        out_events.append(e)
    render_stage = s.render_stage
    await s.close()
    return got, out_events, render_stage


async def test_motion_mode_is_video_mode_without_the_pictures(config, renderer):
    audio, _ = speech_bursts(config, texts=("Hello there.",))
    n = -(-len(audio) // SPF) + 5
    video, ev_video, _ = await _run(config, "video", audio, n, renderer)
    motion, ev_motion, stage = await _run(config, "motion", audio, n)
    assert stage is None
    assert all(isinstance(f, MotionOutput) for f in motion) and all(isinstance(f, VideoFrame) for f in video)
    assert [f.pts for f in motion] == [f.pts for f in video] == list(range(n))
    for v, m in zip(video, motion):
        np.testing.assert_array_equal(m.audio.samples, v.audio.samples)
        assert m.audio.pts == v.audio.pts == m.pts * SPF
        np.testing.assert_array_equal(m.motion.to_vector(), v.motion.to_vector())
    assert ev_motion == ev_video
    assert any(e["type"] == "playback.finished" for e in ev_motion)


async def test_motion_and_video_subscriptions_are_kept_apart(config):
    s = Session(config, clock=VirtualClock(FPS), generator=create_generator(config), output="motion")
    with pytest.raises(ValueError, match="motion_frames"):
        s.video_frames()
    with pytest.raises(ValueError, match="output"):
        Session(config, output="pixels")
    v = Session(config, clock=VirtualClock(FPS), renderer=object(), generator=object())
    with pytest.raises(ValueError, match="output='motion'"):
        v.motion_frames()
