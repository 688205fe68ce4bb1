"""Teacher head/brows/blinks/gaze and the listening/idle behaviours."""
import numpy as np

from engine.motion.space import INDEX
from engine.training.teacher import ArticulationStyle
from engine.training.teacher_life import idle_motion, listening_motion

FPS = 25


def _blinks(m):
    b = m[:, INDEX["eyeBlinkLeft"]] > 0.5
    return int((b[1:] & ~b[:-1]).sum())


def test_idle_blinks_at_the_style_rate_and_head_moves_smoothly():
    style = ArticulationStyle(blink_rate_per_min=20.0)
    m = idle_motion(120 * FPS, FPS, style, np.random.default_rng(0))
    assert 20 <= _blinks(m) <= 60                      # ~40 expected in 2 minutes
    rot = m[:, 52:55]
    assert 0.002 < rot.std() < 0.1                     # some sway, a few degrees at most
    assert np.abs(np.diff(rot, axis=0)).max() < 0.02   # no frame-to-frame jitter
    assert m[:, INDEX["jawOpen"]].max() <= style.rest_open + 1e-6


def test_listening_nods_and_keeps_the_mouth_quiet():
    style = ArticulationStyle.neutral()
    m = listening_motion(60 * FPS, FPS, style, np.random.default_rng(1))
    pitch = m[:, 53]
    assert pitch.max() > 0.02                          # nods (pitch > 0 = nose down)
    assert m[:, INDEX["mouthSmileLeft"]].mean() > 0.02
    assert m[:, INDEX["jawOpen"]].max() <= style.rest_open + 1e-6
    assert np.isfinite(m).all() and m.shape == (60 * FPS, 58)


def test_seeds_give_different_but_reproducible_behaviour():
    s = ArticulationStyle.neutral()
    a = idle_motion(500, FPS, s, np.random.default_rng(3))
    assert np.array_equal(a, idle_motion(500, FPS, s, np.random.default_rng(3)))
    assert not np.allclose(a, idle_motion(500, FPS, s, np.random.default_rng(4)))


def test_a_very_short_utterance_gets_teacher_motion():
    """Spoken digits (0.1-0.3 s) used to crash the head-sway smoothing (7- and 9-frame windows)."""
    import numpy as np
    from engine.training.teacher import teacher_motion
    for n_samples, frames in ((1600, 3), (4800, 8)):
        audio = (0.1 * np.random.default_rng(0).standard_normal(n_samples)).astype(np.float32)
        end = n_samples / 16000
        m = teacher_motion(audio, 16000, ["sil", "z", "iy", "sil"], [0, 0.02, 0.04, end - 0.01],
                           [0.02, 0.04, end - 0.01, end])
        assert m.shape == (frames, 58) and np.isfinite(m).all()
