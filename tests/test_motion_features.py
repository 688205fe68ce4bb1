"""Streaming log-mel features: causal, equal to the offline features, causal normalisation."""
import numpy as np
import pytest

from engine.motion.features import (MelSpec, NormStats, RunningNorm, StreamingLogMel, frames_ready,
                                    log_mel, normalise_offline)


def noise(n, seed=0):
    return (0.1 * np.random.default_rng(seed).standard_normal(n)).astype(np.float32)


def test_streaming_equals_offline_for_any_chunking():
    a = noise(16000 + 37)
    off = log_mel(a)
    assert off.shape == (len(a) // 160, 80)
    for chunk in (1, 160, 333, 5000):
        s = StreamingLogMel()
        got = np.concatenate([s.push(a[i:i + chunk]) for i in range(0, len(a), chunk)])
        np.testing.assert_allclose(got, off, rtol=1e-5, atol=1e-4)


def test_features_are_strictly_causal():
    a = noise(8000)
    b = a.copy()
    b[4000:] = noise(4000, seed=1)
    fa, fb = log_mel(a), log_mel(b)
    last_clean = 4000 // 160          # frames j with (j+1)*160 <= 4000
    np.testing.assert_array_equal(fa[:last_clean], fb[:last_clean])
    assert not np.allclose(fa[last_clean], fb[last_clean])


def test_running_norm_streaming_matches_offline():
    mel = log_mel(noise(32000))
    stats = NormStats(mean=mel.mean(0) + 1.0, std=mel.std(0) + 0.5, time_constant_frames=50)
    off = normalise_offline(mel, stats)
    rn = RunningNorm(stats)
    got = np.concatenate([rn(mel[:77]), rn(mel[77:])])
    np.testing.assert_allclose(got, off, atol=1e-4)
    # causal: the first frames do not depend on later ones
    np.testing.assert_allclose(normalise_offline(mel[:40], stats), off[:40], atol=1e-5)


def test_frames_ready_and_bad_input():
    assert frames_ready(640 + 1280 - 1, 640, 1280) == 0
    assert frames_ready(640 + 1280, 640, 1280) == 1
    with pytest.raises(ValueError):
        log_mel(np.array([0.0, np.nan], np.float32))
    with pytest.raises(ValueError):
        StreamingLogMel(MelSpec()).push(np.zeros((3, 2), np.float32))


def test_running_mean_ignores_long_silence():
    speech = log_mel(noise(16000 * 2))
    stats = NormStats(mean=speech.mean(0), std=speech.std(0) + 0.1, time_constant_frames=50)
    quiet = log_mel((1e-5 * np.random.default_rng(3).standard_normal(16000 * 5)).astype(np.float32))
    rn = RunningNorm(stats)
    rn(speech)
    before = rn._r.copy()
    rn(quiet)
    np.testing.assert_array_equal(rn._r, before)          # the gate kept the mean where speech left it
    after = rn(speech[:50])
    np.testing.assert_allclose(after, normalise_offline(np.concatenate([speech, quiet, speech[:50]]), stats)[-50:],
                               atol=1e-4)


def test_running_mean_takes_over_a_new_channel_quickly():
    speech = log_mel(noise(16000 * 2))
    stats = NormStats(mean=speech.mean(0), std=np.ones(80), time_constant_frames=300, prior_frames=30)
    louder = speech + 3.0                                   # same sound, another channel gain
    out = normalise_offline(louder, stats)
    assert np.abs(out[100:].mean()) < 0.75 and np.abs(out[:5].mean()) > 2.0   # adapts within ~1 s
    plain = normalise_offline(louder, NormStats(stats.mean, stats.std, 300, prior_frames=1e9))
    assert np.abs(plain[100:].mean()) > 1.5                 # a plain 3 s EMA has not caught up yet
