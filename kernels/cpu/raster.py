"""CPU fast path (numba): rasterize triangles into a backward map, painter's order.

Same contract and arithmetic as ``kernels.reference.raster`` (float64 edge functions,
inclusive coverage with ``EDGE_EPS``); compiled on first use and cached on disk.
"""
from __future__ import annotations

import numba
import numpy as np

from kernels.reference.raster import EDGE_EPS, MIN_AREA


@numba.njit(cache=True, nogil=True, inline="always")
def _span(w_start, w_step, lo, hi):
    """Pixel range [lo, hi] of a row where ``w_start + w_step * (x - lo) >= -EDGE_EPS``,
    widened by one pixel on each side (the exact test runs per pixel)."""
    if w_step == 0.0:
        return (lo, hi) if w_start >= -EDGE_EPS else (hi + 1, hi)
    t = (-EDGE_EPS - w_start) / w_step       # crossing, in pixels from lo
    if w_step > 0.0:
        first = lo + int(np.floor(t)) - 1 if t > 0 else lo
        return max(first, lo), hi
    last = lo + int(np.ceil(t)) + 1
    return lo, min(last, hi)


@numba.njit(cache=True, nogil=True, fastmath=False)
def _rasterize(map_xy, xy, uv, tris, x0, y0):
    h, w = map_xy.shape[0], map_xy.shape[1]
    for t in range(tris.shape[0]):
        a, b, c = tris[t, 0], tris[t, 1], tris[t, 2]
        ax, ay = xy[a, 0] - x0, xy[a, 1] - y0
        bx, by = xy[b, 0] - x0, xy[b, 1] - y0
        cx, cy = xy[c, 0] - x0, xy[c, 1] - y0
        area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
        if abs(area) < MIN_AREA:
            continue
        xmin = max(int(np.ceil(min(ax, bx, cx))), 0)
        xmax = min(int(np.floor(max(ax, bx, cx))), w - 1)
        ymin = max(int(np.ceil(min(ay, by, cy))), 0)
        ymax = min(int(np.floor(max(ay, by, cy))), h - 1)
        if xmin > xmax or ymin > ymax:
            continue
        inv = 1.0 / area
        ua, ub, uc = uv[a, 0], uv[b, 0], uv[c, 0]
        va, vb, vc = uv[a, 1], uv[b, 1], uv[c, 1]
        # barycentric weights are affine in x: evaluate at the row start, then step
        e0x, e1x = -(cy - by) * inv, -(ay - cy) * inv
        for py in range(ymin, ymax + 1):
            fy = float(py)
            fx0 = float(xmin)
            w0 = ((cx - bx) * (fy - by) - (cy - by) * (fx0 - bx)) * inv
            w1 = ((ax - cx) * (fy - cy) - (ay - cy) * (fx0 - cx)) * inv
            # skip to the first covered pixel of the row and stop after the last one
            lo, hi = xmin, xmax
            lo_f, hi_f = _span(w0, e0x, lo, hi)
            lo_g, hi_g = _span(w1, e1x, lo, hi)
            lo_h, hi_h = _span(1.0 - w0 - w1, -e0x - e1x, lo, hi)
            lo = max(lo_f, lo_g, lo_h)
            hi = min(hi_f, hi_g, hi_h)
            for px in range(lo, hi + 1):
                fx = float(px)
                w0 = ((cx - bx) * (fy - by) - (cy - by) * (fx - bx)) * inv
                w1 = ((ax - cx) * (fy - cy) - (ay - cy) * (fx - cx)) * inv
                w2 = 1.0 - w0 - w1
                if w0 >= -EDGE_EPS and w1 >= -EDGE_EPS and w2 >= -EDGE_EPS:
                    map_xy[py, px, 0] = w0 * ua + w1 * ub + w2 * uc
                    map_xy[py, px, 1] = w0 * va + w1 * vb + w2 * vc
    return map_xy


def rasterize_backward_map(map_xy: np.ndarray, verts_xy: np.ndarray, verts_uv: np.ndarray,
                           tris: np.ndarray, x0: int = 0, y0: int = 0) -> np.ndarray:
    xy = np.ascontiguousarray(verts_xy, np.float64)
    uv = np.ascontiguousarray(verts_uv, np.float64)
    t = np.ascontiguousarray(tris, np.int32)
    _rasterize(map_xy, xy, uv, t, float(x0), float(y0))
    return map_xy
