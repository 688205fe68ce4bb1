"""GPU Gaussian-splat rendering with ``gsplat.rasterization`` (CUDA; imported lazily).

Takes the same camera-space Gaussians as ``kernels.reference.splat`` (torch tensors on a CUDA
device) and hands them to gsplat with an identity view matrix and explicit covariances.
gsplat's own rules differ slightly from the reference (3-sigma radius, alpha clamp 0.999), so
parity is approximate; see tests/test_splat_kernel.py.
"""
from __future__ import annotations


def available() -> bool:
    """True when gsplat is installed and a CUDA device is present."""
    import importlib.util
    if importlib.util.find_spec("gsplat") is None:
        return False
    import torch
    return bool(torch.cuda.is_available())


def render(means, covs, colors, opacities, fx, fy, cx, cy, width, height, background=None):
    """(rgb (H, W, 3), alpha (H, W)) torch tensors on the GPU."""
    import torch
    from gsplat import rasterization
    if not means.is_cuda:
        raise RuntimeError("the gsplat path needs CUDA tensors")
    dev, dt = means.device, means.dtype
    K = torch.tensor([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], device=dev, dtype=dt)[None]
    view = torch.eye(4, device=dev, dtype=dt)[None]
    rgb, alpha, _ = rasterization(means, None, None, opacities, colors, view, K, int(width), int(height),
                                  covars=covs, packed=False, rasterize_mode="classic")
    rgb, alpha = rgb[0], alpha[0, ..., 0]
    if background is not None:
        bg = torch.as_tensor(background, device=dev, dtype=dt)
        rgb = rgb + (1.0 - alpha)[..., None] * (bg if bg.ndim == 3 else bg.view(1, 1, 3))
    return rgb, alpha
