"""The Gaussian-splat avatar: 3D Gaussians bound to the triangles of the avatar's render mesh.

In the manner of GaussianAvatars / SplattingAvatar, every Gaussian lives in the local frame
of one render-mesh triangle (``Avatar.triangles``), so blendshapes and head pose move it with
no per-frame optimisation:

* ``triangle`` (N,) int32: the triangle it rides on (an index into ``Avatar.triangles``);
* ``bary`` (N, 3) float32: barycentric coordinates of its anchor on that triangle;
* ``offset`` (N,) float32: distance along the triangle's normal (face units; + toward the
  viewer at rest);
* ``rotation`` (N, 4) float32: unit quaternion (w, x, y, z) in the triangle's frame
  (columns: first edge direction, in-plane perpendicular, normal);
* ``scale`` (N, 3) float32: standard deviations along those axes in units of the triangle's
  size ``sqrt(area)`` (a stretched triangle grows its Gaussians, e.g. the mouth interior);
* ``color`` (N, 3) float32 RGB in [0, 1]; ``opacity`` (N,) float32 in [0, 1];
* ``set_id`` (N,) uint8: which part it belongs to (``SET_NAMES``: face, mouth interior,
  teeth, sclera, iris, hair, neck, side);
* ``background`` (H, W, 3) uint8: the static back plane, the photo with the region the head
  can uncover filled in.

Stored inside the ``.avatar`` zip as ``splat.npz`` with ``meta.json["splat"] = {"version",
"count", "sets"}`` (``engine.avatar.asset``); files without it load as before (no splats).
"""
from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

SPLAT_VERSION = 1
READABLE_SPLAT_VERSIONS = (1,)
SET_NAMES = ("face", "mouth_interior", "teeth", "sclera", "iris", "hair", "neck", "side")
SET = {name: i for i, name in enumerate(SET_NAMES)}
_FIELDS = ("triangle", "bary", "offset", "rotation", "scale", "color", "opacity", "set_id", "background")


class SplatError(ValueError):
    """Gaussian-splat data that is malformed; the message names the field."""


@dataclass
class GaussianAvatar:
    triangle: np.ndarray
    bary: np.ndarray
    offset: np.ndarray
    rotation: np.ndarray
    scale: np.ndarray
    color: np.ndarray
    opacity: np.ndarray
    set_id: np.ndarray
    background: np.ndarray

    def __len__(self) -> int:
        return int(len(self.triangle))

    def validate(self, num_triangles: int | None = None) -> None:
        n = len(self)
        want = {"triangle": (n,), "bary": (n, 3), "offset": (n,), "rotation": (n, 4), "scale": (n, 3),
                "color": (n, 3), "opacity": (n,), "set_id": (n,)}
        for name, shape in want.items():
            arr = getattr(self, name)
            if arr.shape != shape:
                raise SplatError(f"splat field {name} has shape {arr.shape}, expected {shape}")
            if arr.dtype.kind == "f" and not np.isfinite(arr).all():
                raise SplatError(f"splat field {name} contains NaN or inf")
        if self.background.ndim != 3 or self.background.shape[2] != 3 or self.background.dtype != np.uint8:
            raise SplatError(f"splat background must be (H, W, 3) uint8, got {self.background.shape} "
                             f"{self.background.dtype}")
        if n and (self.triangle.min() < 0 or (num_triangles is not None and self.triangle.max() >= num_triangles)):
            raise SplatError("splat Gaussians ride on triangles that do not exist")
        if n and self.set_id.max() >= len(SET_NAMES):
            raise SplatError(f"splat set ids must be below {len(SET_NAMES)}")
        if (self.scale < 0).any() or (self.opacity < 0).any() or (self.opacity > 1).any():
            raise SplatError("splat scales must be >= 0 and opacities in [0, 1]")

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, **{k: getattr(self, k) for k in _FIELDS})
        return buf.getvalue()

    def meta(self) -> dict:
        return {"version": SPLAT_VERSION, "count": len(self), "sets": list(SET_NAMES)}

    @classmethod
    def from_bytes(cls, data: bytes, meta: dict) -> "GaussianAvatar":
        if meta.get("version") not in READABLE_SPLAT_VERSIONS:
            raise SplatError(f"splat data version {meta.get('version')} is not supported "
                             f"(this facecast reads {list(READABLE_SPLAT_VERSIONS)})")
        npz = np.load(io.BytesIO(data), allow_pickle=False)
        missing = [k for k in _FIELDS if k not in npz.files]
        if missing:
            raise SplatError(f"splat data is missing arrays {missing}")
        out = cls(**{k: npz[k] for k in _FIELDS})
        if len(out) != int(meta.get("count", len(out))):
            raise SplatError(f"splat data holds {len(out)} Gaussians, meta says {meta.get('count')}")
        return out

    def subset(self, keep: np.ndarray) -> "GaussianAvatar":
        return GaussianAvatar(**{k: getattr(self, k)[keep] for k in _FIELDS if k != "background"},
                              background=self.background)
