"""Triton GPU path: RGB -> I420 (contract of kernels.reference.yuv)."""
from __future__ import annotations

import torch
import triton
import triton.language as tl

from kernels.reference.yuv import U_COEF, V_COEF, Y_COEF

BLOCK = 256


@triton.jit
def _yuv_kernel(rgb_ptr, out_ptr, n_blocks, H, W, YR: tl.constexpr, YG: tl.constexpr, YB: tl.constexpr,
                UR: tl.constexpr, UG: tl.constexpr, UB: tl.constexpr, VR: tl.constexpr,
                VG: tl.constexpr, VB: tl.constexpr, BLOCK: tl.constexpr):
    k = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    m = k < n_blocks
    hw = W // 2
    by = k // hw
    bx = k % hw
    rs = tl.zeros((BLOCK,), tl.float32)
    gs = tl.zeros((BLOCK,), tl.float32)
    bs = tl.zeros((BLOCK,), tl.float32)
    for dy in tl.static_range(2):
        for dx in tl.static_range(2):
            p = ((2 * by + dy) * W + 2 * bx + dx)
            r = tl.load(rgb_ptr + p * 3, mask=m, other=0).to(tl.float32)
            g = tl.load(rgb_ptr + p * 3 + 1, mask=m, other=0).to(tl.float32)
            b = tl.load(rgb_ptr + p * 3 + 2, mask=m, other=0).to(tl.float32)
            yv = tl.minimum(tl.maximum(tl.floor(YR * r + YG * g + YB * b + 16.5), 0.0), 255.0)
            tl.store(out_ptr + p, yv.to(tl.uint8), mask=m)
            rs += r
            gs += g
            bs += b
    rs, gs, bs = rs * 0.25, gs * 0.25, bs * 0.25
    u = tl.minimum(tl.maximum(tl.floor(UR * rs + UG * gs + UB * bs + 128.5), 0.0), 255.0)
    v = tl.minimum(tl.maximum(tl.floor(VR * rs + VG * gs + VB * bs + 128.5), 0.0), 255.0)
    tl.store(out_ptr + H * W + k, u.to(tl.uint8), mask=m)
    tl.store(out_ptr + H * W + n_blocks + k, v.to(tl.uint8), mask=m)


def rgb_to_yuv420(rgb: torch.Tensor) -> torch.Tensor:
    h, w = rgb.shape[:2]
    out = torch.empty((h * 3 // 2, w), dtype=torch.uint8, device=rgb.device)
    n = (h // 2) * (w // 2)
    _yuv_kernel[(triton.cdiv(n, BLOCK),)](rgb.contiguous(), out, n, h, w, *Y_COEF, *U_COEF, *V_COEF,
                                          BLOCK=BLOCK)
    return out
