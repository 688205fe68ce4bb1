"""Gaussian-splat kernels: the numba CPU rasterizer against the torch reference on random
scenes; the rules (depth order, early termination, radius) on scenes with known answers;
gsplat's pure-torch projection as a second reference; the gsplat CUDA path (skips without CUDA)."""
import math

import numpy as np
import pytest
import torch

import kernels
from kernels.cpu import splat as cpu_splat
from kernels.reference import splat as ref


def random_rotations(rng, n):
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                     2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                     2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], 1).reshape(n, 3, 3)


def random_scene(seed, n=400, width=56, height=44):
    rng = np.random.default_rng(seed)
    z = rng.uniform(2.0, 6.0, n)
    x = rng.uniform(-0.6, 0.6, n) * z
    y = rng.uniform(-0.5, 0.5, n) * z
    means = np.stack([x, y, z], 1)
    means[:5, 2] = rng.uniform(-1.0, 0.005, 5)          # behind the camera / near plane: culled
    rot = random_rotations(rng, n)
    s = np.exp(rng.uniform(np.log(0.01), np.log(0.15), (n, 3)))
    covs = rot @ (s[:, :, None] ** 2 * np.eye(3)) @ rot.transpose(0, 2, 1)
    colors = rng.uniform(0, 1, (n, 3))
    opac = rng.uniform(0.0, 1.0, n)
    opac[5:10] = 0.002                                     # below the alpha threshold: dropped
    cam = dict(fx=40.0, fy=42.0, cx=width / 2 + 1.3, cy=height / 2 - 0.7, width=width, height=height)
    arrays = [a.astype(np.float32) for a in (means, covs, colors, opac)]
    return arrays, cam


def run(backend, arrays, cam, background=None):
    if backend == "cpu":
        rgb, alpha = kernels.render_gaussians(*arrays, **cam, background=background, backend="cpu")
        return np.asarray(rgb), np.asarray(alpha)
    t = [torch.from_numpy(a) for a in arrays]
    bg = None if background is None else torch.from_numpy(np.asarray(background, np.float32))
    rgb, alpha = kernels.render_gaussians(*t, **cam, background=bg, backend="torch")
    return rgb.numpy(), alpha.numpy()


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_cpu_rasterizer_matches_the_torch_reference_on_random_scenes(seed):
    arrays, cam = random_scene(seed)
    bg = np.random.default_rng(seed + 10).uniform(0, 1, (cam["height"], cam["width"], 3)).astype(np.float32)
    r_rgb, r_a = run("torch", arrays, cam, bg)
    c_rgb, c_a = run("cpu", arrays, cam, bg)
    assert r_a.mean() > 0.2 and r_a.max() > 0.9 and r_a.min() < 0.05   # covers some pixels, not others
    np.testing.assert_allclose(c_a, r_a, atol=2e-4)
    np.testing.assert_allclose(c_rgb, r_rgb, atol=2e-4)


def test_dense_scene_terminates_early_the_same_way():
    """Hundreds of opaque layers over every pixel: transmittance hits T_MIN and both stop."""
    arrays, cam = random_scene(7, n=1500, width=24, height=20)
    arrays[3][:] = np.maximum(arrays[3], 0.9)
    arrays[1][:] *= 9.0
    r_rgb, r_a = run("torch", arrays, cam)
    c_rgb, c_a = run("cpu", arrays, cam)
    assert ((1 - r_a) < 2e-3).mean() > 0.9                # nearly every pixel saturates and stops
    np.testing.assert_allclose(c_rgb, r_rgb, atol=2e-4)


def test_nearest_gaussian_wins_and_colour_is_alpha_weighted():
    covs = np.tile(np.eye(3, dtype=np.float32) * 0.04, (2, 1, 1))
    means = np.array([[0, 0, 4.0], [0, 0, 2.0]], np.float32)       # red far, green near
    colors = np.array([[1, 0, 0], [0, 1, 0]], np.float32)
    opac = np.array([0.9, 0.5], np.float32)
    cam = dict(fx=50.0, fy=50.0, cx=16.0, cy=16.0, width=32, height=32)
    for backend in ("cpu", "torch"):
        rgb, alpha = run(backend, [means, covs, colors, opac], cam, background=np.array([0, 0, 1], np.float32))
        # centre pixel (15.5 vs mean 16: a tiny offset) -- near green first, then red, then blue bg
        g = 0.5 * math.exp(-0.5 * 0.5 ** 2 * 2 / (0.04 * (50 / 2.0) ** 2 + ref.LOWPASS))
        r = 0.9 * math.exp(-0.5 * 0.5 ** 2 * 2 / (0.04 * (50 / 4.0) ** 2 + ref.LOWPASS))
        want = np.array([r * (1 - g), g, (1 - g) * (1 - r)])
        np.testing.assert_allclose(rgb[15, 15], want, atol=1e-4)
        assert rgb[0, 0, 2] > 0.99                         # far corner: background


