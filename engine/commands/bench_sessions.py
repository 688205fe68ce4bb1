"""``facecast bench sessions``: how many live sessions one machine holds at the frame budget.

Sessions run in this process on one event loop, exactly as ``facecast serve`` runs them (real
time clocks, the configured motion model, one speech worker thread per session). Every session
speaks all the time (espeak-ng sentences pushed in 100 ms chunks at real-time pace, 300 ms ahead
of playback as a streaming TTS delivers them; 0.5 s pauses).
Each session's output is consumed the way its transport consumes it:

- ``--mode motion`` (``output="motion"``: no renderer): each frame is framed as the WebSocket
  sends it (244-byte MotionFrame + s16le audio); with ``--transport webrtc`` its audio is
  Opus-encoded instead (aiortc's encoder) and the frame's 244 bytes go to the data channel;
- ``--mode video``: each frame is rendered by the configured renderer (``--renderer warp|splat``,
  ``--size N`` for N×N; default: the config's) and VP8-encoded (aiortc's encoder, worker thread),
  its audio Opus-encoded, as the WebRTC tracks do.

The session count is raised level by level (``--levels``; sessions of a level keep running into
the next). A level *holds* when, over ``--seconds`` after ``--warmup``:
  p95 of every frame's lateness (consumer receipt − the frame's due time) ≤ ``deadline_slack_ms``,
  and skipped + repeated ticks ≤ 1 % of frames, and speech underruns ≤ 1 % of frames.
The last stdout line is one JSON object (``--json``). ``bench_sessions(config, options)`` is the
plain function (e.g. for a cluster driver that runs it per node).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from fractions import Fraction

import numpy as np

from engine.audio import MODEL_RATE, OUTPUT_RATE
from engine.audio.pcm import float_to_s16, float_to_s16le

SENTENCES = ("Hello, and welcome to the session benchmark.",
             "Every one of these sessions is speaking at the same time.",
             "The quick brown fox jumps over the lazy dog.")
PAUSE_S = 0.5
CHUNK_S = 0.1
PUSH_LEAD_S = 0.3   # speech reaches the session this far ahead of real time (as a streaming TTS does)
MAX_BAD_FRACTION = 0.01   # skipped + repeated ticks, and underruns, allowed per level


@dataclass
class SessionsBenchOptions:
    mode: str = "motion"                  # the sessions' output: "motion" or "video"
    transport: str = "ws"                 # motion mode: "ws" (PCM framing) or "webrtc" (Opus)
    levels: tuple[int, ...] = (1, 2, 4, 8, 16, 24, 32, 40, 48, 64)
    seconds: float = 8.0                  # measured per level
    warmup: float = 2.0                   # after adding a level's sessions, not measured
    avatar: str | None = None
    stop_at_first_failure: bool = True
    processes: int = 1                    # >1: the sessions spread over this many processes (bench_sessions_procs)


@dataclass
class _Tally:
    """What one session's consumer saw during a measurement window."""
    lateness: list[float] = field(default_factory=list)
    frames: int = 0
    bytes: int = 0


