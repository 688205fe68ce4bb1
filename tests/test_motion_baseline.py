"""The non-learned baseline generator honours the streaming SpeechMotionGenerator contract."""
import logging

import numpy as np
import pytest

from engine.config import load_config, replace
from engine.motion.baseline import BaselineGenerator
from engine.motion.generators import create_generator
from engine.motion.streaming import MotionControls, SpeechMotionGenerator
from engine.motion.space import INDEX, VECTOR_DIM

SR, SPF = 16000, 640


def speech_like(seconds: float = 2.0, seed: int = 0) -> np.ndarray:
    """Syllable-rate (4 Hz) modulated harmonic voice with silent gaps: loud/quiet structure."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    f0 = 120 + 20 * np.sin(2 * np.pi * 0.5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voice = sum(np.sin(k * phase) / k for k in range(1, 30))
    env = np.clip(np.sin(2 * np.pi * 4 * t), 0, None) ** 2
    env[(t > 0.9) & (t < 1.2)] = 0.0
    return (0.3 * voice * env + 0.001 * rng.standard_normal(len(t))).astype(np.float32)


def run(gen, audio, chunk):
    out = [gen.push(audio[i:i + chunk]) for i in range(0, len(audio), chunk)]
    out.append(gen.flush())
    return np.concatenate(out)


def test_implements_protocol_and_frame_count():
    g = BaselineGenerator(lookahead_ms=80)
    assert isinstance(g, SpeechMotionGenerator)
    assert g.lookahead_samples == 1280
    audio = speech_like(1.0)
    m = run(g, audio, 333)
    assert m.shape == (-(-len(audio) // SPF), VECTOR_DIM) and m.dtype == np.float32
    assert np.isfinite(m).all()


def test_emits_frame_only_when_its_lookahead_has_arrived():
    g = BaselineGenerator(lookahead_ms=80)
    audio = speech_like(1.0)
    n_before = (SPF + 1280) - 1
    assert len(g.push(audio[:n_before])) == 0
    assert len(g.push(audio[n_before:n_before + 1])) == 1        # frame 0 complete now
    assert len(g.push(audio[n_before + 1:n_before + SPF])) == 0
    assert len(g.push(audio[n_before + SPF:n_before + SPF + 1])) == 1


def test_chunking_does_not_change_output():
    audio = speech_like(2.0)
    a = run(BaselineGenerator(seed=3), audio, 160)
    b = run(BaselineGenerator(seed=3), audio, 7919)
    np.testing.assert_allclose(a, b, atol=1e-6)


def test_mouth_follows_loudness_and_closes_in_silence():
    audio = speech_like(2.0)
    m = run(BaselineGenerator(), audio, 320)
    jaw = m[:, INDEX["jawOpen"]]
    env = np.array([np.sqrt(np.mean(audio[k * SPF:(k + 1) * SPF] ** 2)) for k in range(len(m))])
    assert np.corrcoef(jaw, env)[0, 1] > 0.5
    gap = slice(int(0.98 * 25), int(1.15 * 25))            # inside the silent gap (plus lead)
    assert jaw[gap].max() < 0.05 < jaw.max()


def test_seed_determinism_and_head_diversity():
    audio = speech_like(2.0)
    a = run(BaselineGenerator(seed=1), audio, 640)
    b = run(BaselineGenerator(seed=1), audio, 640)
    c = run(BaselineGenerator(seed=2), audio, 640)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a[:, 52:55] - c[:, 52:55]).mean() > 1e-3
    g = BaselineGenerator(seed=1)
    run(g, audio, 640)
    g.reset(1)
    np.testing.assert_array_equal(run(g, audio, 640), a)


def test_controls_change_motion():
    audio = speech_like(1.0)
    g = BaselineGenerator()
    g.set_controls(MotionControls(emotion="happy", emotion_intensity=1.0, head_motion_scale=0.0))
    m = run(g, audio, 640)
    assert m[:, INDEX["mouthSmileLeft"]].min() > 0.4
    assert np.abs(m[:, 52:58]).max() == 0.0
    g.reset()
    g.set_controls(MotionControls(state="listening"))
    assert run(g, audio, 640)[:, INDEX["jawOpen"]].max() == 0.0
    with pytest.raises(ValueError):
        g.set_controls(MotionControls(state="dancing"))
    with pytest.raises(ValueError):
        g.set_controls(MotionControls(emotion="bored"))


@pytest.mark.parametrize("bad", [np.array([0.0, np.nan], np.float32), np.array([np.inf], np.float32),
                                 np.zeros((2, 3), np.float32), np.zeros(10, np.int16)])
def test_bad_input_raises_value_error(bad):
    with pytest.raises(ValueError):
        BaselineGenerator().push(bad)


def test_flush_emits_every_frame_and_starts_new_segment():
    g = BaselineGenerator()
    assert g.flush().shape == (0, VECTOR_DIM)
    first = g.push(speech_like(0.5))
    rest = g.flush()
    assert len(first) + len(rest) == -(-8000 // SPF)
    assert len(g.push(np.zeros(SPF + g.lookahead_samples, np.float32))) == 1   # new segment, frame 0


def test_factory_baseline_and_fallback_on_missing_or_corrupt_model(tmp_path, caplog):
    cfg = load_config()
    assert isinstance(create_generator(replace(cfg, motion={"source": "baseline"})), BaselineGenerator)
    missing = replace(cfg, motion={"source": "model", "model_path": str(tmp_path / "nope.onnx")})
    with caplog.at_level(logging.WARNING):
        g = create_generator(missing)
    assert isinstance(g, BaselineGenerator) and "nope.onnx" in caplog.text
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(b"\x00not an onnx model at all")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        g = create_generator(replace(cfg, motion={"source": "model", "model_path": str(bad)}))
    assert isinstance(g, BaselineGenerator) and "corrupt.onnx" in caplog.text
    assert g.push(speech_like(0.3)).shape[1] == VECTOR_DIM
