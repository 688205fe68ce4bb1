"""The decisive end-to-end test: real headless Chromium opens the real browser client
(clients/web) in `echo` mode with a wav as its fake microphone; the avatar it receives over
WebRTC must run at >= 20 fps and move its mouth while the wav speaks and keep it still in the
wav's silences. Pixels are read from the received frames in the page itself.

Slow (about half a minute) but part of the default `pytest -q` run.
"""
import asyncio
import json
import os

import numpy as np
import pytest

from browser_support import (COLLECT_JS, PROBE_JS, browser_page, level_at, mouth_box, phrases_wav,
                             require_browser)

pytestmark = pytest.mark.slow

RECORD_S = 14.0




async def test_chromium_echo_mode_lip_sync(server, tmp_path):
    require_browser()
    wav = phrases_wav(tmp_path / "phrases.wav", server.config)  # espeak-ng phrases + 1.6 s silences
    box = mouth_box(server.config.resolve_path(server.config.render.avatar),
                    server.config.video.width, server.config.video.height)
    async with browser_page(tmp_path / "profile", wav) as page:
        await page.goto(f"{server.http_url}/?mode=echo&mic=1&autoconnect=1")
        await page.wait_for_function("window.facecast && window.facecast.firstFrameAt !== null", timeout=90_000)
        state = await page.evaluate("({sid: facecast.sessionId, err: facecast.error, mode: facecast.mode})")
        assert state["err"] is None and state["mode"] == "echo"
        assert server.registry.find(state["sid"]) is not None
        # One recording; a second one only if the first missed 20 fps (this shared 2-core
        # machine has load spikes from other processes): the assertion is on the last one.
        for attempt in (1, 2):
            await page.evaluate(PROBE_JS, box)
            await asyncio.sleep(RECORD_S)
            rec = await page.evaluate(COLLECT_JS)
            t = np.array([f[0] for f in rec["frames"]])
            fps = (len(t) - 1) / ((t[-1] - t[0]) / 1000)
            if fps >= 20.0:
                break
            print(f"attempt {attempt}: {fps:.1f} fps received (load average {os.getloadavg()[0]:.1f})")
        stats = await page.evaluate("facecast.stats")
        session = server.registry.find(state["sid"])
        server_side = {"frames_out": session.frames_out, "skipped_ticks": session.skipped_ticks,
                       "repeated": session.render_stage.repeated,
                       "deadline_misses": session.render_stage.deadline_misses}
        await page.screenshot(path=str(tmp_path / "echo.png"))
        assert page.js_errors == []

    frames = np.array([f[:4] for f in rec["frames"]], float)
    levels = np.array(rec["levels"], float)
    assert rec["frames"][0][4:] == [server.config.video.width, server.config.video.height]
    t, diff = frames[:, 0], frames[:, 1]
    duration = (t[-1] - t[0]) / 1000
    diag = json.dumps({"fps": round(fps, 1), "attempts": attempt, "frames": len(t), "server": server_side,
                       "load_avg": os.getloadavg()[0], "stats": stats}, default=str)
    assert duration > RECORD_S - 2, diag
    assert fps >= 20.0, diag

    # speech vs silence in what the page *heard*: the avatar's own audio (echo of the wav)
    near = level_at(levels, t, 60)
    wide = level_at(levels, t, 400)
    ok = diff >= 0
    speaking = ok & (near > 0.03)
    silent = ok & (wide < 0.004)
    assert speaking.sum() > 2 * 25 and silent.sum() > 1 * 25, (speaking.sum(), silent.sum(), diag)
    moving_speech = np.median(diff[speaking])
    moving_silence = np.median(diff[silent])
    p90_silence = np.percentile(diff[silent], 90)
    report = (f"mouth-box change per frame: speaking median {moving_speech:.2f}, silent median "
              f"{moving_silence:.2f} (p90 {p90_silence:.2f}) gray levels; {diag}")
    print(report)
    assert moving_speech > 1.0, "the mouth does not move while the wav speaks: " + report
    assert moving_speech > 4 * max(moving_silence, 0.05), "the mouth is not still in silences: " + report
    assert p90_silence < moving_speech, report
