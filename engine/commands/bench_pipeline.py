"""``facecast bench pipeline``: one live session, real renderer, VP8 + Opus encode, real time.

Speech (espeak-ng utterances with silent gaps) is pushed in 20 ms chunks at
real-time pace, as a microphone or a streaming TTS would deliver it. Every
output frame is encoded exactly as the WebRTC track does it (aiortc's VP8
encoder in a worker thread, Opus for the audio). Measured:

- per-stage time (ms p50/p95/p99): speech (resample + generator), motion
  (compose), render, frame (whole tick), vp8 encode;
- steady fps and frame-interval jitter; deadline misses, repeated/skipped frames;
- audio-in → frame-out latency: from the arrival of a frame's middle audio
  sample to the frame being handed to the encoder (at its due time), and to
  its encoded packet;
- speech onset → first moving frame: the push of the chunk holding an
  utterance's first voiced sample to the hand-off of the first frame whose
  mouth moves;
- CPU per session: process CPU time / wall time (1.0 = one core).

The last stdout line is one JSON object (with ``--json``).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import json
import multiprocessing
import os
import platform
import time
from datetime import datetime, timezone
from fractions import Fraction

import numpy as np

from engine.audio import MODEL_RATE, OUTPUT_RATE
from engine.audio.pcm import float_to_s16

SENTENCES = [
    "Hello, and welcome to the streaming avatar benchmark.",
    "The quick brown fox jumps over the lazy dog.",
    "Audio is the master clock, so lips and voice stay together.",
    "Please tell me what you would like to talk about today.",
    "This sentence is a little longer, so that the model has some context to work with.",
]
MOUTH = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthStretchLeft", "mouthStretchRight",
         "mouthLowerDownLeft", "mouthLowerDownRight", "mouthUpperUpLeft", "mouthUpperUpRight")
MOVING = 0.02        # a mouth/jaw weight above this is a moving mouth
ONSET_DBFS = -35.0   # an utterance's first 10 ms frame above this level is its onset
GAP_S = 1.5          # silence between utterances


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=float, default=60.0, help="measured duration (default 60)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds not measured at the start")
    parser.add_argument("--avatar", default=None, help="avatar file (default: render.avatar)")
    parser.add_argument("--codec", default="vp8", choices=("vp8", "h264", "none"))
    parser.add_argument("--busy", type=int, default=0, help="CPU-burning processes to run beside it")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")


def _burn(stop) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100000):
            x += 1


def _pct(values, qs=(50, 95, 99)) -> dict:
    if len(values) == 0:
        return {f"p{q}": None for q in qs}
    a = np.asarray(values, np.float64) * 1000.0
    return {f"p{q}": round(float(np.percentile(a, q)), 2) for q in qs}


def _utterances(config) -> list[np.ndarray]:
    from engine.audio.tts import Speaker
    speaker = Speaker(config.tts)
    return [speaker.synthesize(s) for s in SENTENCES]


def _onset(x: np.ndarray, sr: int) -> int:
    n = sr // 100
    frames = x[: len(x) // n * n].reshape(-1, n)
    level = 20 * np.log10(np.sqrt((frames.astype(np.float64) ** 2).mean(1)) + 1e-12)
    voiced = np.nonzero(level > ONSET_DBFS)[0]
    return int(voiced[0] * n) if len(voiced) else 0


def _encoder(codec: str):
    if codec == "vp8":
        from aiortc.codecs.vpx import Vp8Encoder
        return Vp8Encoder()
    if codec == "h264":
        from aiortc.codecs.h264 import H264Encoder
        return H264Encoder()
    return None


async def _bench(args) -> dict:
    import av
    from aiortc.codecs.opus import OpusEncoder

    from engine.config import load_config, replace
    from engine.metrics import Metrics
    from engine.motion.space import INDEX
    from engine.session import Session

    config = load_config(args.config)
    if args.avatar:
        config = replace(config, render={"avatar": args.avatar})
    utts = _utterances(config)
    sr = MODEL_RATE
    metrics = Metrics(keep_samples=True)
    session = Session(config, mode="assistant", metrics=metrics)
    await session.start()
    session.arrivals = collections.deque()   # keep every speech frame's audio arrival, not the last 256
    clock = session.clock
    fps = session.fps
    encoder, opus = _encoder(args.codec), OpusEncoder()
    loop = asyncio.get_running_loop()
    mouth_idx = [INDEX[n] for n in MOUTH]
    onsets: list[float] = []            # wall time the onset chunk was pushed
    first_moving: list[float] = []      # wall time of the first moving frame's hand-off, per onset
    handoff: dict[int, float] = {}
    encoded_at: dict[int, float] = {}
    encode_s: list[float] = []
    frame_walls: list[float] = []
    t_start = time.monotonic()
    t_measure = t_start + args.warmup
    t_end = t_measure + args.seconds
    done = asyncio.Event()

    async def speak() -> None:
        i = 0
        chunk = sr // 50
        while time.monotonic() < t_end:
            x = utts[i % len(utts)]
            i += 1
            onset = _onset(x, sr)
            t0 = time.monotonic()
            for j in range(0, len(x), chunk):
                await asyncio.sleep(max(0.0, t0 + j / sr - time.monotonic()))
                session.push_speech(x[j:j + chunk], sr)
                if j <= onset < j + chunk and time.monotonic() > t_measure:
                    onsets.append(time.monotonic())
            session.end_segment()
            await asyncio.sleep(len(x) / sr - (time.monotonic() - t0) + GAP_S)
        done.set()

    async def consume() -> None:
        frames = session.video_frames(capacity=8)
        waiting_onset = 0
        async for frame in frames:
            due_wall = clock.to_wall(clock.frame_time(frame.pts))
            await asyncio.sleep(max(0.0, due_wall - time.monotonic()))   # the track releases at due time
            now = time.monotonic()
            handoff[frame.pts] = now
            if now > t_measure:
                frame_walls.append(now)
            moving = float(frame.motion.blendshapes[mouth_idx].max()) > MOVING
            if waiting_onset < len(onsets) and moving and now >= onsets[waiting_onset]:
                first_moving.append(now)
                waiting_onset = len(onsets)
            if encoder is not None:
                vf = av.VideoFrame.from_ndarray(frame.image, format="rgb24")
                vf.pts, vf.time_base = frame.pts * 3600, Fraction(1, 90000)
                t0 = time.perf_counter()
                await loop.run_in_executor(None, encoder.encode, vf, False)
                encode_s.append(time.perf_counter() - t0)
                encoded_at[frame.pts] = time.monotonic()
            pcm = float_to_s16(frame.audio.samples)
            for j in range(0, len(pcm), 960):
                af = av.AudioFrame.from_ndarray(pcm[None, j:j + 960], format="s16", layout="mono")
                af.sample_rate, af.pts, af.time_base = OUTPUT_RATE, frame.audio.pts + j, Fraction(1, OUTPUT_RATE)
                opus.encode(af)
            if done.is_set():
                return

    stop = multiprocessing.Event()
    burners = [multiprocessing.Process(target=_burn, args=(stop,), daemon=True) for _ in range(args.busy)]
    for b in burners:
        b.start()
    cpu0, wall0 = None, None
    consumer = asyncio.create_task(consume())
    speaker = asyncio.create_task(speak())
    await asyncio.sleep(args.warmup)
    cpu0, wall0 = time.process_time(), time.monotonic()
    misses0, repeated0, skipped0 = (session.render_stage.deadline_misses, session.render_stage.repeated,
                                    session.skipped_ticks)
    for s in metrics.samples.values():
        s.clear()
    await done.wait()
    cpu = (time.process_time() - cpu0) / (time.monotonic() - wall0)
    await consumer
    speaker.cancel()
    stop.set()
    for b in burners:
        b.join(timeout=2)
    rs = session.render_stage
    silent_dropped = session.speech.silent_frames_dropped
    margin_end = session.speech.start_margin_s
    arrivals = dict(session.arrivals)
    await session.close()

    lat_handoff = [handoff[k] - a for k, a in arrivals.items() if k in handoff and a >= t_measure]
    lat_encoded = [encoded_at[k] - a for k, a in arrivals.items() if k in encoded_at and a >= t_measure]
    lat_all = metrics.samples.get("audio_to_frame", [])
    intervals = np.diff(frame_walls) if len(frame_walls) > 1 else np.zeros(0)
    onset_lat = [f - o for o, f in zip(onsets, first_moving)]
    stages = {name: _pct(v) for name, v in sorted(metrics.samples.items()) if name != "audio_to_frame"}
    stages[f"{args.codec}_encode"] = _pct(encode_s)
    return {
        "benchmark": "pipeline",
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cpus",
        "seconds": args.seconds, "size": f"{config.video.width}x{config.video.height}", "fps_target": fps,
        "codec": args.codec, "busy_processes": args.busy,
        "stages_ms": stages,
        "steady_fps": round((len(frame_walls) - 1) / (frame_walls[-1] - frame_walls[0]), 2) if len(frame_walls) > 1 else None,
        "frame_interval_ms": _pct(intervals),
        "audio_in_to_frame_out_ms": _pct(lat_handoff),
        "audio_in_to_encoded_ms": _pct(lat_encoded),
        "audio_in_to_frame_published_ms": _pct(lat_all),
        "speech_onset_to_first_moving_frame_ms": {
            "n": len(onset_lat), "mean": round(float(np.mean(onset_lat)) * 1000, 1) if onset_lat else None,
            "max": round(float(np.max(onset_lat)) * 1000, 1) if onset_lat else None},
        "deadline_misses": rs.deadline_misses - misses0,
        "repeated_frames": rs.repeated - repeated0,
        "skipped_frames": session.skipped_ticks - skipped0,
        "silent_frames_dropped_to_catch_up": silent_dropped,
        "jitter_margin_ms_at_end": round(margin_end * 1000, 1),
        "speech_underrun_frames": int(metrics.underruns._value.get()),
        "cpu_cores_per_session": round(cpu, 3),
        "generator": type(session._generator).__name__,
    }


def run(args: argparse.Namespace) -> int:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    result = asyncio.run(_bench(args))
    if not args.json:
        for k, v in result.items():
            print(f"{k}: {v}")
    print(json.dumps(result))
    return 0
