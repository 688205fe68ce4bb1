"""CPU Gaussian-splat rasterizer (numba): projection, tile binning, depth sort,
front-to-back alpha compositing with early termination.

Same contract and arithmetic as ``kernels.reference.splat`` (the torch ground truth; see its
docstring for the rules), on NumPy float32 arrays. Tiles run in parallel (``numba.prange``);
the thread count is numba's (``numba.set_num_threads``). Compiled on first use, cached on disk.
"""
from __future__ import annotations

import math

import numba
import numpy as np

from kernels.reference.splat import ALPHA_MAX, ALPHA_MIN, LOWPASS, NEAR, T_MIN

TILE = 8
_LOG_ALPHA_MIN = math.log(ALPHA_MIN)


@numba.njit(cache=True, nogil=True)
def _project(means, covs, opac, fx, fy, cx, cy, m2, conics, radii):
    n = means.shape[0]
    for i in range(n):
        x, y, z = means[i, 0], means[i, 1], means[i, 2]
        radii[i] = 0.0
        if z <= NEAR or opac[i] <= ALPHA_MIN:
            continue
        iz = 1.0 / z
        j00, j02 = fx * iz, -fx * x * iz * iz
        j11, j12 = fy * iz, -fy * y * iz * iz
        s = covs[i]
        # J S J^T with J = [[j00, 0, j02], [0, j11, j12]]
        t00 = j00 * s[0, 0] + j02 * s[2, 0]
        t01 = j00 * s[0, 1] + j02 * s[2, 1]
        t02 = j00 * s[0, 2] + j02 * s[2, 2]
        t11 = j11 * s[1, 1] + j12 * s[2, 1]
        t12 = j11 * s[1, 2] + j12 * s[2, 2]
        a = t00 * j00 + t02 * j02 + LOWPASS
        b = t01 * j11 + t02 * j12
        c = t11 * j11 + t12 * j12 + LOWPASS
        det = a * c - b * b
        if det <= 0.0:
            continue
        conics[i, 0] = c / det
        conics[i, 1] = -b / det
        conics[i, 2] = a / det
        mid = 0.5 * (a + c)
        lam = mid + math.sqrt(max(mid * mid - det, 0.0))
        radii[i] = math.sqrt(2.0 * math.log(max(opac[i] / ALPHA_MIN, 1.0)) * lam)
        m2[i, 0] = fx * x * iz + cx
        m2[i, 1] = fy * y * iz + cy


@numba.njit(cache=True, nogil=True)
def _bin(m2, radii, order, width, height, tile):
    """Per tile, the Gaussians whose box touches it, in depth order: (starts, ids)."""
    ntx = (width + tile - 1) // tile
    nty = (height + tile - 1) // tile
    starts = np.zeros(ntx * nty + 1, np.int64)
    box = np.empty((order.shape[0], 4), np.int64)
    for k in range(order.shape[0]):
        g = order[k]
        r = radii[g]
        box[k, 0] = 1
        box[k, 1] = 0
        if r <= 0.0:
            continue
        x0 = max(int(math.floor((m2[g, 0] - r) / tile)), 0)
        x1 = min(int(math.floor((m2[g, 0] + r) / tile)), ntx - 1)
        y0 = max(int(math.floor((m2[g, 1] - r) / tile)), 0)
        y1 = min(int(math.floor((m2[g, 1] + r) / tile)), nty - 1)
        box[k, 0], box[k, 1], box[k, 2], box[k, 3] = x0, x1, y0, y1
        if x0 > x1 or y0 > y1:
            continue
        for ty in range(y0, y1 + 1):
            for tx in range(x0, x1 + 1):
                starts[ty * ntx + tx + 1] += 1
    for t in range(ntx * nty):
        starts[t + 1] += starts[t]
    fill = starts[:-1].copy()
    ids = np.empty(starts[-1], np.int32)
    for k in range(order.shape[0]):
        x0, x1 = box[k, 0], box[k, 1]
        if x0 > x1:
            continue
        y0, y1 = box[k, 2], box[k, 3]
        for ty in range(y0, y1 + 1):
            for tx in range(x0, x1 + 1):
                t = ty * ntx + tx
                ids[fill[t]] = order[k]
                fill[t] += 1
    return starts, ids


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=False)
def _composite(m2, conics, colors, opac, starts, ids, width, height, tile, out_rgb, out_t):
    ntx = (width + tile - 1) // tile
    nty = (height + tile - 1) // tile
    for t in numba.prange(ntx * nty):
        tx, ty = t % ntx, t // ntx
        s0, s1 = starts[t], starts[t + 1]
        for py in range(ty * tile, min(ty * tile + tile, height)):
            fy = py + 0.5
            for px in range(tx * tile, min(tx * tile + tile, width)):
                fxp = px + 0.5
                T = 1.0
                r = 0.0
                g_ = 0.0
                b = 0.0
                for k in range(s0, s1):
                    g = ids[k]
                    dx = m2[g, 0] - fxp
                    dy = m2[g, 1] - fy
                    sigma = 0.5 * (conics[g, 0] * dx * dx + conics[g, 2] * dy * dy) + conics[g, 1] * dx * dy
                    if sigma < 0.0:
                        continue
                    alpha = min(ALPHA_MAX, opac[g] * math.exp(-sigma))
                    if alpha < ALPHA_MIN:
                        continue
                    next_t = T * (1.0 - alpha)
                    if next_t <= T_MIN:
                        break
                    w = alpha * T
                    r += w * colors[g, 0]
                    g_ += w * colors[g, 1]
                    b += w * colors[g, 2]
                    T = next_t
                out_rgb[py, px, 0] = r
                out_rgb[py, px, 1] = g_
                out_rgb[py, px, 2] = b
                out_t[py, px] = T


def project(means, covs, opacities, fx, fy, cx, cy):
    """NumPy version of ``kernels.reference.splat.project``: (means2d, conics, depths, radii)."""
    means = np.ascontiguousarray(means, np.float32)
    covs = np.ascontiguousarray(covs, np.float32)
    opac = np.ascontiguousarray(opacities, np.float32)
    n = len(means)
    m2 = np.zeros((n, 2), np.float32)
    conics = np.zeros((n, 3), np.float32)
    radii = np.zeros(n, np.float32)
    _project(means, covs, opac, float(fx), float(fy), float(cx), float(cy), m2, conics, radii)
    return m2, conics, means[:, 2].copy(), radii


def rasterize(means2d, conics, colors, opacities, depths, radii, width, height, background=None,
              tile: int = TILE):
    """(rgb (H, W, 3) float32, alpha (H, W) float32) NumPy arrays; see the reference."""
    order = np.argsort(depths, kind="stable").astype(np.int64)
    starts, ids = _bin(means2d, radii, order, int(width), int(height), int(tile))
    rgb = np.empty((height, width, 3), np.float32)
    trans = np.empty((height, width), np.float32)
    _composite(means2d, conics, np.ascontiguousarray(colors, np.float32),
               np.ascontiguousarray(opacities, np.float32), starts, ids, int(width), int(height),
               int(tile), rgb, trans)
    if background is not None:
        bg = np.asarray(background, np.float32)
        rgb += trans[..., None] * (bg if bg.ndim == 3 else bg.reshape(1, 1, 3))
    return rgb, 1.0 - trans


def render(means, covs, colors, opacities, fx, fy, cx, cy, width, height, background=None,
           tile: int = TILE):
    m2, con, dep, rad = project(means, covs, opacities, fx, fy, cx, cy)
    return rasterize(m2, con, colors, opacities, dep, rad, width, height, background, tile)
