"""Fitting an avatar's Gaussians to images (torch; the reference rasterizer on the CPU, gsplat on
a GPU when asked): colours, opacities, scales and normal offsets, with the mesh binding fixed;
with ``FitOptions.geometry`` also the 3D shape: a depth correction per render-mesh vertex.

Each target is a (MotionFrame, RGB image) pair: the photo at rest for ``avatar create --splat``,
tracked video frames for ``avatar fit --video``. The posed mesh of every target is computed once
(NumPy, no gradient); per step the Gaussians are rebuilt from the parameters in each target's
camera space and rendered at ``size`` x ``size``; the loss is L1 + MSE over the pixels the
target's ``mask`` keeps (all by default). Returns the fitted ``GaussianAvatar`` and the losses.

**Geometry** (``geometry=True``, ``fit_geometry``): each render vertex gets a face-space depth
correction ``dz`` (added to ``Avatar.vertex_offsets[:, 2]``, so the warp and the splat renderer
share it). A posed vertex is linear in its own depth (blend, then the per-vertex pose blend of an
affine head pose), so per target ``v(dz) = v0 + J * dz`` with ``J`` taken once from the mesh
deformer; triangle frames, anchors and sizes are rebuilt from ``v(dz)`` in torch every step.
Frontal views barely see depth; turned ones move a vertex sideways by ``dz * sin(yaw)``, so the
head turns in the targets are what fits it. Terms: the image loss, the reprojection of the
target's tracked face-mesh landmarks (``Target.landmarks``, when given) and a mesh-Laplacian
smoothness + a small L2 pull toward the original depth; ``|dz|`` stays within ``max_depth``.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import numpy as np

from engine.avatar.gaussians import GaussianAvatar
from engine.motion.space import MotionFrame
from engine.render.splat.camera import background_view, view_camera
from engine.render.splat.deform import GaussianDeformer, quaternion_matrices


FIT_TILE = 32   # reference-rasterizer tile while fitting: fewer Python iterations, same result
CROP_MARGIN = 4  # pixels kept around a target's mask
MAX_OFFSET_CHANGE = 0.02   # face units a fit may move a Gaussian along its normal
FACE_POINTS = 468          # face-mesh landmarks = the first render vertices (468..477: irises)


@dataclass(frozen=True)
class FitOptions:
    size: int = 96               # render side while fitting (the reference rasterizer is slow)
    steps: int = 60
    lr_color: float = 0.02
    lr_opacity: float = 0.05
    lr_scale: float = 0.01
    lr_offset: float = 0.002
    camera_distance: float = 20.0
    progress: bool = True
    seed: int = 0
    threads: int = 1             # torch intra-op threads (0: torch's default); more oversubscribes shared CPUs
    # geometry: a depth correction per render vertex, fitted from the targets' head turns
    geometry: bool = False
    lr_depth: float = 0.004      # face units per step (Adam)
    max_depth: float = 0.3       # |depth correction| bound, face units (inter-ocular distances)
    depth_smooth: float = 2.0    # weight of the mesh-Laplacian term (mean squared edge difference)
    depth_l2: float = 0.02       # weight of the pull toward the original depth (mean squared)
    landmark_weight: float = 1.0  # weight of the landmark reprojection (mean squared, face units)


@dataclass
class Target:
    motion: MotionFrame
    image: np.ndarray                    # (H, W, 3) uint8, any size: resized to the fit size
    mask: np.ndarray | None = None       # (H, W) bool: pixels that count
    landmarks: np.ndarray | None = None  # (468, 2) tracked face-mesh points in ``image``'s pixels (index coords)


def _logit(p):
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


def depth_jacobian(mesh, motion: MotionFrame) -> tuple[np.ndarray, np.ndarray]:
    """(posed vertices (V, 3), d posed / d depth (V, 3)) of ``motion``: a vertex's posed position
    is affine in its own rest depth, so one unit step of every vertex gives the exact slope."""
    v0 = mesh.posed_vertices(motion)
    saved = mesh.offsets
    try:
        mesh.offsets = saved + np.array([0.0, 0.0, 1.0], np.float32)
        v1 = mesh.posed_vertices(motion)
    finally:
        mesh.offsets = saved
    return v0, v1 - v0


def torch_triangle_frames(torch, v, tris, sign):
    """``kernels.reference.splat_bind.triangle_frames`` in torch (differentiable in ``v``)."""
    a, b, c = v[tris[:, 0]], v[tris[:, 1]], v[tris[:, 2]]
    e1, e2 = b - a, c - a
    n = torch.linalg.cross(e1, e2) * sign[:, None]
    area2 = torch.linalg.norm(n, dim=1)
    n = n / area2.clamp_min(1e-12)[:, None]
    t = e1 / torch.linalg.norm(e1, dim=1).clamp_min(1e-12)[:, None]
    p = torch.linalg.cross(n, t)
    return torch.stack([t, p, n], 2), torch.sqrt(0.5 * area2)


def mesh_edges(triangles: np.ndarray) -> np.ndarray:
    """(E, 2) unique undirected edges of a triangle mesh."""
    e = np.concatenate([triangles[:, [0, 1]], triangles[:, [1, 2]], triangles[:, [2, 0]]])
    return np.unique(np.sort(e, axis=1), axis=0)


class _Prepared:
    """A target's fixed part: posed vertices and their depth slope, the crop, image and mask."""

    def __init__(self, deformer: GaussianDeformer, target: Target, avatar, opts: FitOptions, torch):
        cam = view_camera(avatar, opts.size, opts.size, opts.camera_distance)
        v0, jac = depth_jacobian(deformer.mesh, target.motion)
        self.v0 = torch.from_numpy(v0.astype(np.float32))
        self.jac = torch.from_numpy(jac.astype(np.float32))
        self.rotation = torch.from_numpy(cam.rotation.astype(np.float32))
        self.translation = torch.from_numpy(np.asarray(cam.translation, np.float32))
        import cv2
        img = cv2.resize(target.image, (opts.size, opts.size), interpolation=cv2.INTER_AREA)
        m = np.ones((opts.size, opts.size), bool) if target.mask is None else cv2.resize(
            target.mask.astype(np.uint8), (opts.size, opts.size), interpolation=cv2.INTER_NEAREST).astype(bool)
        # only the mask's bounding box (+ a margin) is rendered: the camera's principal point
        # moves with the crop, so the pixels there are exactly those of the full view
        ys, xs = np.nonzero(m) if m.any() else (np.array([0]), np.array([0]))
        x0, y0 = max(int(xs.min()) - CROP_MARGIN, 0), max(int(ys.min()) - CROP_MARGIN, 0)
        x1, y1 = min(int(xs.max()) + 1 + CROP_MARGIN, opts.size), min(int(ys.max()) + 1 + CROP_MARGIN, opts.size)
        self.cam = dataclasses.replace(cam, width=x1 - x0, height=y1 - y0, cx=cam.cx - x0, cy=cam.cy - y0)
        self.crop = (slice(y0, y1), slice(x0, x1))
        self.image = torch.from_numpy(img[self.crop].astype(np.float32) / 255.0)
        self.mask = torch.from_numpy(m[self.crop].astype(np.float32))[..., None]
        # landmarks: compared in face units through the camera at the target image's own size
        self.landmarks = None
        if target.landmarks is not None:
            h, w = target.image.shape[:2]
            full = view_camera(avatar, w, h, opts.camera_distance)
            self.lm_cam = (full.fx, full.fy, full.cx - 0.5, full.cy - 0.5)   # index coordinates
            self.lm_unit = full.fx / opts.camera_distance                    # pixels per face unit at z = 0
            self.landmarks = torch.from_numpy(np.asarray(target.landmarks, np.float32)[:FACE_POINTS, :2])

    def vertices(self, depth):
        return self.v0 if depth is None else self.v0 + self.jac * depth[:, None]

    def landmark_loss(self, depth):
        """Mean squared distance (face units) of the projected face-mesh vertices from the landmarks."""
        p = self.vertices(depth)[:FACE_POINTS] @ self.rotation.T + self.translation
        fx, fy, cx, cy = self.lm_cam
        u, v = p[:, 0] / p[:, 2] * fx + cx, p[:, 1] / p[:, 2] * fy + cy
        return (((u - self.landmarks[:, 0]) ** 2 + (v - self.landmarks[:, 1]) ** 2) / self.lm_unit ** 2).mean()


