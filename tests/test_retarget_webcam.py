"""The webcam stream policy: face tracker input checks, no-face handling, hold and ease
back to neutral, one-euro smoothing; and the one-euro filter itself."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from engine.config import load_config, replace
from engine.tracking.one_euro import OneEuroFilter
from engine.motion.space import INDEX
from engine.tracking.tracker import FaceTracker
from engine.tracking.webcam import WebcamRetargeter


@pytest.fixture(scope="module")
def astronaut_landmarks():
    from skimage.data import astronaut
    with FaceTracker(static_image_mode=True) as tracker:
        lm = tracker.track(astronaut())
    assert lm is not None and lm.shape == (478, 3) and lm.dtype == np.float32
    return lm


@pytest.fixture(scope="module")
def rig(astronaut_landmarks):
    """A rig whose only shape, jawOpen, moves the lower face (points below the nose) down."""
    lm = astronaut_landmarks.astype(np.float64)
    mid = (lm[468] + lm[473]) / 2
    neutral = (lm - mid) * np.array([1, 1, -1]) / np.linalg.norm(lm[473, :2] - lm[468, :2])
    deltas = np.zeros((52, 478, 3))
    lower = neutral[:, 1] > neutral[1, 1] + 0.15  # below the nose tip
    deltas[INDEX["jawOpen"], lower, 1] = 0.4
    return SimpleNamespace(head_pivot=np.array([0.0, 0.3, -1.2]), rig_neutral=neutral, rig_deltas=deltas, iod=np.linalg.norm(lm[473, :2] - lm[468, :2]))


def _frames(lm, rig, jaw):
    out = lm.astype(np.float64).copy()
    lower = rig.rig_deltas[INDEX["jawOpen"], :, 1] > 0
    out[lower, 1] += jaw * 0.4 * rig.iod
    return out.astype(np.float32)


def test_tracker_finds_face_and_none_on_blank():
    with FaceTracker() as tracker:
        assert tracker.track(np.zeros((240, 320, 3), np.uint8)) is None
        assert tracker.track(np.full((480, 640, 3), 200, np.uint8)) is None


@pytest.mark.parametrize("bad", [np.zeros((64, 64), np.uint8), np.zeros((64, 64, 4), np.uint8),
                                 np.zeros((64, 64, 3), np.float32), np.zeros((8, 8, 3), np.uint8),
                                 "not an image"])
def test_tracker_rejects_bad_frames(bad):
    with FaceTracker() as tracker:
        with pytest.raises(ValueError):
            tracker.track(bad)


def test_no_face_before_any_face_gives_none(rig):
    with WebcamRetargeter(rig, load_config()) as wr:
        assert wr.push_frame(np.zeros((480, 640, 3), np.uint8), 0.0) is None
        assert wr.push_landmarks(None, 0.04) is None
        with pytest.raises(ValueError):
            wr.push_frame(np.zeros((480, 640), np.uint8), 0.08)
        with pytest.raises(ValueError):
            wr.push_landmarks(np.zeros((478, 3)), float("nan"))


def test_lost_face_holds_then_eases_to_neutral(rig, astronaut_landmarks):
    cfg = replace(load_config(), webcam={"calibration_s": 0.2, "lost_face_hold_s": 0.5,
                                         "lost_face_ease_s": 1.0, "tracker_gain": {"jawOpen": 1.0}})
    with WebcamRetargeter(rig, cfg) as wr:
        t = 0.0
        for _ in range(10):  # neutral calibration
            m = wr.push_landmarks(astronaut_landmarks, t)
            t += 0.04
        assert m["jawOpen"] < 0.02
        for _ in range(40):  # open the jaw, let the filter settle
            m = wr.push_landmarks(_frames(astronaut_landmarks, rig, 0.8), t)
            t += 0.04
        assert m["jawOpen"] == pytest.approx(0.8, abs=0.05)
        last_seen = t - 0.04
        held = wr.push_landmarks(None, last_seen + 0.4)
        assert held["jawOpen"] == pytest.approx(m["jawOpen"])
        easing = wr.push_landmarks(None, last_seen + 1.0)
        assert 0.05 < easing["jawOpen"] < m["jawOpen"]
        gone = wr.push_landmarks(None, last_seen + 1.6)
        assert gone["jawOpen"] == 0.0 and np.all(gone.head_rotation == 0.0)
        # the face comes back: the filter starts from neutral, no jump to the raw value
        back = wr.push_landmarks(_frames(astronaut_landmarks, rig, 0.8), last_seen + 1.64)
        assert 0.0 < back["jawOpen"] < 0.6


def test_frame_size_change_recalibrates(rig):
    import cv2
    from skimage.data import astronaut
    big = astronaut()
    small = cv2.resize(big, (320, 320), interpolation=cv2.INTER_AREA)
    cfg = replace(load_config(), webcam={"calibration_s": 0.1})
    with WebcamRetargeter(rig, cfg) as wr:
        for i in range(5):
            assert wr.push_frame(big, i * 0.04) is not None
        assert wr.retargeter.calibrated
        m = wr.push_frame(small, 0.2)  # half the size: not "moved away", a new calibration
        assert not wr.retargeter.calibrated
        assert abs(m.head_translation[2]) < 0.5


def test_one_euro_smooths_noise_and_follows_steps():
    rng = np.random.default_rng(0)
    f = OneEuroFilter(min_cutoff=1.0, beta=1.0)
    t = np.arange(200) / 25
    noisy = 0.3 + rng.normal(0, 0.02, 200)
    out = np.array([f(np.array([x]), ti)[0] for x, ti in zip(noisy, t)])
    assert out[50:].std() < 0.4 * noisy[50:].std()
    f.reset()
    step = np.where(t < 2, 0.0, 1.0)
    out = np.array([f(np.array([x]), ti)[0] for x, ti in zip(step, t)])
    assert out[50 + 5] > 0.9  # within 0.2 s of the step
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0.0)
