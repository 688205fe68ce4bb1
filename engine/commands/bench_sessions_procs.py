"""``facecast bench sessions --processes N``: the sessions benchmark over N server processes.

One Python process runs every session's frame clock on one event loop and its Python work
under one GIL, so it cannot use more than about one core however many the machine has. A
machine's capacity is therefore measured with its sessions spread over N processes, each
exactly what ``bench_sessions`` runs in one (the same ``_Runner``: real sessions, the shared
model, the transport's framing), as N ``facecast serve`` processes or N cluster workers on one
node would hold them. Level L puts L // N sessions (+1 on the first L % N) in each process; all
processes measure the same window, and a level holds under the one-process rule applied to the
pooled frames: p95 lateness of every frame of every process ≤ the budget, skipped + repeated
ticks and underruns each ≤ 1 % of all frames.
"""
from __future__ import annotations

import asyncio
import multiprocessing as mp
import os
from dataclasses import asdict

import numpy as np

from engine.commands.bench_sessions import MAX_BAD_FRACTION, SessionsBenchOptions


def shares(level: int, processes: int) -> list[int]:
    """Sessions per process for ``level`` sessions over ``processes`` processes."""
    return [level // processes + (1 if i < level % processes else 0) for i in range(processes)]


def _child(config, options: dict, my_shares: list[int], conn) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        asyncio.run(_child_main(config, SessionsBenchOptions(**options), my_shares, conn))
    except Exception as e:   # the parent must hear about it instead of waiting forever
        conn.send(("error", f"{type(e).__name__}: {e}"))


async def _child_main(config, options, my_shares, conn) -> None:
    from engine.commands.bench_sessions import _Runner, _utterances
    runner = _Runner(config, options, _utterances(config))
    loop = asyncio.get_running_loop()
    try:
        for share in my_shares:
            while len(runner.sessions) < share:
                await runner.add_session()
            conn.send(("ready", len(runner.sessions)))
            if await loop.run_in_executor(None, conn.recv) != "go":
                break
            if share:
                result = await runner.measure()
                conn.send(("result", result, runner.last_lateness_ms.tolist(), runner.renderer_class))
            else:
                await asyncio.sleep(options.warmup + options.seconds)
                conn.send(("result", None, [], None))
            if await loop.run_in_executor(None, conn.recv) != "next":
                break
    finally:
        await runner.close()


def _pool(level: int, results: list[dict], lateness: np.ndarray, budget_ms: float) -> dict:
    expected = sum(r["frames_expected"] for r in results)
    skipped = sum(r["skipped_ticks"] for r in results)
    repeated = sum(r["repeated_frames"] for r in results)
    underruns = sum(r["speech_underruns"] for r in results)
    p95 = float(np.percentile(lateness, 95)) if len(lateness) else float("inf")
    holds = (p95 <= budget_ms and (skipped + repeated) <= MAX_BAD_FRACTION * expected
             and underruns <= MAX_BAD_FRACTION * expected)
    cpu = sum(r["cpu_cores"] for r in results)
    batches = [r["model_calls_per_run"] for r in results if r.get("model_calls_per_run")]
    return {
        "sessions": level, "holds": bool(holds),
        "sessions_per_process": [r["sessions"] for r in results],
        "frame_lateness_ms": {q: round(float(np.percentile(lateness, int(q[1:]))), 1) if len(lateness) else None
                              for q in ("p50", "p95", "p99")},
        "frames_per_s_per_session": round(sum(r["frames_per_s_per_session"] * r["sessions"] for r in results) / level, 2),
        "frames_expected": expected, "frames_delivered": sum(r["frames_delivered"] for r in results),
        "skipped_ticks": skipped, "repeated_frames": repeated, "speech_underruns": underruns,
        "cpu_cores": round(cpu, 2), "cpu_cores_per_session": round(cpu / level, 3),
        "bytes_per_s_per_session": round(sum(r["bytes_per_s_per_session"] * r["sessions"] for r in results) / level),
        "rss_mb": round(sum(r["rss_mb"] or 0 for r in results), 1),
        "model_calls_per_run": round(float(np.mean(batches)), 2) if batches else None,
    }


def bench_sessions_procs(config, options: SessionsBenchOptions, processes: int) -> tuple[list[dict], int, str | None]:
    """Run the levels over ``processes`` processes (each gets ``config``); returns (per-level
    results, sessions held, the renderer class the video sessions ran)."""
    budget_ms = config.pipeline.deadline_slack_ms
    if processes < 2:
        raise ValueError(f"processes must be >= 2 (1 is the plain benchmark), got {processes}")
    levels = sorted(set(options.levels))
    if not levels or levels[0] < 1:
        raise ValueError(f"levels must be positive session counts, got {options.levels}")
    per_level = [shares(level, processes) for level in levels]
    ctx = mp.get_context("spawn")
    pipes, procs = [], []
    for i in range(processes):
        parent, child = ctx.Pipe()
        p = ctx.Process(target=_child, args=(config, asdict(options), [s[i] for s in per_level], child),
                        name=f"bench-sessions-{i}", daemon=True)
        p.start()
        pipes.append(parent)
        procs.append(p)

    def recv(conn, kind: str):
        msg = conn.recv()
        if msg[0] == "error":
            raise RuntimeError(f"a benchmark process failed: {msg[1]}")
        assert msg[0] == kind, msg
        return msg

    results, held, renderer_class = [], 0, None
    try:
        for li, level in enumerate(levels):
            for conn in pipes:
                recv(conn, "ready")
            for conn in pipes:
                conn.send("go")
            got = [recv(conn, "result") for conn in pipes]
            measured = [(r, lat) for _, r, lat, _ in got if r is not None]
            renderer_class = renderer_class or next((c for *_, c in got if c), None)
            lateness = np.concatenate([np.asarray(lat, float) for _, lat in measured]) if measured else np.zeros(0)
            r = _pool(level, [m for m, _ in measured], lateness, budget_ms)
            results.append(r)
            print(f"{level:3d} sessions over {processes} processes {r['sessions_per_process']}: "
                  f"{'holds' if r['holds'] else 'FAILS'}  lateness {r['frame_lateness_ms']}  cpu {r['cpu_cores']}",
                  flush=True)
            if r["holds"]:
                held = level
            last = li == len(levels) - 1 or (not r["holds"] and options.stop_at_first_failure)
            for conn in pipes:
                conn.send("stop" if last else "next")
            if last:
                break
    finally:
        for p in procs:
            p.join(timeout=30)
            if p.is_alive():
                p.terminate()
    return results, held, renderer_class
