"""Retargeting math on a synthetic rig: known weights + head pose -> landmarks -> recovered.

The rig's neutral is the face mesh of skimage's astronaut; its 52 blendshape deltas
are smooth random displacement fields, each around its own landmark (overlapping,
so the fit has to separate them). No renderer is involved: this pins down the
fit, the pose alignment and the calibration, exactly.
"""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy.optimize import lsq_linear

from engine.config import load_config, replace
from engine.motion.pose import euler_from_matrix, matrix_from_euler
from engine.tracking.retarget import Retargeter, rigid_points, similarity_align
from engine.tracking.rig_fit import RigFitter, solve_box_qp
from engine.motion.space import INDEX, NUM_BLENDSHAPES


# forehead, temples, cheekbones, nose bridge
SKULL_POINTS = (10, 151, 9, 8, 168, 6, 197, 195, 21, 251, 54, 284, 103, 332, 67, 297, 109, 338,
                127, 356, 234, 454, 116, 345, 123, 352)
# the synthetic shapes are random: fit them all at once, in 3-D, none excluded
ONE_STAGE = {"fit_primary": [], "fit_exclude": [], "depth_weight": 1.0, "rigid_max_motion": 0.0,
             "tracker_gain": {name: 1.0 for name in load_config().webcam.tracker_gain}}


@pytest.fixture(scope="module")
def rig():
    from skimage.data import astronaut

    from engine.tracking.tracker import FaceTracker
    with FaceTracker(static_image_mode=True) as tracker:
        lm = tracker.track(astronaut())
    assert lm is not None
    eyes = [(lm[33] + lm[133]) / 2, (lm[263] + lm[362]) / 2]
    iod = np.linalg.norm(eyes[1][:2] - eyes[0][:2])
    neutral = (lm - (eyes[0] + eyes[1]) / 2) * np.array([1, 1, -1]) / iod
    rng = np.random.default_rng(7)
    deltas = np.zeros((NUM_BLENDSHAPES, 478, 3))
    for k in range(NUM_BLENDSHAPES):
        center = neutral[rng.integers(478)]
        falloff = np.exp(-np.sum((neutral - center) ** 2, axis=1) / (2 * 0.25 ** 2))
        deltas[k] = falloff[:, None] * rng.normal(0.0, 0.15, 3) * (1 + 0.3 * rng.normal(size=(478, 3)))
    deltas[:, list(SKULL_POINTS)] = 0.0  # as in a real rig: expressions leave the skull alone
    return SimpleNamespace(head_pivot=np.array([0.0, 0.3, -1.2]), rig_neutral=neutral.astype(np.float32), rig_deltas=deltas.astype(np.float32),
                           iod_px=iod)


def _to_pixels(face: np.ndarray, yaw: float, pitch: float, roll: float, scale: float,
               shift: np.ndarray) -> np.ndarray:
    """A face-space shape seen by a camera: rotate (camera <- face), scale, to mediapipe pixels."""
    cam = face @ matrix_from_euler(yaw, pitch, roll).T * scale
    return (cam * np.array([1, 1, -1]) + shift).astype(np.float32)


def test_box_qp_matches_scipy_bvls():
    rng = np.random.default_rng(0)
    for _ in range(20):
        a = rng.normal(size=(200, 52))
        a[:, 1] = a[:, 0] * 0.9 + 0.1 * a[:, 1]  # nearly collinear pair
        b = a @ np.clip(rng.uniform(-0.5, 1.5, 52), 0, 1) + rng.normal(0, 0.3, 200)
        ref = lsq_linear(a, b, bounds=(0, 1), method="bvls").x
        got = solve_box_qp(a.T @ a, a.T @ b, iterations=50)
        assert np.abs(got - ref).max() < 1e-6


def test_similarity_align_recovers_transform():
    rng = np.random.default_rng(1)
    src = rng.normal(size=(30, 3))
    rot = matrix_from_euler(0.3, -0.2, 0.1)
    dst = 1.7 * src @ rot.T + np.array([1.0, -2.0, 0.5])
    al = similarity_align(src, dst)
    assert al.scale == pytest.approx(1.7)
    assert np.allclose(al.rotation, rot)
    assert np.allclose(al.apply(src), dst)


def test_euler_round_trip():
    rng = np.random.default_rng(2)
    for a in rng.uniform(-1.2, 1.2, (50, 3)):
        assert np.allclose(euler_from_matrix(matrix_from_euler(*a)), a)


def test_fitter_recovers_weights_exactly_without_noise(rig):
    fitter = RigFitter(rig.rig_deltas, ridge=1e-6, sparsity=0.0, iterations=50)
    rng = np.random.default_rng(3)
    w = np.where(rng.random(52) < 0.3, rng.uniform(0, 1, 52), 0.0)
    got = fitter.fit(np.tensordot(w, rig.rig_deltas, 1))
    assert np.abs(got - w).max() < 1e-3


def test_fitter_stages_gains_and_exclusions(rig):
    d = np.array(rig.rig_deltas, np.float64)
    jaw, lower, tongue = INDEX["jawOpen"], INDEX["mouthLowerDownLeft"], INDEX["tongueOut"]
    d[lower] = 0.9 * d[jaw]  # a detail shape that can mimic the primary one more cheaply
    d[tongue] = 0.35 * d[jaw]
    e = 0.5 * d[jaw]
    staged = RigFitter(d, ridge=1e-6, sparsity=0.0, primary=("jawOpen",), exclude=("tongueOut",))
    w = staged.fit(e)
    assert w[jaw] == pytest.approx(0.5, abs=0.01) and w[lower] < 0.01 and w[tongue] == 0.0
    halved = RigFitter(d, ridge=1e-6, sparsity=0.0, primary=("jawOpen",), tracker_gain={"jawOpen": 0.5})
    assert halved.fit(e)[jaw] == pytest.approx(1.0, abs=0.01)  # the mesh reports half: weight doubles
    with pytest.raises(ValueError):
        RigFitter(d, primary=("jawOpened",))
    with pytest.raises(ValueError):
        RigFitter(d, tracker_gain={"jawOpen": 0.0})


