"""A photo with a wide-open mouth: the face mesh's lower lip sits above the real one (the dark
inside reaches into the lip texture); avatar creation moves the lower lip onto the real one and
repaints what is left of the inside in the lips, so the closed rest shows lips, not the inside.
Synthetic photos drawn on a real face-mesh layout (the default avatar's landmarks)."""
import cv2
import numpy as np
import pytest

from engine.avatar.asset import load_avatar
from engine.avatar.landmarks import face_topology, lip_bodies
from engine.avatar.blendshapes import LIP_MAX_STRETCH, LIP_OUTER_FOLLOW
from engine.avatar.mouth_rest import closed_rest_delta
from engine.avatar.open_mouth import fill_lip_ring, lower_lip_shift, move_lower_lip
from engine.config import ASSETS_DIR

SKIN, LIP, INSIDE = (200, 160, 140), (190, 90, 100), (40, 15, 20)
OPEN_PX = 30          # the drawn mouth's lower lip is moved this far down (a wide-open mouth)


@pytest.fixture(scope="module")
def face():
    av = load_avatar(ASSETS_DIR / "default.avatar")
    lm = av.landmarks.astype(np.float32).copy()
    _, lower, _ = lip_bodies()
    lm[list(lower), 1] += OPEN_PX                  # open the mouth: the lower lip comes down
    return lm, face_topology(av.rig_neutral), av.image.shape


def poly(lm, idx):
    return np.round(lm[list(idx), :2]).astype(np.int32)


def photo(lm, topo, shape, inside_below_px: int):
    """Skin, lips filling the outer contour, and the dark inside filling the inner contour with
    its lower edge ``inside_below_px`` under the tracked lower inner lip (the real lip is lower)."""
    img = np.full(shape, SKIN, np.uint8)
    cv2.fillPoly(img, [poly(lm, topo.lips_outer.loop)], LIP)
    inside = lm.copy()
    inside[list(topo.lips_inner.lower[1:-1]), 1] += inside_below_px
    cv2.fillPoly(img, [poly(inside, topo.lips_inner.loop)], INSIDE)
    return img


def dark_share(img, lm, topo):
    inner = np.zeros(img.shape[:2], np.uint8)
    outer = np.zeros(img.shape[:2], np.uint8)
    cv2.fillPoly(inner, [poly(lm, topo.lips_inner.loop)], 1)
    cv2.fillPoly(outer, [poly(lm, topo.lips_outer.loop)], 1)
    ring = outer.astype(bool) & ~inner.astype(bool)
    return float((img[ring].astype(int).sum(1) < 200).mean()), ring, inner.astype(bool)


def test_the_real_lower_lip_is_found_below_the_tracked_one(face):
    lm, topo, shape = face
    shift = lower_lip_shift(photo(lm, topo, shape, 8), lm, topo)
    assert shift[0] == 0 and shift[-1] == 0                     # the corners stay
    mid = shift[len(shift) // 2]
    assert 6 <= mid <= 10, shift                                  # drawn 8 px below
    assert np.all(lower_lip_shift(photo(lm, topo, shape, 0), lm, topo) <= 1)


def test_moving_the_lower_lip_keeps_the_face_in_order(face):
    lm, topo, shape = face
    shift = lower_lip_shift(photo(lm, topo, shape, 8), lm, topo)
    moved = move_lower_lip(lm, topo, shift)
    _, lower, _ = lip_bodies()
    assert moved[14, 1] - lm[14, 1] == pytest.approx(shift[list(topo.lips_inner.lower).index(14)], abs=0.5)
    assert np.array_equal(moved[:, 0], lm[:, 0])                   # only down
    assert np.all(moved[:, 1] >= lm[:, 1] - 1e-6)
    above = lm[:, 1] < lm[13, 1]                                   # nothing above the mouth moves
    assert np.array_equal(moved[above], lm[above])
    # the chin column stays in order: lower lip, skin below it, chin
    assert moved[14, 1] < moved[17, 1] < moved[152, 1] + 1e-6
    assert moved[152, 1] - lm[152, 1] < shift.max()               # the skin's follow fades out


def test_the_inside_left_in_the_lips_is_repainted_and_the_inside_kept(face):
    lm, topo, shape = face
    img = photo(lm, topo, shape, 8)
    before, ring, inner = dark_share(img, lm, topo)
    assert before > 0.05
    out, n = fill_lip_ring(img, lm, topo)
    after, _, _ = dark_share(out, lm, topo)
    assert n > 0 and after < 0.01
    assert np.array_equal(out[inner], img[inner])                 # the mouth layer's source stays
    assert np.array_equal(out[~(ring | inner)], img[~(ring | inner)])
    assert np.abs(out[ring & (img.astype(int).sum(2) < 200)].mean(0) - np.array(LIP)).max() < 60


def test_lips_that_hold_no_inside_are_left_alone(face):
    lm, topo, shape = face
    img = photo(lm, topo, shape, 0)
    out, n = fill_lip_ring(img, lm, topo)
    assert n == 0 and np.array_equal(out, img)


def opened_rest(gap: float):
    """The default avatar's closed rest (face space) with the lower lip moved ``gap`` down."""
    av = load_avatar(ASSETS_DIR / "default.avatar")
    p = av.rig_neutral.astype(np.float64).copy()
    _, lower, _ = lip_bodies()
    p[list(lower), 1] += gap
    return p, face_topology(av.rig_neutral)


def red_height(p):
    return p[17, 1] - p[14, 1]            # lower lip centre: outer contour below the inner one


@pytest.mark.parametrize("gap", [0.05, 0.4])
def test_closing_the_photo_mouth_stretches_the_lower_lip_at_most_so_far(gap):
    """The closed rest brings the inner lips together; the lower lip's red stretches by half its
    way on a photo with lips a little apart (LIP_OUTER_FOLLOW), and at most LIP_MAX_STRETCH on a
    wide-open one (before: half of a wide opening, a lip far taller than a closed one)."""
    p, topo = opened_rest(gap)
    closed = p + closed_rest_delta(p, topo)
    assert abs(closed[14, 1] - closed[13, 1]) < 0.01                      # the lips meet
    stretch = red_height(closed) - red_height(p)
    way = p[14, 1] - closed[14, 1]
    if (1 - LIP_OUTER_FOLLOW) * way <= LIP_MAX_STRETCH:
        assert stretch == pytest.approx((1 - LIP_OUTER_FOLLOW) * way, abs=0.01)
    else:
        assert way > 0.15 and stretch <= LIP_MAX_STRETCH + 0.01, (way, stretch)
