"""``facecast bench motion``: audio-to-motion speed and latency on one CPU core.

For each variant (ONNX Runtime fp32, ONNX Runtime INT8, torch, the baseline) it streams the
same speech through the generator exactly as the engine does and reports:
- per 200 ms chunk: the time ``push`` takes for a 200 ms piece (p50/p95), as CPU time of the
  calling thread (what the work costs; robust to other processes sharing the core) and as wall
  time, and the CPU cost of 200 ms of audio arriving in 20 ms pieces (one model call per frame);
- accuracy: mouth-curve MAE vs the fp32 model on the same audio (and vs the teacher with
  ``--corpus``);
- first motion frame after speech onset, look-ahead included: speech starts at a random
  point after silence; audio arrives in real time in 20 ms pieces; latency = when the frame
  that shows the onset is returned (audio time of the piece that completed it + compute) minus
  the onset time. The look-ahead (60 ms) and the frame length (40 ms) bound it from below.
The last stdout line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from engine.audio import MODEL_RATE
from engine.motion.space import INDEX

MOUTH = [INDEX[n] for n in ("jawOpen", "mouthFunnel", "mouthPucker", "mouthClose")]
SR, CHUNK_200, CHUNK_20 = MODEL_RATE, 3200, 320


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", default=None, help="model path (default: config motion.model_path)")
    p.add_argument("--corpus", default=None, help="use test utterances of this corpus (else synthetic speech)")
    p.add_argument("--seconds", type=float, default=20.0, help="speech to stream per variant")
    p.add_argument("--onsets", type=int, default=20, help="speech onsets for the first-frame latency")
    p.add_argument("--json", action="store_true")


def speech_audio(corpus: str | None, seconds: float) -> tuple[list[np.ndarray], list[np.ndarray | None]]:
    """Utterances (and their teacher motion) to stream: corpus test split, else espeak-ng speech."""
    if corpus:
        from engine.training.dataset import read_manifest
        rows = [r for r in read_manifest(corpus) if r["split"] == "test" and not r.get("augmented")]
        audios, motions, total = [], [], 0.0
        for r in rows:
            z = np.load(Path(corpus) / r["path"])
            audios.append(z["audio"].astype(np.float32))
            motions.append(z["motion"])
            total += len(audios[-1]) / SR
            if total >= seconds:
                break
        return audios, motions
    return [_espeak(seconds)], [None]


def _espeak(seconds: float) -> np.ndarray:
    import subprocess
    import tempfile

    from engine.audio.pcm import load_audio
    text = ("The quick brown fox jumps over the lazy dog while we talk about the weather, the news and "
            "what to cook for dinner tonight. ") * max(1, int(seconds / 8))
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-w", f.name, text], check=True, capture_output=True)
        a, _ = load_audio(f.name, SR)
    return a[: int(seconds * SR)]


def time_pushes(gen, audio: np.ndarray, chunk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per push: wall ms, CPU ms of this thread (robust to other processes on the core), output."""
    gen.reset(0)
    ts, cpu, out = [], [], []
    for i in range(0, len(audio), chunk):
        t, c = time.perf_counter(), time.thread_time()
        out.append(gen.push(audio[i:i + chunk]))
        ts.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)
    out.append(gen.flush())
    return np.array(ts) * 1000, np.array(cpu) * 1000, np.concatenate(out)


def onset_latency(gen, speech: np.ndarray, n: int, seed: int = 0) -> dict:
    """Latency (ms) from speech onset to the return of the frame that shows it."""
    rng = np.random.default_rng(seed)
    lat, compute = [], []
    onset_in = int(np.argmax(np.abs(speech) > 0.02 * np.abs(speech).max()))
    clip = speech[onset_in: onset_in + SR]
    for _ in range(n):
        lead = int(rng.integers(4000, 12000))                 # 0.25-0.75 s of silence first
        audio = np.concatenate([np.zeros(lead, np.float32), clip])
        k_onset = lead // 640
        gen.reset(0)
        emitted = 0
        for i in range(0, len(audio), CHUNK_20):
            t = time.perf_counter()
            out = gen.push(audio[i:i + CHUNK_20])
            dt = time.perf_counter() - t
            emitted += len(out)
            if emitted > k_onset:
                arrival_ms = 1000.0 * min(i + CHUNK_20, len(audio)) / SR
                lat.append(arrival_ms + 1000 * dt - 1000.0 * lead / SR)
                compute.append(1000 * dt)
                break
    return {"first_frame_latency_ms_p50": float(np.median(lat)), "first_frame_latency_ms_max": float(np.max(lat)),
            "compute_ms_p50": float(np.median(compute)),
            "lookahead_ms": 1000.0 * gen.lookahead_samples / SR}


