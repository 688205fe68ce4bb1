"""Live catch-up: a segment that fell behind skips silent frames, never speech."""
import asyncio
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from engine.config import load_config
from engine.motion.generators import create_baseline
from engine.pipeline.speech import SpeechStage


def _speech_with_pause(seconds: float = 2.0) -> np.ndarray:
    t = np.arange(int(16000 * seconds)) / 16000
    voiced = (t < 0.6) | (t >= 1.4)
    return np.where(voiced, 0.3 * np.sin(2 * np.pi * 220 * t), 0.0).astype(np.float32)


async def _drain(stage: SpeechStage) -> None:
    while stage.busy():
        await asyncio.sleep(0.01)


async def test_a_late_segment_drops_only_silent_frames_to_catch_up():
    config = load_config()
    pool = ThreadPoolExecutor(1)
    stage = SpeechStage(create_baseline(config), 25, 16000, 48000, 60.0, pool, start_margin_s=0.02)
    stage.start()
    x = _speech_with_pause()
    stage.push(x[:9600], 16000)            # the first 0.6 s (voiced) arrive ...
    await _drain(stage)
    await asyncio.sleep(0.05)
    frames = []
    while (f := stage.pop_frame()) is not None:
        frames.append(f)
    waited = 8
    for _ in range(waited):                # ... then the audio is late: the clock waits 8 ticks
        assert stage.pop_frame() is None
    stage.push(x[9600:], 16000)
    stage.end_segment()
    await _drain(stage)
    while (f := stage.pop_frame()) is not None:
        frames.append(f)
    await stage.stop()
    pool.shutdown()
    played = np.concatenate([f.audio.samples for f in frames])
    assert stage.underruns >= waited
    assert stage.silent_frames_dropped == stage.underruns      # exactly the ticks it fell behind
    assert len(frames) + stage.silent_frames_dropped == 50
    # every voiced sample was played, in order; only silence went missing
    x48 = np.repeat(x, 3)
    assert np.sum(np.abs(played) > 0.05) >= 0.98 * np.sum(np.abs(x48) > 0.05)
    dropped_positions = sorted(set(range(50)) - {f.pts for f in frames})
    assert all(15 <= i < 35 for i in dropped_positions), dropped_positions   # frames of the 0.6-1.4 s pause
    assert frames[-1].last and frames[0].pts == 0


async def test_speech_pushed_ahead_of_real_time_keeps_its_pauses():
    """A TTS delivers faster than real time: the clock never waited, so no frame is dropped (the
    pause between phrases stays as long as the TTS made it)."""
    config = load_config()
    pool = ThreadPoolExecutor(1)
    stage = SpeechStage(create_baseline(config), 25, 16000, 48000, 60.0, pool, start_margin_s=0.02)
    stage.start()
    stage.push(_speech_with_pause(), 16000)   # all 2 s at once, long before they play
    stage.end_segment()
    await _drain(stage)
    await asyncio.sleep(0.3)                  # every frame has been ready far longer than its margin
    frames = []
    while (f := stage.pop_frame()) is not None:
        frames.append(f)
    await stage.stop()
    pool.shutdown()
    assert stage.silent_frames_dropped == 0
    assert [f.pts for f in frames] == list(range(50))


async def test_underruns_widen_the_start_margin_and_calm_speech_narrows_it():
    config = load_config()
    pool = ThreadPoolExecutor(1)
    stage = SpeechStage(create_baseline(config), 25, 16000, 48000, 60.0, pool, start_margin_s=0.02)
    stage.start()
    x = (0.3 * np.sin(2 * np.pi * 220 * np.arange(16000) / 16000)).astype(np.float32)
    stage.push(x[:8000], 16000)            # half a second arrives, the rest is late
    while stage.busy():
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    played = 0
    while stage.pop_frame() is not None:
        played += 1
    assert played > 5 and stage.pop_frame() is None      # ran dry mid-segment: underruns
    assert stage.underruns == 2 and abs(stage.start_margin_s - 0.06) < 1e-9
    stage.push(x[8000:], 16000)
    stage.end_segment()
    while stage.busy():
        await asyncio.sleep(0.01)
    while stage.pop_frame() is not None:
        pass
    await stage.stop()
    pool.shutdown()
    assert 0.02 <= stage.start_margin_s < 0.06
