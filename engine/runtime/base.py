"""One interface for every model backend: ``Runner.run(feeds) -> outputs``.

A runner executes a graph with static shapes and named float32 inputs; it does no pre- or
post-processing (that lives in the model class that owns the runner). ``create_runner`` tries
backends in the configured order and returns the first that loads, logging why others did not.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

log = logging.getLogger(__name__)

BACKENDS = ("tensorrt", "onnxruntime", "torch")


class BackendUnavailable(RuntimeError):
    """This backend cannot run here (module missing, no GPU, missing or corrupt file)."""


class Runner(Protocol):
    name: str          # e.g. "onnxruntime:int8", "torch:cuda:float16", "tensorrt:fp16"

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run the graph; returns its (single) output as float32."""
        ...


@dataclass
class RunnerOptions:
    threads: int = 1
    onnx_precision: str = "int8"            # int8 | fp32
    torch_dtype: str = "float16"            # on CUDA: float16 | bfloat16 | float32 (CPU: float32)
    cuda_graphs: bool = True
    tensorrt_precision: str = "fp16"        # fp16 | int8 (int8 uses the QDQ ONNX)
    extra: dict = field(default_factory=dict)


def create_runner(order: list[str], factories: dict[str, Callable[[], Runner]]) -> Runner:
    """First backend in ``order`` whose factory succeeds; raises BackendUnavailable with all reasons."""
    reasons = []
    for name in order:
        if name not in factories:
            reasons.append(f"{name}: unknown backend (known: {', '.join(BACKENDS)})")
            continue
        try:
            runner = factories[name]()
            log.info("model backend: %s", runner.name)
            return runner
        except BackendUnavailable as e:
            reasons.append(f"{name}: {e}")
            log.info("backend %s unavailable: %s", name, e)
    raise BackendUnavailable("no usable backend; " + "; ".join(reasons))
