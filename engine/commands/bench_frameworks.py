"""``facecast bench frameworks``: the Pipecat and LiveKit adapters, real time.

For each adapter (the Pipecat ``FacecastProcessor`` in a real pipecat Pipeline, with the engine
in-process and, "pipecat_remote", with a facecast server started in this process and driven over
its WebSocket API + a WebRTC viewer, as a remote one would be; the LiveKit
``FacecastVideoGenerator`` iterated as LiveKit's AvatarRunner does), espeak-ng utterances with
silent gaps are pushed as 20 ms TTS chunks at real-time pace (as a streaming TTS delivers them)
and measured:

- speech in → speech out: from the push of each utterance's first chunk to its first re-timed
  audio frame out of the adapter (ms, mean / max over the utterances);
- output fps, and speech audio frames out vs the pushed audio's length in frames;
- adapter cost per frame: converting a session frame to the framework's frames (ms, p50 / p95);
- CPU: process CPU time / wall time (1.0 = one core), the engine included.

Needs the extras (``facecast[pipecat]``, ``facecast[livekit]``); an adapter whose extra is
missing is reported as skipped. The last stdout line is one JSON object (with ``--json``).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import time
from datetime import datetime, timezone

import numpy as np

from engine.audio.pcm import float_to_s16

SENTENCES = ["Hello, and welcome to the streaming avatar benchmark.",
             "Audio is the master clock, so lips and voice stay together.",
             "Please tell me what you would like to talk about today."]
GAP_S = 1.0
CHUNK_S = 0.02


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", choices=("pipecat_inprocess", "pipecat_remote", "livekit"), default=None,
                        help="one adapter only")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")


def utterances() -> list[tuple[np.ndarray, int]]:
    from engine.audio.tts import Speaker
    speaker = Speaker()
    return [(float_to_s16(speaker.synthesize(t)), 16000) for t in SENTENCES]


def pct(xs: list[float], q: float) -> float | None:
    return round(float(np.percentile(xs, q)), 3) if xs else None


class Probe:
    """Collects the measurements of one adapter run."""

    def __init__(self) -> None:
        self.pushed_at: list[float] = []      # first chunk of each utterance
        self.first_out: list[float] = []      # first speech audio out of each utterance
        self.frames = 0
        self.speech_frames = 0
        self.convert_ms: list[float] = []
        self.t0 = time.monotonic()
        self.cpu0 = time.process_time()

    def result(self, pushed_frames: int) -> dict:
        wall = time.monotonic() - self.t0
        lat = [1000 * (o - p) for p, o in zip(self.pushed_at, self.first_out)]
        return {"speech_in_to_out_ms_mean": round(float(np.mean(lat)), 1) if lat else None,
                "speech_in_to_out_ms_max": round(float(np.max(lat)), 1) if lat else None,
                "fps": round(self.frames / wall, 2), "speech_frames_out": self.speech_frames,
                "speech_frames_pushed": pushed_frames,
                "convert_ms_p50": pct(self.convert_ms, 50), "convert_ms_p95": pct(self.convert_ms, 95),
                "cpu_cores": round((time.process_time() - self.cpu0) / wall, 2), "wall_s": round(wall, 1)}


async def push_realtime(utts, push, end, probe: Probe) -> int:
    """Push the utterances in 20 ms chunks at real-time pace, GAP_S apart; returns their length in frames."""
    frames = 0
    for pcm, rate in utts:
        step = int(rate * CHUNK_S)
        start = time.monotonic()
        probe.pushed_at.append(start)
        for i, off in enumerate(range(0, len(pcm), step)):
            await asyncio.sleep(max(0.0, start + i * CHUNK_S - time.monotonic()))
            await push(pcm[off:off + step], rate)
        await end()
        frames += -(-len(pcm) * 25 // rate)
        await asyncio.sleep(GAP_S + 0.5)
    return frames


async def bench_pipecat(utts, remote: bool = False) -> dict:
    from pipecat.frames.frames import (EndFrame, OutputImageRawFrame, TTSAudioRawFrame, TTSStartedFrame,
                                       TTSStoppedFrame)
    from pipecat.pipeline.pipeline import Pipeline
    from pipecat.pipeline.runner import PipelineRunner
    from pipecat.pipeline.task import PipelineTask
    from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

    from engine.integrations.avatar import InProcessAvatar
    from engine.integrations.pipecat import FacecastProcessor

    probe = Probe()

    class Sink(FrameProcessor):
        async def process_frame(self, frame, direction):
            await super().process_frame(frame, direction)
            if isinstance(frame, OutputImageRawFrame):
                probe.frames += 1
            elif isinstance(frame, TTSAudioRawFrame):
                probe.speech_frames += len(frame.audio) // (2 * 1920)   # (remote: may hold several)
                if len(probe.first_out) < len(probe.pushed_at):
                    probe.first_out.append(time.monotonic())
            await self.push_frame(frame, direction)

    server = None
    if remote:   # a facecast server in this process, driven over its WebSocket API + WebRTC
        from aiohttp import web

        from engine.config import load_config
        from engine.integrations.remote import RemoteAvatar
        from engine.server import create_app
        server = web.AppRunner(create_app(load_config()))
        await server.setup()
        site = web.TCPSite(server, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        avatar = RemoteAvatar(f"ws://127.0.0.1:{port}/v1/ws", sample_rate=16000)
    else:
        avatar = InProcessAvatar()
    proc = FacecastProcessor(avatar)
    original = proc._emit_frame

    async def timed(item):   # the adapter's own work per frame (conversion + pushes)
        t = time.perf_counter()
        await original(item)
        probe.convert_ms.append(1000 * (time.perf_counter() - t))

    proc._emit_frame = timed
    task = PipelineTask(Pipeline([proc, Sink()]))
    run = asyncio.create_task(PipelineRunner(handle_sigint=False).run(task))
    while proc._out_task is None:
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)   # warm-up
    probe.__init__()

    async def push(pcm, rate):
        await task.queue_frame(TTSAudioRawFrame(audio=pcm.tobytes(), sample_rate=rate, num_channels=1))

    async def end():
        await task.queue_frame(TTSStoppedFrame())

    await task.queue_frame(TTSStartedFrame())
    pushed = await push_realtime(utts, push, end, probe)
    result = probe.result(pushed)
    await task.queue_frame(EndFrame())
    await asyncio.wait_for(run, 30)
    if server is not None:
        await server.cleanup()
    return result


async def bench_livekit(utts) -> dict:
    from livekit import rtc
    from livekit.agents.voice.avatar import AudioSegmentEnd

    from engine.integrations.avatar import InProcessAvatar
    from engine.integrations.livekit.video import FacecastVideoGenerator

    probe = Probe()
    gen = FacecastVideoGenerator(InProcessAvatar())
    await gen.start()

    async def consume():
        it = gen.__aiter__()
        while True:
            item = await it.__anext__()
            if isinstance(item, rtc.VideoFrame):
                probe.frames += 1
            elif isinstance(item, rtc.AudioFrame):
                probe.speech_frames += 1
                if len(probe.first_out) < len(probe.pushed_at):
                    probe.first_out.append(time.monotonic())

    # the adapter's cost per frame: RGB → RGBA rtc.VideoFrame (+ the audio frame, negligible)
    from engine.integrations.avatar import AvatarFrame
    from engine.integrations.livekit.video import video_frame
    img = np.random.default_rng(0).integers(0, 255, (gen.avatar.height, gen.avatar.width, 3), np.uint8)
    costs = []
    for i in range(50):
        t = time.perf_counter()
        video_frame(AvatarFrame(i, img, None, 48000, 0))
        costs.append(1000 * (time.perf_counter() - t))
    reader = asyncio.create_task(consume())
    await asyncio.sleep(1.0)
    probe.__init__()

    async def push(pcm, rate):
        await gen.push_audio(rtc.AudioFrame(pcm.tobytes(), rate, 1, len(pcm)))

    async def end():
        await gen.push_audio(AudioSegmentEnd())

    pushed = await push_realtime(utts, push, end, probe)
    probe.convert_ms = costs
    result = probe.result(pushed)
    reader.cancel()
    await gen.aclose()
    return result


def run(args: argparse.Namespace) -> int:
    utts = utterances()
    out: dict = {"bench": "frameworks", "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
                 "machine": f"{platform.machine()} {multiprocessing.cpu_count()} cores",
                 "load_avg": round(os.getloadavg()[0], 2)}
    for name, fn, module in (("pipecat_inprocess", bench_pipecat, "pipecat"),
                             ("pipecat_remote", lambda u: bench_pipecat(u, remote=True), "pipecat"),
                             ("livekit_generator", bench_livekit, "livekit.agents")):
        if args.only and not name.startswith(args.only):
            continue
        try:
            __import__(module)
        except ImportError:
            out[name] = {"skipped": f"{module} is not installed"}
            continue
        out[name] = asyncio.run(fn(utts))
        if not args.json:
            print(name, out[name], flush=True)
    out["load_avg_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(out))
    return 0
