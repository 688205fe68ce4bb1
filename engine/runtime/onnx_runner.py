"""ONNX Runtime backend (CPU; fp32 or the static INT8 QDQ export)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.runtime.base import BackendUnavailable


class OnnxRuntimeRunner:
    def __init__(self, path: Path, threads: int = 1, label: str = "fp32"):
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise BackendUnavailable(f"onnxruntime is not installed ({e})") from e
        path = Path(path)
        if not path.exists():
            raise BackendUnavailable(f"{path} does not exist")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        except Exception as e:   # InvalidProtobuf, Fail, ... for a corrupt file
            raise BackendUnavailable(f"{path} is corrupt or not an ONNX model ({type(e).__name__}: {e})") from e
        self.path = path
        self.name = f"onnxruntime:{label}"
        self.input_names = [i.name for i in self.session.get_inputs()]
        # True when every input's first axis is symbolic: rows of many calls can share one run
        self.batchable = all(i.shape and not isinstance(i.shape[0], int) for i in self.session.get_inputs())
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, {k: np.ascontiguousarray(feeds[k], np.float32) for k in self.input_names})[0]


def onnx_metadata(path: Path) -> dict:
    """Custom metadata of an ONNX file without building a session."""
    import onnx
    try:
        m = onnx.load(str(path), load_external_data=False)
    except Exception as e:
        raise BackendUnavailable(f"{path} is corrupt or not an ONNX model ({type(e).__name__}: {e})") from e
    return {p.key: p.value for p in m.metadata_props}
