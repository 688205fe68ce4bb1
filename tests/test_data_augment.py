"""Augmentation keeps phone times consistent with the audio it returns."""
import numpy as np
import pytest

from engine.training.augment import AugmentPlan, augment, random_plan, sox_available

needs_sox = pytest.mark.skipif(not sox_available(), reason="sox not installed")


def _tone_bursts():
    t = np.arange(32000) / 16000
    env = ((t > 0.5) & (t < 1.0)).astype(np.float32)            # one burst 0.5..1.0 s
    return (0.5 * np.sin(2 * np.pi * 220 * t) * env).astype(np.float32)


def _onset(x):
    return np.argmax(np.abs(x) > 0.05) / 16000


@needs_sox
@pytest.mark.parametrize("plan", [AugmentPlan(tempo=1.15), AugmentPlan(formant=0.9), AugmentPlan(pitch_cents=300)])
def test_time_scale_matches_audio(plan):
    x = _tone_bursts()
    y, scale = augment(x, plan, np.random.default_rng(0))
    assert y.dtype == np.float32
    assert len(y) == pytest.approx(len(x) * scale, abs=2)
    assert _onset(y) == pytest.approx(0.5 * scale, abs=0.03)     # the burst moved with the time scale


def test_noise_level_and_band():
    x = _tone_bursts()
    y, scale = augment(x, AugmentPlan(noise_snr_db=10.0, gain_db=-6.0, band=(300, 3400)), np.random.default_rng(0))
    assert scale == 1.0 and len(y) == len(x)
    assert np.abs(y).max() == pytest.approx(0.9 * 10 ** (-6 / 20), rel=1e-3)
    assert np.abs(y[:4000]).mean() > 1e-3                          # noise where there was silence


@needs_sox
def test_random_plans_run():
    x = _tone_bursts()
    for seed in range(6):
        plan = random_plan(np.random.default_rng(seed))
        y, scale = augment(x, plan, np.random.default_rng(seed))
        assert np.isfinite(y).all() and 0.8 < scale < 1.25 and plan.applied


def test_breaths_only_inside_their_windows():
    from engine.training.augment import add_breaths
    x = _tone_bursts()                                  # speech-like burst at 0.5-1.0 s
    y = add_breaths(x, [(0.2, 0.45)], -25.0, np.random.default_rng(0))
    d = y - x
    inside, outside = d[int(0.22 * 16000):int(0.43 * 16000)], np.concatenate([d[:int(0.2 * 16000)], d[int(0.45 * 16000):]])
    assert np.sqrt(np.mean(inside ** 2)) > 0.004 and np.abs(outside).max() == 0.0
