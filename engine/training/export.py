"""Torch checkpoint -> static-shape ONNX sampler (+ INT8 QDQ).

The exported graph is the audio encoder plus ``steps`` unrolled DDIM steps of the denoiser:
inputs ``mel`` (1, mel_window, 80) normalised log-mel, ``known`` (1, W, 58) normalised known
motion, ``mask`` (1, W, 1), ``noise`` (1, W, 58), ``cond`` (1, 11); output ``motion`` (1, W, 58)
normalised. ``S.onnx`` holds the default step count; ``extra_steps`` writes ``S.k{K}.onnx``.
INT8: onnxruntime static quantization in QDQ format (U8 activations, per-channel S8 weights),
calibrated on the real inputs the streaming generator feeds the model on corpus utterances
(plus ``S.trtint8.onnx``, symmetric S8 activations, for TensorRT's explicit INT8);
the accuracy change (INT8 vs fp32 on held-out calls) is printed and stored in the metadata.
``tensorrt='fp16'|'int8'`` also builds the TensorRT engine (only where tensorrt + CUDA exist).
"""
from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

import numpy as np

from engine.motion.space import INDEX

MOUTH = [INDEX[n] for n in ("jawOpen", "mouthFunnel", "mouthPucker", "mouthClose")]


def export_onnx(model, meta, steps: int, out: Path, opset: int = 17) -> Path:
    import onnx
    import torch
    from engine.motion.model.spec import META_KEY
    from engine.motion.model.net import Sampler
    from engine.motion.model.runtime import INPUT_NAMES, example_feeds

    meta = _with_steps(meta, steps)
    feeds = example_feeds(meta)
    args = tuple(torch.from_numpy(feeds[k]) for k in INPUT_NAMES)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        # A dynamic batch axis: one call can serve many sessions (engine.runtime.batching);
        # each row's result equals its batch-1 result.
        batch = {name: {0: "batch"} for name in (*INPUT_NAMES, "motion")}
        torch.onnx.export(Sampler(model.eval(), steps), args, str(raw), input_names=list(INPUT_NAMES),
                          output_names=["motion"], opset_version=opset, dynamo=False, dynamic_axes=batch)
        m = onnx.load(str(raw))
    _set_meta(m, META_KEY, json.dumps(meta.to_dict()))
    onnx.checker.check_model(m)
    onnx.save(m, str(out))
    return out


def _with_steps(meta, steps):
    from dataclasses import replace
    return replace(meta, diffusion_steps=steps)


def _set_meta(m, key: str, value: str) -> None:
    for p in list(m.metadata_props):
        if p.key == key:
            m.metadata_props.remove(p)
    e = m.metadata_props.add()
    e.key, e.value = key, value


def calibration_feeds(onnx_fp32: Path, corpus: str, n_utts: int, threads: int = 1) -> list[dict]:
    """The inputs the streaming generator gives the model on corpus utterances (val, else train)."""
    from engine.motion.model.spec import meta_from_onnx_props
    from engine.training.dataset import read_manifest
    from engine.motion.model.runtime import A2MRuntime
    from engine.motion.model.stream import StreamingA2M
    from engine.runtime.onnx_runner import OnnxRuntimeRunner

    runner = OnnxRuntimeRunner(onnx_fp32, threads=threads)
    meta = meta_from_onnx_props(runner.metadata, str(onnx_fp32))
    recorded: list[dict] = []

    class Recorder:
        name = "recorder"

        def run(self, feeds):
            recorded.append({k: v.copy() for k, v in feeds.items()})
            return runner.run(feeds)

    rows = [r for r in read_manifest(corpus) if r["split"] == "val"] or \
        [r for r in read_manifest(corpus) if r["split"] == "train"]
    rng = np.random.default_rng(0)
    for i, r in enumerate(rows[:n_utts]):
        audio = np.load(Path(corpus) / r["path"])["audio"].astype(np.float32)
        gen = StreamingA2M(A2MRuntime(meta, Recorder(), meta.diffusion_steps), seed=i)
        chunk = int(rng.choice([320, 640, 3200]))
        for s in range(0, len(audio), chunk):
            gen.push(audio[s:s + chunk])
        gen.flush()
    return recorded


