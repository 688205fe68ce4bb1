"""The splat renderer: MotionFrame -> posed Gaussians -> camera(s) -> composited RGB.

Implements the ``Renderer`` protocol (``engine.render.base``) like the warp renderer, so the
session, WebRTC, WebSocket and offline paths take either (``[render] renderer = "splat"``).
Backends (``kernels.render_gaussians``): "cpu" (numba, the default without a GPU), "torch"
(the reference; slow, for checks), "gsplat" (CUDA), "auto" (gsplat with a GPU, else cpu).
An avatar file without Gaussians gets initial ones from its warp mesh when loaded
(``engine.avatar.splat_init``; ``facecast avatar create --splat`` stores fitted ones).
"""
from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

import kernels
from engine.avatar.asset import Avatar, load_avatar
from engine.avatar.gaussians import GaussianAvatar
from engine.avatar.splat_init import DEFAULT_COUNT, init_gaussians
from engine.motion.space import MotionFrame
from engine.render.splat.camera import Camera, background_view, stereo_cameras, view_camera
from engine.render.splat.deform import GaussianDeformer

DEFAULT_DISTANCE = 20.0   # face units (~1.3 m), as configs/default.toml render.splat_camera_distance
DEFAULT_IPD_MM = 63.0
log = logging.getLogger(__name__)


def resolve_splat_backend(backend: str) -> str:
    if backend == "auto":
        return "gsplat" if kernels.gsplat_available() else "cpu"
    if backend not in kernels.SPLAT_BACKENDS:
        raise ValueError(f"unknown splat backend {backend!r}; choose auto or one of {kernels.SPLAT_BACKENDS}")
    if backend == "gsplat" and not kernels.gsplat_available():
        raise RuntimeError("splat backend 'gsplat' needs the gsplat package and a CUDA GPU")
    return backend


class SplatRenderer:
    """Renders one avatar's Gaussians at ``width`` x ``height`` (side by side when ``stereo``)."""

    def __init__(self, avatar: Avatar | str | Path, width: int = 512, height: int = 512,
                 backend: str = "auto", gaussians: int = DEFAULT_COUNT, camera_distance: float = DEFAULT_DISTANCE,
                 stereo: bool = False, ipd_mm: float = DEFAULT_IPD_MM, warmup: bool = True):
        if width < 16 or height < 16:
            raise ValueError(f"render size {width}x{height} is too small (min 16x16)")
        self.avatar = avatar if isinstance(avatar, Avatar) else load_avatar(avatar)
        self.width, self.height = int(width), int(height)
        self.backend = resolve_splat_backend(backend)
        splat = self.avatar.splat
        if splat is None:
            t0 = time.perf_counter()
            splat = init_gaussians(self.avatar, gaussians)
            log.info("avatar %s has no Gaussians: %d initialised from its mesh in %.2f s",
                     self.avatar.name, len(splat), time.perf_counter() - t0)
        self.gaussians: GaussianAvatar = splat
        self.deformer = GaussianDeformer(self.avatar, self.gaussians)
        self.cameras: list[Camera] = (stereo_cameras(self.avatar, self.width, self.height, camera_distance, ipd_mm)
                                      if stereo else [view_camera(self.avatar, self.width, self.height, camera_distance)])
        self.backgrounds = [background_view(self.gaussians.background, c.width, c.height) for c in self.cameras]
        self.colors = np.ascontiguousarray(self.gaussians.color, np.float32)
        self.opacity = np.ascontiguousarray(self.gaussians.opacity, np.float32)
        self._torch = None
        if self.backend != "cpu":
            import torch
            dev = "cuda" if self.backend == "gsplat" else "cpu"
            self._torch = (torch, dev, torch.from_numpy(self.colors).to(dev), torch.from_numpy(self.opacity).to(dev),
                           [torch.from_numpy(b).to(dev) for b in self.backgrounds])
        if warmup:
            self.render(MotionFrame.neutral())   # compiles / loads the kernels now, not on frame 1

    @classmethod
    def from_config(cls, cfg) -> "SplatRenderer":
        r = cfg.render
        return cls(cfg.resolve_path(r.avatar), cfg.video.width, cfg.video.height, backend=r.splat_backend,
                   gaussians=r.splat_gaussians, camera_distance=r.splat_camera_distance,
                   stereo=r.splat_stereo, ipd_mm=r.splat_ipd_mm)

    def camera_gaussians(self, motion: MotionFrame, camera: Camera, verts: np.ndarray | None = None):
        """(means (N, 3), covariances (N, 3, 3)) float32 in ``camera``'s space."""
        return self.deformer.camera_space(motion, camera.rotation, camera.translation, verts=verts)

    def render_float(self, motion: MotionFrame) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per view (rgb (h, w, 3) float32 in [0, 1], alpha (h, w))."""
        verts = self.deformer.mesh.posed_vertices(motion)
        out = []
        for bg, cam in enumerate(self.cameras):
            m, cov = self.camera_gaussians(motion, cam, verts)
            args = (cam.fx, cam.fy, cam.cx, cam.cy, cam.width, cam.height)
            if self._torch is None:
                rgb, alpha = kernels.render_gaussians(m, cov, self.colors, self.opacity, *args,
                                                      background=self.backgrounds[bg], backend="cpu")
            else:
                torch, dev, col, op, bgs = self._torch
                rgb, alpha = kernels.render_gaussians(torch.from_numpy(m).to(dev), torch.from_numpy(cov).to(dev),
                                                      col, op, *args, background=bgs[bg], backend=self.backend)
                rgb, alpha = rgb.detach().cpu().numpy(), alpha.detach().cpu().numpy()
            out.append((rgb, alpha))
        return out

    def render(self, motion: MotionFrame) -> np.ndarray:
        """(height, width, 3) uint8 RGB, C-contiguous (stereo: left eye | right eye)."""
        views = [np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8) for rgb, _ in self.render_float(motion)]
        return np.ascontiguousarray(views[0] if len(views) == 1 else np.concatenate(views, 1))
