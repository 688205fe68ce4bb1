"""Kernel parity: the CPU fast paths against the NumPy references."""
import numpy as np
import pytest

import kernels


def random_mesh(rng, n_verts=60, n_tris=50, extent=(90, 70)):
    xy = rng.uniform(-10, 1, (n_verts, 2)) + rng.uniform(0, 1, (n_verts, 2)) * (np.array(extent) + 10)
    uv = rng.uniform(0, 50, (n_verts, 2))
    tris = np.array([rng.choice(n_verts, 3, replace=False) for _ in range(n_tris)], np.int32)
    return xy.astype(np.float32), uv.astype(np.float32), tris


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_raster_cpu_matches_reference(seed):
    rng = np.random.default_rng(seed)
    xy, uv, tris = random_mesh(rng)
    ref = np.full((70, 90, 2), -7, np.float32)
    cpu = ref.copy()
    kernels.rasterize_backward_map(ref, xy, uv, tris, 2, 3, backend="numpy")
    kernels.rasterize_backward_map(cpu, xy, uv, tris, 2, 3, backend="cpu")
    assert (ref != -7).mean() > 0.3            # the test draws something
    np.testing.assert_allclose(cpu, ref, atol=1e-4)


def test_raster_painter_order_and_exact_affine():
    # two overlapping triangles: the later one wins; an affine uv map is reproduced exactly
    xy = np.array([[0, 0], [40, 0], [0, 40], [10, 10], [60, 10], [10, 60]], np.float32)
    uv = xy * 0.5 + 3
    uv[3:] += 100
    tris = np.array([[0, 1, 2], [3, 4, 5]], np.int32)
    for backend in ("numpy", "cpu"):
        m = np.full((64, 64, 2), -1, np.float32)
        kernels.rasterize_backward_map(m, xy, uv, tris, backend=backend)
        np.testing.assert_allclose(m[12, 12], [109, 109], atol=1e-4)   # covered by both -> second
        np.testing.assert_allclose(m[2, 5], [5.5, 4], atol=1e-4)       # first only
        assert (m[63, 63] == -1).all()                                   # uncovered stays


def test_raster_shared_edges_leave_no_gaps():
    # a grid of triangles covering a square: every pixel inside gets written
    rng = np.random.default_rng(3)
    g = np.stack(np.meshgrid(np.linspace(0, 50, 6), np.linspace(0, 50, 6)), -1).reshape(-1, 2)
    interior = [r * 6 + c for r in range(1, 5) for c in range(1, 5)]
    g[interior] += rng.uniform(-3, 3, (len(interior), 2))
    tris = []
    for r in range(5):
        for c in range(5):
            a = r * 6 + c
            tris += [(a, a + 1, a + 7), (a, a + 7, a + 6)]
    for backend in ("numpy", "cpu"):
        m = np.full((51, 51, 2), -1, np.float32)
        kernels.rasterize_backward_map(m, g.astype(np.float32), g.astype(np.float32),
                                       np.array(tris, np.int32), backend=backend)
        assert (m[..., 0] >= 0).all()


def test_remap_cpu_matches_reference():
    rng = np.random.default_rng(4)
    src = rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)
    mp = rng.uniform(-5, 55, (30, 35, 2)).astype(np.float32)
    ref = kernels.remap_bilinear(src, mp, backend="numpy")
    cpu = kernels.remap_bilinear(src, mp, backend="cpu")
    diff = np.abs(ref.astype(int) - cpu)
    assert diff.max() <= 8 and diff.mean() < 1.0   # OpenCV quantizes fractions to 1/32
    ident = np.stack(np.meshgrid(np.arange(50), np.arange(40)), -1).astype(np.float32)
    for backend in ("numpy", "cpu"):
        np.testing.assert_array_equal(kernels.remap_bilinear(src, ident, backend=backend), src)


def test_remap_reference_values():
    src = np.array([[[0, 0, 0], [100, 200, 50]]], np.uint8)
    mp = np.array([[[0.5, 0], [-3, 0], [9, 0]]], np.float32)
    out = kernels.remap_bilinear(src, mp, backend="numpy")
    np.testing.assert_array_equal(out[0], [[50, 100, 25], [0, 0, 0], [100, 200, 50]])


def test_unknown_backend():
    with pytest.raises(ValueError, match="backend"):
        kernels.remap_bilinear(np.zeros((2, 2, 3), np.uint8), np.zeros((2, 2, 2), np.float32), backend="cuda")
    assert kernels.resolve_backend("cpu") == "cpu"
    assert kernels.resolve_backend("auto") in ("cpu", "triton")


def test_smooth_seams_cpu_matches_reference():
    rng = np.random.default_rng(6)
    frame = rng.integers(0, 256, (40, 50, 3)).astype(np.uint8)
    mp = np.stack(np.meshgrid(np.arange(50), np.arange(40)), -1).astype(np.float32)
    mp[10:20, 10:30] += 100          # a layer sampled from elsewhere: seams along its border
    mp[30, 5] += 2                   # a small stretch: below the threshold
    ref = kernels.smooth_seams(frame, mp, 3.0, backend="numpy")
    cpu = kernels.smooth_seams(frame, mp, 3.0, backend="cpu")
    np.testing.assert_array_equal(cpu, ref)
    changed = (ref != frame).any(-1)
    assert changed[9:21, 9:31].sum() > 40 and not changed[25:, :].any()
    assert not changed[14, 20]       # inside the layer, away from its border: untouched
    flat = np.full((8, 8, 3), 77, np.uint8)
    np.testing.assert_array_equal(kernels.smooth_seams(flat, mp[:8, :8] * 9, 3.0, backend="cpu"), flat)