def fit_gaussians(avatar, gaussians: GaussianAvatar, targets: list[Target], opts: FitOptions = FitOptions()):
    """(fitted GaussianAvatar, per-step losses); the mesh stays (see ``fit_geometry``)."""
    fitted, losses, _ = _fit(avatar, gaussians, targets, dataclasses.replace(opts, geometry=False))
    return fitted, losses


def fit_geometry(avatar, gaussians: GaussianAvatar, targets: list[Target], opts: FitOptions = FitOptions()):
    """(fitted GaussianAvatar, per-step losses, depth correction (V,) per render vertex): the
    appearance and the mesh's depth together; ``with_depth(avatar, depth)`` applies the latter."""
    return _fit(avatar, gaussians, targets, dataclasses.replace(opts, geometry=True))


def _fit(avatar, gaussians: GaussianAvatar, targets: list[Target], opts: FitOptions):
    import torch
    from tqdm import tqdm

    from kernels.reference import splat as ref
    if not targets:
        raise ValueError("fitting needs at least one target image")
    torch.manual_seed(opts.seed)
    if opts.threads > 0:
        torch.set_num_threads(opts.threads)
    deformer = GaussianDeformer(avatar, gaussians)
    prepared = [_Prepared(deformer, t, avatar, opts, torch) for t in targets]
    bg_full = background_view(gaussians.background, opts.size, opts.size)
    for p in prepared:
        p.background = torch.from_numpy(np.ascontiguousarray(bg_full[p.crop]))
    rot = torch.from_numpy(quaternion_matrices(gaussians.rotation).astype(np.float32))
    tris = torch.from_numpy(deformer.tris.astype(np.int64))
    sign = torch.from_numpy(deformer.sign.astype(np.float32))
    slot = torch.from_numpy(deformer.slot.astype(np.int64))
    bary = torch.from_numpy(deformer.bary.astype(np.float32))
    depth = torch.zeros(len(avatar.vertex_offsets), dtype=torch.float32, requires_grad=True) if opts.geometry else None
    edges = torch.from_numpy(mesh_edges(avatar.triangles).astype(np.int64))

    def binding(p: _Prepared, depth):
        """(anchors, camera-space triangle frames, sizes) of every Gaussian for target ``p``."""
        v = p.vertices(depth)
        frames, size = torch_triangle_frames(torch, v, tris, sign)
        corners = v[tris][slot]
        anchor = torch.einsum("nk,nkd->nd", bary, corners) @ p.rotation.T + p.translation
        return anchor, torch.matmul(p.rotation, frames[slot]), size[slot]

    if depth is None:   # the binding is fixed: once per target
        with torch.no_grad():
            for p in prepared:
                p.fixed = binding(p, None)
    color = torch.tensor(_logit(gaussians.color), requires_grad=True)
    opacity = torch.tensor(_logit(gaussians.opacity), requires_grad=True)
    log_scale = torch.tensor(np.log(np.maximum(gaussians.scale, 1e-6)), requires_grad=True)
    offset = torch.tensor(gaussians.offset, requires_grad=True)
    # projections after each step: scales never shrink below the initial ones (fitted at a low
    # resolution, shrunken Gaussians open gaps between triangles that show at full size) and the
    # offsets stay within MAX_OFFSET_CHANGE of theirs (no depth-order flips between layers)
    min_log_scale = log_scale.detach().clone()
    offset_lo = offset.detach() - MAX_OFFSET_CHANGE
    offset_hi = offset.detach() + MAX_OFFSET_CHANGE
    groups = [{"params": [color], "lr": opts.lr_color}, {"params": [opacity], "lr": opts.lr_opacity},
              {"params": [log_scale], "lr": opts.lr_scale}, {"params": [offset], "lr": opts.lr_offset}]
    if depth is not None:
        groups.append({"params": [depth], "lr": opts.lr_depth})
    optim = torch.optim.Adam(groups)

    def render(p: _Prepared):
        anchor, frame, size = p.fixed if depth is None else binding(p, depth)
        means = anchor + offset[:, None] * frame[:, :, 2]
        f = torch.matmul(frame, rot * torch.exp(log_scale)[:, None, :]) * size[:, None, None]
        cov = f @ f.transpose(1, 2)
        c = p.cam
        rgb, _ = ref.render(means, cov, torch.sigmoid(color), torch.sigmoid(opacity), c.fx, c.fy, c.cx, c.cy,
                            c.width, c.height, background=p.background, tile=FIT_TILE)
        return rgb

    losses = []
    # targets in a shuffled order (each once before any repeats): a short fit still sees the whole clip
    rng = np.random.default_rng(opts.seed)
    order = np.concatenate([rng.permutation(len(prepared)) for _ in range(-(-opts.steps // len(prepared)))])
    bar = tqdm(range(opts.steps), desc="fit splats", unit="step", disable=not opts.progress, file=sys.stderr)
    for step in bar:
        p = prepared[order[step]]
        optim.zero_grad()
        diff = (render(p) - p.image) * p.mask
        loss = diff.abs().mean() + (diff ** 2).mean()
        if depth is not None:
            loss = loss + opts.depth_smooth * ((depth[edges[:, 0]] - depth[edges[:, 1]]) ** 2).mean() \
                + opts.depth_l2 * (depth ** 2).mean()
            if p.landmarks is not None and opts.landmark_weight > 0:
                loss = loss + opts.landmark_weight * p.landmark_loss(depth)
        loss.backward()
        optim.step()
        with torch.no_grad():
            torch.maximum(log_scale, min_log_scale, out=log_scale)
            torch.clamp(offset, offset_lo, offset_hi, out=offset)
            if depth is not None:
                depth.clamp_(-opts.max_depth, opts.max_depth)
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    with torch.no_grad():
        fitted = dataclasses.replace(
            gaussians, color=torch.sigmoid(color).numpy().astype(np.float32),
            opacity=torch.sigmoid(opacity).numpy().astype(np.float32),
            scale=torch.exp(log_scale).numpy().astype(np.float32), offset=offset.detach().numpy().astype(np.float32))
    fitted.validate()
    return fitted, losses, None if depth is None else depth.detach().numpy().astype(np.float32)


def with_depth(avatar, depth: np.ndarray):
    """The avatar with a per-render-vertex depth correction added to its mesh (both renderers)."""
    depth = np.asarray(depth, np.float32)
    if depth.shape != (len(avatar.vertex_offsets),):
        raise ValueError(f"depth correction must have one value per render vertex "
                         f"({len(avatar.vertex_offsets)}), got shape {depth.shape}")
    offsets = avatar.vertex_offsets.astype(np.float32).copy()
    offsets[:, 2] += depth
    return dataclasses.replace(avatar, vertex_offsets=offsets)


def fit_to_photo(avatar, gaussians: GaussianAvatar, opts: FitOptions = FitOptions()):
    """Fit the Gaussians to the avatar's own photo at rest."""
    return fit_gaussians(avatar, gaussians, [Target(MotionFrame.neutral(), avatar.image)], opts)


def photo_psnr(avatar, gaussians: GaussianAvatar, size: int = 256) -> float:
    """PSNR (dB) of the splat render at rest against the avatar's photo, both at ``size``."""
    import cv2

    from engine.render.splat.renderer import SplatRenderer
    r = SplatRenderer(dataclasses.replace(avatar, splat=gaussians), size, size, backend="cpu", warmup=False)
    photo = cv2.resize(avatar.image, (size, size), interpolation=cv2.INTER_AREA).astype(np.float64)
    mse = ((r.render(MotionFrame.neutral()).astype(np.float64) - photo) ** 2).mean()
    return float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10)))
