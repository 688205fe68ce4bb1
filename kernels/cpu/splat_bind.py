"""CPU (numba) Gaussians bound to mesh triangles -> camera-space means and covariances.
Same contract as ``kernels.reference.splat_bind`` (float32 arithmetic, one pass per Gaussian)."""
from __future__ import annotations

import math

import numba
import numpy as np

EPS = 1e-12


@numba.njit(cache=True, nogil=True)
def _bind(verts, tris, sign, slot, bary, offset, local, rot, trans, out_m, out_c):
    nt = tris.shape[0]
    fr = np.empty((nt, 3, 3), np.float32)
    size = np.empty(nt, np.float32)
    for j in range(nt):
        a, b, c = tris[j, 0], tris[j, 1], tris[j, 2]
        e1 = verts[b] - verts[a]
        e2 = verts[c] - verts[a]
        nx = (e1[1] * e2[2] - e1[2] * e2[1]) * sign[j]
        ny = (e1[2] * e2[0] - e1[0] * e2[2]) * sign[j]
        nz = (e1[0] * e2[1] - e1[1] * e2[0]) * sign[j]
        area2 = math.sqrt(nx * nx + ny * ny + nz * nz)
        inv = 1.0 / max(area2, EPS)
        nx, ny, nz = nx * inv, ny * inv, nz * inv
        l1 = 1.0 / max(math.sqrt(e1[0] * e1[0] + e1[1] * e1[1] + e1[2] * e1[2]), EPS)
        tx, ty, tz = e1[0] * l1, e1[1] * l1, e1[2] * l1
        px, py, pz = ny * tz - nz * ty, nz * tx - nx * tz, nx * ty - ny * tx
        fr[j, 0, 0], fr[j, 1, 0], fr[j, 2, 0] = tx, ty, tz
        fr[j, 0, 1], fr[j, 1, 1], fr[j, 2, 1] = px, py, pz
        fr[j, 0, 2], fr[j, 1, 2], fr[j, 2, 2] = nx, ny, nz
        size[j] = math.sqrt(0.5 * area2)
    rf = np.empty((nt, 3, 3), np.float32)            # rot @ frame, per triangle
    for j in range(nt):
        for r in range(3):
            for c in range(3):
                rf[j, r, c] = rot[r, 0] * fr[j, 0, c] + rot[r, 1] * fr[j, 1, c] + rot[r, 2] * fr[j, 2, c]
    f = np.empty((3, 3), np.float32)
    for i in range(slot.shape[0]):
        j = slot[i]
        a, b, c = tris[j, 0], tris[j, 1], tris[j, 2]
        for r in range(3):
            m = (bary[i, 0] * verts[a, r] + bary[i, 1] * verts[b, r] + bary[i, 2] * verts[c, r]
                 + offset[i] * fr[j, r, 2])
            f[r, 0] = m                       # (mean kept in f[:, 0] until the camera transform)
        mx, my, mz = f[0, 0], f[1, 0], f[2, 0]
        for r in range(3):
            out_m[i, r] = rot[r, 0] * mx + rot[r, 1] * my + rot[r, 2] * mz + trans[r]
        for r in range(3):
            for c in range(3):
                f[r, c] = (rf[j, r, 0] * local[i, 0, c] + rf[j, r, 1] * local[i, 1, c]
                           + rf[j, r, 2] * local[i, 2, c]) * size[j]
        for r in range(3):
            for c in range(r, 3):
                s = f[r, 0] * f[c, 0] + f[r, 1] * f[c, 1] + f[r, 2] * f[c, 2]
                out_c[i, r, c] = s
                out_c[i, c, r] = s


def bind(verts, tris, sign, slot, bary, offset, local, rot, trans):
    n = len(slot)
    out_m = np.empty((n, 3), np.float32)
    out_c = np.empty((n, 3, 3), np.float32)
    _bind(np.ascontiguousarray(verts, np.float32), np.ascontiguousarray(tris, np.int64),
          np.ascontiguousarray(sign, np.float32), np.ascontiguousarray(slot, np.int64),
          np.ascontiguousarray(bary, np.float32), np.ascontiguousarray(offset, np.float32),
          np.ascontiguousarray(local, np.float32), np.ascontiguousarray(rot, np.float32),
          np.ascontiguousarray(trans, np.float32), out_m, out_c)
    return out_m, out_c
