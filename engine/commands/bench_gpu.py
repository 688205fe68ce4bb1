"""``facecast bench gpu [--json]``: what a CUDA GPU does for facecast's real-time path.

- the warp renderer's Triton kernels, per frame at 512² and 1024² (the RGB frame copied back
  to the host, as the video encoder needs it), against the CPU kernels on the same machine;
- the audio-to-motion model on the torch backend per streaming call (one session's window):
  fp32, fp16, bf16, each with and without CUDA graphs, against ONNX Runtime on the CPU;
- a sequential bound on sessions per GPU at 25 fps (1 / (render + motion) of one frame each),
  with its assumptions in the output.
Without CUDA it prints ``{"skipped": ...}`` and exits 0. One JSON object on the last stdout line.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np

from engine.commands.bench_render import bench_render, summarize


def _cuda_name() -> str | None:
    import kernels
    if not kernels.triton_available():
        return None
    import torch
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def bench_model(model_path: str, backends: list[tuple[str, dict]], calls: int, warmup: int) -> dict:
    from engine.motion.model.runtime import example_feeds, load_runtime
    from engine.runtime.base import RunnerOptions
    out = {}
    for label, opts in backends:
        try:
            rt = load_runtime(model_path, [opts.pop("backend")], 2, RunnerOptions(**opts))
        except Exception as e:   # a backend that cannot start is reported, not fatal
            out[label] = {"skipped": f"{type(e).__name__}: {e}"}
            continue
        feeds = example_feeds(rt.meta)
        mel, known, mask = feeds["mel"][0], feeds["known"][0], feeds["mask"][0, :, 0]
        noise = np.concatenate([feeds["noise"][0], feeds["noise_out"][0]], 1)
        cond = feeds["cond"][0]
        times = []
        for i in range(calls + warmup):
            t0 = time.perf_counter()
            rt.generate(mel, known, mask, noise, cond)   # returns host arrays: synchronised
            if i >= warmup:
                times.append(time.perf_counter() - t0)
        out[label] = {**summarize(times), "runner": rt.name}
    return out


def run_bench(avatar: str | None, model_path: str, sizes: list[int], frames: int, calls: int) -> dict:
    name = _cuda_name()
    if name is None:
        return {"skipped": "no CUDA device (and no TRITON_INTERPRET): nothing to measure on a GPU"}
    from engine.config import load_config
    cfg = load_config()
    avatar = avatar or cfg.resolve_path(cfg.render.avatar)
    render = {}
    for size in sizes:
        render[str(size)] = {"triton": bench_render(avatar, size, "triton", frames, 30),
                             "cpu": bench_render(avatar, size, "cpu", max(30, frames // 5), 5)}
    gpu = [(f"torch-{dt}{'-graphs' if g else ''}", {"backend": "torch", "torch_dtype": dt, "cuda_graphs": g})
           for dt in ("float32", "float16", "bfloat16") for g in (False, True)]
    cpu = [("onnxruntime-int8-cpu", {"backend": "onnxruntime", "onnx_precision": "int8"}),
           ("onnxruntime-fp32-cpu", {"backend": "onnxruntime", "onnx_precision": "fp32"})]
    model = bench_model(model_path, gpu + cpu, calls, 20)
    best_motion = min((v["p99_ms"] for k, v in model.items() if k.startswith("torch") and "p99_ms" in v),
                      default=None)
    bounds = {}
    for size, r in render.items():
        if best_motion is not None and "p99_ms" in r["triton"]:
            per_frame = r["triton"]["p99_ms"] + best_motion
            bounds[size] = {"frame_ms_p99": round(per_frame, 3), "sessions": int(40.0 // per_frame)}
    return {"device": name, "render": render, "motion": model,
            "sessions_per_gpu_sequential_bound": bounds,
            "bound_assumes": "one CUDA stream, render + one motion call per frame back to back, p99 each, "
                             "25 fps; video encoding, audio and the event loop run on CPU cores"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object on the last line")
    p.add_argument("--sizes", default="512,1024")
    p.add_argument("--frames", type=int, default=300, help="timed frames per size (Triton)")
    p.add_argument("--calls", type=int, default=500, help="timed model calls per backend")
    p.add_argument("--avatar", default=None)
    p.add_argument("--model", default=None, help="model path (default: config motion.model_path)")


def run(args: argparse.Namespace) -> int:
    from engine.config import load_config
    cfg = load_config(args.config)
    model = args.model or cfg.resolve_path(cfg.motion.model_path)
    result = run_bench(args.avatar, str(model), [int(s) for s in args.sizes.split(",")], args.frames, args.calls)
    if not args.json:
        for k, v in result.items():
            print(f"{k}: {v}")
    print(json.dumps(result))
    return 0
