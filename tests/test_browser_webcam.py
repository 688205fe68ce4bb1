"""Webcam mode through the browser client in real headless Chromium: the fake camera plays a
y4m of a face (the default avatar rendered with its jaw opening and closing every second,
standing in for the user; still at first, so the tracker calibrates on a neutral face); the
avatar the page receives must open and close its mouth in that rhythm, and stop when the page's webcam toggle is switched off."""
import asyncio
import time

import cv2
import numpy as np
import pytest

from browser_support import COLLECT_JS, PROBE_JS, browser_page, mouth_box, require_browser

from engine.motion.space import INDEX, MotionFrame

pytestmark = pytest.mark.slow

HALF_PERIOD_S = 1.0   # mouth closed for 1 s, open for 1 s, ...
CAM_FPS = 25


def talking_face_y4m(path, avatar_path, neutral_s=8.0, cycles=5, size=(320, 240)):
    """``neutral_s`` of a still, closed mouth (the tracker calibrates on it), then ``cycles``
    of open for HALF_PERIOD_S / closed for HALF_PERIOD_S. Chromium loops the file."""
    from engine.render.warp import WarpRenderer
    user = WarpRenderer(avatar_path, *size)
    closed = user.render(MotionFrame())
    opened = user.render(MotionFrame.from_weights({"jawOpen": 0.8}))
    w, h = size
    with open(path, "wb") as f:
        f.write(f"YUV4MPEG2 W{w} H{h} F{CAM_FPS}:1 Ip A1:1 C420jpeg\n".encode())
        frames = {False: cv2.cvtColor(closed, cv2.COLOR_RGB2YUV_I420).tobytes(),
                  True: cv2.cvtColor(opened, cv2.COLOR_RGB2YUV_I420).tobytes()}
        half = int(HALF_PERIOD_S * CAM_FPS)
        for i in range(int(neutral_s * CAM_FPS) + 2 * cycles * half):
            j = i - int(neutral_s * CAM_FPS)
            f.write(b"FRAME\n" + frames[j >= 0 and (j // half) % 2 == 0])
    return path


def transitions(signal: np.ndarray) -> int:
    """Open/closed switches of a mouth-brightness trace (hysteresis around its mid level)."""
    lo, hi = np.percentile(signal, 10), np.percentile(signal, 90)
    if hi - lo < 4.0:   # gray levels: no real open/closed contrast at all
        return 0
    low, high = lo + 0.3 * (hi - lo), lo + 0.7 * (hi - lo)
    state, count = None, 0
    for x in signal:
        new = "closed" if x > high else "open" if x < low else state  # an open mouth is darker
        if state is not None and new != state:
            count += 1
        state = new
    return count




async def test_webcam_mode_follows_the_camera_and_the_toggle(server, tmp_path):
    require_browser()
    avatar = server.config.resolve_path(server.config.render.avatar)
    y4m = talking_face_y4m(tmp_path / "face.y4m", avatar)
    box = mouth_box(avatar, server.config.video.width, server.config.video.height)
    async with browser_page(tmp_path / "profile", extra_args=[f"--use-file-for-fake-video-capture={y4m}"]) as page:
        t_connect = time.monotonic()
        await page.goto(f"{server.http_url}/?mode=webcam&mic=0&autoconnect=1")
        await page.wait_for_function("window.facecast && window.facecast.firstFrameAt !== null", timeout=90_000)
        assert await page.is_checked("#cam")
        session = server.registry.find(await page.evaluate("facecast.sessionId"))
        assert session.mode == "webcam"
        for _ in range(300):  # tracker start-up and calibration on the still face
            rig_fit = getattr(session.webcam.retargeter, "retargeter", None)
            if session.webcam.latest is not None and getattr(rig_fit, "calibrated", True):
                break
            await asyncio.sleep(0.1)
        assert session.webcam.latest is not None, f"no face tracked ({session.webcam.error})"
        t_cal = time.monotonic() - t_connect
        await page.evaluate(PROBE_JS, box)
        jaw = []
        for _ in range(100):   # 10 s; what the session made of the camera, for the failure message
            jaw.append(round(float(session.webcam.latest[INDEX["jawOpen"]]), 2))
            await asyncio.sleep(0.1)
        on = await page.evaluate(COLLECT_JS)
        diag = {"calibrated_after_s": round(t_cal, 1), "jawOpen_seen": jaw[::4],
                "webcam_dropped": session.webcam.dropped}

        await page.uncheck("#cam")  # the camera track is disabled: black frames, no face
        await asyncio.sleep(2.0)
        await page.evaluate(PROBE_JS, box)
        await asyncio.sleep(4.0)
        off = await page.evaluate(COLLECT_JS)
        assert page.js_errors == []

    on_mean = np.array([f[2] for f in on["frames"]])
    off_mean = np.array([f[2] for f in off["frames"]])
    fps = (len(on["frames"]) - 1) / ((on["frames"][-1][0] - on["frames"][0][0]) / 1000)
    # the >= 20 fps requirement is asserted in echo mode (test_browser_echo); here the face
    # tracker shares the 2 cores with Chromium and the renderer, so only a sanity floor
    assert fps >= 15.0
    n_on = transitions(on_mean)
    print(f"webcam: {fps:.1f} fps, {n_on} open/close switches in 10 s, mouth contrast on/off "
          f"{np.percentile(on_mean, 90) - np.percentile(on_mean, 10):.1f}/"
          f"{np.percentile(off_mean, 90) - np.percentile(off_mean, 10):.1f} gray levels; {diag}")
    # the neutral lead ends a few seconds into these 10 s; then a switch every second
    assert n_on >= 4, f"the avatar's mouth did not follow the camera ({n_on} switches): {diag}"
    contrast_on = np.percentile(on_mean, 90) - np.percentile(on_mean, 10)
    contrast_off = np.percentile(off_mean, 90) - np.percentile(off_mean, 10)
    assert contrast_off < 0.5 * contrast_on, (contrast_on, contrast_off)
    assert transitions(off_mean) <= 1
