"""``facecast bench coldstart``: how long a freshly started server takes to be useful.

Each run starts ``python -m engine.cli serve`` as a child process on a free loopback port and
measures, from the moment the process is started:

* ``healthz_s``: until ``GET /healthz`` answers ``{"ok": true}``;
* ``first_frame_s``: until a real aiortc peer (recvonly audio + video, offer POSTed to
  ``/v1/offer``) has decoded the first video frame of its (first) session.

It also times, in fresh child interpreters, ``import`` of the model's streaming module and of its
runtime module (``-X importtime`` cumulative of that module, and the wall time of the import
statement including the packages above it), and reports whether importing the server and those
modules pulls in torch, whether the running server process mapped torch's libraries, and whether
its log mentions torch. Medians over ``--runs`` (default 3); ``--json`` prints one JSON object
as the last line. The hidden ``--server-cwd`` / ``--stream-module`` / ``--runtime-module`` options
run the same measurement against another checkout (the child imports ``engine`` from its cwd).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from engine.config import REPO_ROOT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--runs", type=int, default=3, help="server starts to measure (median reported)")
    parser.add_argument("--timeout", type=float, default=180.0, help="seconds to wait for each milestone")
    parser.add_argument("--json", action="store_true", help="print one JSON object as the last line")
    parser.add_argument("--server-cwd", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--stream-module", default="engine.motion.model.stream", help=argparse.SUPPRESS)
    parser.add_argument("--runtime-module", default="engine.motion.model.runtime", help=argparse.SUPPRESS)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _python(code: str, cwd: Path, *flags: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *flags, "-c", code], cwd=cwd, capture_output=True, text=True,
                          check=True, env=_child_env())


def _child_env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)           # the child imports engine from its cwd, nothing else
    return env


def import_time(module: str, cwd: Path) -> dict:
    """Fresh interpreter: -X importtime cumulative of ``module`` and the wall time of ``import``."""
    code = (f"import time, sys; t = time.perf_counter(); import {module}; "
            f"print(time.perf_counter() - t, 'torch' in sys.modules)")
    p = _python(code, cwd, "-X", "importtime")
    wall, torch = p.stdout.split()
    cumulative_us = None
    for line in p.stderr.splitlines():
        parts = [x.strip() for x in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            cumulative_us = int(parts[1])
    return {"wall_s": float(wall), "cumulative_s": cumulative_us / 1e6 if cumulative_us else None,
            "imports_torch": torch == "True"}


def torch_on_import(modules: list[str], cwd: Path) -> bool:
    mods = ", ".join(modules)
    return _python(f"import {mods}, sys; print('torch' in sys.modules)", cwd).stdout.strip() == "True"


def _maps_torch(pid: int) -> bool | None:
    try:
        maps = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return None
    return "libtorch" in maps or "/torch/lib/" in maps


async def _wait_healthy(http, url: str, proc: subprocess.Popen, deadline: float) -> None:
    while time.perf_counter() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before /healthz answered")
        try:
            async with http.get(url + "/healthz") as r:
                if r.status == 200 and (await r.json()).get("ok") is True:
                    return
        except OSError:
            pass
        await asyncio.sleep(0.02)
    raise TimeoutError("/healthz did not answer ok in time")


async def first_frame(http, url: str, timeout: float) -> tuple[int, int]:
    """A recvonly aiortc peer: offer -> answer -> the first decoded video frame's size."""
    from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    got: asyncio.Future = asyncio.get_running_loop().create_future()
    readers = []

    async def read(track) -> None:
        frame = await track.recv()
        if not got.done():
            got.set_result(frame)

    @pc.on("track")
    def on_track(track) -> None:
        if track.kind == "video":
            readers.append(asyncio.ensure_future(read(track)))

    try:
        await pc.setLocalDescription(await pc.createOffer())
        body = {"sdp": pc.localDescription.sdp, "type": "offer"}
        async with http.post(url + "/v1/offer", json=body) as r:
            answer = await r.json()
            if r.status != 200:
                raise RuntimeError(f"/v1/offer answered {r.status}: {answer}")
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        frame = await asyncio.wait_for(got, timeout)
        return frame.width, frame.height
    finally:
        for t in readers:
            t.cancel()
        await pc.close()


def _stop(proc: subprocess.Popen) -> int:
    """SIGINT (aiohttp shuts down cleanly), then SIGTERM, then SIGKILL."""
    for sig, wait in ((signal.SIGINT, 20), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            break
        proc.send_signal(sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            continue
    return proc.returncode


async def one_run(cwd: Path, config: str | None, timeout: float) -> dict:
    import aiohttp
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    cmd = [sys.executable, "-m", "engine.cli", *(["--config", config] if config else []),
           "serve", "--port", str(port), "--host", "127.0.0.1"]
    with tempfile.TemporaryFile("w+") as log:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=cwd, stdout=log, stderr=subprocess.STDOUT, env=_child_env())
        try:
            async with aiohttp.ClientSession() as http:
                await _wait_healthy(http, url, proc, t0 + timeout)
                t_health = time.perf_counter() - t0
                size = await first_frame(http, url, timeout)
                t_frame = time.perf_counter() - t0
            mapped = _maps_torch(proc.pid)
        finally:
            code = _stop(proc)
        log.seek(0)
        text = log.read()
    return {"healthz_s": t_health, "first_frame_s": t_frame, "frame_size": list(size),
            "server_mapped_torch": mapped, "server_log_mentions_torch": "torch" in text.lower(),
            "exit_code": code}


def _median(runs: list[dict], key: str) -> float:
    return round(statistics.median(r[key] for r in runs), 3)


def bench(args) -> dict:
    cwd = Path(args.server_cwd).resolve() if args.server_cwd else REPO_ROOT
    # first: an untimed import of everything, which also writes the .pyc files of a fresh checkout
    torch_by_server = torch_on_import(["engine.server"], cwd)
    torch_imported = torch_on_import(["engine.server", args.stream_module, args.runtime_module], cwd)
    imports = {m: [import_time(m, cwd) for _ in range(args.runs)] for m in (args.stream_module, args.runtime_module)}
    runs = [asyncio.run(one_run(cwd, args.config, args.timeout)) for _ in range(args.runs)]
    return {"server_cwd": str(cwd), "runs": args.runs, "python": platform.python_version(),
            "healthz_s": _median(runs, "healthz_s"), "first_frame_s": _median(runs, "first_frame_s"),
            "import_s": {m: {"wall": _median(v, "wall_s"), "importtime_cumulative": _median(v, "cumulative_s")}
                         for m, v in imports.items()},
            "torch_imported_by_engine_server": torch_by_server,
            "torch_imported_by_server_modules": torch_imported,
            "server_mapped_torch": any(r["server_mapped_torch"] for r in runs),
            "server_log_mentions_torch": any(r["server_log_mentions_torch"] for r in runs),
            "per_run": [{k: (round(v, 3) if isinstance(v, float) else v) for k, v in r.items()} for r in runs]}


def run(args: argparse.Namespace) -> int:
    result = bench(args)
    if not args.json:
        print(f"server {result['server_cwd']}: /healthz {result['healthz_s']} s, "
              f"first video frame {result['first_frame_s']} s (median of {result['runs']})")
        for m, t in result["import_s"].items():
            print(f"import {m}: {t['wall']} s wall, {t['importtime_cumulative']} s -X importtime")
        print(f"torch imported by the server's modules: {result['torch_imported_by_server_modules']}, "
              f"mapped by the running server: {result['server_mapped_torch']}")
    print(json.dumps(result))
    return 0
