"""Real headless Chromium (Debian `chromium` + Playwright) against a live facecast server.

Not a test module. Never runs `playwright install`: the system Chromium at CHROMIUM is used,
and tests skip when it (or Playwright) is missing. The probe injected into the page reads the
pixels of every received video frame (requestVideoFrameCallback + canvas) in the avatar's
mouth box and samples the level of the received audio (WebAudio analyser).
"""
from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import pytest

from engine.avatar.asset import load_avatar
from engine.commands.bench_browser import CHROMIUM, chromium_args, phrases_wav  # noqa: F401 (re-exported)

MOUTH_LANDMARKS = [61, 291, 0, 17, 13, 14, 78, 308, 84, 314, 181, 405]


def require_browser():
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM} (apt-get install chromium)")


@contextlib.asynccontextmanager
async def browser_page(profile_dir: Path, fake_mic_wav: Path | None = None, extra_args: list[str] = ()):
    from playwright.async_api import async_playwright
    async with async_playwright() as pw:
        ctx = await pw.chromium.launch_persistent_context(
            str(profile_dir), executable_path=CHROMIUM, headless=True,
            args=chromium_args(fake_mic_wav) + list(extra_args), viewport={"width": 1200, "height": 760})
        try:
            page = ctx.pages[0] if ctx.pages else await ctx.new_page()
            page.set_default_timeout(60_000)
            page.js_errors = []  # uncaught exceptions in the page: tests assert there are none
            page.on("pageerror", lambda e: page.js_errors.append(str(e)))
            yield page
        finally:
            await ctx.close()


def mouth_box(avatar_path: Path, out_w: int, out_h: int) -> dict:
    """The avatar's mouth region (with room for an open jaw) in output-frame pixels."""
    av = load_avatar(avatar_path)
    pts = av.landmarks[MOUTH_LANDMARKS, :2] * np.array([out_w / av.width, out_h / av.height])
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    w, h = x1 - x0, y1 - y0
    return {"x0": int(x0 - 0.15 * w), "y0": int(y0 - 0.3 * h), "x1": int(x1 + 0.15 * w),
            "y1": int(y1 + 0.6 * h), "frameW": out_w, "frameH": out_h}


PROBE_JS = """(box) => {
  const v = document.getElementById('avatar');
  const rec = {frames: [], levels: [], box};
  const canvas = document.createElement('canvas');
  let g2d = null, prev = null;
  const ac = new AudioContext();
  const an = ac.createAnalyser();
  an.fftSize = 512;
  ac.createMediaStreamSource(new MediaStream(v.srcObject.getAudioTracks())).connect(an);
  const buf = new Float32Array(an.fftSize);
  rec.timer = setInterval(() => {
    an.getFloatTimeDomainData(buf);
    let e = 0; for (const x of buf) e += x * x;
    rec.levels.push([performance.now(), Math.sqrt(e / buf.length)]);
  }, 10);
  let x0, y0, w, h;
  const onFrame = (now, meta) => {
    if (!g2d) {  // only the mouth box is copied out of each frame (cheap on a busy machine)
      const sx = v.videoWidth / box.frameW, sy = v.videoHeight / box.frameH;
      x0 = Math.round(box.x0 * sx); y0 = Math.round(box.y0 * sy);
      w = Math.round((box.x1 - box.x0) * sx); h = Math.round((box.y1 - box.y0) * sy);
      canvas.width = w; canvas.height = h;
      g2d = canvas.getContext('2d', {willReadFrequently: true});
    }
    g2d.drawImage(v, x0, y0, w, h, 0, 0, w, h);
    const d = g2d.getImageData(0, 0, w, h).data;
    const g = new Float32Array(w * h);
    let diff = 0, mean = 0;
    for (let i = 0; i < w * h; i++) {
      g[i] = 0.299 * d[4 * i] + 0.587 * d[4 * i + 1] + 0.114 * d[4 * i + 2];
      mean += g[i];
      if (prev) diff += Math.abs(g[i] - prev[i]);
    }
    rec.frames.push([meta.expectedDisplayTime || now, prev ? diff / (w * h) : -1, mean / (w * h),
                     meta.presentedFrames, v.videoWidth, v.videoHeight]);
    prev = g;
    if (!rec.stopped) v.requestVideoFrameCallback(onFrame);
  };
  v.requestVideoFrameCallback(onFrame);
  window.__rec = rec;
}"""

COLLECT_JS = """() => { const r = window.__rec; r.stopped = true; clearInterval(r.timer);
  return {frames: r.frames, levels: r.levels}; }"""


def level_at(levels: np.ndarray, t: np.ndarray, half_window_ms: float) -> np.ndarray:
    """Loudest received-audio level within ±half_window_ms of each time in ``t``."""
    out = np.zeros(len(t))
    for i, ti in enumerate(t):
        sel = levels[np.abs(levels[:, 0] - ti) <= half_window_ms, 1]
        out[i] = sel.max() if len(sel) else np.nan
    return out
