"""Idle life: blinks, breathing, head motion, listening and thinking — never frozen."""
import numpy as np

from engine.clock import VirtualClock
from engine.motion.idle import PITCH, ROLL, IdleMotion
from engine.motion.space import INDEX


def _run(states, fps=25, seed=0, **kw):
    idle = IdleMotion(fps, seed, **kw)
    return np.array([idle.vector(k, s) for k, s in enumerate(states)])


def test_idle_blinks_at_about_the_configured_rate_and_never_freezes():
    v = _run(["idle"] * 25 * 60, blink_rate_per_min=17.0)
    blink = v[:, INDEX["eyeBlinkLeft"]]
    onsets = np.sum((blink[1:] > 0.5) & (blink[:-1] <= 0.5))
    assert 8 <= onsets <= 30
    assert blink.max() > 0.8
    # every consecutive pair of frames differs somewhere (head motion / breathing)
    assert np.all(np.abs(np.diff(v, axis=0)).max(axis=1) > 1e-5)
    assert np.abs(v[:, PITCH]).max() < 0.15  # small motion


def test_idle_is_deterministic_per_seed():
    a = _run(["idle"] * 200, seed=3)
    b = _run(["idle"] * 200, seed=3)
    c = _run(["idle"] * 200, seed=4)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a - c).max() > 1e-3


def test_listening_tilts_raises_brows_and_nods_smoothly():
    states = ["idle"] * 100 + ["listening"] * 250
    v = _run(states, blink_rate_per_min=0.0)
    idle_part, listen_part = v[:100], v[150:]
    assert listen_part[:, ROLL].mean() - idle_part[:, ROLL].mean() > 0.03
    assert listen_part[:, INDEX["browInnerUp"]].mean() > 0.1
    pitch = listen_part[:, PITCH]
    assert pitch.max() - pitch.min() > 0.05           # nods
    assert np.abs(np.diff(v, axis=0)).max() < 0.05     # eased, no jumps


def test_thinking_glances_up():
    v = _run(["thinking"] * 50)
    assert v[-1, INDEX["eyeLookUpLeft"]] > 0.2


def test_virtual_clock_frame_times():
    clock = VirtualClock(25)
    assert clock.frame_time(50) == 2.0 and clock.frame_at(2.039) == 50
