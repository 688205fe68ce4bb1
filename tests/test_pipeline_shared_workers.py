"""pipeline.shared_speech_workers: real sessions of one process share one speech pool; each keeps
its own order, and a session closing leaves the pool working for the others."""
import asyncio

import numpy as np

from engine.config import replace
from engine.pipeline.workers import SharedPool, session_pool
from engine.session import Session


def _tone(seconds: float, rate: int = 16000) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (0.2 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)


async def _speak_and_count(session: Session, seconds: float) -> int:
    frames = session.motion_frames(capacity=1000)
    session.push_speech(_tone(seconds), 16000)
    session.end_segment()
    n = 0
    try:
        async with asyncio.timeout(seconds + 3.0):
            async for f in frames:
                if f.audio.segment:
                    n += 1
                    if n == int(seconds * 25):
                        break
    except TimeoutError:
        pass
    return n


async def test_sessions_share_one_speech_pool_and_survive_each_others_close(config):
    cfg = replace(config, pipeline={"shared_speech_workers": 1}, motion={"source": "baseline"})
    a, b = Session(cfg, output="motion"), Session(cfg, output="motion")
    await a.start()
    await b.start()
    assert isinstance(a._speech_pool, SharedPool) and a._speech_pool._pool is b._speech_pool._pool
    na, nb = await asyncio.gather(_speak_and_count(a, 1.0), _speak_and_count(b, 1.0))
    assert na == nb == 25                       # every speech frame of both, through one thread
    await a.close()
    assert await _speak_and_count(b, 0.6) == 15  # the pool still works for the other session
    await b.close()


def test_zero_shared_workers_gives_each_session_its_own_thread():
    p1, p2 = session_pool("speech-x", 0), session_pool("speech-y", 0)
    try:
        assert p1 is not p2 and not isinstance(p1, SharedPool)
    finally:
        p1.shutdown()
        p2.shutdown()
