"""The warp renderer: MotionFrame -> deformed mesh -> backward map -> bilinear sample -> RGB.

Per frame: deform vertices (NumPy), depth-sort the face triangles, rasterize the moving
triangles into a backward map over the region they can touch, remap the avatar's atlas
through it, paste over the precomputed static background. The kernels come from
``kernels`` (numpy reference, CPU numba/OpenCV, or Triton on a GPU).
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

import kernels
from engine.avatar.asset import Avatar, load_avatar
from engine.motion.space import MotionFrame
from engine.render.warp.deform import MeshDeformer

DEFAULT_SEAM_JUMP = 3.0  # as configs/default.toml render.seam_jump
log = logging.getLogger(__name__)


class WarpRenderer:
    """Renders one avatar at ``width`` x ``height`` (the photo is scaled to cover the frame)."""

    def __init__(self, avatar: Avatar | str | Path, width: int = 512, height: int = 512,
                 backend: str = "auto", seam_jump: float = DEFAULT_SEAM_JUMP, warmup: bool = True):
        if width < 16 or height < 16:
            raise ValueError(f"render size {width}x{height} is too small (min 16x16)")
        self.avatar = avatar if isinstance(avatar, Avatar) else load_avatar(avatar)
        self.width, self.height = int(width), int(height)
        self.backend = kernels.resolve_backend(backend)
        self.deformer = MeshDeformer(self.avatar)
        a = self.avatar
        # photo pixels -> output pixels: scale to cover, centred
        self.scale = max(self.width / a.width, self.height / a.height)
        # seams: neighbours whose source coordinates differ by more than seam_jump output
        # pixels' worth (identity neighbours differ by 1 / scale)
        self.seam_threshold = seam_jump / self.scale if seam_jump > 0 else None
        self.shift = np.array([(self.width - self.scale * a.width) / 2,
                               (self.height - self.scale * a.height) / 2], np.float32)
        ys, xs = np.mgrid[0:self.height, 0:self.width].astype(np.float32)
        self.base_map = np.ascontiguousarray(np.stack(
            [(xs + 0.5 - self.shift[0]) / self.scale - 0.5,
             (ys + 0.5 - self.shift[1]) / self.scale - 0.5], -1))
        self.uv = np.ascontiguousarray(a.vertex_uv, np.float32)
        self.background = kernels.remap_bilinear(a.atlas, self.base_map, backend="cpu")
        self._split_layers()
        self._gpu = None
        if self.backend == "triton":
            try:
                self._gpu = _TritonState(self)
                if warmup or backend == "auto":
                    self.render(MotionFrame.neutral())   # compiles the kernels now
            except Exception as e:  # noqa: BLE001 - any GPU/compiler failure: CPU still works
                if backend != "auto":
                    raise
                log.warning("triton kernels unavailable (%s: %s); rendering on the CPU",
                            type(e).__name__, e)
                self._gpu, self.backend = None, "cpu"
        if warmup:
            self.render(MotionFrame.neutral())   # compiles / loads the kernels now, not on frame 1

    @classmethod
    def from_config(cls, cfg) -> "WarpRenderer":
        """The renderer of ``cfg.render.avatar`` at ``cfg.video`` size with ``cfg.render.backend``.
        OpenCV's thread pool (process-wide) is set to ``cfg.pipeline.render_threads``."""
        import cv2
        cv2.setNumThreads(cfg.pipeline.render_threads)
        return cls(cfg.resolve_path(cfg.render.avatar), cfg.video.width, cfg.video.height,
                   backend=cfg.render.backend, seam_jump=cfg.render.seam_jump)

    def _split_layers(self) -> None:
        a = self.avatar
        tris = a.triangles
        moving = (a.vertex_pose_weight > 0) | (np.abs(a.vertex_weights).sum(1) > 0)
        keep = moving[tris].any(1)
        f0, f1 = a.layers["face"]
        self.fixed_tris = np.ascontiguousarray(
            np.concatenate([tris[:f0][keep[:f0]], tris[f1:][keep[f1:]]]), np.int32)
        self.face_tris = np.ascontiguousarray(tris[f0:f1], np.int32)
        self.moving_vertices = np.unique(np.concatenate([self.fixed_tris.ravel(), self.face_tris.ravel()]))

    # --- per frame -----------------------------------------------------------------------
    def frame_geometry(self, motion: MotionFrame):
        """(output-pixel vertex xy (V, 2) float32, triangles in draw order (T, 3) int32)."""
        xy, z = self.deformer.vertices(motion)
        xy = (xy + 0.5) * self.scale - 0.5 + self.shift
        depth = z[self.face_tris].sum(1)
        order = np.argsort(depth, kind="stable")
        tris = np.concatenate([self.fixed_tris, self.face_tris[order]])
        return np.ascontiguousarray(xy, np.float32), tris

    def _roi(self, xy: np.ndarray) -> tuple[int, int, int, int]:
        p = xy[self.moving_vertices]
        x0 = int(np.clip(np.floor(p[:, 0].min()), 0, self.width))
        y0 = int(np.clip(np.floor(p[:, 1].min()), 0, self.height))
        x1 = int(np.clip(np.ceil(p[:, 0].max()) + 1, 0, self.width))
        y1 = int(np.clip(np.ceil(p[:, 1].max()) + 1, 0, self.height))
        return x0, y0, x1, y1

    def render(self, motion: MotionFrame) -> np.ndarray:
        """(height, width, 3) uint8 RGB, C-contiguous."""
        xy, tris = self.frame_geometry(motion)
        roi = self._roi(xy)
        if self._gpu is not None:
            return self._gpu.render(xy, tris, roi)
        frame = self.background.copy()
        x0, y0, x1, y1 = roi
        if x1 > x0 and y1 > y0:
            frame[y0:y1, x0:x1] = self._render_roi(xy, tris, roi)
        return frame

    def _render_roi(self, xy: np.ndarray, tris: np.ndarray, roi) -> np.ndarray:
        x0, y0, x1, y1 = roi
        roi_map = self.base_map[y0:y1, x0:x1].copy()
        kernels.rasterize_backward_map(roi_map, xy, self.uv, tris, x0, y0, backend=self.backend)
        pixels = kernels.remap_bilinear(self.avatar.atlas, roi_map, backend=self.backend)
        if self.seam_threshold is not None:
            pixels = kernels.smooth_seams(pixels, roi_map, self.seam_threshold, backend=self.backend)
        return pixels


class _TritonState:
    """Device copies of the static arrays for the Triton path (full-frame map on the GPU)."""

    def __init__(self, r: WarpRenderer):
        import torch
        self.torch = torch
        self.r = r
        dev = "cuda" if torch.cuda.is_available() else "cpu"
        self.dev = dev
        self.atlas = torch.from_numpy(r.avatar.atlas).to(dev)
        self.base_map = torch.from_numpy(r.base_map).to(dev)
        self.uv = torch.from_numpy(r.uv).to(dev)

    def _frame(self, xy, tris, roi=None):
        torch = self.torch
        m = self.base_map.clone()
        kernels.rasterize_backward_map(m, torch.from_numpy(xy).to(self.dev), self.uv,
                                       torch.from_numpy(tris).to(self.dev), 0, 0, backend="triton")
        out = kernels.remap_bilinear(self.atlas, m, backend="triton")
        if self.r.seam_threshold is not None:
            out = kernels.smooth_seams(out, m, self.r.seam_threshold, backend="triton")
        return out

    def render(self, xy, tris, roi) -> np.ndarray:
        return np.ascontiguousarray(self._frame(xy, tris).cpu().numpy())

