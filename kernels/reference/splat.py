"""Reference Gaussian-splat rasterizer in torch (differentiable): the ground truth.

Camera-space 3D Gaussians (OpenCV camera: x right, y down, z forward, pinhole ``fx fy cx cy``;
pixel ``i``'s centre is at ``i + 0.5``) are projected with the EWA approximation
(``cov2d = J cov3d J^T + LOWPASS``) and composited front to back in depth order.

The semantics every backend reproduces (``kernels.cpu.splat`` is parity-tested against this):
* a Gaussian with depth < ``NEAR`` or opacity < ``ALPHA_MIN`` is dropped;
* ``alpha = min(ALPHA_MAX, opacity * exp(-0.5 d^T conic d))``; contributions with
  ``alpha < ALPHA_MIN`` are skipped;
* its pixel radius is opacity-aware, ``sqrt(2 ln(opacity / ALPHA_MIN) * lambda_max)``: beyond it
  alpha < ALPHA_MIN, so binning by that box changes nothing (the tiles here are only a memory
  bound; the result is the dense one);
* front to back: ``C += alpha T c``, ``T *= 1 - alpha``; a pixel stops before the Gaussian that
  would bring ``T`` to ``T_MIN`` or below (that one is not added);
* ``out = C + T * background``.
"""
from __future__ import annotations

import math

import torch

from kernels.splat_rules import ALPHA_MAX, ALPHA_MIN, LOWPASS, NEAR, T_MIN  # noqa: F401 (re-exported)

TILE = 16


def project(means: torch.Tensor, covs: torch.Tensor, opacities: torch.Tensor,
            fx: float, fy: float, cx: float, cy: float):
    """(means2d (N, 2), conics (N, 3) = (A, B, C) of ``A dx^2 + 2B dx dy + C dy^2``, depths (N,),
    radii (N,) float, 0 = culled) of camera-space Gaussians ``means`` (N, 3), ``covs`` (N, 3, 3)."""
    x, y, z = means[:, 0], means[:, 1], means[:, 2]
    valid = z > NEAR
    zs = torch.where(valid, z, torch.ones_like(z))
    zero = torch.zeros_like(z)
    J = torch.stack([torch.stack([fx / zs, zero, -fx * x / zs ** 2], -1),
                     torch.stack([zero, fy / zs, -fy * y / zs ** 2], -1)], 1)      # (N, 2, 3)
    cov2 = J @ covs @ J.transpose(1, 2)
    a = cov2[:, 0, 0] + LOWPASS
    b = cov2[:, 0, 1]
    c = cov2[:, 1, 1] + LOWPASS
    det = a * c - b * b
    valid = valid & (det > 0) & (opacities > ALPHA_MIN)
    det = torch.where(valid, det, torch.ones_like(det))
    conics = torch.stack([c / det, -b / det, a / det], -1)
    mid = 0.5 * (a + c)
    lam = mid + torch.sqrt(torch.clamp(mid * mid - det, min=0.0))
    ratio = torch.clamp(opacities / ALPHA_MIN, min=1.0)
    radii = torch.sqrt(2.0 * torch.log(ratio) * lam)
    radii = torch.where(valid, radii, torch.zeros_like(radii)).detach()
    means2d = torch.stack([fx * x / zs + cx, fy * y / zs + cy], -1)
    return means2d, conics, z, radii


def rasterize(means2d, conics, colors, opacities, depths, radii, width: int, height: int,
              background=None, tile: int = TILE):
    """(rgb (H, W, 3), alpha (H, W)): front-to-back compositing of projected Gaussians.
    ``background``: None (black), a (3,) colour or an (H, W, 3) image."""
    dev, dt = means2d.device, means2d.dtype
    order = torch.argsort(depths.detach())
    keep = order[radii[order] > 0]
    m2, con, col, op, rad = means2d[keep], conics[keep], colors[keep], opacities[keep], radii[keep]
    rows = []
    lo = (m2.detach() - rad[:, None])
    hi = (m2.detach() + rad[:, None])
    for ty in range(0, height, tile):
        row = []
        for tx in range(0, width, tile):
            th, tw = min(tile, height - ty), min(tile, width - tx)
            sel = ((hi[:, 0] >= tx) & (lo[:, 0] <= tx + tw) & (hi[:, 1] >= ty) & (lo[:, 1] <= ty + th))
            idx = torch.nonzero(sel).squeeze(1)
            ys, xs = torch.meshgrid(torch.arange(ty, ty + th, device=dev, dtype=dt) + 0.5,
                                    torch.arange(tx, tx + tw, device=dev, dtype=dt) + 0.5, indexing="ij")
            px = torch.stack([xs.reshape(-1), ys.reshape(-1)], -1)                  # (P, 2)
            if len(idx) == 0:
                row.append((torch.zeros(th, tw, 3, device=dev, dtype=dt), torch.ones(th, tw, device=dev, dtype=dt)))
                continue
            d = m2[idx][None] - px[:, None]                                         # (P, n, 2)
            cc = con[idx]
            sigma = 0.5 * (cc[:, 0] * d[..., 0] ** 2 + cc[:, 2] * d[..., 1] ** 2) + cc[:, 1] * d[..., 0] * d[..., 1]
            alpha = torch.clamp(op[idx] * torch.exp(-sigma), max=ALPHA_MAX)
            alpha = torch.where((sigma >= 0) & (alpha >= ALPHA_MIN), alpha, torch.zeros_like(alpha))
            one_minus = 1.0 - alpha
            t_after = torch.cumprod(one_minus, 1)
            t_before = torch.cat([torch.ones_like(t_after[:, :1]), t_after[:, :-1]], 1)
            live = (t_after.detach() > T_MIN).to(dt)          # monotone: once dead, dead
            w = alpha * t_before * live
            rgb = w @ col[idx]
            t_final = torch.prod(1.0 - alpha * live, 1)      # transmittance after the last live one
            row.append((rgb.reshape(th, tw, 3), t_final.reshape(th, tw)))
        rows.append(row)
    rgb = torch.cat([torch.cat([r[0] for r in row], 1) for row in rows], 0)
    trans = torch.cat([torch.cat([r[1] for r in row], 1) for row in rows], 0)
    if background is not None:
        bg = torch.as_tensor(background, device=dev, dtype=dt)
        rgb = rgb + trans[..., None] * (bg if bg.ndim == 3 else bg.view(1, 1, 3))
    return rgb, 1.0 - trans


def render(means, covs, colors, opacities, fx, fy, cx, cy, width, height, background=None, tile: int = TILE):
    """Project + rasterize: (rgb (H, W, 3), alpha (H, W)) torch tensors. ``tile`` only trades
    memory for Python overhead (the result does not depend on it)."""
    m2, con, dep, rad = project(means, covs, opacities, fx, fy, cx, cy)
    return rasterize(m2, con, colors, opacities, dep, rad, width, height, background, tile)


def radius_for(opacity: float, lam: float) -> float:
    """The opacity-aware radius rule of ``project`` for one Gaussian (documentation/tests)."""
    return math.sqrt(2.0 * math.log(max(opacity / ALPHA_MIN, 1.0)) * lam)
