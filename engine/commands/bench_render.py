"""``facecast bench render [--json]``: per-frame render time by resolution (+ webcam tracking).

CPU measurements use one thread (numba, OpenCV) so numbers reflect one real-time stage.
The motion is a deterministic talking/blinking/head-turning sequence. The last stdout
line with ``--json`` is one JSON object: ``{"results": {"256": {...}, "512": ..., ...}}``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

from engine.motion.space import INDEX, MotionFrame


def motion_sequence(n: int, fps: float = 25.0) -> list[MotionFrame]:
    out = []
    for i in range(n):
        t = i / fps
        w = np.zeros(52, np.float32)
        w[INDEX["jawOpen"]] = 0.5 + 0.5 * np.sin(2 * np.pi * 3.1 * t)
        w[INDEX["mouthSmileLeft"]] = w[INDEX["mouthSmileRight"]] = 0.3 + 0.3 * np.sin(2 * np.pi * 0.4 * t)
        w[INDEX["mouthFunnel"]] = max(0.0, np.sin(2 * np.pi * 1.3 * t))
        blink = max(0.0, 1 - abs((t % 3.0) - 1.5) / 0.12)
        w[INDEX["eyeBlinkLeft"]] = w[INDEX["eyeBlinkRight"]] = blink
        w[INDEX["eyeLookOutLeft"]] = w[INDEX["eyeLookInRight"]] = max(0.0, np.sin(2 * np.pi * 0.3 * t))
        w[INDEX["browInnerUp"]] = max(0.0, np.sin(2 * np.pi * 0.5 * t))
        rot = np.array([0.35 * np.sin(2 * np.pi * 0.25 * t), 0.2 * np.sin(2 * np.pi * 0.35 * t),
                        0.08 * np.sin(2 * np.pi * 0.2 * t)], np.float32)
        out.append(MotionFrame(w, rot, np.zeros(3, np.float32)))
    return out


def summarize(times_s: list[float]) -> dict:
    ms = np.array(times_s) * 1000
    med = float(np.median(ms))
    return {"median_ms": round(med, 3), "p95_ms": round(float(np.percentile(ms, 95)), 3),
            "p99_ms": round(float(np.percentile(ms, 99)), 3), "mean_ms": round(float(ms.mean()), 3),
            "fps": round(1000.0 / med, 1), "frames": len(ms)}


def bench_render(avatar_path, size: int, backend: str, frames: int, warmup: int) -> dict:
    from engine.render.warp import WarpRenderer
    r = WarpRenderer(avatar_path, size, size, backend=backend)
    return {**time_renderer(r, frames, warmup, _sync(r.backend)), "backend": r.backend}


def time_renderer(r, frames: int, warmup: int, sync=lambda: None) -> dict:
    """Wall and thread-CPU time per ``r.render`` over ``motion_sequence`` (thread CPU time: what
    one frame costs when the core is not shared with other work)."""
    times, cpu = [], []
    for i, m in enumerate(motion_sequence(frames + warmup)):
        t0, c0 = time.perf_counter(), time.thread_time()
        r.render(m)
        sync()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            cpu.append(time.thread_time() - c0)
    return {**summarize(times), "cpu_median_ms": round(float(np.median(cpu)) * 1000, 3),
            "cpu_p99_ms": round(float(np.percentile(cpu, 99)) * 1000, 3),
            "cpu_fps": round(1000.0 / (float(np.median(cpu)) * 1000), 1)}


def bench_tracking(avatar_path, frames: int, warmup: int) -> dict:
    try:
        from engine.tracking.tracker import FaceTracker
    except ImportError as e:
        return {"skipped": f"engine.tracking.tracker is not importable ({e})"}
    from engine.render.warp import WarpRenderer
    r = WarpRenderer(avatar_path, 640, 480, backend="cpu")
    video = [r.render(m) for m in motion_sequence(min(frames, 100) + warmup)]
    tracker = FaceTracker()
    retargeter = _retargeter(r.avatar)  # the rig fit: landmarks -> MotionFrame
    times, fit_times, cpu_times, found = [], [], [], 0
    for i in range(frames + warmup):
        frame = video[i % len(video)]
        c0, t0 = time.process_time(), time.perf_counter()
        lm = tracker.track(frame)
        t1 = time.perf_counter()
        if lm is not None:
            retargeter.retarget(lm, i / 25.0)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
            fit_times.append(time.perf_counter() - t1)
            cpu_times.append(time.process_time() - c0)  # CPU of all threads: robust on a busy machine
            found += lm is not None
    tracker.close()
    fit = summarize(fit_times)
    return {**summarize(times), "faces_found": found, "measures": "face mesh + rig fit",
            "fit_median_ms": fit["median_ms"], "fit_p99_ms": fit["p99_ms"],
            "cpu_median_ms": summarize(cpu_times)["median_ms"]}


def _retargeter(avatar):
    from engine.config import load_config
    from engine.tracking.retarget import Retargeter
    return Retargeter(avatar, load_config().webcam)


def _sync(backend: str):
    if backend == "triton":
        import torch
        return torch.cuda.synchronize
    return lambda: None


def _one_thread() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import cv2
    import numba
    cv2.setNumThreads(1)
    numba.set_num_threads(1)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    parser.add_argument("--sizes", default="256,512,1024", help="square output sizes, comma-separated")
    parser.add_argument("--frames", type=int, default=300, help="timed frames per size")
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--backend", default="cpu", help="kernel backend: cpu, numpy, triton, auto")
    parser.add_argument("--avatar", default=None, help="avatar (default: the config's render.avatar)")
    parser.add_argument("--no-tracking", action="store_true", help="skip the webcam tracking entry")


def run(args: argparse.Namespace) -> int:
    from engine.config import load_config
    _one_thread()
    cfg = load_config(args.config)
    avatar = cfg.resolve_path(args.avatar or cfg.render.avatar)
    results: dict = {}
    for s in [int(x) for x in args.sizes.split(",") if x.strip()]:
        results[str(s)] = res = bench_render(avatar, s, args.backend, args.frames, args.warmup)
        print(f"render {s}x{s} [{res['backend']}]: median {res['median_ms']:.2f} ms, "
              f"p95 {res['p95_ms']:.2f}, p99 {res['p99_ms']:.2f}, {res['fps']:.0f} fps "
              f"(CPU time median {res['cpu_median_ms']:.2f}, p99 {res['cpu_p99_ms']:.2f} ms)")
    if not args.no_tracking:
        results["tracking_640x480"] = res = bench_tracking(avatar, min(args.frames, 200), args.warmup)
        if "skipped" in res:
            print(f"tracking 640x480: skipped: {res['skipped']}")
        else:
            print(f"tracking 640x480: median {res['median_ms']:.2f} ms, p95 {res['p95_ms']:.2f}, "
                  f"p99 {res['p99_ms']:.2f} ({res['faces_found']}/{res['frames']} frames with a face; "
                  f"rig fit median {res['fit_median_ms']:.2f} ms of it; CPU time median {res['cpu_median_ms']:.2f} ms)")
    summary = {"benchmark": "render", "threads": 1, "machine": platform.machine(),
               "cpu": _cpu_name(), "cpus": os.cpu_count(), "results": results}
    if args.json:
        print(json.dumps(summary))
    return 0


def _cpu_name() -> str:
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
