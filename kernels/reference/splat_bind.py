"""Reference (NumPy) for Gaussians bound to mesh triangles -> camera-space means and covariances.

Each Gaussian ``i`` rides on triangle ``tris[slot[i]]`` of the posed vertices ``verts``: anchor
``sum_k bary[i, k] * corner_k``, pushed ``offset[i]`` along the triangle's unit normal (oriented
by ``sign``), covariance ``F F^T`` with ``F = size * frame @ local[i]`` where ``frame`` has the
columns (first edge direction, in-plane perpendicular, normal) and ``size = sqrt(area)``.
Then the camera: ``mean_c = R mean + t``, ``cov_c = R cov R^T``.
"""
from __future__ import annotations

import numpy as np

EPS = 1e-12


def triangle_frames(v: np.ndarray, tris: np.ndarray, sign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle of ``v`` (in its dtype): frames (T, 3, 3), columns = first edge direction,
    in-plane perpendicular, normal (oriented by ``sign``); sizes (T,) = sqrt(area)."""
    a, b, c = v[tris[:, 0]], v[tris[:, 1]], v[tris[:, 2]]
    e1, e2 = b - a, c - a
    n = np.cross(e1, e2) * sign[:, None]
    area2 = np.linalg.norm(n, axis=1)
    n = n / np.maximum(area2, EPS)[:, None]
    t = e1 / np.maximum(np.linalg.norm(e1, axis=1), EPS)[:, None]
    p = np.cross(n, t)
    return np.stack([t, p, n], 2), np.sqrt(0.5 * area2)


def bind(verts, tris, sign, slot, bary, offset, local, rot, trans):
    """(means (N, 3), covs (N, 3, 3)) float32 in camera space."""
    v = np.asarray(verts, np.float64)
    frames, size = triangle_frames(v, tris, sign)
    frames, size = frames[slot], size[slot]
    corners = v[tris][slot]
    means = np.einsum("nk,nkd->nd", bary, corners) + frames[:, :, 2] * offset[:, None]
    f = np.matmul(rot[None], np.matmul(frames, local)) * size[:, None, None]
    return ((means @ rot.T + trans).astype(np.float32),
            np.matmul(f, f.transpose(0, 2, 1)).astype(np.float32))
