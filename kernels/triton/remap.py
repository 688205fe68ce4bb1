"""Triton GPU path: bilinear remap of a uint8 RGB image (contract of kernels.reference.remap)."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

BLOCK = 1024


@triton.jit
def _remap_kernel(src_ptr, map_ptr, out_ptr, n_pix, SH, SW, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = offs < n_pix
    x = tl.load(map_ptr + 2 * offs, mask=m, other=0.0)
    y = tl.load(map_ptr + 2 * offs + 1, mask=m, other=0.0)
    x = tl.minimum(tl.maximum(x, 0.0), SW - 1.0)
    y = tl.minimum(tl.maximum(y, 0.0), SH - 1.0)
    xf = tl.floor(x)
    yf = tl.floor(y)
    fx = x - xf
    fy = y - yf
    xi = xf.to(tl.int32)
    yi = yf.to(tl.int32)
    x1 = tl.minimum(xi + 1, SW - 1)
    y1 = tl.minimum(yi + 1, SH - 1)
    for ch in tl.static_range(3):
        p00 = tl.load(src_ptr + (yi * SW + xi) * 3 + ch, mask=m, other=0).to(tl.float32)
        p01 = tl.load(src_ptr + (yi * SW + x1) * 3 + ch, mask=m, other=0).to(tl.float32)
        p10 = tl.load(src_ptr + (y1 * SW + xi) * 3 + ch, mask=m, other=0).to(tl.float32)
        p11 = tl.load(src_ptr + (y1 * SW + x1) * 3 + ch, mask=m, other=0).to(tl.float32)
        top = p00 * (1.0 - fx) + p01 * fx
        bot = p10 * (1.0 - fx) + p11 * fx
        val = tl.floor(top * (1.0 - fy) + bot * fy + 0.5)
        val = tl.minimum(tl.maximum(val, 0.0), 255.0)
        tl.store(out_ptr + offs * 3 + ch, val.to(tl.uint8), mask=m)


def remap_bilinear(src: torch.Tensor, map_xy: torch.Tensor, out: torch.Tensor | None = None) -> torch.Tensor:
    """src (h, w, 3) uint8, map (H, W, 2) float32, both on one device -> (H, W, 3) uint8."""
    h, w = map_xy.shape[:2]
    if out is None:
        out = torch.empty((h, w, 3), dtype=torch.uint8, device=map_xy.device)
    n = h * w
    _remap_kernel[(triton.cdiv(n, BLOCK),)](src.contiguous(), map_xy.contiguous(), out, n,
                                            src.shape[0], src.shape[1], BLOCK=BLOCK)
    return out
