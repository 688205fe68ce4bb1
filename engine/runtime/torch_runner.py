"""Torch backend: fp32 on CPU; fp16/bf16 with CUDA graphs on GPU.

On CUDA the module is cast to the requested dtype, inputs are copied into static buffers and
the whole forward (encoder + unrolled sampler steps) is captured once as a CUDA graph, then
replayed per call. On CPU it runs in fp32 under ``torch.inference_mode``.
"""
from __future__ import annotations

import numpy as np

from engine.runtime.base import BackendUnavailable

DTYPES = {"float16": "float16", "bfloat16": "bfloat16", "float32": "float32"}


class TorchRunner:
    def __init__(self, module, input_names: list[str], example: dict[str, np.ndarray],
                 device: str = "auto", dtype: str = "float16", cuda_graphs: bool = True, threads: int = 1):
        import torch
        if dtype not in DTYPES:
            raise BackendUnavailable(f"unknown torch dtype {dtype!r}; expected one of {list(DTYPES)}")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailable("CUDA is not available")
        if device == "cpu":
            dtype = "float32"
            torch.set_num_threads(threads)
        self.torch = torch
        self.device = torch.device(device)
        self.dtype = getattr(torch, dtype)
        self.module = module.to(self.device, self.dtype).eval()
        self.input_names = list(input_names)
        self.name = f"torch:{self.device.type}:{dtype}" + (":cudagraph" if cuda_graphs and device != "cpu" else "")
        self._graph = None
        self._static_in = None
        self._static_out = None
        if self.device.type == "cuda" and cuda_graphs:
            self._capture(example)

    def _tensor(self, a: np.ndarray):
        return self.torch.from_numpy(np.ascontiguousarray(a, np.float32)).to(self.device, self.dtype)

    def _capture(self, example: dict[str, np.ndarray]) -> None:
        torch = self.torch
        self._static_in = {k: self._tensor(example[k]) for k in self.input_names}
        stream = torch.cuda.Stream()
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream), torch.inference_mode():
            for _ in range(3):                         # warm up kernels/allocator before capture
                self.module(*[self._static_in[k] for k in self.input_names])
        torch.cuda.current_stream().wait_stream(stream)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph), torch.inference_mode():
            self._static_out = self.module(*[self._static_in[k] for k in self.input_names])

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        torch = self.torch
        if self._graph is not None:
            for k in self.input_names:
                self._static_in[k].copy_(torch.from_numpy(np.ascontiguousarray(feeds[k], np.float32)))
            self._graph.replay()
            return self._static_out.float().cpu().numpy()
        with torch.inference_mode():
            out = self.module(*[self._tensor(feeds[k]) for k in self.input_names])
        return out.float().cpu().numpy()
