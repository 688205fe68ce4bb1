"""The avatar's lip gap follows the commanded opening (``engine.motion.opening``: the convention
the model is trained on), whatever mix of mouth shapes commands it: pucker narrows the gap,
funnel opens it less than the jaw does, the lips' openers and the lip seal count as the
convention says; rounding keeps its look (lips forward, mouth narrower); and the rendered image,
tracked like a real mouth, shows it.

Before the ``MouthMap`` (round 3), the rig's gap was the jaw's alone plus whatever each shape
happened to do to the inner lips: on the default avatar mouthPucker 0.6 at jawOpen 0.3 left
the gap unchanged (0.0376 face heights), and the rig's lip gap followed the model's opening at r 0.37 on the real test clips
(0.43 with the map)."""
import numpy as np
import pytest

from engine.avatar.asset import load_avatar
from engine.avatar.lip_contact import PRESS_SEAL_GAIN
from engine.avatar.mouth_rest import MouthMap, lip_gap
from engine.config import ASSETS_DIR
from engine.motion.opening import mouth_opening
from engine.motion.space import INDEX, MotionFrame
from engine.render.calibrate import CALIBRATION_SIZE, tracked_gap
from engine.render.warp import WarpRenderer
from engine.render.warp.deform import MeshDeformer

MOUTH = ["jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthLowerDownLeft", "mouthLowerDownRight",
         "mouthUpperUpLeft", "mouthUpperUpRight", "mouthPressLeft", "mouthPressRight", "mouthRollLower",
         "mouthRollUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight"]


@pytest.fixture(scope="module")
def deformer():
    return MeshDeformer(load_avatar(ASSETS_DIR / "default.avatar"))


def gap(deformer, weights: dict) -> float:
    return lip_gap(deformer.expression(MotionFrame.from_weights(weights)))


def speech_like(rng) -> dict:
    """Random mouth weights in the ranges the model produces in speech (p90 of the test clips)."""
    w = {n: float(rng.uniform(0, 0.4)) * (rng.uniform() < 0.6) for n in MOUTH}
    w["jawOpen"] = float(rng.uniform(0, 0.6))
    w["mouthClose"] = min(w["mouthClose"], w["jawOpen"])
    return w


def test_the_rig_gap_is_a_function_of_the_commanded_opening(deformer):
    rng = np.random.default_rng(8)
    mouth = deformer.mouth
    got, want, opening = [], [], []
    for _ in range(200):
        w = speech_like(rng)
        m = MotionFrame.from_weights(w)
        got.append(lip_gap(deformer.expression(m)))
        want.append(mouth.target_gap(np.clip(m.blendshapes, 0, 1)))
        press = 0.5 * (w["mouthPressLeft"] + w["mouthPressRight"])      # a press seals: 2 x press
        opening.append(float(mouth_opening(m.blendshapes)) * max(0.0, 1 - PRESS_SEAL_GAIN * press))
    got, want, opening = map(np.array, (got, want, opening))
    reachable = want < mouth.target[-1] * 0.95       # jawOpen 1 may not make up for a strong pucker
    assert reachable.mean() > 0.9
    # the visible gap is the map's target (face heights; the jaw or the seal made up the rest)
    assert np.abs(got - want)[reachable].max() < 2e-3, np.abs(got - want)[reachable].max()
    # ... which grows with the (press-sealed) opening
    free = reachable & (want > 0)
    order = np.argsort(opening[free])
    assert np.all(np.diff(got[free][order]) > -2e-3)


def test_pucker_narrows_the_gap_and_funnel_opens_it_less_than_the_jaw(deformer):
    jaw = {"jawOpen": 0.3}
    base = gap(deformer, jaw)
    assert base > 0.02
    assert gap(deformer, {**jaw, "mouthPucker": 0.6}) < base - 0.005           # a kiss narrows it
    funnel = gap(deformer, {**jaw, "mouthFunnel": 0.4})
    assert base + 0.003 < funnel < gap(deformer, {"jawOpen": 0.7}) - 0.01       # a trumpet parts it, less than the jaw
    for opener in ("mouthLowerDown", "mouthUpperUp"):
        w = {**jaw, opener + "Left": 0.4, opener + "Right": 0.4}
        assert base + 0.003 < gap(deformer, w) < gap(deformer, {"jawOpen": 0.42}) + 0.003, opener


def test_rounding_keeps_its_look(deformer):
    """The map changes only the jaw and the lip seal: a pucker still pushes the lips forward and
    draws the corners in."""
    plain = deformer.expression(MotionFrame.from_weights({"jawOpen": 0.3}))
    kiss = deformer.expression(MotionFrame.from_weights({"jawOpen": 0.3, "mouthPucker": 0.6}))
    width = lambda e: e[291, 0] - e[61, 0]                                      # noqa: E731
    assert width(kiss) < width(plain) - 0.05
    assert kiss[[0, 17], 2].mean() > plain[[0, 17], 2].mean() + 0.03            # lips forward
    w = deformer.mouth(MotionFrame.from_weights({"jawOpen": 0.3, "mouthPucker": 0.6}).blendshapes)
    assert w[INDEX["mouthPucker"]] == pytest.approx(0.6)


def test_the_rendered_pucker_narrows_the_tracked_gap(deformer):
    """On the image, tracked like a real mouth (``facecast eval lipsync``)."""
    from engine.tracking.tracker import FaceTracker
    r = WarpRenderer(deformer.avatar, CALIBRATION_SIZE, CALIBRATION_SIZE, backend="cpu")
    with FaceTracker(static_image_mode=True) as tracker:
        seen = {k: tracked_gap(tracker.track(r.render(MotionFrame.from_weights(w)))) for k, w in (
            ("jaw", {"jawOpen": 0.35}), ("kiss", {"jawOpen": 0.35, "mouthPucker": 0.8}),
            ("wider", {"jawOpen": 0.5}))}
    assert seen["kiss"] < seen["jaw"] - 0.005 < seen["wider"] - 0.01, seen


def test_a_rig_whose_jaw_does_not_open_the_lips_is_refused():
    rows = np.zeros(52)
    with pytest.raises(ValueError, match="does not open"):
        MouthMap(0.0, rows, 1.0, rows, np.linspace(0, 1, 5), np.linspace(0, 1, 5))
