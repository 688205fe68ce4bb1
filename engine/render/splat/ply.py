"""Export an avatar's Gaussians, posed by one MotionFrame, in the common 3DGS PLY layout.

Binary little-endian vertex elements with the properties other 3DGS viewers read:
``x y z nx ny nz f_dc_0..2 opacity scale_0..2 rot_0..3`` (float32): position; zero normals;
degree-0 spherical-harmonic colour ``(rgb - 0.5) / SH_C0``; opacity as a logit; log scales;
unit quaternion (w, x, y, z). Coordinates: face units in an OpenCV-style right-handed frame
(x right, y down, z away from the viewer, i.e. the face space's z negated), origin between the
eyes; covariances are re-factored into rotation and scale (eigen-decomposition).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.motion.space import MotionFrame

SH_C0 = 0.28209479177387814
PROPERTIES = ("x", "y", "z", "nx", "ny", "nz", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
              "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3")
MIN_SCALE = 1e-7


def rotation_to_quaternion(r: np.ndarray) -> np.ndarray:
    """(N, 4) unit quaternions (w, x, y, z) of proper rotation matrices (N, 3, 3)."""
    m = r.astype(np.float64)
    t = m[:, 0, 0] + m[:, 1, 1] + m[:, 2, 2]
    cands = np.stack([
        np.stack([1 + t, m[:, 2, 1] - m[:, 1, 2], m[:, 0, 2] - m[:, 2, 0], m[:, 1, 0] - m[:, 0, 1]], 1),
        np.stack([m[:, 2, 1] - m[:, 1, 2], 1 + m[:, 0, 0] - m[:, 1, 1] - m[:, 2, 2], m[:, 0, 1] + m[:, 1, 0], m[:, 0, 2] + m[:, 2, 0]], 1),
        np.stack([m[:, 0, 2] - m[:, 2, 0], m[:, 0, 1] + m[:, 1, 0], 1 - m[:, 0, 0] + m[:, 1, 1] - m[:, 2, 2], m[:, 1, 2] + m[:, 2, 1]], 1),
        np.stack([m[:, 1, 0] - m[:, 0, 1], m[:, 0, 2] + m[:, 2, 0], m[:, 1, 2] + m[:, 2, 1], 1 - m[:, 0, 0] - m[:, 1, 1] + m[:, 2, 2]], 1)], 1)
    diag = np.stack([t, m[:, 0, 0], m[:, 1, 1], m[:, 2, 2]], 1)
    q = cands[np.arange(len(m)), diag.argmax(1)]
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return (q * np.where(q[:, :1] < 0, -1.0, 1.0)).astype(np.float32)


def gaussians_for_export(renderer, motion: MotionFrame | None = None):
    """(means (N, 3), quats (N, 4), scales (N, 3), colors (N, 3), opacities (N,)) in the PLY frame."""
    flip = np.diag([1.0, 1.0, -1.0]).astype(np.float32)
    means, cov = renderer.deformer.camera_space(motion or MotionFrame.neutral(), flip, np.zeros(3, np.float32))
    vals, vecs = np.linalg.eigh(cov.astype(np.float64))
    vecs[np.linalg.det(vecs) < 0, :, 2] *= -1                     # proper rotations
    scales = np.sqrt(np.maximum(vals, MIN_SCALE ** 2)).astype(np.float32)
    return means, rotation_to_quaternion(vecs), scales, renderer.colors, renderer.opacity


def write_ply(path: str | Path, means, quats, scales, colors, opacities) -> Path:
    n = len(means)
    op = np.clip(opacities.astype(np.float64), 1e-6, 1 - 1e-6)
    data = np.zeros((n, len(PROPERTIES)), np.float32)
    data[:, 0:3] = means
    data[:, 6:9] = (colors - 0.5) / SH_C0
    data[:, 9] = np.log(op / (1 - op))
    data[:, 10:13] = np.log(np.maximum(scales, MIN_SCALE))
    data[:, 13:17] = quats
    header = ("ply\nformat binary_little_endian 1.0\ncomment facecast Gaussian avatar\n"
              f"element vertex {n}\n" + "".join(f"property float {p}\n" for p in PROPERTIES) + "end_header\n")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.write(header.encode("ascii"))
        f.write(data.astype("<f4").tobytes())
    return path


def read_ply(path: str | Path) -> dict[str, np.ndarray]:
    """The float properties of a PLY written by ``write_ply`` (for tests and round trips)."""
    raw = Path(path).read_bytes()
    end = raw.index(b"end_header\n") + len(b"end_header\n")
    lines = raw[:end].decode("ascii").splitlines()
    if lines[0] != "ply" or "binary_little_endian" not in lines[1]:
        raise ValueError(f"{path}: not a binary little-endian PLY")
    n = int(next(ln.split()[2] for ln in lines if ln.startswith("element vertex")))
    props = [ln.split()[2] for ln in lines if ln.startswith("property float")]
    data = np.frombuffer(raw[end:], "<f4").reshape(n, len(props))
    return {p: data[:, i] for i, p in enumerate(props)}
