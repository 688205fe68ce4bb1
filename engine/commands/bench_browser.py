"""``facecast bench browser``: real headless Chromium viewing a live session through clients/web.

A facecast server runs in this process on a free loopback port; Chromium (the system
``chromium``, driven by Playwright; never ``playwright install``) opens the browser client
with ``?autoconnect=1`` — in ``echo`` mode with an espeak-ng wav (phrases with silences) as
its fake microphone by default. Each run uses a fresh browser profile; run 1 is the first
session of a fresh server (cold: avatar, renderer and motion model load), later runs are warm.
Measured per run, in the page:

- page load → first video frame (navigation start → first requestVideoFrameCallback), and
  Connect → first frame;
- received fps (frames presented per second over ``--seconds``), frames dropped / freezes
  (getStats), receive → display delay (rVFC), and in echo mode the mic → avatar speech onset
  delay (the page's "echo e2e" meter);
- the text box path: ``speak`` sent on the page's WebSocket → ``playback.started`` event back
  (server TTS + speech stage + first frame of the segment).

The last stdout line is one JSON object.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from engine.audio import OUTPUT_RATE

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PHRASES = ("Hello there, how are you doing today?",
           "The weather is lovely this morning.",
           "Let us go for a long walk in the park.")

FPS_JS = """async (seconds) => {
  const v = document.getElementById('avatar');
  let n = 0, t0 = null, t1 = null, stop = false;
  const cb = (now) => { if (t0 === null) t0 = now; t1 = now; n++; if (!stop) v.requestVideoFrameCallback(cb); };
  v.requestVideoFrameCallback(cb);
  await new Promise(r => setTimeout(r, seconds * 1000));
  stop = true;
  return {frames: n, fps: (n - 1) * 1000 / (t1 - t0)};
}"""


# the text box path: `speak` over the page's WebSocket → server TTS → first frame of the segment
SPEAK_JS = """async () => {
  const n = facecast.events.filter(e => e.type === 'playback.started').length;
  const t = performance.now();
  facecast.speak('Testing, one two three.');
  while (facecast.events.filter(e => e.type === 'playback.started').length === n) {
    await new Promise(r => setTimeout(r, 5));
    if (performance.now() - t > 30000) return -1;
  }
  return performance.now() - t;
}"""


def chromium_args(fake_mic_wav: str | Path | None = None) -> list[str]:
    """Flags that work headless on this kind of machine (see ../shared notes)."""
    args = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            "--allow-loopback-in-peer-connection", "--autoplay-policy=no-user-gesture-required"]
    if fake_mic_wav is not None:
        args.append(f"--use-file-for-fake-audio-capture={fake_mic_wav}")
    return args


def phrases_wav(path: str | Path, config, phrases=PHRASES, silence_s: float = 1.6, rate: int = OUTPUT_RATE) -> Path:
    """espeak-ng phrases with clear silences between them, as a 16-bit mono wav."""
    import wave

    from engine.audio.pcm import float_to_s16le
    from engine.audio.resample import resample
    from engine.audio.tts import OUTPUT_SAMPLE_RATE, Speaker
    speaker = Speaker(config.tts)
    gap = np.zeros(int(silence_s * rate), np.float32)
    parts = [gap]
    for text in phrases:
        x = speaker.synthesize(text)
        x = resample(x, OUTPUT_SAMPLE_RATE, rate)
        parts += [0.72 * x / (np.abs(x).max() + 1e-9), gap]
    pcm = float_to_s16le(np.concatenate(parts))
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm)
    return Path(path)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", default="echo", choices=("echo", "assistant"))
    parser.add_argument("--runs", type=int, default=3, help="page loads (run 1 is a cold server)")
    parser.add_argument("--seconds", type=float, default=15.0, help="fps measured over this long per run")
    parser.add_argument("--json", action="store_true", help="only the JSON line")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _one_run(pw, url: str, wav: Path | None, seconds: float) -> dict:
    with tempfile.TemporaryDirectory(prefix="facecast-bench-") as profile:
        ctx = await pw.chromium.launch_persistent_context(
            profile, executable_path=CHROMIUM, headless=True, args=chromium_args(wav))
        try:
            page = ctx.pages[0] if ctx.pages else await ctx.new_page()
            await page.goto(url)
            await page.wait_for_function("window.facecast && window.facecast.firstFrameAt !== null",
                                         timeout=120_000)
            first = await page.evaluate("({load: facecast.firstFrameAt, connect: facecast.firstFrameAt - facecast.t0})")
            marks = await page.evaluate("facecast.marks")
            rate = await page.evaluate(FPS_JS, seconds)
            stats = await page.evaluate("facecast.stats")
            speak_ms = await page.evaluate(SPEAK_JS)
        finally:
            await ctx.close()
    return {"page_load_to_first_frame_s": round(first["load"] / 1000, 3),
            "connect_to_first_frame_s": round(first["connect"] / 1000, 3),
            "received_fps": round(rate["fps"], 2), "frames": rate["frames"],
            "frames_dropped": stats.get("framesDropped"), "freezes": stats.get("freezeCount"),
            "receive_to_display_ms": round(stats.get("receiveToDisplayMs") or 0, 1),
            "echo_e2e_ms": None if stats.get("echoE2eMs") is None else round(stats["echoE2eMs"], 1),
            "codec": stats.get("codec"), "speak_to_playback_started_ms": round(speak_ms, 1),
            "marks_ms": {k: round(v) for k, v in marks.items()}}  # ms since navigation start


async def _bench(args) -> dict:
    import aioice.ice
    from aiohttp import web
    from playwright.async_api import async_playwright

    from engine.config import load_config, replace
    from engine.server import create_app

    # loopback-only ICE candidates: works on machines without another interface
    aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ["127.0.0.1"]
    # one client reconnecting --runs times from 127.0.0.1: the per-IP limits would measure themselves
    config = replace(load_config(args.config), server={"rate_limit_requests": 0, "max_connections_per_ip": 0})
    port = _free_port()
    runner = web.AppRunner(create_app(config))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}/?mode={args.mode}&mic={int(args.mode == 'echo')}&autoconnect=1"
    runs = []
    with tempfile.TemporaryDirectory(prefix="facecast-bench-") as tmp:
        wav = phrases_wav(Path(tmp) / "phrases.wav", config) if args.mode == "echo" else None
        try:
            async with async_playwright() as pw:
                for i in range(args.runs):
                    r = await _one_run(pw, url, wav, args.seconds)
                    r["run"] = i + 1
                    runs.append(r)
                    if not args.json:
                        print(json.dumps(r), flush=True)
        finally:
            await runner.cleanup()
    warm = runs[1:] or runs
    return {"bench": "browser", "mode": args.mode, "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.python_version()}",
            "load_avg_1m": round(os.getloadavg()[0], 2),
            "video": f"{config.video.width}x{config.video.height}@{config.video.fps}",
            "cold_page_load_to_first_frame_s": runs[0]["page_load_to_first_frame_s"],
            "warm_page_load_to_first_frame_s": float(np.median([r["page_load_to_first_frame_s"] for r in warm])),
            "received_fps_min": min(r["received_fps"] for r in runs),
            "received_fps_median": float(np.median([r["received_fps"] for r in runs])),
            "speak_to_playback_started_ms_median": float(np.median([r["speak_to_playback_started_ms"] for r in runs])),
            "runs": runs}


def run(args: argparse.Namespace) -> int:
    if not Path(CHROMIUM).exists():
        print(f"facecast bench browser: no chromium at {CHROMIUM} (apt-get install chromium)")
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    t0 = time.monotonic()
    result = asyncio.run(_bench(args))
    result["wall_s"] = round(time.monotonic() - t0, 1)
    print(json.dumps(result))
    return 0