class _Runner:
    def __init__(self, config, options: SessionsBenchOptions, utterances: list[np.ndarray]) -> None:
        self.config, self.options, self.utts = config, options, utterances
        self.sessions: list = []
        self.tallies: list[_Tally] = []
        self.tasks: list[asyncio.Task] = []
        self.measuring = False
        self.renderer_class: str | None = None    # what the sessions really render with (video mode)

    async def add_session(self) -> None:
        from engine.session import Session
        session = Session(self.config, avatar_path=self.options.avatar, output=self.options.mode)
        await session.start()
        if session.render_stage is not None:
            self.renderer_class = type(session.render_stage.renderer).__name__
        tally = _Tally()
        self.sessions.append(session)
        self.tallies.append(tally)
        self.tasks.append(asyncio.create_task(self._speak(session)))
        self.tasks.append(asyncio.create_task(self._consume(session, tally)))

    async def _speak(self, session) -> None:
        i = random.randrange(len(self.utts))
        await asyncio.sleep(random.uniform(0, 1.0))
        chunk = int(CHUNK_S * MODEL_RATE)
        while True:
            x = self.utts[i % len(self.utts)]
            i += 1
            t0 = time.monotonic()
            for j in range(0, len(x), chunk):
                await asyncio.sleep(max(0.0, t0 + j / MODEL_RATE - PUSH_LEAD_S - time.monotonic()))
                session.push_speech(x[j:j + chunk], MODEL_RATE)
            session.end_segment()
            await asyncio.sleep(max(0.0, t0 + len(x) / MODEL_RATE + PAUSE_S - time.monotonic()))

    async def _consume(self, session, tally: _Tally) -> None:
        import av
        from aiortc.codecs.opus import OpusEncoder
        loop = asyncio.get_running_loop()
        clock = session.clock
        video = self.options.mode == "video"
        opus = OpusEncoder() if video or self.options.transport == "webrtc" else None
        vp8 = None
        if video:
            from aiortc.codecs.vpx import Vp8Encoder
            vp8 = Vp8Encoder()
        frames = session.video_frames(capacity=8) if video else session.motion_frames(capacity=8)
        async for frame in frames:
            late = time.monotonic() - clock.to_wall(clock.frame_time(frame.pts))
            n = 0
            if vp8 is not None:
                vf = av.VideoFrame.from_ndarray(frame.image, format="rgb24")
                vf.pts, vf.time_base = frame.pts * 3600, Fraction(1, 90000)
                payloads, _ = await loop.run_in_executor(None, vp8.encode, vf, False)
                n += sum(len(p) for p in payloads)
            else:
                n += len(frame.motion.to_bytes(frame.pts))
            if opus is not None:
                pcm = float_to_s16(frame.audio.samples)
                for j in range(0, len(pcm), 960):
                    af = av.AudioFrame.from_ndarray(pcm[None, j:j + 960], format="s16", layout="mono")
                    af.sample_rate, af.pts, af.time_base = OUTPUT_RATE, frame.audio.pts + j, Fraction(1, OUTPUT_RATE)
                    payloads, _ = opus.encode(af)
                    n += sum(len(p) for p in payloads)
            else:
                n += len(float_to_s16le(frame.audio.samples))
            if self.measuring:
                tally.lateness.append(late)
                tally.frames += 1
                tally.bytes += n

    def _model_batches(self) -> tuple[int, int]:
        """(model runs, session calls served) of the process's shared model, (0, 0) without one."""
        if not self.sessions:
            return 0, 0
        runner = getattr(getattr(self.sessions[0]._generator, "runtime", None), "runner", None)
        return getattr(runner, "calls", 0), getattr(runner, "items", 0)

    def _counters(self) -> tuple[int, int, int]:
        skipped = sum(s.skipped_ticks for s in self.sessions)
        repeated = sum(s.render_stage.repeated for s in self.sessions if s.render_stage is not None)
        underruns = sum(int(s.metrics.underruns._value.get()) for s in self.sessions)   # (own Metrics each)
        return skipped, repeated, underruns

    async def measure(self) -> dict:
        o = self.options
        await asyncio.sleep(o.warmup)
        for t in self.tallies:
            t.lateness.clear()
            t.frames = t.bytes = 0
        before = self._counters()
        runs0, items0 = self._model_batches()
        cpu0, wall0 = time.process_time(), time.monotonic()
        self.measuring = True
        await asyncio.sleep(o.seconds)
        self.measuring = False
        wall = time.monotonic() - wall0
        cpu = (time.process_time() - cpu0) / wall
        skipped, repeated, underruns = (a - b for a, b in zip(self._counters(), before))
        runs, items = (a - b for a, b in zip(self._model_batches(), (runs0, items0)))
        lateness = np.concatenate([np.asarray(t.lateness) for t in self.tallies]) * 1000.0
        self.last_lateness_ms = lateness     # (pooled across processes by bench_sessions_procs)
        frames = sum(t.frames for t in self.tallies)
        expected = len(self.sessions) * wall * self.sessions[0].fps
        budget_ms = self.config.pipeline.deadline_slack_ms
        p95 = float(np.percentile(lateness, 95)) if len(lateness) else float("inf")
        bad = (skipped + repeated) / max(1.0, expected)
        holds = p95 <= budget_ms and bad <= MAX_BAD_FRACTION and underruns <= MAX_BAD_FRACTION * expected
        return {
            "sessions": len(self.sessions), "holds": bool(holds),
            "frame_lateness_ms": {q: round(float(np.percentile(lateness, int(q[1:]))), 1) if len(lateness) else None
                                  for q in ("p50", "p95", "p99")},
            "frames_per_s_per_session": round(frames / wall / len(self.sessions), 2),
            "frames_expected": int(expected), "frames_delivered": frames,
            "skipped_ticks": skipped, "repeated_frames": repeated, "speech_underruns": underruns,
            "cpu_cores": round(cpu, 2), "cpu_cores_per_session": round(cpu / len(self.sessions), 3),
            "bytes_per_s_per_session": round(sum(t.bytes for t in self.tallies) / wall / len(self.sessions)),
            "rss_mb": _rss_mb(),
            "model_calls_per_run": round(items / runs, 2) if runs else None,   # mean batch across sessions
        }

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        for s in self.sessions:
            await s.close()


def _rss_mb() -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _utterances(config) -> list[np.ndarray]:
    from engine.audio.tts import Speaker
    speaker = Speaker(config.tts)
    return [speaker.synthesize(s) for s in SENTENCES]


