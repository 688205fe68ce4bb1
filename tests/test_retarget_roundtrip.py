"""The key retargeting test: render the default avatar with known random motions, track
the rendered frames with the real face mesh, recover the motion, compare.

A neutral calibration second comes first (as from a webcam), then random expressions and
head poses, each frame independent of the last. The bounds are the measured errors
(docs/retargeting.md, "Round trip") with margin; the fit is checked unfiltered here.
"""
from __future__ import annotations

import numpy as np
import pytest

from engine.config import load_config, replace
from engine.motion.space import INDEX, MotionFrame

FPS = 25
CALIBRATION_FRAMES = 26  # t = 0 ... 1.0 s: the default calibration second
TEST_FRAMES = 80
# measured on the default avatar (docs/retargeting.md, "Round trip"), plus margin:
# jawOpen MAE 0.10 r 0.86, blink L/R MAE 0.07/0.09 r 0.96/0.95, smile r 0.75, yaw MAE 2.2 deg
# r 0.995, pitch MAE 1.8 deg r 0.946, other shapes mean |w| 0.037. An earlier avatar measured
# jawOpen r 0.78, blink MAE 0.13/0.15: the margins leave room for the avatar's rig changing.
MAX_MAE = {"jawOpen": 0.16, "eyeBlinkLeft": 0.19, "eyeBlinkRight": 0.19}
MAX_POSE_MAE_DEG = {"yaw": 3.0, "pitch": 3.0}
MIN_CORRELATION = {"jawOpen": 0.70, "eyeBlinkLeft": 0.75, "eyeBlinkRight": 0.75, "mouthSmileLeft": 0.40,
                   "yaw": 0.97, "pitch": 0.88}
MAX_OTHER_SHAPES_MEAN = 0.07  # shapes never set: what leaks into them
DRIVEN = ("jawOpen", "eyeBlinkLeft", "eyeBlinkRight", "mouthSmileLeft", "mouthSmileRight", "browInnerUp")


def random_motion(rng: np.random.Generator) -> MotionFrame:
    w = {"jawOpen": rng.uniform(0.0, 0.9)}
    blink = rng.random()
    if blink < 0.3:
        w["eyeBlinkLeft"] = w["eyeBlinkRight"] = rng.uniform(0.3, 1.0)
    elif blink < 0.5:
        w["eyeBlink" + ("Left" if blink < 0.4 else "Right")] = rng.uniform(0.3, 1.0)
    if rng.random() < 0.3:
        w["mouthSmileLeft"] = w["mouthSmileRight"] = rng.uniform(0.0, 0.8)
    if rng.random() < 0.3:
        w["browInnerUp"] = rng.uniform(0.0, 1.0)
    return MotionFrame.from_weights(w, yaw=np.radians(rng.uniform(-20, 20)),
                                    pitch=np.radians(rng.uniform(-12, 12)),
                                    roll=np.radians(rng.uniform(-5, 5)))


@pytest.fixture(scope="module")
def round_trip(avatar, renderer):
    """(truth, recovered) motion vectors, (TEST_FRAMES, 58) each."""
    from engine.tracking.retarget import Retargeter
    from engine.tracking.tracker import FaceTracker

    cfg = load_config().webcam
    rng = np.random.default_rng(2026)
    retargeter = Retargeter(avatar, cfg)
    truth, got = [], []
    with FaceTracker(cfg.min_detection_confidence, cfg.min_tracking_confidence) as tracker:
        neutral = renderer.render(MotionFrame())
        for i in range(CALIBRATION_FRAMES):
            landmarks = tracker.track(neutral)
            assert landmarks is not None
            retargeter.retarget(landmarks, i / FPS)
        assert retargeter.calibrated
        for i in range(TEST_FRAMES):
            motion = random_motion(rng)
            landmarks = tracker.track(renderer.render(motion))
            assert landmarks is not None, f"face lost on frame {i}"
            got.append(retargeter.retarget(landmarks, (CALIBRATION_FRAMES + i) / FPS).to_vector())
            truth.append(motion.to_vector())
    return np.array(truth), np.array(got)


@pytest.mark.parametrize("name", sorted(MAX_MAE))
def test_round_trip_blendshape_error(round_trip, name):
    truth, got = round_trip
    k = INDEX[name]
    mae = float(np.abs(got[:, k] - truth[:, k]).mean())
    corr = float(np.corrcoef(got[:, k], truth[:, k])[0, 1])
    assert mae <= MAX_MAE[name], f"{name} MAE {mae:.3f}"
    assert corr >= MIN_CORRELATION[name], f"{name} correlation {corr:.3f}"


def test_round_trip_smile_follows(round_trip):
    truth, got = round_trip
    k = INDEX["mouthSmileLeft"]
    assert np.corrcoef(got[:, k], truth[:, k])[0, 1] >= MIN_CORRELATION["mouthSmileLeft"]


def test_round_trip_leaves_other_shapes_alone(round_trip):
    truth, got = round_trip
    others = [k for k in range(52) if k not in [INDEX[n] for n in DRIVEN]]
    assert np.all(truth[:, others] == 0.0)
    assert float(np.abs(got[:, others]).mean()) <= MAX_OTHER_SHAPES_MEAN


@pytest.mark.parametrize("axis", ["yaw", "pitch"])
def test_round_trip_head_pose_error(round_trip, axis):
    truth, got = round_trip
    k = 52 + ("yaw", "pitch").index(axis)
    mae = float(np.degrees(np.abs(got[:, k] - truth[:, k])).mean())
    corr = float(np.corrcoef(got[:, k], truth[:, k])[0, 1])
    assert mae <= MAX_POSE_MAE_DEG[axis], f"{axis} MAE {mae:.2f} deg"
    assert corr >= MIN_CORRELATION[axis], f"{axis} correlation {corr:.3f}"


def test_yaw_turns_the_same_way_as_the_renderer(avatar, renderer):
    """Yaw +20 deg: the rendered nose moves to image right, and it comes back as +yaw."""
    from engine.tracking.retarget import Retargeter
    from engine.tracking.tracker import FaceTracker

    retargeter = Retargeter(avatar, replace(load_config(), webcam={"calibration_s": 0.0}).webcam)
    with FaceTracker(static_image_mode=True) as tracker:
        front = tracker.track(renderer.render(MotionFrame()))
        turned = tracker.track(renderer.render(MotionFrame.from_weights(yaw=np.radians(20))))
        tilted = tracker.track(renderer.render(MotionFrame.from_weights(pitch=np.radians(15))))
    eyes = lambda lm: (lm[468] + lm[473]) / 2  # noqa: E731
    assert (turned[1, 0] - eyes(turned)[0]) - (front[1, 0] - eyes(front)[0]) > 5.0  # nose tip, px
    retargeter.retarget(front, 0.0)
    yaw = np.degrees(retargeter.retarget(turned, 0.04).head_rotation[0])
    pitch = np.degrees(retargeter.retarget(tilted, 0.08).head_rotation[1])
    assert 14.0 < yaw < 26.0
    assert 9.0 < pitch < 21.0