def test_opacity_aware_radius_bounds_the_footprint():
    """Outside its radius a Gaussian's alpha is below ALPHA_MIN, so tile binning loses nothing."""
    means = torch.tensor([[0.1, -0.05, 3.0]])
    covs = torch.diag(torch.tensor([0.02, 0.005, 0.01]))[None]
    for o in (0.02, 0.5, 1.0):
        opac = torch.tensor([o])
        m2, con, _, rad = ref.project(means, covs, opac, 60.0, 60.0, 20.0, 20.0)
        a, b, c = con[0].tolist()
        for ang in np.linspace(0, 2 * np.pi, 16):
            d = (rad[0].item() + 1e-3) * np.array([np.cos(ang), np.sin(ang)])
            alpha = o * math.exp(-0.5 * (a * d[0] ** 2 + 2 * b * d[0] * d[1] + c * d[1] ** 2))
            assert alpha < ref.ALPHA_MIN * 1.0001


def test_reference_is_differentiable():
    arrays, cam = random_scene(3, n=60, width=16, height=16)
    t = [torch.from_numpy(a).requires_grad_(i in (2, 3)) for i, a in enumerate(arrays)]
    rgb, _ = kernels.render_gaussians(*t, **cam, backend="torch")
    rgb.sum().backward()
    assert t[2].grad.abs().sum() > 0 and t[3].grad.abs().sum() > 0


def test_projection_matches_gsplats_torch_helper():
    """gsplat's pure-torch EWA projection (runs on the CPU) as a second reference."""
    torch_impl = pytest.importorskip("gsplat.cuda._torch_impl")
    arrays, cam = random_scene(5, n=200)
    means, covs = torch.from_numpy(arrays[0][10:]), torch.from_numpy(arrays[1][10:])
    # gsplat clamps the Jacobian outside ~1.3x the field of view: keep the means inside it
    inside = ((means[:, 0] / means[:, 2]).abs() < 0.5) & ((means[:, 1] / means[:, 2]).abs() < 0.4)
    means, covs = means[inside], covs[inside]
    K = torch.tensor([[cam["fx"], 0, cam["cx"]], [0, cam["fy"], cam["cy"]], [0, 0, 1.0]])
    g_m2, g_cov = torch_impl._persp_proj(means[None], covs[None], K[None], cam["width"], cam["height"])
    m2, con, _, _ = ref.project(means, covs, torch.ones(len(means)), cam["fx"], cam["fy"], cam["cx"], cam["cy"])
    np.testing.assert_allclose(m2.numpy(), g_m2[0].numpy(), rtol=1e-5, atol=1e-4)
    g_cov = g_cov[0] + ref.LOWPASS * torch.eye(2)
    g_con = torch.linalg.inv(g_cov)
    np.testing.assert_allclose(con.numpy(), torch.stack([g_con[:, 0, 0], g_con[:, 0, 1], g_con[:, 1, 1]], -1).numpy(),
                               rtol=1e-3, atol=1e-5)
    _, c_con, _, _ = cpu_splat.project(means.numpy(), covs.numpy(), np.ones(len(means), np.float32),
                                       cam["fx"], cam["fy"], cam["cx"], cam["cy"])
    np.testing.assert_allclose(c_con, con.numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(not kernels.gsplat_available(), reason="gsplat GPU path needs gsplat and a CUDA device")
def test_gsplat_cuda_path_is_close_to_the_reference():
    arrays, cam = random_scene(1, n=400)
    r_rgb, r_a = run("torch", arrays, cam)
    t = [torch.from_numpy(a).cuda() for a in arrays]
    g_rgb, g_a = kernels.render_gaussians(*t, **cam, backend="gsplat")
    # gsplat cuts at 3 sigma and clamps alpha at 0.999: close, not bit-equal
    assert np.abs(g_rgb.cpu().numpy() - r_rgb).mean() < 0.01
    assert np.abs(g_a.cpu().numpy() - r_a).mean() < 0.01


def test_a_cropped_camera_renders_exactly_the_crop():
    """What the fit relies on: moving the principal point by the crop offset and shrinking the
    image renders the same pixels as cropping the full render."""
    arrays, cam = random_scene(4)
    full, _ = run("torch", arrays, cam)
    x0, y0, w, h = 9, 5, 30, 21
    crop = dict(cam, cx=cam["cx"] - x0, cy=cam["cy"] - y0, width=w, height=h)
    part, _ = run("torch", arrays, crop)
    np.testing.assert_allclose(part, full[y0:y0 + h, x0:x0 + w], atol=1e-5)   # float rounding only
