"""NumPy reference: rasterize triangles into a backward map (painter's order).

For every pixel centre (integer coordinates) covered by a triangle, the map gets the
barycentric interpolation of the triangle's source coordinates. Triangles are drawn
in order; a pixel covered by several keeps the last one. Coverage is inclusive
(edge pixels belong to both neighbours, so shared edges never leave gaps) with a
small tolerance ``EDGE_EPS`` on the normalized barycentric weights.
"""
from __future__ import annotations

import numpy as np

EDGE_EPS = 1e-6
MIN_AREA = 1e-9


def rasterize_backward_map(map_xy: np.ndarray, verts_xy: np.ndarray, verts_uv: np.ndarray,
                           tris: np.ndarray, x0: int = 0, y0: int = 0) -> np.ndarray:
    """Draw ``tris`` into ``map_xy`` (H, W, 2) float32 in place; the map's pixel (0, 0)
    is at (x0, y0) of the vertex coordinate frame. Returns ``map_xy``."""
    h, w = map_xy.shape[:2]
    xy = verts_xy.astype(np.float64) - (x0, y0)
    uv = verts_uv.astype(np.float64)
    for a, b, c in np.asarray(tris):
        pa, pb, pc = xy[a], xy[b], xy[c]
        area = (pb[0] - pa[0]) * (pc[1] - pa[1]) - (pb[1] - pa[1]) * (pc[0] - pa[0])
        if abs(area) < MIN_AREA:
            continue
        lo = np.maximum(np.ceil(np.minimum(np.minimum(pa, pb), pc)), 0).astype(int)
        hi = np.minimum(np.floor(np.maximum(np.maximum(pa, pb), pc)), (w - 1, h - 1)).astype(int)
        if lo[0] > hi[0] or lo[1] > hi[1]:
            continue
        py, px = np.mgrid[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1].astype(np.float64)
        inv = 1.0 / area
        w0 = ((pc[0] - pb[0]) * (py - pb[1]) - (pc[1] - pb[1]) * (px - pb[0])) * inv
        w1 = ((pa[0] - pc[0]) * (py - pc[1]) - (pa[1] - pc[1]) * (px - pc[0])) * inv
        w2 = 1.0 - w0 - w1
        inside = (w0 >= -EDGE_EPS) & (w1 >= -EDGE_EPS) & (w2 >= -EDGE_EPS)
        if not inside.any():
            continue
        u = w0 * uv[a, 0] + w1 * uv[b, 0] + w2 * uv[c, 0]
        v = w0 * uv[a, 1] + w1 * uv[b, 1] + w2 * uv[c, 1]
        sub = map_xy[lo[1]:hi[1] + 1, lo[0]:hi[0] + 1]
        sub[..., 0] = np.where(inside, u, sub[..., 0])
        sub[..., 1] = np.where(inside, v, sub[..., 1])
    return map_xy
