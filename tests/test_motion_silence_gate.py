"""The pause gate (engine.motion.silence): lips close in pauses of real-time speech, open
before speech resumes, and nothing else changes."""
import numpy as np
import pytest

from engine.config import load_config, replace
from engine.motion.generators import create_generator
from engine.motion.silence import GATED, SilenceGate
from engine.motion.space import INDEX

RATE, FPS = 16000, 25


def speech_with_pause(noise_db: float = -60.0, seed: int = 0) -> tuple[np.ndarray, tuple[float, float]]:
    """1.2 s of a syllabic buzz, a 0.8 s pause in room noise, 1.2 s of buzz again."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(3.2 * RATE)) / RATE
    buzz = 0.3 * np.sign(np.sin(2 * np.pi * 140 * t)) * (0.55 + 0.45 * np.sin(2 * np.pi * 4 * t))
    x = buzz * ((t < 1.2) | (t >= 2.0))
    x = x + 10 ** (noise_db / 20) * rng.standard_normal(len(t))
    return x.astype(np.float32), (1.2, 2.0)


def stream(gen, audio: np.ndarray, chunk: int = 640) -> np.ndarray:
    out = [gen.push(audio[i:i + chunk]) for i in range(0, len(audio), chunk)]
    return np.concatenate(out + [gen.flush()])


@pytest.fixture(scope="module")
def both():
    cfg = load_config(None)
    audio, pause = speech_with_pause()
    on = stream(create_generator(cfg), audio)
    off = stream(create_generator(replace(cfg, motion={"silence_gate": False})), audio)
    return audio, pause, on, off


def test_lips_close_in_the_pause_and_only_there(both):
    audio, (p0, p1), on, off = both
    k = np.arange(len(on)) / FPS
    inside = (k > p0 + 0.15) & (k < p1 - 0.1)        # the pause minus back/ahead windows and ramp
    speech = (k > 0.3) & (k < p0 - 0.1) | (k > p1 + 0.1) & (k < 3.1)
    jaw = INDEX["jawOpen"]
    assert off[inside, jaw].max() > 0.005              # ungated, the lips stay ajar in the pause
    assert np.abs(on[inside][:, list(GATED)]).max() == 0.0
    np.testing.assert_array_equal(on[speech], off[speech])
    ungated = [i for i in range(on.shape[1]) if i not in GATED]
    np.testing.assert_array_equal(on[:, ungated], off[:, ungated])   # expression, head: untouched
    # the lips are open again at the first frame of the resumed speech (look-ahead)
    first = int(np.ceil(p1 * FPS))
    assert on[first, jaw] == off[first, jaw]


def test_the_default_gate_closes_the_lips_within_two_frames_of_a_pause(both):
    """A model that holds its lips parted in pauses (as real speakers and the fitted teacher do)
    needs the gate to close them early: 40 ms of silence before a frame, closed at once."""
    audio, (p0, p1), on, off = both
    k = np.arange(len(on)) / FPS
    early = (k > p0 + 0.075) & (k < p1 - 0.1)
    assert off[early, INDEX["jawOpen"]].max() > 0.005
    assert np.abs(on[early][:, list(GATED)]).max() == 0.0


def test_steady_noise_is_not_a_pause():
    gate = SilenceGate(FPS, RATE, 0.14)
    rng = np.random.default_rng(1)
    gate.take((0.05 * rng.standard_normal(2 * RATE)).astype(np.float32))
    frames = np.ones((40, 58), np.float32)
    np.testing.assert_array_equal(gate.apply(frames, 0), frames)


def test_digital_silence_closes_at_once_and_loud_room_noise_pauses_too():
    gate = SilenceGate(FPS, RATE, 0.14, close_frames=1)
    gate.take(np.zeros(RATE, np.float32))
    assert gate.apply(np.ones((10, 58), np.float32), 5)[:, list(GATED)].max() == 0.0
    audio, (p0, p1) = speech_with_pause(noise_db=-35.0, seed=2)   # noisy room: the floor adapts
    g = SilenceGate(FPS, RATE, 0.14)
    g.take(audio)
    out = g.apply(np.ones((len(audio) // 640, 58), np.float32), 0)
    k = np.arange(len(out)) / FPS
    assert out[(k > p0 + 0.2) & (k < p1 - 0.1)][:, INDEX["jawOpen"]].max() == 0.0
    assert out[(k > 0.3) & (k < p0 - 0.1), INDEX["jawOpen"]].min() == 1.0
