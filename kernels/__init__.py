"""facecast's custom kernels: one public op per operation, three implementations each.

* ``kernels.reference``: NumPy, the ground truth (slow, simple);
* ``kernels.cpu``: the CPU fast path (numba / OpenCV);
* ``kernels.triton``: the GPU path, imported only when asked for (so everything
  imports on a machine without triton or CUDA).

Ops: ``rasterize_backward_map`` (triangles -> per-pixel source coordinates, painter's
order), ``remap_bilinear`` (sample an image through such a map), ``smooth_seams``
(composite the layer edges: anti-alias where the map jumps). ``backend`` is "numpy", "cpu" or "triton"; the triton
ops take and return torch tensors (CUDA, or CPU under ``TRITON_INTERPRET=1``).

Gaussian splats: ``bind_gaussians`` (Gaussians riding on mesh triangles -> camera-space means and
covariances; "numpy" reference, "cpu" numba) and ``render_gaussians`` (projection, tile binning,
depth sort, front-to-back compositing; "torch" reference, "cpu" numba, "gsplat" CUDA).
"""
from __future__ import annotations

import importlib
import importlib.util
import os

BACKENDS = ("numpy", "cpu", "triton")
_MODULES = {"numpy": "kernels.reference", "cpu": "kernels.cpu", "triton": "kernels.triton"}


def _impl(op_module: str, backend: str):
    if backend not in BACKENDS:
        raise ValueError(f"unknown kernel backend {backend!r}; choose one of {BACKENDS}")
    return importlib.import_module(f"{_MODULES[backend]}.{op_module}")


def rasterize_backward_map(map_xy, verts_xy, verts_uv, tris, x0: int = 0, y0: int = 0,
                           backend: str = "cpu"):
    """Draw triangles (in order, later on top) into ``map_xy`` (H, W, 2) float32 in place:
    each covered pixel centre gets its barycentric source coordinate. ``(x0, y0)`` is the
    map's top-left pixel in vertex coordinates. Returns ``map_xy``."""
    return _impl("raster", backend).rasterize_backward_map(map_xy, verts_xy, verts_uv, tris, x0, y0)


def remap_bilinear(src, map_xy, backend: str = "cpu"):
    """(H, W, 3) uint8: ``src`` sampled bilinearly at ``map_xy`` (border replicate)."""
    return _impl("remap", backend).remap_bilinear(src, map_xy)


def smooth_seams(frame, map_xy, threshold: float, backend: str = "cpu"):
    """Anti-alias the seams of a warped frame: pixels where ``map_xy`` jumps by more than
    ``threshold`` source pixels to a neighbour get their 3x3 mean. Returns a new frame."""
    return _impl("seams", backend).smooth_seams(frame, map_xy, threshold)


def triton_available() -> bool:
    """True when triton can run for real: installed and a CUDA device is present
    (or ``TRITON_INTERPRET=1`` is set, the CPU interpreter used by tests)."""
    if importlib.util.find_spec("triton") is None:
        return False
    if os.environ.get("TRITON_INTERPRET") == "1":
        return True
    if not _has_nvidia_driver():
        return False      # no CUDA device: answer without importing torch (seconds of start-up)
    try:
        import torch
        return bool(torch.cuda.is_available())
    except ImportError:
        return False


def _has_nvidia_driver() -> bool:
    """A CUDA device can only exist where the NVIDIA driver is: its device node or its library."""
    import ctypes.util
    return os.path.exists("/dev/nvidiactl") or ctypes.util.find_library("cuda") is not None


def resolve_backend(backend: str) -> str:
    """"auto" -> "triton" with a GPU, else "cpu"; other names are checked and returned."""
    if backend == "auto":
        return "triton" if triton_available() and os.environ.get("TRITON_INTERPRET") != "1" else "cpu"
    if backend not in BACKENDS:
        raise ValueError(f"unknown kernel backend {backend!r}; choose auto or one of {BACKENDS}")
    if backend == "triton" and not triton_available():
        raise RuntimeError("kernel backend 'triton' needs triton and a CUDA GPU "
                           "(or TRITON_INTERPRET=1 for the slow CPU interpreter)")
    return backend


# --- Gaussian splats -------------------------------------------------------------------------
SPLAT_BACKENDS = ("torch", "cpu", "gsplat")
_SPLAT_MODULES = {"torch": "kernels.reference.splat", "cpu": "kernels.cpu.splat", "gsplat": "kernels.cuda.splat"}


def render_gaussians(means, covs, colors, opacities, fx: float, fy: float, cx: float, cy: float,
                     width: int, height: int, background=None, backend: str = "cpu"):
    """Camera-space 3D Gaussians (OpenCV pinhole: x right, y down, z forward) -> (rgb (H, W, 3),
    alpha (H, W)), front-to-back composited over ``background`` (None = black, (3,) or (H, W, 3)).
    ``means`` (N, 3), ``covs`` (N, 3, 3), ``colors`` (N, 3), ``opacities`` (N,). Backends:
    "torch" (reference, differentiable; torch tensors), "cpu" (numba; NumPy float32 arrays),
    "gsplat" (CUDA; torch tensors on the GPU). Rules: ``kernels.reference.splat``."""
    if backend not in SPLAT_BACKENDS:
        raise ValueError(f"unknown splat backend {backend!r}; choose one of {SPLAT_BACKENDS}")
    impl = importlib.import_module(_SPLAT_MODULES[backend])
    return impl.render(means, covs, colors, opacities, fx, fy, cx, cy, width, height, background)


def gsplat_available() -> bool:
    """gsplat installed and a CUDA device present (answers without torch where there is no driver)."""
    if importlib.util.find_spec("gsplat") is None or not _has_nvidia_driver():
        return False
    return importlib.import_module("kernels.cuda.splat").available()


def bind_gaussians(verts, tris, sign, slot, bary, offset, local, rot, trans, backend: str = "cpu"):
    """Gaussians riding on mesh triangles -> camera-space (means (N, 3), covs (N, 3, 3)) float32.
    See ``kernels.reference.splat_bind`` for the contract. Backends: "numpy", "cpu"."""
    if backend not in ("numpy", "cpu"):
        raise ValueError(f"unknown bind backend {backend!r}; choose numpy or cpu")
    return importlib.import_module(f"{_MODULES[backend]}.splat_bind").bind(
        verts, tris, sign, slot, bary, offset, local, rot, trans)