def quantize_int8(fp32: Path, out: Path, feeds: list[dict], symmetric: bool = False) -> Path:
    """Static QDQ INT8. Default U8 activations / per-channel S8 weights (best on ORT CPU);
    ``symmetric``: S8 activations with zero points 0 (what TensorRT's explicit INT8 requires)."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    from engine.motion.model.spec import META_KEY

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.it = iter(feeds)

        def get_next(self):
            return next(self.it, None)

    with tempfile.TemporaryDirectory() as tmp:
        pre = Path(tmp) / "pre.onnx"
        quant_pre_process(str(fp32), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ,
                        activation_type=QuantType.QInt8 if symmetric else QuantType.QUInt8,
                        weight_type=QuantType.QInt8, per_channel=True,
                        op_types_to_quantize=["Conv", "MatMul", "Gemm"],
                        calibrate_method=CalibrationMethod.MinMax,
                        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True} if symmetric else {})
    src = {p.key: p.value for p in onnx.load(str(fp32)).metadata_props}
    m = onnx.load(str(out))
    _set_meta(m, META_KEY, src[META_KEY])
    onnx.save(m, str(out))
    return out


def accuracy_change(fp32: Path, int8: Path, feeds: list[dict]) -> dict:
    """INT8 vs fp32 on the same calls, in raw motion units (mouth dims and all dims)."""
    from engine.motion.model.spec import meta_from_onnx_props
    from engine.runtime.onnx_runner import OnnxRuntimeRunner

    a, b = OnnxRuntimeRunner(fp32), OnnxRuntimeRunner(int8)
    meta = meta_from_onnx_props(a.metadata, str(fp32))
    std = np.asarray(meta.motion_std, np.float32)
    errs = np.concatenate([np.abs(a.run(f) - b.run(f))[0] * std for f in feeds])
    return {"calls": len(feeds), "mouth_mae": float(errs[:, MOUTH].mean()),
            "mouth_max": float(errs[:, MOUTH].max()), "all_mae": float(errs.mean())}


def export_model(checkpoint: str | Path = "assets/audio2motion.pt", out: str | Path | None = None, steps: int = 2,
                 extra_steps: tuple[int, ...] = (1, 4), int8: bool = False, corpus: str | Path | None = None,
                 calib_utterances: int = 12, tensorrt: str | None = None, opset: int = 17,
                 draw_temperature: float | None = None) -> dict:
    """Export ``checkpoint`` to ONNX (``steps`` + ``extra_steps``), optionally INT8 and TensorRT.

    ``out`` defaults to the checkpoint's stem + .onnx. Returns ``{"onnx": {steps: path}, "int8": {...}}``.
    Raises ``ModelLoadError`` for an unreadable checkpoint, ``ValueError`` for ``int8`` without ``corpus``.
    """
    from engine.motion.model.checkpoint import load_checkpoint, save_checkpoint
    from engine.motion.model.runtime import model_stem

    if int8 and not corpus:
        raise ValueError("an INT8 export needs a corpus for calibration")
    if tensorrt not in (None, "fp16", "int8"):
        raise ValueError(f"tensorrt must be 'fp16' or 'int8', got {tensorrt!r}")
    model, meta = load_checkpoint(checkpoint)
    if draw_temperature is not None:
        from dataclasses import replace
        meta = replace(meta, draw_temperature=draw_temperature)
        model.set_draw_temperature(draw_temperature)
        save_checkpoint(checkpoint, model, meta)      # the torch backend samples the same way
    out = Path(out) if out else model_stem(checkpoint).with_suffix(".onnx")
    stem = model_stem(out)
    report: dict = {"onnx": {}, "int8": {}}
    targets = [(steps, out)] + [(k, stem.with_name(f"{stem.name}.k{k}.onnx")) for k in extra_steps if k != steps]
    for k, path in targets:
        export_onnx(model, meta, k, path, opset)
        report["onnx"][k] = str(path)
        print(f"[export] {path} ({path.stat().st_size / 1e6:.2f} MB, {k} steps)", flush=True)
        if int8:
            feeds = calibration_feeds(path, str(corpus), calib_utterances)
            rng = np.random.default_rng(0)
            order = rng.permutation(len(feeds))
            calib = [feeds[i] for i in order[: max(1, int(0.8 * len(feeds)))][:600]]
            held = [feeds[i] for i in order[int(0.8 * len(feeds)):]][:400] or calib[:50]
            q = path.with_name(path.name[: -len(".onnx")] + ".int8.onnx")
            quantize_int8(path, q, calib)
            acc = accuracy_change(path, q, held)
            report["int8"][k] = {"path": str(q), "calibration_calls": len(calib), **acc}
            if k == steps:               # the TensorRT (symmetric) INT8 graph of the main export
                quantize_int8(path, path.with_name(path.name[: -len(".onnx")] + ".trtint8.onnx"), calib,
                              symmetric=True)
            print(f"[export] {q} ({q.stat().st_size / 1e6:.2f} MB): INT8 vs fp32 mouth MAE "
                  f"{acc['mouth_mae']:.4f} (max {acc['mouth_max']:.3f}) on {acc['calls']} held-out calls", flush=True)
    if tensorrt:
        from engine.runtime.base import BackendUnavailable
        from engine.runtime.tensorrt_runner import build_engine
        src = out if tensorrt == "fp16" else out.with_name(out.name[:-5] + ".trtint8.onnx")
        try:
            blob = build_engine(src, tensorrt, None)
            plan = src.with_suffix(f".{tensorrt}.plan")
            plan.write_bytes(blob)
            print(f"[export] TensorRT engine {plan}")
        except BackendUnavailable as e:
            print(f"[export] TensorRT engine not built: {e}", file=sys.stderr)
    return report
