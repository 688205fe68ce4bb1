"""Teacher mouth: viseme targets, coarticulation and timing on hand-made phone sequences."""
import numpy as np
import pytest

from engine.audio.phones import PHONES
from engine.training import visemes
from engine.motion.space import INDEX
from engine.training.teacher import ArticulationStyle, n_frames, teacher_motion, teacher_mouth

FPS = 25


def seq(*items):
    """("sil", 0.3), ("m", 0.08), ... -> phones, starts, ends, duration"""
    phones, starts, ends, t = [], [], [], 0.0
    for p, d in items:
        phones.append(p)
        starts.append(t)
        t += d
        ends.append(t)
    return phones, np.array(starts), np.array(ends), t


def at(w, name, t):
    return float(w[int(t * FPS), INDEX[name]])


def test_every_phone_has_a_viseme():
    for p in PHONES:
        tb = visemes.targets(p)
        assert set(tb) == set(visemes.CONTROLS)
        assert all(0 <= v <= 1 and d > 0 for v, d in tb.values())
    with pytest.raises(KeyError):
        visemes.targets("xx")


def test_bilabial_closes_the_lips_inside_an_open_vowel_context():
    p, s, e, dur = seq(("sil", 0.3), ("aa", 0.16), ("m", 0.07), ("aa", 0.16), ("sil", 0.3))
    w = teacher_mouth(p, s, e, dur)
    t_m, t_a = 0.3 + 0.16 + 0.035, 0.3 + 0.08
    assert at(w, "jawOpen", t_a) > 0.45
    assert at(w, "jawOpen", t_m) < 0.85 * at(w, "jawOpen", t_a)      # jaw rises for the closure
    assert at(w, "mouthClose", t_m) == pytest.approx(at(w, "jawOpen", t_m), rel=0.15)  # lips sealed
    assert at(w, "mouthClose", t_a) < 0.2 * at(w, "jawOpen", t_a)     # and open on the vowel
    assert at(w, "mouthPressLeft", t_m) > 0.25


def test_vowel_height_rounding_spreading_and_labiodentals():
    def mid(ph, d=0.2):
        p, s, e, dur = seq(("sil", 0.3), (ph, d), ("sil", 0.3))
        return teacher_mouth(p, s, e, dur)[int((0.3 + d / 2) * FPS)]

    aa, iy, uw, ff, th = mid("aa"), mid("iy"), mid("uw"), mid("f", 0.12), mid("th", 0.12)
    assert aa[INDEX["jawOpen"]] > iy[INDEX["jawOpen"]] + 0.25
    assert uw[INDEX["mouthPucker"]] > 0.3 and iy[INDEX["mouthPucker"]] < 0.05
    assert iy[INDEX["mouthStretchLeft"]] > 0.2 and uw[INDEX["mouthStretchLeft"]] < 0.05
    assert ff[INDEX["mouthRollLower"]] > 0.25 and aa[INDEX["mouthRollLower"]] < 0.05
    assert th[INDEX["tongueOut"]] > 0.1


def test_rounding_is_anticipated_across_consonants():
    # "s t r uw": the lips round during the consonants before the vowel (anticipation)
    p, s, e, dur = seq(("sil", 0.3), ("iy", 0.15), ("s", 0.09), ("t", 0.06), ("uw", 0.2), ("sil", 0.3))
    w = teacher_mouth(p, s, e, dur)
    t_iy, t_s, t_uw = 0.3 + 0.075, 0.3 + 0.15 + 0.045, 0.3 + 0.15 + 0.15 + 0.1
    assert at(w, "mouthPucker", t_iy) < 0.15
    assert at(w, "mouthPucker", t_iy) < at(w, "mouthPucker", t_s) < at(w, "mouthPucker", t_uw)
    assert at(w, "mouthPucker", t_s) > 0.15


def test_lips_part_before_speech_and_rest_in_long_pauses():
    style = ArticulationStyle.neutral()
    p, s, e, dur = seq(("sil", 1.2), ("ah", 0.2), ("sil", 1.2))
    w = teacher_mouth(p, s, e, dur, style=style)
    assert at(w, "jawOpen", 0.3) < 0.05                                # rest
    assert at(w, "jawOpen", 1.2 - 0.1) > 0.1                            # inhale before speech
    assert at(w, "jawOpen", 2.5) < 0.05                                 # back to rest after
    shut = ArticulationStyle(inhale_open=0.0)
    assert at(teacher_mouth(p, s, e, dur, style=shut), "jawOpen", 1.1) < at(w, "jawOpen", 1.1)


def test_lag_shifts_the_curves_later():
    p, s, e, dur = seq(("sil", 0.5), ("aa", 0.2), ("sil", 0.5))
    a = teacher_mouth(p, s, e, dur, style=ArticulationStyle(lag_s=0.0))[:, INDEX["jawOpen"]]
    b = teacher_mouth(p, s, e, dur, style=ArticulationStyle(lag_s=0.08))[:, INDEX["jawOpen"]]
    t = np.arange(len(a))
    assert (t * b).sum() / b.sum() - (t * a).sum() / a.sum() == pytest.approx(0.08 * FPS, abs=0.7)


def test_full_teacher_shape_range_and_determinism():
    p, s, e, dur = seq(("sil", 0.4), ("hh", 0.06), ("eh", 0.1), ("l", 0.06), ("ow", 0.25), ("sil", 0.5))
    rng = np.random.default_rng(0)
    audio = (0.1 * rng.standard_normal(int(dur * 16000))).astype(np.float32)
    a = teacher_motion(audio, 16000, p, s, e, FPS, seed=1)
    b = teacher_motion(audio, 16000, p, s, e, FPS, seed=1)
    c = teacher_motion(audio, 16000, p, s, e, FPS, seed=2)
    assert a.shape == (n_frames(len(audio) / 16000, FPS), 58) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a[:, 52:], c[:, 52:])
    assert np.array_equal(a[:, INDEX["jawOpen"]], c[:, INDEX["jawOpen"]])   # mouth is not random
    assert a[:, :52].min() >= 0 and a[:, :52].max() <= 1
    with pytest.raises(ValueError):
        teacher_mouth(["aa"], [0.0, 0.1], [0.1], 0.2)


def test_speaker_styles_are_stable_and_differ():
    a = ArticulationStyle.for_speaker("flite:slt")
    assert a == ArticulationStyle.for_speaker("flite:slt")
    assert a != ArticulationStyle.for_speaker("flite:rms")
    assert 0.8 <= a.jaw_scale <= 1.2


def test_inhale_windows_match_where_the_lips_part():
    from engine.training.teacher import inhale_windows
    style = ArticulationStyle(inhale_s=0.3)
    p, s, e, dur = seq(("sil", 1.0), ("ah", 0.2), ("sil", 0.4), ("ah", 0.2), ("sil", 0.5))
    wins = inhale_windows(p, s, e, style)
    assert wins == [(pytest.approx(0.7), pytest.approx(1.0))]     # the 0.4 s pause is too short
    assert inhale_windows(p, s, e, ArticulationStyle(inhale_open=0.0)) == []
