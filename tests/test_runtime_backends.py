"""Every model backend present runs the same exported sampler and agrees with torch fp32.

onnxruntime (fp32, INT8 QDQ) and torch CPU run everywhere; torch CUDA (fp16 + CUDA graphs)
needs a GPU; TensorRT needs `import tensorrt` and CUDA (never installable on the dev machines:
its libraries come from NVIDIA's own index), so those cases skip cleanly elsewhere.
"""
import copy
import importlib.util

import numpy as np
import pytest
import torch

from engine.motion.model.checkpoint import save_checkpoint
from engine.motion.model.spec import ModelMeta, ModelSpec
from engine.training.export import export_onnx, quantize_int8
from engine.motion.model.net import Audio2Motion, Sampler
from engine.motion.model.runtime import INPUT_NAMES, example_feeds
from engine.motion.features import MelSpec
from engine.runtime.base import BackendUnavailable, create_runner
from engine.runtime.onnx_runner import OnnxRuntimeRunner
from engine.runtime.torch_runner import TorchRunner

HAS_CUDA = torch.cuda.is_available()
HAS_TRT = importlib.util.find_spec("tensorrt") is not None


def feeds_like(meta, seed):
    f = example_feeds(meta)
    rng = np.random.default_rng(seed)
    f["mel"] = rng.standard_normal(f["mel"].shape).astype(np.float32)
    f["mask"][:, :5] = 1.0
    f["known"] = (rng.standard_normal(f["known"].shape) * f["mask"]).astype(np.float32)
    return f


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    torch.manual_seed(0)
    spec = ModelSpec()
    model = Audio2Motion(spec).eval()
    meta = ModelMeta(spec=spec, mel_spec=MelSpec(), mel_mean=[0.0] * 80, mel_std=[1.0] * 80,
                     norm_time_constant_frames=300.0, motion_mean=[0.0] * 58, motion_std=[1.0] * 58)
    root = tmp_path_factory.mktemp("rt")
    save_checkpoint(root / "m.pt", model, meta)
    fp32 = export_onnx(model, meta, 2, root / "m.onnx")
    calib = [feeds_like(meta, s) for s in range(16)]
    int8 = quantize_int8(fp32, root / "m.int8.onnx", calib)
    trtint8 = quantize_int8(fp32, root / "m.trtint8.onnx", calib, symmetric=True)
    ref_feeds = [feeds_like(meta, 100 + s) for s in range(3)]
    sampler = Sampler(model, 2)
    with torch.inference_mode():
        refs = [sampler(*[torch.from_numpy(f[k]) for k in INPUT_NAMES]).numpy() for f in ref_feeds]
    return {"meta": meta, "model": model, "fp32": fp32, "int8": int8, "trtint8": trtint8, "feeds": ref_feeds,
            "refs": refs}


def make_runner(kind, ex):
    if kind == "onnxruntime-fp32":
        return OnnxRuntimeRunner(ex["fp32"]), 1e-4
    if kind == "onnxruntime-int8":
        return OnnxRuntimeRunner(ex["int8"], label="int8"), 0.25
    if kind == "onnxruntime-int8-symmetric":
        return OnnxRuntimeRunner(ex["trtint8"], label="int8-symmetric"), 0.25
    if kind == "torch-cpu":
        return TorchRunner(Sampler(ex["model"], 2), list(INPUT_NAMES), ex["feeds"][0], device="cpu"), 1e-5
    if kind == "torch-cuda-fp16-graph":
        if not HAS_CUDA:
            pytest.skip("no CUDA")
        return TorchRunner(Sampler(copy.deepcopy(ex["model"]), 2), list(INPUT_NAMES), ex["feeds"][0],
                           device="cuda", dtype="float16", cuda_graphs=True), 0.05
    if kind.startswith("tensorrt"):
        if not (HAS_TRT and HAS_CUDA):
            pytest.skip("tensorrt not importable here (its libraries come from NVIDIA's own index)")
        from engine.runtime.tensorrt_runner import TensorRTRunner
        prec = kind.split("-")[1]
        return TensorRTRunner(ex["fp32"] if prec == "fp16" else ex["trtint8"], prec), (0.05 if prec == "fp16" else 0.3)
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["onnxruntime-fp32", "onnxruntime-int8", "onnxruntime-int8-symmetric",
                                  "torch-cpu", "torch-cuda-fp16-graph", "tensorrt-fp16", "tensorrt-int8"])
def test_backend_parity(kind, exported):
    runner, tol = make_runner(kind, exported)
    for f, ref in zip(exported["feeds"], exported["refs"]):
        out = runner.run(f)
        assert out.shape == ref.shape and np.isfinite(out).all()
        err = np.abs(out - ref).mean()
        assert err <= tol, f"{runner.name}: mean abs error {err:.5f} > {tol}"
    # calls are independent: a second run of the first input gives the same answer
    np.testing.assert_allclose(runner.run(exported["feeds"][0]), runner.run(exported["feeds"][0]), atol=1e-6)


def test_ordered_fallback_reports_every_reason(exported):
    def broken():
        raise BackendUnavailable("no GPU here")

    runner = create_runner(["tensorrt", "onnxruntime"], {"tensorrt": broken,
                                                          "onnxruntime": lambda: OnnxRuntimeRunner(exported["fp32"])})
    assert runner.name == "onnxruntime:fp32"
    with pytest.raises(BackendUnavailable) as e:
        create_runner(["tensorrt", "nosuch"], {"tensorrt": broken})
    assert "no GPU here" in str(e.value) and "nosuch: unknown backend" in str(e.value)


def test_onnx_runner_rejects_corrupt_file(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x01garbage")
    with pytest.raises(BackendUnavailable, match="corrupt"):
        OnnxRuntimeRunner(bad)
    with pytest.raises(BackendUnavailable, match="does not exist"):
        OnnxRuntimeRunner(tmp_path / "missing.onnx")
