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

from kernels.splat_rules import ALPHA_MAX, ALPHA_MIN, LOWPASS, NEAR, T_MIN

TILE = 16
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


@numba.njit(cache=True, nogil=True, parallel=True, fastmath=True)
def _composite(m2, conics, radii, colors, opac, starts, ids, width, height, tile, out_rgb, out_t):
    """Per tile (in parallel), Gaussian-major in depth order: each Gaussian visits only the
    pixels of its box inside the tile; a pixel that has terminated is skipped. Per pixel the
    arithmetic and its order are the reference's."""
    ntx = (width + tile - 1) // tile
    nty = (height + tile - 1) // tile
    for t in numba.prange(ntx * nty):
        tx0, ty0 = (t % ntx) * tile, (t // ntx) * tile
        tw, th = min(tile, width - tx0), min(tile, height - ty0)
        T = np.ones((th, tw), np.float32)
        rgb = np.zeros((th, tw, 3), np.float32)
        done = np.zeros((th, tw), np.bool_)
        live = tw * th
        for k in range(starts[t], starts[t + 1]):
            if live == 0:
                break
            g = ids[k]
            mx, my, r = m2[g, 0], m2[g, 1], radii[g]
            x0 = max(int(math.ceil(mx - r - 0.5)) - tx0, 0)
            x1 = min(int(math.floor(mx + r - 0.5)) - tx0, tw - 1)
            y0 = max(int(math.ceil(my - r - 0.5)) - ty0, 0)
            y1 = min(int(math.floor(my + r - 0.5)) - ty0, th - 1)
            ca, cb, cc, o = conics[g, 0], conics[g, 1], conics[g, 2], opac[g]
            c0, c1, c2 = colors[g, 0], colors[g, 1], colors[g, 2]
            for py in range(y0, y1 + 1):
                dy = my - (py + ty0 + 0.5)
                for px in range(x0, x1 + 1):
                    if done[py, px]:
                        continue
                    dx = mx - (px + tx0 + 0.5)
                    sigma = 0.5 * (ca * dx * dx + cc * dy * dy) + cb * dx * dy
                    if sigma < 0.0:
                        continue
                    alpha = min(ALPHA_MAX, o * math.exp(-sigma))
                    if alpha < ALPHA_MIN:
                        continue
                    tp = T[py, px]
                    next_t = tp * (1.0 - alpha)
                    if next_t <= T_MIN:
                        done[py, px] = True
                        live -= 1
                        continue
                    w = alpha * tp
                    rgb[py, px, 0] += w * c0
                    rgb[py, px, 1] += w * c1
                    rgb[py, px, 2] += w * c2
                    T[py, px] = next_t
        for py in range(th):
            for px in range(tw):
                out_t[ty0 + py, tx0 + px] = T[py, px]
                for ch in range(3):
                    out_rgb[ty0 + py, tx0 + px, ch] = rgb[py, px, ch]


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
    _composite(means2d, conics, radii, np.ascontiguousarray(colors, np.float32),
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
