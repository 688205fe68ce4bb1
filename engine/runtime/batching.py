"""Many sessions, one model call: opportunistic batching across threads.

Every session's speech worker calls ``run`` with batch-1 feeds. Calls that arrive while the
model is busy wait and are run together as one batch by the next leader; a call that arrives
while the model is idle runs at once (no added latency, no timer). So batches grow exactly as
fast as load does: one session sees batch 1, thirty concurrent sessions share a few calls.

Leader/follower, no extra thread: the caller that finds the model idle becomes the leader, takes
every pending request (up to ``max_batch``), runs them as one batch and hands each its row. If
requests are still pending afterwards, leadership passes to the oldest pending caller (so no
caller keeps serving others while its own session waits) and the old leader returns.

A runner whose graph has a fixed batch of 1 (``batchable`` False: an old export, TensorRT) is
still shared safely: the leader runs the pending requests one by one, never two at once (a CUDA
graph or a TensorRT context holds one set of buffers).
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Request:
    feeds: dict[str, np.ndarray]
    done: threading.Event = field(default_factory=threading.Event)
    lead: bool = False              # this caller was handed leadership while it waited
    result: np.ndarray | None = None
    error: BaseException | None = None


class BatchingRunner:
    """Wraps a ``Runner``; ``run(feeds)`` with batch-1 feeds returns the batch-1 output."""

    def __init__(self, runner, max_batch: int = 32) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.runner = runner
        self.name = runner.name
        self.input_names = getattr(runner, "input_names", None)
        self.metadata = getattr(runner, "metadata", {})
        self.batchable = bool(getattr(runner, "batchable", False))
        self.max_batch = max_batch if self.batchable else 1
        self._lock = threading.Lock()
        self._pending: list[_Request] = []
        self._busy = False
        self.calls = 0       # model runs
        self.items = 0       # requests served

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        req = _Request(feeds)
        with self._lock:
            self._pending.append(req)
            lead = not self._busy
            self._busy = True
        if not lead:
            req.done.wait()
            if not req.lead:
                return self._result(req)
        self._serve(req)
        return self._result(req)

    @staticmethod
    def _result(req: _Request) -> np.ndarray:
        if req.error is not None:
            raise req.error
        return req.result

    def _serve(self, own: _Request) -> None:
        """Run one batch (a leader's own request is always the oldest pending one, so it is in
        it), then hand leadership to the oldest request still pending, or go idle."""
        with self._lock:
            batch = self._pending[: self.max_batch]
            del self._pending[: len(batch)]
        assert batch and batch[0] is own
        self._run_batch(batch)
        with self._lock:
            if self._pending:
                nxt = self._pending[0]
                nxt.lead = True
                nxt.done.set()           # it wakes up as the leader; its request is still pending
            else:
                self._busy = False

    def _run_batch(self, batch: list[_Request]) -> None:
        try:
            if len(batch) == 1:
                outs = [self.runner.run(batch[0].feeds)]
            else:
                names = list(batch[0].feeds)
                joined = {k: np.concatenate([r.feeds[k] for r in batch]) for k in names}
                out = self.runner.run(joined)
                outs = [out[i:i + 1] for i in range(len(batch))]
            self.calls += 1
            self.items += len(batch)
        except BaseException as e:      # every waiting caller gets the error, none hangs
            for r in batch:
                r.error = e
                r.done.set()
            return
        for r, o in zip(batch, outs):
            r.result = o
            r.done.set()
