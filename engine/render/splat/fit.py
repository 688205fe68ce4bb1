"""Fitting an avatar's Gaussians to images (torch; the reference rasterizer on the CPU, gsplat on
a GPU when asked): colours, opacities, scales and normal offsets, with the mesh binding fixed.

Each target is a (MotionFrame, RGB image) pair: the photo at rest for ``avatar create --splat``,
tracked video frames for ``avatar fit --video``. The posed mesh of every target is computed once
(NumPy, no gradient); per step the Gaussians are rebuilt from the parameters in each target's
camera space and rendered at ``size`` x ``size``; the loss is L1 + MSE over the pixels the
target's ``mask`` keeps (all by default). Returns the fitted ``GaussianAvatar`` and the losses.
"""
from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass

import numpy as np

from engine.avatar.gaussians import GaussianAvatar
from engine.motion.space import MotionFrame
from engine.render.splat.camera import background_view, view_camera
from engine.render.splat.deform import GaussianDeformer, quaternion_matrices, triangle_frames


FIT_TILE = 32   # reference-rasterizer tile while fitting: fewer Python iterations, same result
CROP_MARGIN = 4  # pixels kept around a target's mask
MAX_OFFSET_CHANGE = 0.02   # face units a fit may move a Gaussian along its normal


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


@dataclass
class Target:
    motion: MotionFrame
    image: np.ndarray                    # (H, W, 3) uint8, any size: resized to the fit size
    mask: np.ndarray | None = None       # (H, W) bool: pixels that count


def _logit(p):
    p = np.clip(p, 1e-4, 1 - 1e-4)
    return np.log(p / (1 - p))


class _Prepared:
    """A target's fixed part: camera-space anchors, frames (camera @ triangle frame), sizes."""

    def __init__(self, deformer: GaussianDeformer, target: Target, avatar, opts: FitOptions, torch):
        cam = view_camera(avatar, opts.size, opts.size, opts.camera_distance)
        v = deformer.mesh.posed_vertices(target.motion)
        frames, size = triangle_frames(v, deformer.tris, deformer.sign)
        corners = v[deformer.tris][deformer.slot]
        anchor = np.einsum("nk,nkd->nd", deformer.bary, corners)
        self.anchor = torch.from_numpy(cam.to_camera(anchor).astype(np.float32))
        self.frame = torch.from_numpy(np.matmul(cam.rotation[None], frames[deformer.slot]).astype(np.float32))
        self.size = torch.from_numpy(size[deformer.slot].astype(np.float32))
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


def fit_gaussians(avatar, gaussians: GaussianAvatar, targets: list[Target], opts: FitOptions = FitOptions()):
    """(fitted GaussianAvatar, per-step losses)."""
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
    optim = torch.optim.Adam([{"params": [color], "lr": opts.lr_color},
                              {"params": [opacity], "lr": opts.lr_opacity},
                              {"params": [log_scale], "lr": opts.lr_scale},
                              {"params": [offset], "lr": opts.lr_offset}])

    def render(p: _Prepared):
        means = p.anchor + offset[:, None] * p.frame[:, :, 2]
        f = torch.matmul(p.frame, rot * torch.exp(log_scale)[:, None, :]) * p.size[:, None, None]
        cov = f @ f.transpose(1, 2)
        c = p.cam
        rgb, _ = ref.render(means, cov, torch.sigmoid(color), torch.sigmoid(opacity), c.fx, c.fy, c.cx, c.cy,
                            c.width, c.height, background=p.background, tile=FIT_TILE)
        return rgb

    losses = []
    bar = tqdm(range(opts.steps), desc="fit splats", unit="step", disable=not opts.progress, file=sys.stderr)
    for step in bar:
        p = prepared[step % len(prepared)]
        optim.zero_grad()
        diff = (render(p) - p.image) * p.mask
        loss = diff.abs().mean() + (diff ** 2).mean()
        loss.backward()
        optim.step()
        with torch.no_grad():
            torch.maximum(log_scale, min_log_scale, out=log_scale)
            torch.clamp(offset, offset_lo, offset_hi, out=offset)
        losses.append(float(loss.detach()))
        bar.set_postfix(loss=f"{losses[-1]:.4f}")
    with torch.no_grad():
        fitted = dataclasses.replace(
            gaussians, color=torch.sigmoid(color).numpy().astype(np.float32),
            opacity=torch.sigmoid(opacity).numpy().astype(np.float32),
            scale=torch.exp(log_scale).numpy().astype(np.float32), offset=offset.detach().numpy().astype(np.float32))
    fitted.validate()
    return fitted, losses


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
