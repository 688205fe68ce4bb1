"""The browser client's controls in real headless Chromium, `assistant` mode: the text box makes
the avatar speak through server-side TTS (the page attaches to its own session over the
WebSocket), Thinking / Interrupt / Disconnect work, and the received mouth moves with speech."""
import asyncio

import numpy as np
import pytest

from browser_support import COLLECT_JS, PROBE_JS, browser_page, level_at, mouth_box, require_browser

pytestmark = pytest.mark.slow

EVENTS = "(t) => facecast.events.filter(e => e.type === t)"




async def _wait_event(page, type_, count=1, timeout_ms=60_000):
    await page.wait_for_function(f"({EVENTS})('{type_}').length >= {count}", timeout=timeout_ms)
    return (await page.evaluate(EVENTS, type_))[count - 1]


async def test_text_box_thinking_interrupt_disconnect(server, tmp_path):
    require_browser()
    box = mouth_box(server.config.resolve_path(server.config.render.avatar),
                    server.config.video.width, server.config.video.height)
    async with browser_page(tmp_path / "profile") as page:
        await page.goto(f"{server.http_url}/?mode=assistant&mic=0&autoconnect=1")
        await page.wait_for_function("window.facecast && window.facecast.firstFrameAt !== null", timeout=90_000)
        ready = await _wait_event(page, "session.ready")
        sid = await page.evaluate("facecast.sessionId")
        assert ready["created"] is False and ready["session_id"] == sid
        await page.evaluate(PROBE_JS, box)

        await page.click("#thinking")
        await page.wait_for_function("document.getElementById('state').textContent === 'thinking'")
        await asyncio.sleep(1.5)

        await page.fill("#text", "Hello! I am speaking because you typed this into the text box.")
        await page.click("#speak")
        queued = await _wait_event(page, "speak.queued")
        started = await _wait_event(page, "playback.started")
        await page.wait_for_function("document.getElementById('state').textContent === 'speaking'")
        await asyncio.sleep(1.0)
        await page.screenshot(path=str(tmp_path / "speaking.png"))
        finished = await _wait_event(page, "playback.finished")
        assert finished["segment"] == started["segment"] and finished["interrupted"] is False
        assert finished["position_s"] == pytest.approx(queued["duration_s"], abs=0.04)
        assert await page.inner_text("#s-speak") != "–"  # the overlay timed speak → start
        assert 0 < await page.evaluate("facecast.speakToStartMs") < 10_000
        await page.wait_for_function("facecast.serverStats && facecast.serverStats.rendered > 0")
        await asyncio.sleep(1.0)
        rec = await page.evaluate(COLLECT_JS)

        # a long sentence, cut short with the Interrupt button
        await page.fill("#text", "This is a much longer sentence which the user will not let me finish, "
                                 "because the interrupt button is pressed after about one second.")
        await page.click("#speak")
        await _wait_event(page, "playback.started", 2)
        await asyncio.sleep(1.0)
        await page.click("#interrupt")
        cut = await _wait_event(page, "playback.finished", 2)
        assert cut["interrupted"] is True and 0.5 < cut["position_s"] < 3.0
        log = await page.inner_text("#log")
        assert "interrupted" in log and "finished" in log
        assert await page.evaluate("facecast.stats.fps") > 0

        await page.click("#disconnect")
        for _ in range(100):
            if server.registry.find(sid) is None:
                break
            await asyncio.sleep(0.1)
        assert server.registry.find(sid) is None, "Disconnect did not end the page's session"
        assert await page.inner_text("#conn") == "disconnected"

        await page.click("#connect")  # a second session from the same page
        await page.wait_for_function("facecast.firstFrameAt !== null && facecast.sessionId !== "
                                     f"'{sid}'", timeout=90_000)
        assert server.registry.find(await page.evaluate("facecast.sessionId")) is not None
        # everything shown is the new connection's: no fps counted over both sessions (the old
        # frame callbacks counted on: ~50 fps), no speak→start of the old session, a fresh log
        await page.wait_for_function("facecast.stats && facecast.stats.fps > 0", timeout=20_000)
        await asyncio.sleep(2.5)   # two more stats ticks
        fps2 = await page.evaluate("facecast.stats.fps")
        assert 0 < fps2 < 40, f"fps shown after reconnecting: {fps2:.1f}"
        assert float(await page.inner_text("#s-fps")) < 40
        assert await page.inner_text("#s-speak") == "–"
        assert await page.evaluate("facecast.speakToStartMs") is None
        log2 = await page.inner_text("#log")
        assert "interrupted" not in log2 and "finished" not in log2, log2
        assert f"session {await page.evaluate('facecast.sessionId')}" in log2
        assert "net+display" in await page.inner_text("#stats")
        assert page.js_errors == []

    frames = np.array([f[:4] for f in rec["frames"]], float)
    levels = np.array(rec["levels"], float)
    t, diff = frames[:, 0], frames[:, 1]
    fps = (len(t) - 1) / ((t[-1] - t[0]) / 1000)
    assert fps >= 15.0  # a sanity floor; the >= 20 fps requirement is test_browser_echo's
    near, wide = level_at(levels, t, 60), level_at(levels, t, 400)
    speaking, silent = (diff >= 0) & (near > 0.03), (diff >= 0) & (wide < 0.004)
    assert speaking.sum() > 25 and silent.sum() > 25
    assert np.median(diff[speaking]) > 4 * max(np.median(diff[silent]), 0.05)
