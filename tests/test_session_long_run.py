"""Sync by construction over a long stream: many segments, odd input rates, no drift.

About a minute of speech in 14 segments at 16, 22.05, 24 and 48 kHz go through one
session on a virtual clock (small frames keep it quick). Every frame must carry
exactly its own slice of each segment's 48 kHz audio: segment starts land on
frame boundaries, the audio pts is the frame index times 1920, and the total
output is an exact number of frames — so nothing can slide, however long it runs.
"""
import numpy as np

from engine.audio.resample import resample
from engine.clock import VirtualClock
from engine.config import load_config, replace
from engine.motion.generators import create_generator
from engine.pipeline.render import create_renderer
from engine.session import Session

SPF = 1920


async def test_a_minute_of_segments_stays_frame_exact():
    config = replace(load_config(), video={"width": 128, "height": 128})
    session = Session(config, clock=VirtualClock(25), renderer=create_renderer(config),
                      generator=create_generator(config))
    await session.start()
    rng = np.random.default_rng(7)
    rates = [16000, 22050, 24000, 48000]
    expected = []
    for i in range(14):
        rate = rates[i % 4]
        n = int(rng.uniform(2.5, 5.5) * rate)
        t = np.arange(n) / rate
        x = (0.2 * np.sin(2 * np.pi * rng.uniform(150, 400) * t) * (np.sin(2 * np.pi * 2.5 * t) > 0)).astype(np.float32)
        for j in range(0, n, rate // 5):
            session.push_speech(x[j:j + rate // 5], rate)
        session.end_segment()
        expected.append(resample(x, rate, 48000))
    n_frames = sum(-(-len(e) // SPF) for e in expected)
    frames = session.video_frames()
    got = []
    async for f in frames:
        got.append(f)
        if len(got) == n_frames:
            break
    await session.close()
    assert sum(len(e) for e in expected) / 48000 > 45
    assert [f.pts for f in got] == list(range(n_frames))
    assert all(f.audio.pts == f.pts * SPF and len(f.audio.samples) == SPF for f in got)
    k = 0
    for e in expected:
        n = -(-len(e) // SPF)
        out = np.concatenate([f.audio.samples for f in got[k:k + n]])
        np.testing.assert_allclose(out[:len(e)], e, atol=1e-6)
        assert not out[len(e):].any()
        k += n
