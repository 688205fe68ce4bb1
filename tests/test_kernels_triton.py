"""The Triton kernels: parity under TRITON_INTERPRET=1 on CPU (small sizes), and on a GPU if any.

The interpreter must be switched on before triton is imported, so those checks run in
a fresh subprocess. Importing ``kernels`` itself never imports triton.
"""
import importlib.util
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from engine.config import REPO_ROOT

HAS_TRITON = importlib.util.find_spec("triton") is not None


def test_kernels_import_without_triton():
    code = "import sys, kernels, engine.render.warp; assert 'triton' not in sys.modules; print('ok')"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


PARITY = textwrap.dedent("""
    import numpy as np, torch, kernels
    rng = np.random.default_rng(0)
    xy = rng.uniform(-4, 36, (24, 2)).astype(np.float32)
    uv = rng.uniform(0, 30, (24, 2)).astype(np.float32)
    tris = np.array([rng.choice(24, 3, replace=False) for _ in range(14)], np.int32)
    ref = np.full((20, 28, 2), -1, np.float32)
    kernels.rasterize_backward_map(ref, xy, uv, tris, 1, 2, backend="numpy")
    got = torch.full((20, 28, 2), -1.0)
    kernels.rasterize_backward_map(got, torch.from_numpy(xy), torch.from_numpy(uv),
                                   torch.from_numpy(tris), 1, 2, backend="triton")
    d = np.abs(got.numpy() - ref)
    assert (ref != -1).mean() > 0.3
    assert (d > 1e-3).mean() < 0.01 and np.median(d) < 1e-4, d.max()
    src = rng.integers(0, 256, (30, 40, 3)).astype(np.uint8)
    r = kernels.remap_bilinear(src, ref, backend="numpy")
    t = kernels.remap_bilinear(torch.from_numpy(src), torch.from_numpy(ref), backend="triton").numpy()
    assert np.abs(r.astype(int) - t).max() <= 1
    fr = rng.integers(0, 256, (12, 16, 3)).astype(np.uint8)
    mp = np.stack(np.meshgrid(np.arange(16), np.arange(12)), -1).astype(np.float32)
    mp[3:6, 4:9] += 50
    s_ref = kernels.smooth_seams(fr, mp, 3.0, backend="numpy")
    s_tri = kernels.smooth_seams(torch.from_numpy(fr), torch.from_numpy(mp), 3.0, backend="triton").numpy()
    assert np.array_equal(s_ref, s_tri)
    print("parity ok")
""")


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
def test_triton_parity_under_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1")
    out = subprocess.run([sys.executable, "-c", PARITY], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "parity ok" in out.stdout


RENDER = textwrap.dedent("""
    import numpy as np, kernels
    from engine.render.warp import WarpRenderer
    from engine.motion.space import MotionFrame
    m = MotionFrame.from_weights({"jawOpen": 0.8}, yaw=0.2)
    a = WarpRenderer("assets/default.avatar", 48, 48, backend="cpu").render(m)
    b = WarpRenderer("assets/default.avatar", 48, 48, backend="triton", warmup=False).render(m)
    d = np.abs(a.astype(int) - b)
    assert b.shape == (48, 48, 3) and d.mean() < 1.0, d.mean()
    print("render ok")
""")


@pytest.mark.skipif(not HAS_TRITON, reason="triton is not installed")
def test_triton_renderer_under_interpreter():
    env = dict(os.environ, TRITON_INTERPRET="1")
    out = subprocess.run([sys.executable, "-c", RENDER], cwd=REPO_ROOT, env=env,
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "render ok" in out.stdout


def _cuda():
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        return False


@pytest.mark.gpu
@pytest.mark.skipif(not (HAS_TRITON and _cuda()), reason="needs triton and a CUDA GPU")
def test_triton_renderer_on_gpu():
    from engine.motion.space import MotionFrame
    from engine.render.warp import WarpRenderer
    m = MotionFrame.from_weights({"jawOpen": 0.8, "eyeBlinkLeft": 1.0}, yaw=0.3)
    a = WarpRenderer(REPO_ROOT / "assets/default.avatar", 512, 512, backend="cpu").render(m)
    b = WarpRenderer(REPO_ROOT / "assets/default.avatar", 512, 512, backend="triton").render(m)
    d = np.abs(a.astype(int) - b)
    assert d.mean() < 0.5 and (d > 8).mean() < 0.001
