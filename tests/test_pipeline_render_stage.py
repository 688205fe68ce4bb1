"""Render stage deadline policy with the real renderer: repeat instead of late, but not forever."""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from engine.clock import RealtimeClock, VirtualClock
from engine.config import load_config, replace
from engine.metrics import Metrics
from engine.motion.space import MotionFrame
from engine.pipeline.render import RenderStage, create_renderer

MAX_REPEATS_WHEN_LATE = load_config().pipeline.max_repeats_when_late


def _stage(clock):
    config = replace(load_config(), video={"width": 128, "height": 128})
    return RenderStage(create_renderer(config), clock, ThreadPoolExecutor(1), Metrics(),
                       max_repeats_when_late=config.pipeline.max_repeats_when_late)


async def test_a_frame_past_its_deadline_repeats_the_last_picture_a_bounded_number_of_times():
    stage = _stage(RealtimeClock(25))
    first = await stage.warm_up(MotionFrame.neutral())
    open_mouth = MotionFrame.from_weights({"jawOpen": 0.8})
    image, repeated = await stage.render(open_mouth, deadline=stage.clock.now() + 10.0)
    assert not repeated and np.abs(image.astype(int) - first).max() > 20
    results = [await stage.render(MotionFrame.neutral(), deadline=stage.clock.now() - 1.0)
               for _ in range(MAX_REPEATS_WHEN_LATE + 1)]
    assert [r for _, r in results] == [True] * MAX_REPEATS_WHEN_LATE + [False]
    assert all(img is image for img, _ in results[:-1])           # the previous picture, unchanged
    assert stage.repeated == MAX_REPEATS_WHEN_LATE
    assert stage.deadline_misses == MAX_REPEATS_WHEN_LATE + 1     # the forced render was late too
    text = stage.metrics.render_text().decode()
    assert f'facecast_frames_total{{kind="repeated"}} {float(MAX_REPEATS_WHEN_LATE)}' in text


async def test_on_time_frames_are_rendered_and_offline_never_misses():
    stage = _stage(RealtimeClock(25))
    await stage.warm_up(MotionFrame.neutral())
    for _ in range(3):
        _, repeated = await stage.render(MotionFrame.neutral(), deadline=stage.clock.now() + 10.0)
        assert not repeated
    assert stage.deadline_misses == 0
    offline = _stage(VirtualClock(25))
    await offline.warm_up(MotionFrame.neutral())
    _, repeated = await offline.render(MotionFrame.neutral(), deadline=-100.0)
    assert not repeated and offline.deadline_misses == 0
