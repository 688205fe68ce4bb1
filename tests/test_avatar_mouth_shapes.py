"""Mouth shapes on a smiling photo with parted lips and teeth showing (skimage's astronaut,
the default avatar). The rig rests with closed lips (ARKit's neutral); the photo's own
opening is the jawOpen weight ``avatar.photo_jaw_open`` (the "parted" reference below).
mouthClose closes the lips over an open jaw, presses thin them, the teacher's bilabials
seal them, and the lip contact never lets the lips cross.

Measured on the astronaut (512², mouth box): teeth/cavity pixel fraction 0.119 with the
photo's own opening, 0.025 at the closed rest, 0.021-0.025 with mouthClose/press (the rest
of that fraction is lip shadow). Round 1's rig rested at the photo's parted lips (0.113)."""
import numpy as np
import pytest

from engine.avatar.landmarks import face_topology
from engine.avatar.mouth_rest import mouth_weights
from engine.motion.space import MotionFrame


def inner_pairs(renderer):
    topo = face_topology(renderer.avatar.rig_neutral)
    return np.array(topo.lips_inner.upper[1:-1]), np.array(topo.lips_inner.lower[1:-1])


def inner_gap(renderer, motion):
    """Vertical gap (face units) between the inner upper and lower lip contours, per column."""
    up, lo = inner_pairs(renderer)
    expr = renderer.deformer.expression(motion)
    return expr[lo, 1] - expr[up, 1]


def mouth_box(renderer):
    xy, _ = renderer.deformer.vertices(MotionFrame.neutral())
    pts = xy[[61, 291, 0, 17]] * renderer.scale + renderer.shift
    (x0, y0), (x1, y1) = pts.min(0).astype(int), pts.max(0).astype(int)
    return slice(y0, y1 + 1), slice(x0, x1 + 1)


def teeth_or_dark(renderer, img):
    """Fraction of the mouth box that is teeth (bright, unsaturated) or oral cavity (dark)."""
    ys, xs = mouth_box(renderer)
    c = img[ys, xs].astype(np.float32)
    lum, sat = c.mean(-1), c.max(-1) - c.min(-1)
    return float(((lum < 70) | ((lum > 140) & (sat < 35))).mean())


def parted(renderer):
    """The photo's own lips: jawOpen at the opening the calibration found for them."""
    return MotionFrame.from_weights({"jawOpen": renderer.avatar.photo_jaw_open})


def test_rest_is_closed_and_the_photos_opening_is_a_weight(renderer):
    av = renderer.avatar
    up, lo = inner_pairs(renderer)
    photo_gap = (av.landmarks[lo, 1] - av.landmarks[up, 1]).max() / av.face_scale
    assert photo_gap > 0.12               # the precondition: the photo's lips are parted, teeth show
    assert np.abs(inner_gap(renderer, MotionFrame.neutral())).max() < 0.012    # rest: lips closed
    assert teeth_or_dark(renderer, renderer.render(MotionFrame.neutral())) < 0.04
    assert 0.2 < av.photo_jaw_open < 0.8  # measured 0.40: the photo's opening is a mid weight
    assert inner_gap(renderer, parted(renderer)).max() > 0.12
    assert teeth_or_dark(renderer, renderer.render(parted(renderer))) > 0.08


@pytest.mark.parametrize("jaw", [0.0, 0.15, 0.3])
def test_mouth_close_brings_inner_lips_together(renderer, jaw):
    gap = inner_gap(renderer, MotionFrame.from_weights({"mouthClose": 1.0, "jawOpen": jaw}))
    assert np.abs(gap).max() < 0.012, gap          # 13/14 and the whole inner contour meet
    up, lo = inner_pairs(renderer)
    mid = list(up).index(13)
    assert abs(gap[mid]) < 0.006


def test_mouth_close_hides_the_teeth_on_screen(renderer):
    neutral = teeth_or_dark(renderer, renderer.render(parted(renderer)))
    for w in ({"mouthClose": 1.0}, {"mouthClose": 1.0, "jawOpen": 0.3},
              {"mouthClose": 1.0, "mouthPressLeft": 1.0, "mouthPressRight": 1.0}):
        closed = teeth_or_dark(renderer, renderer.render(MotionFrame.from_weights(w)))
        assert closed < min(0.03, 0.3 * neutral), (w, closed, neutral)


def test_mouth_close_keeps_corners_and_does_not_tear(renderer):
    a = renderer.deformer.expression(MotionFrame.neutral())
    b = renderer.deformer.expression(MotionFrame.from_weights({"mouthClose": 1.0}))
    assert np.abs(b[[61, 291, 78, 308], :2] - a[[61, 291, 78, 308], :2]).max() < 0.02
    # no face triangle turns over
    xy0, _ = renderer.deformer.vertices(MotionFrame.neutral())
    xy1, _ = renderer.deformer.vertices(MotionFrame.from_weights({"mouthClose": 1.0}))
    s, e = renderer.avatar.layers["face"]
    t = renderer.avatar.triangles[s:e]

    def area(xy):
        p = xy[t]
        return np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0])
    a0, a1 = area(xy0), area(xy1)
    flipped = np.sign(a0) != np.sign(a1)
    # at most a sliver at each inner mouth corner folds (measured: 2 triangles, 7 px² of photo
    # at 512²; the old mouthClose turned 57 triangles, 1145 px², over)
    assert flipped.sum() <= 3 and np.abs(a0[flipped]).sum() < 15, (flipped.sum(), np.abs(a0[flipped]).sum())