async def _one_process(config, options: SessionsBenchOptions, levels: list[int]) -> tuple[list[dict], int, str | None]:
    runner = _Runner(config, options, _utterances(config))
    results, held = [], 0
    try:
        for level in levels:
            while len(runner.sessions) < level:
                await runner.add_session()
            r = await runner.measure()
            results.append(r)
            if r["holds"]:
                held = level
            elif options.stop_at_first_failure:
                break
    finally:
        await runner.close()
    return results, held, runner.renderer_class


async def bench_sessions(config, options: SessionsBenchOptions) -> dict:
    """Raise the session count through ``options.levels``; returns the JSON-able result.
    ``options.processes`` > 1 spreads the sessions over that many processes (each gets ``config``)."""
    if options.mode not in ("motion", "video"):
        raise ValueError(f"mode must be 'motion' or 'video', got {options.mode!r}")
    if options.transport not in ("ws", "webrtc"):
        raise ValueError(f"transport must be 'ws' or 'webrtc', got {options.transport!r}")
    levels = sorted(set(options.levels))
    if not levels or levels[0] < 1:
        raise ValueError(f"levels must be positive session counts, got {options.levels}")
    if options.processes > 1:
        from engine.commands.bench_sessions_procs import bench_sessions_procs
        results, held, renderer_class = await asyncio.get_running_loop().run_in_executor(
            None, bench_sessions_procs, config, options, options.processes)
    else:
        results, held, renderer_class = await _one_process(config, options, levels)
    transport = "webrtc" if options.mode == "video" else options.transport
    ok = [r for r in results if r["holds"]]
    return {
        "benchmark": "sessions", "mode": options.mode, "transport": transport,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus",
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "size": f"{config.video.width}x{config.video.height}" if options.mode == "video" else None,
        "renderer": config.render.renderer if options.mode == "video" else None,
        "renderer_class": renderer_class,
        "fps": config.video.fps, "frame_budget": f"p95 lateness <= {config.pipeline.deadline_slack_ms} ms "
                                                 f"after due, <= {MAX_BAD_FRACTION:.0%} skipped/repeated/underrun",
        "sessions_held": held,
        "bytes_per_s_per_session": ok[-1]["bytes_per_s_per_session"] if ok else None,
        "levels": results, "options": asdict(options),
    }


def video_config(config, renderer: str | None = None, size: int | None = None):
    """``config`` with ``render.renderer`` and an N×N ``video`` size set where given (validated:
    a bad value raises ConfigError)."""
    from engine.config import replace
    sections = {}
    if renderer is not None:
        sections["render"] = {"renderer": renderer}
    if size is not None:
        sections["video"] = {"width": size, "height": size}
    return replace(config, **sections) if sections else config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--mode", default="motion", choices=("motion", "video"), help="the sessions' output")
    parser.add_argument("--transport", default="ws", choices=("ws", "webrtc"),
                        help="motion mode: frame as the WebSocket does (PCM) or as WebRTC does (Opus)")
    parser.add_argument("--levels", default=None,
                        help="comma-separated session counts to try (default motion: 1,2,4,...,64; video: 1,2,3,4)")
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=2.0, help="unmeasured seconds after adding sessions")
    parser.add_argument("--avatar", default=None, help="avatar file (default: render.avatar)")
    parser.add_argument("--renderer", default=None, choices=("warp", "splat"),
                        help="video mode: the renderer (default: render.renderer of the config)")
    parser.add_argument("--size", type=int, default=None, metavar="N",
                        help="video mode: render and encode N×N (default: video.width × video.height)")
    parser.add_argument("--all-levels", action="store_true", help="keep going after a level fails")
    parser.add_argument("--processes", type=int, default=1,
                        help="spread the sessions over this many server processes (one process uses ~1 core)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")


def run(args: argparse.Namespace) -> int:
    from engine.config import ConfigError, load_config
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        config = video_config(load_config(args.config), args.renderer, args.size)
    except ConfigError as e:
        raise SystemExit(f"facecast bench sessions: {e}") from None
    if args.levels:
        try:
            levels = tuple(int(x) for x in args.levels.split(","))
        except ValueError:
            raise SystemExit(f"--levels must be comma-separated integers, got {args.levels!r}") from None
    else:
        levels = SessionsBenchOptions.levels if args.mode == "motion" else (1, 2, 3, 4)
    options = SessionsBenchOptions(mode=args.mode, transport=args.transport, levels=levels, seconds=args.seconds,
                                   warmup=args.warmup, avatar=args.avatar, stop_at_first_failure=not args.all_levels,
                                   processes=args.processes)
    result = asyncio.run(bench_sessions(config, options))
    if not args.json:
        for r in result["levels"]:
            print(f"{r['sessions']:3d} sessions: {'holds' if r['holds'] else 'FAILS'}  lateness {r['frame_lateness_ms']}  "
                  f"cpu {r['cpu_cores']}  {r['bytes_per_s_per_session']} B/s/session")
    print(json.dumps(result))
    return 0
