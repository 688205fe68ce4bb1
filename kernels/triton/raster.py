"""Triton GPU path: rasterize triangles into a backward map.

Two passes make painter's order parallel and deterministic:
1. one program per triangle walks its bounding box and ``atomic_max``-es its index
   into a per-pixel id buffer (the last triangle drawn = the largest index);
2. one program per pixel block interpolates the winning triangle's source coords.
float32 arithmetic; otherwise the contract of ``kernels.reference.raster``.
Importing this module imports triton (lazy: only the "triton" backend does).
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.reference.raster import EDGE_EPS, MIN_AREA

BLOCK_TRI = 256
BLOCK_PIX = 1024


@triton.jit
def _coverage_kernel(xy_ptr, tris_ptr, ids_ptr, H, W, x0, y0, EPS: tl.constexpr,
                     MIN_A: tl.constexpr, BLOCK: tl.constexpr):
    t = tl.program_id(0)
    a = tl.load(tris_ptr + 3 * t)
    b = tl.load(tris_ptr + 3 * t + 1)
    c = tl.load(tris_ptr + 3 * t + 2)
    ax = tl.load(xy_ptr + 2 * a) - x0
    ay = tl.load(xy_ptr + 2 * a + 1) - y0
    bx = tl.load(xy_ptr + 2 * b) - x0
    by = tl.load(xy_ptr + 2 * b + 1) - y0
    cx = tl.load(xy_ptr + 2 * c) - x0
    cy = tl.load(xy_ptr + 2 * c + 1) - y0
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    xmin = tl.maximum(tl.ceil(tl.minimum(tl.minimum(ax, bx), cx)), 0.0).to(tl.int32)
    xmax = tl.minimum(tl.floor(tl.maximum(tl.maximum(ax, bx), cx)), W - 1.0).to(tl.int32)
    ymin = tl.maximum(tl.ceil(tl.minimum(tl.minimum(ay, by), cy)), 0.0).to(tl.int32)
    ymax = tl.minimum(tl.floor(tl.maximum(tl.maximum(ay, by), cy)), H - 1.0).to(tl.int32)
    bw = tl.maximum(xmax - xmin + 1, 0)
    bh = tl.maximum(ymax - ymin + 1, 0)
    n = tl.where(tl.abs(area) < MIN_A, 0, bw * bh)
    inv = 1.0 / tl.where(tl.abs(area) < MIN_A, 1.0, area)
    for start in range(0, n, BLOCK):
        offs = start + tl.arange(0, BLOCK)
        m = offs < n
        px = xmin + offs % tl.maximum(bw, 1)
        py = ymin + offs // tl.maximum(bw, 1)
        fx = px.to(tl.float32)
        fy = py.to(tl.float32)
        w0 = ((cx - bx) * (fy - by) - (cy - by) * (fx - bx)) * inv
        w1 = ((ax - cx) * (fy - cy) - (ay - cy) * (fx - cx)) * inv
        w2 = 1.0 - w0 - w1
        inside = m & (w0 >= -EPS) & (w1 >= -EPS) & (w2 >= -EPS)
        tl.atomic_max(ids_ptr + py * W + px, t, mask=inside)


@triton.jit
def _interpolate_kernel(ids_ptr, xy_ptr, uv_ptr, tris_ptr, map_ptr, n_pix, W, x0, y0,
                        BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n_pix
    t = tl.load(ids_ptr + offs, mask=m, other=-1)
    has = m & (t >= 0)
    ts = tl.where(has, t, 0)
    a = tl.load(tris_ptr + 3 * ts, mask=has, other=0)
    b = tl.load(tris_ptr + 3 * ts + 1, mask=has, other=0)
    c = tl.load(tris_ptr + 3 * ts + 2, mask=has, other=0)
    ax = tl.load(xy_ptr + 2 * a, mask=has, other=0.0) - x0
    ay = tl.load(xy_ptr + 2 * a + 1, mask=has, other=0.0) - y0
    bx = tl.load(xy_ptr + 2 * b, mask=has, other=1.0) - x0
    by = tl.load(xy_ptr + 2 * b + 1, mask=has, other=0.0) - y0
    cx = tl.load(xy_ptr + 2 * c, mask=has, other=0.0) - x0
    cy = tl.load(xy_ptr + 2 * c + 1, mask=has, other=1.0) - y0
    area = (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)
    inv = 1.0 / tl.where(area == 0.0, 1.0, area)
    fx = (offs % W).to(tl.float32)
    fy = (offs // W).to(tl.float32)
    w0 = ((cx - bx) * (fy - by) - (cy - by) * (fx - bx)) * inv
    w1 = ((ax - cx) * (fy - cy) - (ay - cy) * (fx - cx)) * inv
    w2 = 1.0 - w0 - w1
    u = (w0 * tl.load(uv_ptr + 2 * a, mask=has, other=0.0) + w1 * tl.load(uv_ptr + 2 * b, mask=has, other=0.0)
         + w2 * tl.load(uv_ptr + 2 * c, mask=has, other=0.0))
    v = (w0 * tl.load(uv_ptr + 2 * a + 1, mask=has, other=0.0)
         + w1 * tl.load(uv_ptr + 2 * b + 1, mask=has, other=0.0)
         + w2 * tl.load(uv_ptr + 2 * c + 1, mask=has, other=0.0))
    tl.store(map_ptr + 2 * offs, u, mask=has)
    tl.store(map_ptr + 2 * offs + 1, v, mask=has)


def rasterize_backward_map(map_xy: torch.Tensor, verts_xy: torch.Tensor, verts_uv: torch.Tensor,
                           tris: torch.Tensor, x0: int = 0, y0: int = 0) -> torch.Tensor:
    """Torch tensors on one device: map (H, W, 2) f32 (in place), verts (V, 2) f32, tris (T, 3) i32."""
    h, w = map_xy.shape[:2]
    ids = torch.full((h, w), -1, dtype=torch.int32, device=map_xy.device)
    xy = verts_xy.to(torch.float32).contiguous()
    uv = verts_uv.to(torch.float32).contiguous()
    t = tris.to(torch.int32).contiguous()
    if len(t):
        _coverage_kernel[(len(t),)](xy, t, ids, h, w, float(x0), float(y0),
                                    EPS=EDGE_EPS, MIN_A=MIN_AREA, BLOCK=BLOCK_TRI)
    n = h * w
    _interpolate_kernel[(triton.cdiv(n, BLOCK_PIX),)](ids, xy, uv, t, map_xy, n, w, float(x0), float(y0),
                                                      BLOCK=BLOCK_PIX)
    return map_xy
