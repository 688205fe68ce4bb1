"""Worker threads for the sessions' blocking stages.

By default every session gets its own speech thread. With ``pipeline.shared_speech_workers = N``
every session of the process shares one pool of N threads instead: a speech stage keeps at most
one job in flight (``SpeechStage._run`` awaits each job), so per-session order is unchanged,
while a process with many light sessions (motion mode) runs a few threads instead of one per
session (fewer GIL hand-offs and context switches; measured in ``facecast bench sessions``).
"""
from __future__ import annotations

import threading
from concurrent.futures import Executor, ThreadPoolExecutor
from typing import Callable

_shared: dict[tuple[str, int], ThreadPoolExecutor] = {}
_lock = threading.Lock()


class SharedPool(Executor):
    """A process-wide pool lent to a session: ``shutdown`` by one session leaves it running."""

    def __init__(self, pool: ThreadPoolExecutor) -> None:
        self._pool = pool

    def submit(self, fn, /, *args, **kwargs):
        return self._pool.submit(fn, *args, **kwargs)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """A session ending does not stop the other sessions' workers."""


def session_pool(name: str, shared_workers: int, initializer: Callable | None = None,
                 initargs: tuple = ()) -> ThreadPoolExecutor | SharedPool:
    """A pool for one session's ``name`` stage: its own single thread (``shared_workers`` = 0)
    or the process-wide pool of ``shared_workers`` threads for that stage."""
    if shared_workers <= 0:
        return ThreadPoolExecutor(1, name, initializer, initargs)
    key = (name.split("-")[0], shared_workers)
    with _lock:
        pool = _shared.get(key)
        if pool is None:
            pool = _shared[key] = ThreadPoolExecutor(shared_workers, f"{key[0]}-shared", initializer, initargs)
    return SharedPool(pool)
