"""``facecast bench splat [--json]``: the Gaussian-splat renderer's frame time and quality.

* CPU, one thread (numba): the talking/blinking/head-turning sequence of ``bench render`` at
  256x256 and 512x512 with the configured number of Gaussians (~20k), and a 512x256 stereo pair.
  Wall time and the render thread's CPU time (what a frame costs on a core of its own).
* GPU (gsplat), only where gsplat and a CUDA device are present: 1024x1024 with ``--gpu-gaussians``
  (200k), mono and a stereo pair; otherwise the entry says why it was skipped.
* Quality at the frontal pose: splat and warp renders against the photo itself (PSNR, SSIM);
  at yaw +-30 deg there is no ground truth without a video of the person, so the entry is the
  splat-vs-warp agreement (PSNR, SSIM), not a quality figure.
The last stdout line with ``--json`` is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import platform

import numpy as np

from engine.commands.bench_render import _cpu_name, _one_thread, time_renderer
from engine.motion.space import MotionFrame


def psnr_ssim(a: np.ndarray, b: np.ndarray) -> dict:
    from skimage.metrics import structural_similarity
    mse = float(((a.astype(np.float64) - b.astype(np.float64)) ** 2).mean())
    psnr = 10 * np.log10(255.0 ** 2 / max(mse, 1e-10))
    ssim = structural_similarity(a, b, channel_axis=2, data_range=255)
    return {"psnr_db": round(float(psnr), 2), "ssim": round(float(ssim), 4)}


def quality(avatar, gaussians: int, size: int = 512) -> dict:
    import cv2
    from engine.render.splat import SplatRenderer
    from engine.render.warp import WarpRenderer
    splat = SplatRenderer(avatar, size, size, backend="cpu", gaussians=gaussians)
    warp = WarpRenderer(avatar, size, size, backend="cpu")
    photo = cv2.resize(splat.avatar.image, (size, size), interpolation=cv2.INTER_AREA)
    rest = MotionFrame.neutral()
    out = {"frontal_vs_photo": {"splat": psnr_ssim(splat.render(rest), photo),
                                "warp": psnr_ssim(warp.render(rest), photo)}}
    for deg in (-30, 30):
        m = MotionFrame.from_weights(yaw=float(np.radians(deg)))
        out[f"yaw{deg:+d}_splat_vs_warp"] = psnr_ssim(splat.render(m), warp.render(m))
    out["note"] = ("frontal: against the photo; yaw: agreement between the renderers (no ground truth "
                   "without a video of the person)")
    return out


def bench_gpu(avatar, gaussians: int, frames: int, warmup: int) -> dict:
    import kernels
    if not kernels.gsplat_available():
        return {"skipped": "no GPU available (gsplat and a CUDA device are needed)"}
    import torch
    from engine.render.splat import SplatRenderer
    out = {}
    for name, stereo in (("1024_mono", False), ("2048x1024_stereo", True)):
        w = 2048 if stereo else 1024
        r = SplatRenderer(avatar, w, 1024, backend="gsplat", gaussians=gaussians, stereo=stereo)
        out[name] = time_renderer(r, frames, warmup, torch.cuda.synchronize)
        out[name]["gaussians"] = len(r.gaussians)
    out["device"] = torch.cuda.get_device_name()
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    parser.add_argument("--frames", type=int, default=200, help="timed frames per entry")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--gaussians", type=int, default=None, help="CPU entries (default: render.splat_gaussians)")
    parser.add_argument("--gpu-gaussians", type=int, default=200000)
    parser.add_argument("--avatar", default=None, help="avatar (default: the config's render.avatar)")
    parser.add_argument("--no-quality", action="store_true", help="skip the PSNR/SSIM entries")


def run(args: argparse.Namespace) -> int:
    from engine.avatar.asset import load_avatar
    from engine.config import load_config
    from engine.render.splat import SplatRenderer
    _one_thread()
    cfg = load_config(args.config)
    avatar = load_avatar(cfg.resolve_path(args.avatar or cfg.render.avatar))
    count = args.gaussians or cfg.render.splat_gaussians
    cpu: dict = {}
    for name, (w, h, stereo) in {"256": (256, 256, False), "512": (512, 512, False),
                                 "512x256_stereo": (512, 256, True)}.items():
        r = SplatRenderer(avatar, w, h, backend="cpu", gaussians=count, stereo=stereo)
        cpu[name] = res = time_renderer(r, args.frames, args.warmup)
        res["gaussians"] = len(r.gaussians)
        print(f"splat {name} [cpu, 1 thread, {len(r.gaussians)} Gaussians]: median {res['median_ms']:.2f} ms, "
              f"p99 {res['p99_ms']:.2f}, {res['fps']:.0f} fps (CPU time median {res['cpu_median_ms']:.2f} ms "
              f"= {res['cpu_fps']:.0f} fps, p99 {res['cpu_p99_ms']:.2f})")
    gpu = bench_gpu(avatar, args.gpu_gaussians, args.frames, args.warmup)
    print(f"splat gpu: {gpu.get('skipped') or json.dumps(gpu)}")
    summary = {"benchmark": "splat", "threads": 1, "machine": platform.machine(), "cpu": _cpu_name(),
               "cpus": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()],
               "results": {"cpu": cpu, "gpu": gpu}}
    if not args.no_quality:
        summary["results"]["quality"] = q = quality(avatar, count)
        print("quality: " + json.dumps(q))
    if args.json:
        print(json.dumps(summary))
    return 0
