"""TensorRT backend: builds (and caches) an engine from the exported ONNX, FP16 or INT8.

INT8 uses explicit quantization: the engine is built from the static QDQ ONNX export (the same
scales onnxruntime uses), with the INT8 and FP16 builder flags. I/O buffers are torch CUDA
tensors; inference is ``execute_async_v3`` on torch's current stream. Written against the
TensorRT 8.6/10.x Python API (named I/O tensors). tensorrt cannot be installed on the
development machines (its libraries come from NVIDIA's own index), so this path is only
exercised where ``import tensorrt`` works and CUDA is present; elsewhere it reports itself
unavailable and the next backend is used.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from engine.runtime.base import BackendUnavailable

WORKSPACE_BYTES = 1 << 28


def _import():
    try:
        import tensorrt as trt
    except ImportError as e:
        raise BackendUnavailable(f"tensorrt is not installed ({e})") from e
    try:
        import torch
    except ImportError as e:
        raise BackendUnavailable(f"the TensorRT backend uses torch for CUDA buffers ({e})") from e
    if not torch.cuda.is_available():
        raise BackendUnavailable("CUDA is not available")
    return trt, torch


def build_engine(onnx_path: Path, precision: str, cache_dir: Path | None = None) -> bytes:
    """Serialized engine for ``onnx_path`` (cached by file hash, precision and TRT version)."""
    trt, torch = _import()
    if precision not in ("fp16", "int8", "fp32"):
        raise BackendUnavailable(f"unknown TensorRT precision {precision!r}")
    data = Path(onnx_path).read_bytes()
    key = hashlib.sha256(data + precision.encode() + trt.__version__.encode()
                         + torch.cuda.get_device_name().encode()).hexdigest()[:16]
    cached = Path(cache_dir) / f"{Path(onnx_path).stem}.{precision}.{key}.plan" if cache_dir else None
    if cached is not None and cached.exists():
        return cached.read_bytes()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    major = int(trt.__version__.split(".")[0])
    flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(data):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendUnavailable(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    dynamic = [network.get_input(i) for i in range(network.num_inputs) if -1 in tuple(network.get_input(i).shape)]
    if dynamic:   # the export's dynamic batch axis: this engine runs batch 1 (BatchingRunner serialises)
        profile = builder.create_optimization_profile()
        for t in dynamic:
            shape = tuple(1 if d == -1 else d for d in t.shape)
            profile.set_shape(t.name, shape, shape, shape)
        config.add_optimization_profile(profile)
    if precision in ("fp16", "int8"):
        config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)      # scales come from the QDQ nodes of the graph
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendUnavailable(f"TensorRT failed to build an engine from {onnx_path}")
    blob = bytes(serialized)
    if cached is not None:
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(blob)
    return blob


class TensorRTRunner:
    def __init__(self, onnx_path: Path, precision: str = "fp16", cache_dir: Path | None = None):
        trt, torch = _import()
        onnx_path = Path(onnx_path)
        if not onnx_path.exists():
            raise BackendUnavailable(f"{onnx_path} does not exist")
        self.torch = torch
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(build_engine(onnx_path, precision, cache_dir))
        if self.engine is None:
            raise BackendUnavailable("TensorRT could not deserialize the engine")
        self.context = self.engine.create_execution_context()
        self.name = f"tensorrt:{precision}"
        self.inputs, self.outputs = [], []
        self.buffers = {}
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        for name in names:   # dynamic (batch) axes run at 1; outputs' shapes follow from the inputs'
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                shape = tuple(self.engine.get_tensor_shape(name))
                if -1 in shape:
                    self.context.set_input_shape(name, tuple(1 if d == -1 else d for d in shape))
        for name in names:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = torch.from_numpy(np.zeros(0, trt.nptype(self.engine.get_tensor_dtype(name)))).dtype
            self.buffers[name] = torch.empty(shape, dtype=dtype, device="cuda")
            self.context.set_tensor_address(name, self.buffers[name].data_ptr())
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs).append(name)
        self.input_names = self.inputs

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        torch = self.torch
        for name in self.inputs:
            buf = self.buffers[name]
            buf.copy_(torch.from_numpy(np.ascontiguousarray(feeds[name])).to(buf.dtype))
        stream = torch.cuda.current_stream()
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        stream.synchronize()
        return self.buffers[self.outputs[0]].float().cpu().numpy()