def run(args: argparse.Namespace) -> int:
    import torch

    from engine.config import load_config, replace
    from engine.motion.model.stream import StreamingA2M
    from engine.motion.model.runtime import load_runtime
    from engine.motion.generators import ModelLoadError, create_baseline
    from engine.runtime.base import RunnerOptions

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    torch.set_num_threads(1)
    cfg = load_config(args.config)
    model_path = Path(args.model) if args.model else cfg.resolve_path(cfg.motion.model_path)
    steps = cfg.motion.diffusion_steps
    variants = {}
    try:
        for name, backend, prec in (("onnx_fp32", "onnxruntime", "fp32"), ("onnx_int8", "onnxruntime", "int8"),
                                    ("torch_fp32", "torch", "fp32")):
            rt = load_runtime(model_path, [backend], steps, RunnerOptions(threads=1, onnx_precision=prec))
            if backend == "onnxruntime" and prec not in rt.name:
                continue                                       # the export for this precision is missing
            variants[name] = StreamingA2M(rt, seed=0)
    except ModelLoadError as e:
        print(f"[bench] model unavailable ({e}); benchmarking the baseline only", file=sys.stderr)
    variants["baseline"] = create_baseline(replace(cfg, motion={"seed": 0}))
    audios, teachers = speech_audio(args.corpus, args.seconds)
    result: dict = {"cpu_threads": 1, "diffusion_steps": steps, "model": str(model_path), "variants": {}}
    ref_out = None
    for name, gen in variants.items():
        t200, c200, c20, outs = [], [], [], []
        for a in audios:
            ts, cs, out = time_pushes(gen, a, CHUNK_200)
            t200.append(ts[:-1] if len(ts) > 1 else ts)       # the last piece may be short
            c200.append(cs[:-1] if len(cs) > 1 else cs)
            _, cs20, _ = time_pushes(gen, a, CHUNK_20)
            c20.append(cs20)
            outs.append(out)
        t200, c200, c20 = np.concatenate(t200), np.concatenate(c200), np.concatenate(c20)
        r = {"backend": getattr(getattr(gen, "runtime", None), "name", "baseline"),
             "chunk200_cpu_ms_p50": float(np.percentile(c200, 50)),
             "chunk200_cpu_ms_p95": float(np.percentile(c200, 95)),
             "chunk200_wall_ms_p50": float(np.percentile(t200, 50)),
             "chunk200_wall_ms_p95": float(np.percentile(t200, 95)),
             "per200ms_in_20ms_pushes_cpu_ms": float(c20.sum() / (sum(len(a) for a in audios) / CHUNK_200))}
        if name == "onnx_fp32":
            ref_out = outs
        if ref_out is not None and name != "onnx_fp32" and name != "baseline":
            r["mouth_mae_vs_fp32"] = float(np.mean([np.abs(o[:, MOUTH] - f[:, MOUTH]).mean()
                                                    for o, f in zip(outs, ref_out)]))
        if teachers[0] is not None:
            r["mouth_mae_vs_teacher"] = float(np.mean([np.abs(o[: len(m), MOUTH] - m[: len(o), MOUTH]).mean()
                                                       for o, m in zip(outs, teachers)]))
        r.update(onset_latency(gen, audios[0], args.onsets))
        result["variants"][name] = r
        if not args.json:
            print(f"{name:11s} " + "  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                             for k, v in r.items()), flush=True)
    print(json.dumps(result))
    return 0
