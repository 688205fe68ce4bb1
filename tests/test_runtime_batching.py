"""Opportunistic batching across sessions (engine.runtime.batching) with real threads, a real
ONNX Runtime session on the shipped model, and small fake runners for the mechanics."""
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from engine.runtime.batching import BatchingRunner

ASSETS = Path(__file__).resolve().parents[1] / "assets"


class SlowDoubler:
    """A runner that takes 30 ms per call and records how many calls overlap."""
    name = "fake:doubler"

    def __init__(self, batchable: bool, fail_when=None):
        self.batchable = batchable
        self.batch_sizes: list[int] = []
        self.active = 0
        self.max_active = 0
        self.fail_when = fail_when
        self._lock = threading.Lock()

    def run(self, feeds):
        x = feeds["x"]
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            if not self.batchable and len(x) != 1:
                raise AssertionError("a fixed-batch runner was given a batch")
            time.sleep(0.03)
            if self.fail_when is not None and self.fail_when(x):
                raise RuntimeError("model failed")
            self.batch_sizes.append(len(x))
            return x * 2.0
        finally:
            with self._lock:
                self.active -= 1


def _call_together(runner, feeds_list):
    barrier = threading.Barrier(len(feeds_list))

    def call(f):
        barrier.wait()
        try:
            return runner.run(f)
        except Exception as e:   # returned, so the test can look at every caller
            return e

    with ThreadPoolExecutor(len(feeds_list)) as pool:
        return list(pool.map(call, feeds_list))


def test_concurrent_calls_share_batches_and_each_gets_its_own_row():
    fake = SlowDoubler(batchable=True)
    runner = BatchingRunner(fake, max_batch=32)
    feeds = [{"x": np.full((1, 3), float(i), np.float32)} for i in range(8)]
    outs = _call_together(runner, feeds)
    for i, out in enumerate(outs):
        np.testing.assert_array_equal(out, np.full((1, 3), 2.0 * i))
    assert runner.items == 8
    assert runner.calls < 8 and max(fake.batch_sizes) > 1     # the waiting calls ran together
    assert fake.max_active == 1                               # one model run at a time
    assert runner.run({"x": np.ones((1, 3), np.float32)})[0, 0] == 2.0   # idle again: runs at once


def test_max_batch_bounds_a_batch():
    fake = SlowDoubler(batchable=True)
    runner = BatchingRunner(fake, max_batch=3)
    outs = _call_together(runner, [{"x": np.full((1, 2), float(i), np.float32)} for i in range(10)])
    assert [float(o[0, 0]) for o in outs] == [2.0 * i for i in range(10)]
    assert max(fake.batch_sizes) <= 3 and sum(fake.batch_sizes) == 10


def test_a_fixed_batch_runner_is_shared_one_call_at_a_time():
    fake = SlowDoubler(batchable=False)
    runner = BatchingRunner(fake)
    outs = _call_together(runner, [{"x": np.full((1, 2), float(i), np.float32)} for i in range(6)])
    assert [float(o[0, 0]) for o in outs] == [2.0 * i for i in range(6)]
    assert fake.batch_sizes == [1] * 6 and fake.max_active == 1


def test_a_failing_batch_fails_its_callers_and_the_runner_recovers():
    fake = SlowDoubler(batchable=True, fail_when=lambda x: bool((x < 0).any()))
    runner = BatchingRunner(fake)
    feeds = [{"x": np.full((1, 2), -1.0 if i == 0 else float(i), np.float32)} for i in range(5)]
    outs = _call_together(runner, feeds)
    assert isinstance(outs[0], RuntimeError)          # its batch failed ...
    for i, o in enumerate(outs[1:], 1):               # ... every other caller returned: its row or the error
        assert isinstance(o, RuntimeError) or float(o[0, 0]) == 2.0 * i
    assert runner.run({"x": np.ones((1, 2), np.float32)})[0, 0] == 2.0


def test_the_shipped_model_batches_with_rows_equal_to_single_calls():
    pytest.importorskip("onnxruntime")
    from engine.motion.model.runtime import example_feeds
    from engine.motion.model.spec import meta_from_onnx_props
    from engine.runtime.onnx_runner import OnnxRuntimeRunner

    ort_runner = OnnxRuntimeRunner(ASSETS / "audio2motion.int8.onnx")
    assert ort_runner.batchable, "the shipped export must have a dynamic batch axis"
    meta = meta_from_onnx_props(ort_runner.metadata, "shipped")
    rng = np.random.default_rng(3)
    feeds = []
    for _ in range(6):
        f = example_feeds(meta)
        for k in ("mel", "noise", "noise_out"):
            f[k] = rng.standard_normal(f[k].shape).astype(np.float32)
        feeds.append(f)
    single = [ort_runner.run(f) for f in feeds]
    joined = ort_runner.run({k: np.concatenate([f[k] for f in feeds]) for k in feeds[0]})
    for i, s in enumerate(single):
        np.testing.assert_array_equal(joined[i:i + 1], s)
    runner = BatchingRunner(ort_runner)
    outs = _call_together(runner, feeds)
    for o, s in zip(outs, single):
        np.testing.assert_array_equal(o, s)
    assert runner.items == 6
