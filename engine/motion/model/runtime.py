"""The audio-to-motion model as the engine runs it: files, backend choice, pre/post-processing.

Files next to ``cfg.motion.model_path`` (stem ``S`` = the path without ``.onnx``/``.pt``):
``S.pt`` torch checkpoint (any step count), ``S.onnx`` / ``S.int8.onnx`` the exported sampler
for the default step count (in the file's metadata), ``S.k{K}.onnx`` / ``S.k{K}.int8.onnx`` for
other step counts, ``S.trtint8.onnx`` the symmetric INT8 QDQ graph for TensorRT. The runner
only executes the graph; this class normalises the known motion,
builds the control vector, and de-normalises / clips the output.
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path

import numpy as np

from engine.motion.generators import ModelLoadError
from engine.motion.model.spec import ModelMeta, control_vector, meta_from_onnx_props
from engine.motion.streaming import MotionControls
from engine.motion.space import NUM_BLENDSHAPES
from engine.runtime.base import BackendUnavailable, RunnerOptions, create_runner

log = logging.getLogger(__name__)

INPUT_NAMES = ("mel", "known", "mask", "noise", "noise_out", "cond")


def model_stem(model_path: str | Path) -> Path:
    p = Path(model_path)
    name = p.name
    for suffix in (".int8.onnx", ".onnx", ".pt"):
        if name.endswith(suffix):
            return p.with_name(name[: -len(suffix)])
    return p


def onnx_candidates(stem: Path, steps: int, int8: bool, variant: str | None = None) -> list[Path]:
    """Files for a step count: ``S.k{K}<v>.onnx`` then ``S<v>.onnx``; ``<v>`` = "", ".int8" or
    ".trtint8" (symmetric S8 QDQ, the form TensorRT's explicit INT8 accepts)."""
    q = variant if variant is not None else (".int8" if int8 else "")
    return [stem.with_name(f"{stem.name}.k{steps}{q}.onnx"), stem.with_name(f"{stem.name}{q}.onnx")]


class A2MRuntime:
    """One sampler graph + the model's metadata; ``generate`` works in raw motion units."""

    def __init__(self, meta: ModelMeta, runner, steps: int):
        self.meta, self.runner, self.steps = meta, runner, steps
        self.spec = meta.spec
        self.mean = np.asarray(meta.motion_mean, np.float32)
        self.std = np.asarray(meta.motion_std, np.float32)

    @property
    def name(self) -> str:
        return self.runner.name

    def feeds(self, mel_norm, known_raw, mask, noise, cond) -> dict[str, np.ndarray]:
        """``noise``: (W, 2*D): the sampler's start noise, then the final-draw noise."""
        m = np.asarray(mask, np.float32).reshape(-1, 1)
        known = (np.asarray(known_raw, np.float32) - self.mean) / self.std * m
        d = self.spec.motion_dim
        noise = np.asarray(noise, np.float32)
        return {"mel": mel_norm[None].astype(np.float32), "known": known[None], "mask": m[None],
                "noise": noise[None, :, :d], "noise_out": noise[None, :, d:],
                "cond": cond[None].astype(np.float32)}

    def generate(self, mel_norm: np.ndarray, known_raw: np.ndarray, mask: np.ndarray,
                 noise: np.ndarray, cond: np.ndarray) -> np.ndarray:
        out = self.runner.run(self.feeds(mel_norm, known_raw, mask, noise, cond))[0]
        out = out * self.std + self.mean
        out[:, :NUM_BLENDSHAPES] = np.clip(out[:, :NUM_BLENDSHAPES], 0.0, 1.0)
        return out


def controls_vector(c: MotionControls) -> np.ndarray:
    return control_vector(c.state, c.emotion, float(c.emotion_intensity), float(c.head_motion_scale),
                          float(c.blink_rate_per_min))


def example_feeds(meta: ModelMeta) -> dict[str, np.ndarray]:
    s = meta.spec
    W, D = s.window, s.motion_dim
    rng = np.random.default_rng(0)
    return {"mel": rng.standard_normal((1, s.mel_window(W), s.n_mels)).astype(np.float32),
            "known": np.zeros((1, W, D), np.float32), "mask": np.zeros((1, W, 1), np.float32),
            "noise": rng.standard_normal((1, W, D)).astype(np.float32),
            "noise_out": rng.standard_normal((1, W, D)).astype(np.float32),
            "cond": control_vector("speaking", "neutral", 0.0, 1.0, 17.0)[None]}


def _onnx_factory(stem: Path, steps: int, opts: RunnerOptions, int8: bool):
    def make():
        from engine.runtime.onnx_runner import OnnxRuntimeRunner
        for path in onnx_candidates(stem, steps, int8):
            if not path.exists():
                continue
            runner = OnnxRuntimeRunner(path, threads=opts.threads, label="int8" if int8 else "fp32")
            try:
                meta = meta_from_onnx_props(runner.metadata, str(path))
            except ModelLoadError as e:
                raise BackendUnavailable(str(e)) from e
            if meta.diffusion_steps == steps:
                return A2MRuntime(meta, runner, steps)
        raise BackendUnavailable(f"no {'INT8 ' if int8 else ''}ONNX export for {steps} steps next to {stem} "
                                 f"(looked for {', '.join(p.name for p in onnx_candidates(stem, steps, int8))})")
    return make


def _onnx_either(stem: Path, steps: int, opts: RunnerOptions):
    """The configured ONNX precision, else the other one (logged)."""
    def make():
        first = opts.onnx_precision == "int8"
        try:
            return _onnx_factory(stem, steps, opts, first)()
        except BackendUnavailable as e:
            log.info("%s; trying the %s export", e, "fp32" if first else "INT8")
            return _onnx_factory(stem, steps, opts, not first)()
    return make


def _torch_factory(stem: Path, steps: int, opts: RunnerOptions):
    def make():
        from engine.motion.model.checkpoint import load_checkpoint   # torch only for this backend
        from engine.motion.model.net import Sampler
        from engine.runtime.torch_runner import TorchRunner
        path = stem.with_name(stem.name + ".pt")
        try:
            model, meta = load_checkpoint(path)
        except ModelLoadError as e:
            raise BackendUnavailable(str(e)) from e
        runner = TorchRunner(Sampler(model, steps), list(INPUT_NAMES), example_feeds(meta),
                             dtype=opts.torch_dtype, cuda_graphs=opts.cuda_graphs, threads=opts.threads)
        return A2MRuntime(meta, runner, steps)
    return make


def _tensorrt_factory(stem: Path, steps: int, opts: RunnerOptions):
    def make():
        from engine.runtime.onnx_runner import onnx_metadata
        from engine.runtime.tensorrt_runner import TensorRTRunner, _import
        _import()                                             # fail fast when absent
        variant = ".trtint8" if opts.tensorrt_precision == "int8" else ""
        for path in onnx_candidates(stem, steps, False, variant):
            if path.exists():
                try:
                    meta = meta_from_onnx_props(onnx_metadata(path), str(path))
                except ModelLoadError as e:
                    raise BackendUnavailable(str(e)) from e
                if meta.diffusion_steps == steps:
                    runner = TensorRTRunner(path, opts.tensorrt_precision, opts.extra.get("engine_cache_dir"))
                    return A2MRuntime(meta, runner, steps)
        raise BackendUnavailable(f"no ONNX export for {steps} steps next to {stem}")
    return make


def load_runtime(model_path: str | Path, backends: list[str], steps: int,
                 opts: RunnerOptions = RunnerOptions()) -> A2MRuntime:
    """The first backend in ``backends`` that can run the model; ModelLoadError when none can."""
    stem = model_stem(model_path)
    if not any(p.exists() for p in [Path(model_path), stem.with_name(stem.name + ".pt")]):
        raise ModelLoadError(f"model file {model_path} does not exist "
                             "(train one with `facecast train audio2motion`, then `facecast export audio2motion`)")
    factories = {"onnxruntime": _onnx_either(stem, steps, opts),
                 "torch": _torch_factory(stem, steps, opts),
                 "tensorrt": _tensorrt_factory(stem, steps, opts)}
    try:
        return create_runner(list(backends), factories)
    except BackendUnavailable as e:
        raise ModelLoadError(f"model {model_path}: {e}") from e


_shared: dict[tuple, A2MRuntime] = {}
_shared_lock = threading.Lock()


def load_shared_runtime(model_path: str | Path, backends: list[str], steps: int,
                        opts: RunnerOptions = RunnerOptions(), max_batch: int = 32) -> A2MRuntime:
    """One runtime per process for these settings, shared by every session: its runner is a
    ``BatchingRunner``, so concurrent sessions' calls run as one batch (see
    ``engine.runtime.batching``). Loading errors are raised as by ``load_runtime`` and not cached."""
    from engine.runtime.batching import BatchingRunner
    key = (str(Path(model_path).resolve()), tuple(backends), steps, repr(opts), max_batch)
    with _shared_lock:
        rt = _shared.get(key)
        if rt is None:
            rt = load_runtime(model_path, backends, steps, opts)
            rt.runner = BatchingRunner(rt.runner, max_batch)
            _shared[key] = rt
    return rt
