"""Webcam mode end to end: a Session in ``webcam`` mode, fed frames of a face (the default
avatar rendered with known motion, standing in for the user), moves the avatar it shows."""
from __future__ import annotations

import asyncio

import numpy as np
import pytest

from engine.config import ASSETS_DIR, load_config
from engine.motion.space import INDEX, MotionFrame

pytestmark = pytest.mark.skipif(not (ASSETS_DIR / "default.avatar").exists(),
                                reason="assets/default.avatar is not built")


async def _feed(session, frame: np.ndarray, seconds: float, fps: float = 25.0) -> None:
    for _ in range(int(seconds * fps)):
        session.push_webcam(frame)
        await asyncio.sleep(1.0 / fps)


async def test_webcam_session_follows_the_users_face():
    from engine.render.warp import WarpRenderer
    from engine.session import Session

    user = WarpRenderer(ASSETS_DIR / "default.avatar", 320, 240)
    neutral = user.render(MotionFrame())
    talking = user.render(MotionFrame.from_weights({"jawOpen": 0.8}, yaw=np.radians(15)))
    shown: list = []

    async def collect(frames):
        async for frame in frames:
            shown.append(frame)

    async with Session(load_config(), mode="webcam") as session:
        assert session.webcam is not None and session.webcam.error is None
        collector = asyncio.create_task(collect(session.video_frames()))
        await _feed(session, np.zeros((240, 320, 3), np.uint8), 0.2)  # nobody there yet
        assert session.webcam.latest is None
        await _feed(session, neutral, 1.4)                            # calibration second
        calm = session.webcam.latest.copy()
        await _feed(session, talking, 0.8)
        moved = session.webcam.latest.copy()
        await asyncio.sleep(0.2)
    await asyncio.wait_for(collector, 5.0)
    assert calm[INDEX["jawOpen"]] < 0.15 and abs(np.degrees(calm[52])) < 3.0
    assert moved[INDEX["jawOpen"]] > 0.3 and np.degrees(moved[52]) > 7.0
    # what the session rendered at the end carries the user's jaw and head turn
    last = shown[-1]
    assert last.image.shape == (512, 512, 3) and last.motion is not None
    assert last.motion["jawOpen"] > 0.3 and np.degrees(last.motion.head_rotation[0]) > 7.0
