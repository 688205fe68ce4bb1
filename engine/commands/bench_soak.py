"""``facecast bench soak``: a live session under continuous speech for N minutes.

    facecast bench soak --minutes 60 [--json] [--interval-s 60]

One in-process Session on the real-time clock (as ``serve`` runs it); espeak-ng
utterances (``engine.audio.tts.Speaker``) are pushed in real time, looped, with
pauses between them; a consumer reads ``session.video_frames()`` like a viewer and
an event reader collects ``playback.finished``. Every ``--interval-s`` (a minute by
default) one row records: RSS, threads, open file descriptors, frames seen, A/V drift
(a frame's audio pts must be exactly its video pts × samples-per-frame; every
mismatch counts), underruns and skipped ticks. Playback-position error: for each
segment pushed and finished uninterrupted, |position_s reported − seconds pushed|.

The last stdout line is one JSON object (with ``--json``): ``rows`` and ``summary``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import random
import time


from engine.config import load_config

log = logging.getLogger(__name__)

UTTERANCES = [
    "Hello, and welcome. I am the facecast avatar, and I will keep talking for a while.",
    "The quick brown fox jumps over the lazy dog, and then it takes a short rest.",
    "Audio is the master clock: every video frame carries exactly its own slice of sound.",
    "Numbers are fine too: one, two, three, four, five, six, seven, eight, nine, ten.",
    "How long can this go on? As long as the memory, the threads and the files stay flat.",
]
CHUNK_S = 0.1   # speech is pushed in chunks of this length, each when it is due


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, required=True, help="how long to run (may be fractional)")
    parser.add_argument("--interval-s", type=float, default=60.0, help="seconds between rows (default 60)")
    parser.add_argument("--avatar", help="avatar file (default: render.avatar)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the utterance order and pauses")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON line")


def process_stats() -> dict:
    """RSS (MiB), thread count and open file descriptors of this process, from /proc."""
    rss_kb, threads = 0, 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss_kb = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return {"rss_mb": round(rss_kb / 1024, 1), "threads": threads, "fds": len(os.listdir("/proc/self/fd"))}


async def soak(config, minutes: float, interval_s: float = 60.0, avatar=None, seed: int = 0,
               progress=None) -> dict:
    from engine.audio.tts import OUTPUT_SAMPLE_RATE, Speaker
    from engine.session import Session

    rate = OUTPUT_SAMPLE_RATE
    speaker = Speaker(config.tts)
    clips = [speaker.synthesize(t) for t in UTTERANCES]
    session = Session(config, avatar_path=avatar, mode="assistant")
    await session.start()
    spf = session.samples_per_frame
    rng = random.Random(seed)
    duration = minutes * 60.0
    pushed_s: dict[int, float] = {}        # segment id -> seconds pushed
    st = {"frames": 0, "drift_mismatches": 0, "max_drift_samples": 0, "pts_gaps": 0, "last_pts": -1,
          "finished": 0, "interrupted": 0, "position_errors": [], "pushed_s": 0.0, "finished_pushed_s": 0.0,
          "finished_position_s": 0.0, "segments": 0}

    async def pusher() -> None:
        chunk = int(CHUNK_S * rate)
        t_next = time.monotonic()
        while True:
            clip = clips[rng.randrange(len(clips))]
            st["segments"] += 1
            seg = st["segments"]          # segments are numbered from 1 in push order
            for i in range(0, len(clip), chunk):
                await asyncio.sleep(max(0.0, t_next - time.monotonic()))
                part = clip[i:i + chunk]
                session.push_speech(part, rate)
                t_next += len(part) / rate
            session.end_segment()
            pushed_s[seg] = len(clip) / rate
            st["pushed_s"] += len(clip) / rate
            t_next += rng.uniform(0.3, 2.0)   # a pause between utterances

    async def viewer() -> None:
        async for frame in session.video_frames():
            st["frames"] += 1
            drift = frame.audio.pts - frame.pts * spf
            if drift or len(frame.audio.samples) != spf:
                st["drift_mismatches"] += 1
                st["max_drift_samples"] = max(st["max_drift_samples"], abs(drift))
            if st["last_pts"] >= 0 and frame.pts != st["last_pts"] + 1:
                st["pts_gaps"] += 1
            st["last_pts"] = frame.pts
            _ = int(frame.image[::64, ::64].sum())   # touch the image, as a viewer would

    async def events() -> None:
        async for ev in session.events():
            if ev.get("type") != "playback.finished":
                continue
            if ev["interrupted"]:
                st["interrupted"] += 1
                continue
            seg = ev["segment"]
            want = pushed_s.get(seg)
            if want is None:
                continue
            st["finished"] += 1
            st["finished_pushed_s"] += want
            st["finished_position_s"] += ev["position_s"]
            st["position_errors"].append(abs(ev["position_s"] - want))

    rows = []

    def row(t: float) -> dict:
        r = {"t_s": round(t, 1), **process_stats(), "frames": st["frames"],
             "drift_mismatches": st["drift_mismatches"], "segments_finished": st["finished"],
             "underruns": int(session.metrics.underruns._value.get()),
             "skipped_ticks": session.skipped_ticks, "repeated_frames": session.render_stage.repeated}
        rows.append(r)
        if progress:
            progress(r)
        return r

    tasks = [asyncio.create_task(f()) for f in (pusher, viewer, events)]
    t0 = time.monotonic()
    row(0.0)
    try:
        next_row = interval_s
        while True:
            now = time.monotonic() - t0
            if now >= duration:
                break
            await asyncio.sleep(max(0.0, min(next_row, duration) - now))
            now = time.monotonic() - t0
            if now >= next_row - 1e-3 and now < duration:
                row(now)
                next_row += interval_s
        row(time.monotonic() - t0)
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await session.close()
    rss = [r["rss_mb"] for r in rows]
    errs = st["position_errors"]
    wall = rows[-1]["t_s"]
    summary = {
        "minutes": minutes, "wall_s": wall, "frames": st["frames"], "fps": session.fps,
        "expected_frames": int(wall * session.fps),
        "drift_mismatches": st["drift_mismatches"], "max_drift_samples": st["max_drift_samples"],
        "pts_gaps": st["pts_gaps"], "skipped_ticks": session.skipped_ticks,
        "underruns": rows[-1]["underruns"], "repeated_frames": rows[-1]["repeated_frames"],
        "segments_pushed": st["segments"], "segments_finished": st["finished"],
        "segments_interrupted": st["interrupted"],
        "speech_pushed_finished_s": round(st["finished_pushed_s"], 3),
        "speech_position_reported_s": round(st["finished_position_s"], 3),
        "position_error_total_s": round(abs(st["finished_pushed_s"] - st["finished_position_s"]), 4),
        "position_error_max_s": round(max(errs), 4) if errs else None,
        "rss_mb_min": min(rss), "rss_mb_max": max(rss),
        "rss_change_pct": round(100.0 * (rss[-1] - rss[0]) / rss[0], 1) if rss[0] else None,
        "rss_change_pct_after_first_row": (round(100.0 * (rss[-1] - rss[1]) / rss[1], 1)
                                           if len(rss) > 2 and rss[1] else None),
        "threads_first_last": [rows[0]["threads"], rows[-1]["threads"]],
        "fds_first_last": [rows[0]["fds"], rows[-1]["fds"]],
    }
    return {"rows": rows, "summary": summary}


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    if args.minutes <= 0 or args.interval_s <= 0:
        print("facecast bench soak: --minutes and --interval-s must be positive")
        return 2
    config = load_config(args.config)

    def progress(r: dict) -> None:
        if not args.json:
            print(f"t={r['t_s']:7.1f}s rss={r['rss_mb']:.1f}MiB threads={r['threads']} fds={r['fds']} "
                  f"frames={r['frames']} drift_mismatches={r['drift_mismatches']} "
                  f"underruns={r['underruns']} skipped={r['skipped_ticks']}", flush=True)

    try:
        result = asyncio.run(soak(config, args.minutes, args.interval_s, args.avatar, args.seed, progress))
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"facecast bench soak: {e}")
        return 1
    s = result["summary"]
    if not args.json:
        print(f"soak {s['wall_s']:.0f}s: {s['frames']} frames, drift mismatches {s['drift_mismatches']}, "
              f"RSS {s['rss_mb_min']}-{s['rss_mb_max']} MiB ({s['rss_change_pct']:+}%), "
              f"position error total {s['position_error_total_s']} s")
    print(json.dumps(result))
    return 0
