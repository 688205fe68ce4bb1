"""Webcam mode stays inside what the warp renderer shows: head pose clamped to
webcam.max_{yaw,pitch,roll}_deg; webcam.mirror makes the avatar the user's mirror image."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from engine.config import load_config, replace
from engine.motion.pose import matrix_from_euler
from engine.motion.space import INDEX, MotionFrame
from engine.tracking.tracker import FaceTracker
from engine.tracking.webcam import WebcamRetargeter, clamp_head, mirror_motion


@pytest.fixture(scope="module")
def face():
    from skimage.data import astronaut
    with FaceTracker(static_image_mode=True) as tracker:
        lm = tracker.track(astronaut()).astype(np.float64)
    mid = (lm[468] + lm[473]) / 2
    iod = np.linalg.norm(lm[473, :2] - lm[468, :2])
    neutral = (lm - mid) * np.array([1, 1, -1]) / iod
    rig = SimpleNamespace(head_pivot=np.array([0.0, 0.3, -1.2]), rig_neutral=neutral,
                          rig_deltas=np.zeros((52, 478, 3)))
    return SimpleNamespace(lm=lm, mid=mid, rig=rig)


def _turned(face, yaw=0.0, pitch=0.0, roll=0.0) -> np.ndarray:
    """The tracked face with its head turned (degrees) about the eye mid-point."""
    flip = np.array([1, 1, -1])
    local = (face.lm - face.mid) * flip
    r = matrix_from_euler(*np.radians([yaw, pitch, roll]))
    return ((local @ r.T) * flip + face.mid).astype(np.float32)


def _run(face, webcam: dict, **turn) -> MotionFrame:
    cfg = replace(load_config(), webcam={"calibration_s": 0.2, **webcam})
    rt = WebcamRetargeter(face.rig, cfg)
    try:
        t = 0.0
        for _ in range(8):              # calibrate on the straight face
            rt.push_landmarks(_turned(face), t)
            t += 0.04
        for _ in range(60):             # then hold the turn until the filter has settled
            m = rt.push_landmarks(_turned(face, **turn), t)
            t += 0.04
        return m
    finally:
        rt.close()


def test_defaults_are_the_renderers_limits():
    w = load_config().webcam
    assert (w.max_yaw_deg, w.max_pitch_deg, w.max_roll_deg, w.mirror) == (25.0, 15.0, 20.0, False)


def test_a_large_head_turn_comes_out_clamped(face):
    free = np.degrees(_run(face, {"max_yaw_deg": 90.0, "max_pitch_deg": 90.0, "max_roll_deg": 90.0},
                           yaw=50.0, pitch=-30.0, roll=35.0).head_rotation)
    assert free[0] > 40 and free[1] < -22 and free[2] > 28, free     # really turned that far
    got = np.degrees(_run(face, {}, yaw=50.0, pitch=-30.0, roll=35.0).head_rotation)
    np.testing.assert_allclose(got, [25.0, -15.0, 20.0], atol=1e-3)
    small = np.degrees(_run(face, {}, yaw=10.0).head_rotation)       # inside the limits: untouched
    assert 7.0 < small[0] < 13.0, small


def test_mirror_swaps_sides_and_negates_yaw_and_roll(face):
    m = MotionFrame.from_weights({"eyeBlinkLeft": 0.8, "jawLeft": 0.3, "mouthSmileRight": 0.5, "jawOpen": 0.4,
                                  "eyeLookInLeft": 0.6}, yaw=0.2, pitch=0.1, roll=-0.05, translation=(0.1, 0.2, 0.3))
    mm = mirror_motion(m)
    w = dict(zip(INDEX, mm.blendshapes))
    assert w["eyeBlinkRight"] == pytest.approx(0.8) and w["eyeBlinkLeft"] == 0
    assert w["jawRight"] == pytest.approx(0.3) and w["jawLeft"] == 0
    assert w["mouthSmileLeft"] == pytest.approx(0.5) and w["mouthSmileRight"] == 0
    assert w["eyeLookInRight"] == pytest.approx(0.6) and w["jawOpen"] == pytest.approx(0.4)
    np.testing.assert_allclose(mm.head_rotation, [-0.2, 0.1, 0.05], atol=1e-7)
    np.testing.assert_allclose(mm.head_translation, [-0.1, 0.2, 0.3], atol=1e-7)
    np.testing.assert_array_equal(mirror_motion(mm).to_vector(), m.to_vector())
    # through the retargeter: the same turn comes out with yaw and roll the other way
    plain = np.degrees(_run(face, {}, yaw=15.0, roll=10.0).head_rotation)
    mirrored = np.degrees(_run(face, {"mirror": True}, yaw=15.0, roll=10.0).head_rotation)
    assert plain[0] > 10 and plain[2] > 6, plain
    np.testing.assert_allclose(mirrored, plain * [-1, 1, -1], atol=1e-4)


def test_clamp_head_is_symmetric():
    m = clamp_head(MotionFrame.from_weights(yaw=-1.0, pitch=1.0, roll=-0.1), 25, 15, 20)
    np.testing.assert_allclose(m.head_rotation, np.radians([-25, 15, -0.1 * 180 / np.pi]), atol=1e-6)


async def test_offer_mirror_sets_the_sessions_webcam_mirror(live_server):
    from aiohttp import ClientSession
    from rtc_client import Viewer

    srv = await live_server()
    v = Viewer()
    try:
        await v.pc.setLocalDescription(await v.pc.createOffer())
        sdp = v.pc.localDescription.sdp
        async with ClientSession() as http:
            async with http.post(srv.http_url + "/v1/offer",
                                 json={"sdp": sdp, "type": "offer", "mode": "webcam", "mirror": "yes"}) as r:
                assert r.status == 400 and (await r.json())["error"] == "bad_mirror"
            assert len(srv.registry) == 0
            async with http.post(srv.http_url + "/v1/offer",
                                 json={"sdp": sdp, "type": "offer", "mode": "webcam", "mirror": True}) as r:
                assert r.status == 200, await r.text()
                sid = (await r.json())["session_id"]
        session = srv.registry.get(sid)
        assert session.config.webcam.mirror is True and srv.config.webcam.mirror is False
        assert session.webcam.retargeter is not None and session.webcam.retargeter.cfg.mirror is True
    finally:
        await v.close()