def test_retargeter_recovers_pose_and_weights(rig):
    cfg = replace(load_config(), webcam={"calibration_s": 0.2, **ONE_STAGE}).webcam
    rt = Retargeter(rig, cfg)
    rng = np.random.default_rng(4)
    shift, scale = np.array([300.0, 260.0, 0.0]), rig.iod_px
    # calibration: a person whose neutral differs from the avatar's, head turned a bit
    person = rig.rig_neutral * np.array([1.08, 0.95, 1.1])
    base = (0.05, -0.04, 0.02)
    for i in range(8):
        noisy = person + rng.normal(0, 0.003, person.shape)
        rt.retarget(_to_pixels(noisy, *base, scale, shift), i * 0.04)
    assert rt.calibrated
    errs_w, errs_pose = [], []
    for i in range(40):
        w = np.where(rng.random(52) < 0.2, rng.uniform(0, 1, 52), 0.0)
        pose = np.array(base) + rng.uniform(-0.35, 0.35, 3)
        face = person + np.tensordot(w, rig.rig_deltas, 1) + rng.normal(0, 0.003, person.shape)
        m = rt.retarget(_to_pixels(face, *pose, scale * 1.1, shift + [15, -10, 0]), 1.0 + i * 0.04)
        errs_w.append(np.abs(m.blendshapes - w).mean())
        rel = euler_from_matrix(matrix_from_euler(*base).T @ matrix_from_euler(*pose))  # head frame
        errs_pose.append(np.abs(np.array(rel) - m.head_rotation).max())
        assert m.head_translation[2] > 0  # bigger on screen = closer to the viewer
    assert np.mean(errs_w) < 0.03, np.mean(errs_w)
    assert np.degrees(max(errs_pose)) < 1.0, np.degrees(max(errs_pose))


def test_rigid_points_are_the_ones_no_shape_moves(rig):
    still = rigid_points(rig.rig_deltas, 0.0, 4)
    assert set(still.tolist()) == set(SKULL_POINTS)
    fallback = rigid_points(rig.rig_deltas, 0.0, 40)  # too few: the 40 least-moving
    assert len(fallback) == 40 and set(SKULL_POINTS) <= set(fallback.tolist())


def test_euler_convention_is_the_renderers():
    from engine.avatar.rig import rotation_matrix
    for a in np.random.default_rng(5).uniform(-1, 1, (20, 3)):
        assert np.allclose(matrix_from_euler(*a), rotation_matrix(*a), atol=1e-6)


def test_retargeter_inverts_the_renderers_pose_model(rig):
    """Landmarks moved by the renderer's own pose model (rotation about the pivot, weak
    perspective, shift) come back as the same yaw/pitch/roll and translation."""
    from engine.avatar.rig import apply_pose
    exact = {"calibration_s": 0.0, "fit_ridge": 1e-6, "fit_sparsity": 0.0, "fit_iterations": 50, **ONE_STAGE}
    rt = Retargeter(rig, replace(load_config(), webcam=exact).webcam)
    shift, scale = np.array([320.0, 240.0, 0.0]), 0.9 * rig.iod_px
    to_px = lambda face: (face * np.array([1, 1, -1]) * scale + shift).astype(np.float32)  # noqa: E731
    rt.retarget(to_px(rig.rig_neutral), 0.0)
    rng = np.random.default_rng(6)
    for i in range(20):
        pose = rng.uniform(-0.4, 0.4, 3)
        move = np.array([*rng.uniform(-0.5, 0.5, 2), rng.uniform(-1.5, 1.5)])
        w = np.where(rng.random(52) < 0.2, rng.uniform(0, 1, 52), 0.0)
        face = rig.rig_neutral + np.tensordot(w, rig.rig_deltas, 1)
        posed = apply_pose(face.astype(np.float64), matrix_from_euler(*pose), move, rig.head_pivot)
        m = rt.retarget(to_px(posed), 0.04 * (i + 1))
        assert np.allclose(m.head_rotation, pose, atol=2e-3)
        assert np.allclose(m.head_translation, move, atol=2e-2)
        assert np.abs(m.blendshapes - w).max() < 0.05  # the weakest synthetic shapes: ~0.025


def test_calibration_ends_even_if_frame_times_stand_still(rig):
    rt = Retargeter(rig, load_config().webcam)
    lm = (rig.rig_neutral * np.array([1, 1, -1]) * rig.iod_px + [300.0, 260.0, 0.0]).astype(np.float32)
    for _ in range(Retargeter.MAX_CALIBRATION_FRAMES):
        rt.retarget(lm, 5.0)
    assert rt.calibrated and len(rt._cal_faces) == Retargeter.MAX_CALIBRATION_FRAMES


@pytest.mark.parametrize("bad", [np.zeros((478, 2)), np.zeros((468, 3)), np.zeros((478, 3), np.int32),
                                 np.full((478, 3), np.nan), [[0.0, 0.0, 0.0]] * 478])
def test_retargeter_rejects_bad_landmarks(rig, bad):
    rt = Retargeter(rig, load_config().webcam)
    with pytest.raises(ValueError):
        rt.retarget(bad, 0.0)
