"""The geometry fit (``fit_geometry``): a depth correction per render-mesh vertex, fitted from
turned views, moves toward the true shape. The truth is the default avatar with a smooth bump
added to its face's depth, rendered by the splat renderer at several yaws; the fit starts flat."""
import numpy as np
import pytest

from engine.avatar.splat_init import init_gaussians
from engine.motion.space import MotionFrame
from engine.render.splat import SplatRenderer
from engine.render.splat.camera import view_camera
from engine.render.splat.fit import (FACE_POINTS, FitOptions, Target, depth_jacobian, fit_gaussians,
                                     fit_geometry, mesh_edges, with_depth)
from engine.render.splat.video import with_splat
from engine.render.warp.deform import MeshDeformer

YAWS_DEG = (-25, 25, 0)          # the last one frontal
SIZE = 96


def GEOMETRY_OPTS(**kw):  # noqa: N802  (a few quick steps: a larger step and a softer smoothness)
    return FitOptions(progress=False, lr_depth=0.03, depth_smooth=0.5, max_depth=0.5, **kw)


def bump(avatar, height=0.25, sigma=0.9):
    """A smooth depth bump (face units) centred below the eyes, on the moving head only."""
    rest = MeshDeformer(avatar).posed_vertices(MotionFrame.neutral())
    r2 = (rest[:, 0] ** 2 + (rest[:, 1] - 0.6) ** 2) / sigma ** 2
    return (height * np.exp(-0.5 * r2) * (avatar.vertex_pose_weight > 0.5)).astype(np.float32)


def landmarks_of(avatar, motion, size):
    """(468, 2) pixel positions (index coordinates) of the face-mesh vertices in a size x size view."""
    cam = view_camera(avatar, size, size, 20.0)
    p = cam.to_camera(MeshDeformer(avatar).posed_vertices(motion)[:FACE_POINTS])
    return np.stack([cam.fx * p[:, 0] / p[:, 2] + cam.cx - 0.5, cam.fy * p[:, 1] / p[:, 2] + cam.cy - 0.5], 1)


@pytest.fixture(scope="module")
def scene(avatar):
    g = init_gaussians(avatar, 800)
    truth_depth = bump(avatar)
    truth = with_splat(with_depth(avatar, truth_depth), g)
    r = SplatRenderer(truth, SIZE, SIZE, backend="cpu", warmup=False)
    motions = [MotionFrame.from_weights({}, yaw=float(np.radians(d))) for d in YAWS_DEG]
    images = [r.render(m) for m in motions]
    return g, truth_depth, motions, images


def depth_error(depth, truth_depth):
    """Mean |error| over the face-mesh vertices (what the views show; the rest only follows)."""
    return float(np.abs(depth - truth_depth)[:FACE_POINTS].mean())


def test_depth_jacobian_is_exact(avatar):
    """A posed vertex is affine in its rest depth: v0 + J dz equals the deformer's own result."""
    mesh = MeshDeformer(avatar)
    m = MotionFrame.from_weights({"jawOpen": 0.4}, yaw=0.4, pitch=-0.1)
    v0, jac = depth_jacobian(mesh, m)
    dz = np.random.default_rng(0).normal(0, 0.1, len(v0)).astype(np.float32)
    np.testing.assert_allclose(v0 + jac * dz[:, None], MeshDeformer(with_depth(avatar, dz)).posed_vertices(m),
                               atol=1e-5)
    assert np.abs(jac[:, 0]).max() > 0.3          # turned: depth moves vertices sideways


def test_images_of_turned_views_move_depth_toward_the_truth(avatar, scene):
    g, truth_depth, motions, images = scene
    start = depth_error(np.zeros_like(truth_depth), truth_depth)
    _, losses, depth = fit_geometry(avatar, g, [Target(m, im) for m, im in zip(motions, images)],
                                    GEOMETRY_OPTS(size=64, steps=12))
    # colours etc. start at the truth's: only the shape is wrong, and the image term alone fixes part of it
    assert depth_error(depth, truth_depth) < 0.8 * start, (depth_error(depth, truth_depth), start)
    assert np.abs(depth).max() <= 0.5 + 1e-6


def test_landmarks_of_turned_views_recover_the_depth(avatar, scene):
    g, truth_depth, motions, images = scene
    truth = with_depth(avatar, truth_depth)
    targets = [Target(m, im, landmarks=landmarks_of(truth, m, SIZE)) for m, im in zip(motions, images)]
    start = depth_error(np.zeros_like(truth_depth), truth_depth)
    _, _, depth = fit_geometry(avatar, g, targets, GEOMETRY_OPTS(size=16, steps=20))
    assert depth_error(depth, truth_depth) < 0.5 * start, (depth_error(depth, truth_depth), start)


def test_the_appearance_fit_leaves_the_mesh_and_frontal_views_cannot_fit_depth(avatar, scene):
    g, truth_depth, motions, images = scene
    fitted, _ = fit_gaussians(avatar, g, [Target(motions[-1], images[-1])],
                              FitOptions(size=32, steps=2, progress=False))
    assert fitted.triangle.shape == g.triangle.shape
    # a frontal view alone barely constrains depth (the perspective is weak): the smoothness and L2
    # terms keep it near the start, far from the truth
    _, _, depth = fit_geometry(avatar, g, [Target(motions[-1], images[-1])],
                               GEOMETRY_OPTS(size=32, steps=8))
    start = depth_error(np.zeros_like(truth_depth), truth_depth)
    assert depth_error(depth, truth_depth) > 0.8 * start


def test_with_depth_checks_its_input(avatar):
    with pytest.raises(ValueError, match="one value per render vertex"):
        with_depth(avatar, np.zeros(3))
    assert len(mesh_edges(avatar.triangles)) > len(avatar.triangles)
