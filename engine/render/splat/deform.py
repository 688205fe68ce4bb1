"""MotionFrame -> the splat avatar's Gaussians in face space (NumPy; ~2 ms for 20k).

The warp's mesh deformer gives the posed render-mesh vertices (blendshapes, lip contact, head
pose); each Gaussian then follows its triangle: anchor at its barycentric point, pushed along
the triangle's normal by its offset, rotated into the triangle's frame (first edge, in-plane
perpendicular, normal) and scaled by the triangle's size ``sqrt(area)``. The normal of every
triangle is oriented toward the viewer at rest (sign fixed once, from the rest or open-mouth
shape, whichever is larger), so offsets keep their meaning however the mesh is wound.
"""
from __future__ import annotations

import numpy as np

import kernels
from engine.avatar.asset import Avatar
from engine.avatar.gaussians import GaussianAvatar
from engine.avatar.splat_init import mesh_vertices
from engine.motion.space import MotionFrame
from engine.render.warp.deform import MeshDeformer
from kernels.reference.splat_bind import triangle_frames

EPS = 1e-12


def quaternion_matrices(q: np.ndarray) -> np.ndarray:
    """(N, 3, 3) rotation matrices of unit quaternions (w, x, y, z) (normalized here)."""
    q = q / np.maximum(np.linalg.norm(q, axis=1, keepdims=True), EPS)
    w, x, y, z = q.T
    return np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
                     2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
                     2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)], 1).reshape(-1, 3, 3)


class GaussianDeformer:
    """Poses one avatar's Gaussians: ``world(motion) -> (means (N, 3), factors (N, 3, 3))`` with
    ``cov = factor @ factor.T`` (face space)."""

    def __init__(self, avatar: Avatar, gaussians: GaussianAvatar):
        self.mesh = MeshDeformer(avatar)
        self.g = gaussians
        # only the triangles that carry Gaussians are evaluated per frame
        self.used, self.slot = np.unique(gaussians.triangle, return_inverse=True)
        self.tris = avatar.triangles[self.used]
        rest, opened = mesh_vertices(avatar), mesh_vertices(avatar, {"jawOpen": 1.0})
        n_rest = self._normals(rest)
        n_open = self._normals(opened)
        pick = np.where((np.linalg.norm(n_rest, axis=1) >= np.linalg.norm(n_open, axis=1))[:, None], n_rest, n_open)
        self.sign = np.where(pick[:, 2] >= 0, 1.0, -1.0).astype(np.float32)
        self.local = (quaternion_matrices(gaussians.rotation) * gaussians.scale[:, None, :]).astype(np.float32)
        self.bary = gaussians.bary.astype(np.float32)
        self.offset = gaussians.offset.astype(np.float32)

    def _normals(self, v: np.ndarray) -> np.ndarray:
        a, b, c = v[self.tris[:, 0]], v[self.tris[:, 1]], v[self.tris[:, 2]]
        return np.cross(b - a, c - a)

    def camera_space(self, motion: MotionFrame, rotation: np.ndarray, translation: np.ndarray,
                     backend: str = "cpu", verts: np.ndarray | None = None):
        """(means (N, 3), covs (N, 3, 3)) float32 in the space of a camera ``p_c = R p + t``."""
        v = self.mesh.posed_vertices(motion) if verts is None else verts
        return kernels.bind_gaussians(v, self.tris, self.sign, self.slot, self.bary, self.offset, self.local,
                                      rotation, translation, backend=backend)

    def world(self, motion: MotionFrame) -> tuple[np.ndarray, np.ndarray]:
        v = self.mesh.posed_vertices(motion).astype(np.float32)
        frames, size = triangle_frames(v, self.tris, self.sign)
        corners = v[self.tris][self.slot]                                  # (N, 3, 3)
        means = np.einsum("nk,nkd->nd", self.bary, corners)
        fr = frames[self.slot]
        means += fr[:, :, 2] * self.offset[:, None]
        factors = np.matmul(fr, self.local) * size[self.slot][:, None, None]
        return means, factors