def test_press_thins_the_closed_lips(renderer):
    topo = face_topology(renderer.avatar.rig_neutral)

    def red_height(e):
        return (e[list(topo.lips_inner.upper), 1] - e[list(topo.lips_outer.upper), 1]).sum() + \
               (e[list(topo.lips_outer.lower), 1] - e[list(topo.lips_inner.lower), 1]).sum()
    closed = renderer.deformer.expression(MotionFrame.from_weights({"mouthClose": 1.0}))
    pressed = renderer.deformer.expression(MotionFrame.from_weights(
        {"mouthClose": 1.0, "mouthPressLeft": 1.0, "mouthPressRight": 1.0}))
    assert red_height(pressed) < red_height(closed) - 0.1


def test_roll_lower_thins_the_lower_lip(renderer):
    topo = face_topology(renderer.avatar.rig_neutral)
    lo_in, lo_out = list(topo.lips_inner.lower[1:-1]), list(topo.lips_outer.lower[1:-1])
    a = renderer.deformer.expression(MotionFrame.neutral())
    b = renderer.deformer.expression(MotionFrame.from_weights({"mouthRollLower": 1.0}))
    assert (b[lo_out, 1] - b[lo_in, 1]).mean() < (a[lo_out, 1] - a[lo_in, 1]).mean() - 0.01  # thinner red
    assert np.abs(inner_gap(renderer, MotionFrame.from_weights({"mouthRollLower": 1.0}))).max() < 0.012
    # f/v as the teacher drives it: the lips nearly meet (measured 0.021-0.024 vs 0.119 parted)
    fv = MotionFrame.from_weights({"mouthRollLower": 0.6, "mouthUpperUpLeft": 0.26,
                                   "mouthUpperUpRight": 0.26, "jawOpen": 0.07})
    assert teeth_or_dark(renderer, renderer.render(fv)) < 0.3 * teeth_or_dark(renderer, renderer.render(parted(renderer)))


def test_lips_never_cross(renderer):
    rng = np.random.default_rng(3)
    names = ["mouthClose", "mouthPressLeft", "mouthPressRight", "mouthRollLower", "mouthRollUpper",
             "mouthPucker", "jawOpen"]
    for _ in range(40):
        w = dict(zip(names, rng.uniform(0, 1, len(names)) * (rng.uniform(size=len(names)) < 0.6)))
        w["jawOpen"] *= 0.3
        assert inner_gap(renderer, MotionFrame.from_weights(w)).min() > -1e-4, w


def test_open_mouth_unchanged_by_contact(renderer):
    m = MotionFrame.from_weights({"jawOpen": 0.6, "mouthFunnel": 0.5})
    d = renderer.deformer
    w = mouth_weights(m.blendshapes, d.mouth)
    linear = (d.neutral + w @ d.deltas).reshape(-1, 3)
    assert np.allclose(d.expression(m), linear)



def test_teacher_bilabials_seal_the_lips_of_a_parted_photo(renderer):
    """The speech teacher's m and b in "a m a b a" (ARKit convention: mouthClose ~ jawOpen, plus
    mouthPress ~0.5) must show closed lips on a photo whose own lips are parted; its open vowels
    open them, and its silence rests closed."""
    from engine.training.teacher import teacher_mouth
    phones = ["sil", "aa", "m", "aa", "b", "aa", "sil"]
    starts = [0.0, 0.3, 0.5, 0.62, 0.82, 0.94, 1.2]
    w = teacher_mouth(phones, starts, starts[1:] + [1.5], 1.5)
    neutral = teeth_or_dark(renderer, renderer.render(parted(renderer)))
    for t in (0.56, 0.88):   # mid m, mid b
        frame = MotionFrame(w[int(t * 25)])
        assert np.abs(inner_gap(renderer, frame)).max() < 0.012, t
        assert teeth_or_dark(renderer, renderer.render(frame)) < 0.3 * neutral, t
    open_vowel = MotionFrame(w[int(0.72 * 25)])
    assert inner_gap(renderer, open_vowel).max() > 0.09      # measured 0.12-0.16
    # silence rests closed: under 0.01 face heights (~0.024 inter-ocular units; measured 0.001-0.014)
    assert inner_gap(renderer, MotionFrame(w[1])).max() < 0.024


@pytest.mark.parametrize("jaw", [0.0, 0.2])
def test_lower_down_and_upper_up_open_the_inner_lips(renderer, jaw):
    """mouthLowerDown lowers the lower lip and mouthUpperUp raises the upper one, so each opens
    the inner-lip gap (at the closed rest both contours coincide; mouthLowerDown once moved the
    upper lip down with the lower one and opened nothing)."""
    up, lo = inner_pairs(renderer)
    mid = list(up).index(13)
    base = inner_gap(renderer, MotionFrame.from_weights({"jawOpen": jaw}))[mid]
    for shape in ("mouthLowerDown", "mouthUpperUp"):
        w = {"jawOpen": jaw, shape + "Left": 1.0, shape + "Right": 1.0}
        assert inner_gap(renderer, MotionFrame.from_weights(w))[mid] - base > 0.04, shape
