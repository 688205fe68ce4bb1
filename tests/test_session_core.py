"""The Session with the real renderer and speech-motion generator, on a virtual clock.

A virtual clock makes these tests independent of machine speed: media time
only advances as frames are taken, so every assertion is about pts and content.
"""
import numpy as np
import pytest

from engine.clock import VirtualClock
from engine.motion.generators import create_generator
from engine.session import Session

from media_probe import mouth_weight, speech_bursts

FPS = 25
SPF = 48000 // FPS


@pytest.fixture(scope="module")
def speech(config):
    return speech_bursts(config)


async def _session(config, renderer, mode="assistant") -> Session:
    s = Session(config, mode=mode, clock=VirtualClock(FPS), renderer=renderer,
                generator=create_generator(config))
    await s.start()
    return s


async def _take(frames, n):
    out = []
    async for f in frames:
        out.append(f)
        if len(out) == n:
            break
    return out


def _drain(events):
    out = []
    while (e := events.channel.get_nowait()) is not None:
        out.append(e)
    return out


async def test_frames_carry_exactly_the_audio_they_show(config, renderer, speech):
    audio, spans = speech
    s = await _session(config, renderer)
    events, frames = s.events(), s.video_frames()
    for i in range(0, len(audio), 24000):
        s.push_speech(audio[i:i + 24000], 48000)
    s.end_segment()
    n = -(-len(audio) // SPF)
    got = await _take(frames, n)
    await s.close()
    assert [f.pts for f in got] == list(range(n))
    out = np.concatenate([f.audio.samples for f in got])
    np.testing.assert_array_equal(out[:len(audio)], audio)      # bit-exact, frame-aligned
    assert not out[len(audio):].any()
    assert all(f.audio.pts == f.pts * SPF for f in got)
    # the mouth moves while each utterance is voiced and rests in the lead-in silence
    weights = np.array([mouth_weight(f.motion) for f in got])
    rest = weights[: int(0.4 * FPS)].max()
    for start, end in spans:
        voiced = weights[int(start * FPS) + 2:int(end * FPS)]
        assert voiced.mean() > max(0.05, 2 * rest) and voiced.std() > 0.02
    types = [(e["type"], e.get("state")) for e in _drain(events)]
    assert ("state", "speaking") in types and ("playback.started", None) in types


async def test_events_report_segments_and_positions(config, renderer, speech):
    audio, _ = speech
    s = await _session(config, renderer)
    events, frames = s.events(), s.video_frames()
    s.push_speech(audio[:48000], 48000)      # segment 1: 1.0 s
    s.end_segment()
    s.push_speech(audio[:24000], 48000)      # segment 2: 0.5 s
    s.end_segment()
    await _take(frames, 25 + 13 + 10)
    await s.close()
    ev = _drain(events)
    started = [e["segment"] for e in ev if e["type"] == "playback.started"]
    finished = [(e["segment"], e["position_s"], e["interrupted"]) for e in ev if e["type"] == "playback.finished"]
    assert started == [1, 2]
    assert finished == [(1, 1.0, False), (2, 0.5, False)]
    states = [e["state"] for e in ev if e["type"] == "state"]
    assert states[0] == "idle" and "speaking" in states and states[-1] == "idle"


async def test_interrupt_cuts_audio_at_once_and_lips_stop_within_150ms(config, renderer, speech):
    audio, _ = speech
    s = await _session(config, renderer)
    events, frames = s.events(), s.video_frames()
    s.push_speech(audio, 48000)
    s.end_segment()
    before = await _take(frames, 40)
    assert max(mouth_weight(f.motion) for f in before) > 0.1
    t_interrupt = s.clock.now()
    s.interrupt()
    after = await _take(frames, 30)
    await s.close()
    assert all(not f.audio.samples.any() for f in after), "audio must stop at once"
    late = [f for f in after if s.clock.frame_time(f.pts) >= t_interrupt + 0.150]
    assert len(late) >= 20
    assert max(mouth_weight(f.motion) for f in late) < 1e-6, "lips still moving 150 ms after interrupt"
    fin = [e for e in _drain(events) if e["type"] == "playback.finished"]
    assert len(fin) == 1 and fin[0]["interrupted"] is True
    assert 1.4 <= fin[0]["position_s"] <= 1.8     # ~40 frames had been played
    # everything older was dropped: nothing of the interrupted segment is left to play
    assert s.speech.pending() is None


async def test_states_follow_the_mic_and_hints(config, renderer, speech):
    audio, _ = speech
    s = await _session(config, renderer)
    events, frames = s.events(), s.video_frames()
    await _take(frames, 3)
    s.push_mic(audio[int(0.6 * 48000):int(1.4 * 48000)], 48000)   # the user talks
    await _take(frames, 3)
    assert s.state == "listening"
    s.push_mic(np.zeros(48000, np.float32), 48000)               # ...and stops
    s.set_state("thinking")
    await _take(frames, 3)
    assert s.state == "thinking"
    s.push_speech(audio[:24000], 48000)
    s.end_segment()
    await _take(frames, 20)
    await s.close()
    states = [e["state"] for e in _drain(events) if e["type"] == "state"]
    assert states == ["idle", "listening", "thinking", "speaking", "idle"]


async def test_echo_mode_speaks_each_utterance_back(config, renderer, speech):
    audio, spans = speech
    s = await _session(config, renderer, mode="echo")
    events, frames = s.events(), s.video_frames()
    for i in range(0, len(audio), 960):                  # 20 ms mic frames
        s.push_mic(audio[i:i + 960], 48000)
    s.push_mic(np.zeros(48000, np.float32), 48000)
    got = await _take(frames, -(-len(audio) // SPF) + 40)
    await s.close()
    ev = _drain(events)
    assert [e["segment"] for e in ev if e["type"] == "playback.started"] == [1, 2]
    out = np.concatenate([f.audio.samples for f in got])
    for start, end in spans:   # each utterance comes back intact (same samples, shifted)
        piece = audio[int(start * 48000):int(end * 48000)]
        corr = np.correlate(out, piece, mode="valid")
        k = int(np.argmax(corr))
        np.testing.assert_allclose(out[k:k + len(piece)], piece, atol=1e-6)
        voiced_frames = got[k // SPF + 2:(k + len(piece)) // SPF]
        assert np.mean([mouth_weight(f.motion) for f in voiced_frames]) > 0.05


async def test_bad_input_gets_clear_errors(config, renderer, tmp_path):
    from engine.audio.pcm import AudioFormatError
    from engine.pipeline.speech import SpeechBufferFull
    with pytest.raises(ValueError, match="unknown mode"):
        Session(config, mode="karaoke")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        Session(config, avatar_path=tmp_path / "missing.avatar")
    s = await _session(config, renderer)
    with pytest.raises(AudioFormatError, match="unsupported sample rate 11025"):
        s.push_speech(np.zeros(100, np.float32), 11025)
    with pytest.raises(AudioFormatError, match="NaN or inf"):
        s.push_speech(np.full(100, np.nan, np.float32), 16000)
    with pytest.raises(AudioFormatError, match="NaN or inf"):
        s.push_mic(np.full(100, np.inf, np.float32), 48000)
    with pytest.raises(ValueError, match="state hint"):
        s.set_state("speaking")
    with pytest.raises(SpeechBufferFull, match="max_buffered_speech_s"):
        s.push_speech(np.zeros(16000 * 121, np.float32), 16000)
    s.push_speech(np.zeros(1600, np.float32), 16000)
    with pytest.raises(ValueError, match="sample rate changed"):
        s.push_speech(np.zeros(4800, np.float32), 48000)
    await s.close()
    from engine.session import SessionClosed
    with pytest.raises(SessionClosed):
        s.push_speech(np.zeros(10, np.float32), 16000)


async def test_idle_avatar_is_never_a_frozen_frame(config, renderer):
    s = await _session(config, renderer)
    got = await _take(s.video_frames(), 8 * FPS)
    await s.close()
    diffs = [np.abs(a.image.astype(np.int16) - b.image).max() for a, b in zip(got, got[1:])]
    assert min(diffs) > 0, "two consecutive idle frames are identical"
    blink = np.array([f.motion["eyeBlinkLeft"] for f in got])
    assert blink.max() > 0.8                                    # it blinks
    yaw = np.array([f.motion.head_rotation[0] for f in got])
    assert yaw.max() - yaw.min() > 0.01                         # and moves its head
    assert all(not f.audio.samples.any() for f in got)          # silently
