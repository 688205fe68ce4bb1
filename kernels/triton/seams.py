"""Triton GPU path: seam smoothing (contract of ``kernels.reference.seams``)."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 1024


@triton.jit
def _seams_kernel(frame_ptr, map_ptr, out_ptr, n, H, W, threshold, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n
    y = offs // W
    x = offs % W
    u = tl.load(map_ptr + 2 * offs, mask=m, other=0.0)
    v = tl.load(map_ptr + 2 * offs + 1, mask=m, other=0.0)
    seam = tl.zeros((BLOCK,), tl.int1)
    for k in tl.static_range(4):
        dy = (k == 2) * 1 - (k == 3) * 1
        dx = (k == 0) * 1 - (k == 1) * 1
        yy = y + dy
        xx = x + dx
        ok = m & (yy >= 0) & (yy < H) & (xx >= 0) & (xx < W)
        q = yy * W + xx
        nu = tl.load(map_ptr + 2 * q, mask=ok, other=0.0)
        nv = tl.load(map_ptr + 2 * q + 1, mask=ok, other=0.0)
        seam = seam | (ok & ((tl.abs(nu - u) > threshold) | (tl.abs(nv - v) > threshold)))
    for c in tl.static_range(3):
        s = tl.zeros((BLOCK,), tl.float32)
        for k in tl.static_range(9):
            yy = tl.minimum(tl.maximum(y + (k // 3) - 1, 0), H - 1)
            xx = tl.minimum(tl.maximum(x + (k % 3) - 1, 0), W - 1)
            s += tl.load(frame_ptr + (yy * W + xx) * 3 + c, mask=m, other=0).to(tl.float32)
        mean = tl.floor(s / 9.0 + 0.5)
        orig = tl.load(frame_ptr + offs * 3 + c, mask=m, other=0).to(tl.float32)
        val = tl.where(seam, mean, orig)
        tl.store(out_ptr + offs * 3 + c, val.to(tl.uint8), mask=m)


def smooth_seams(frame: torch.Tensor, map_xy: torch.Tensor, threshold: float) -> torch.Tensor:
    h, w = frame.shape[:2]
    out = torch.empty_like(frame)
    n = h * w
    _seams_kernel[(triton.cdiv(n, BLOCK),)](frame.contiguous(), map_xy.contiguous(), out, n, h, w,
                                            float(threshold), BLOCK=BLOCK)
    return out
