"""``facecast bench cluster``: sessions per node at the p95 frame budget, and what the front
door's signalling costs. Everything real: a Ray cluster (a local one made here with
``ray.cluster_utils.Cluster``, or the one at ``address``), the front door app on a loopback port,
one aiortc viewer per session (so VP8 encoding is counted) and speech pushed over the relayed
WebSocket at real-time pace (so the model and the mouth are working).

Capacity ramp, on one worker node: add a session, let it settle, measure ``window_s``; the node
holds k sessions when, over the window, every session's frame time (motion + render) p95 is
within the frame budget (1/fps), no frame-clock tick was skipped, every viewer received at
least ``min_fps_ratio`` of the frame rate, and speech underruns (frames due while speaking whose
speech motion was not ready: the model fell behind) were at most ``max_underrun_ratio`` of the
frames made (5 %: the speech is pushed at real-time pace with no lead, so scheduling jitter
alone gives a few); sessions per node is the largest k for which every
step up to k held. The ramp goes on to ``max_sessions`` (every step is reported) unless a viewer
gets less than half the frame rate. The viewers run on the machine that runs the bench and decode
VP8: on a one-machine cluster their CPU counts against the node.

Splat video (``renderer="splat"``, or a config with ``[render] renderer = "splat"``): the same
ramp with the Gaussian-splat renderer in every session (numba CPU rasterizer, one render thread);
the sessions hold ``session_resources["splat.assistant"]`` (set here to the ramp's share).

Motion mode (``output="motion"``): the sessions are created with ``"output": "motion"`` (no
renderer; they hold ``session_resources["motion"]``) and there is no viewer: the motion stream
(one binary MotionFrame + PCM message per frame) arrives on the same relayed WebSocket, and its
rate is the received fps; no ``POST /v1/offer`` is timed.

Signalling: time to a ``session.ready`` for a new session (placement: a new actor process, then
the session start), ``POST /v1/offer`` for a viewer of an existing session (front door → worker →
answer), and WebSocket ping round trips answered by the front door itself (before a session is
bound) vs relayed to the worker (after): their difference is the relay's cost per message.
"""
from __future__ import annotations

import asyncio
import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np

from engine.config import Config, load_config, replace


@dataclass(frozen=True)
class BenchOptions:
    address: str = ""            # "" = start a local one-worker-node cluster here
    node_cpus: int = 0           # logical CPUs of that node (0 = this machine's)
    max_sessions: int = 6        # ramp limit per node
    window_s: float = 8.0        # measured seconds per step
    settle_s: float = 2.0        # after adding a session, before measuring
    pings: int = 30
    min_fps_ratio: float = 0.9
    max_underrun_ratio: float = 0.05   # speech underruns (the model behind) per frame made, at most
    config_path: str | None = None
    output: str = "video"        # "motion": motion-mode sessions (no renderer, no video viewer)
    renderer: str | None = None  # video: render.renderer ("warp", "splat"); None = the config's
    size: int | None = None      # video: N×N; None = the config's video.width × height


def _pct(values, q: float) -> float | None:
    a = np.asarray(values, np.float64)
    return round(float(np.percentile(a, q)), 3) if a.size else None


class _Viewer:
    """A receive-only aiortc peer that counts video frames (a real client's media path)."""

    def __init__(self) -> None:
        from aiortc import RTCConfiguration, RTCPeerConnection
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("audio", direction="recvonly")
        self.pc.addTransceiver("video", direction="recvonly")
        self.frames = 0
        self.tasks: list[asyncio.Task] = []

        @self.pc.on("track")
        def _track(track) -> None:
            self.tasks.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track) -> None:
        from aiortc.mediastreams import MediaStreamError
        try:
            while True:
                await track.recv()
                if track.kind == "video":
                    self.frames += 1
        except MediaStreamError:
            pass

    async def connect(self, http, base: str, session_id: str) -> float:
        from aiortc import RTCSessionDescription
        await self.pc.setLocalDescription(await self.pc.createOffer())
        t0 = time.perf_counter()
        resp = await http.post(f"{base}/v1/offer", json={"sdp": self.pc.localDescription.sdp, "type": "offer",
                                                          "session_id": session_id})
        answer = await resp.json()
        took = time.perf_counter() - t0
        if resp.status != 200:
            raise RuntimeError(f"offer refused: {answer}")
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        return took

    async def close(self) -> None:
        await self.pc.close()
        for t in self.tasks:
            t.cancel()


async def _event(ws, kind: str, timeout_s: float) -> dict:
    from aiohttp import WSMsgType

    async def read():
        while True:
            msg = await ws.receive()
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                raise RuntimeError(f"socket ended before {kind!r}")
            if msg.type == WSMsgType.BINARY:
                continue               # motion mode: the motion stream shares the socket
            event = json.loads(msg.data)
            if event.get("type") == kind:
                return event
            if event.get("type") == "error" and kind != "error":
                raise RuntimeError(f"error while waiting for {kind!r}: {event}")
    return await asyncio.wait_for(read(), timeout_s)


async def _ping_ms(ws, n: int) -> list[float]:
    out = []
    for i in range(n):
        t0 = time.perf_counter()
        await ws.send_json({"type": "ping", "id": i})
        while True:
            ev = await _event(ws, "pong", 10)
            if ev.get("id") == i:
                break
        out.append((time.perf_counter() - t0) * 1000)
    return out


class _MotionReader:
    """Counts the binary motion messages of a motion-mode socket (its only reader once started)."""

    def __init__(self, ws) -> None:
        self.ws, self.frames = ws, 0
        self.task = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        from aiohttp import WSMsgType
        async for msg in self.ws:
            if msg.type == WSMsgType.BINARY:
                self.frames += 1

    async def close(self) -> None:
        self.task.cancel()


async def _talk(ws, clip: bytes, chunk: int) -> None:
    """Speech at real-time pace, one segment per clip, for as long as the task runs."""
    while True:
        t0 = time.monotonic()
        for i, j in enumerate(range(0, len(clip), chunk)):
            await ws.send_bytes(clip[j:j + chunk])
            await asyncio.sleep(max(0.0, t0 + (i + 1) * 0.02 - time.monotonic()))
        await ws.send_json({"type": "segment.end"})


def _clip() -> bytes:
    from engine.audio.pcm import float_to_s16le
    from engine.audio.tts import Speaker
    x = Speaker().synthesize("The quick brown fox jumps over the lazy dog, and then it rests for a while.")
    return float_to_s16le(0.9 * x / (np.abs(x).max() + 1e-9))


async def _pool_ready(fd, timeout_s: float) -> None:
    """Wait until the warm pool has a started, warmed actor (a server that has been up a while)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        ready = [p for pool in fd.pool.idle.values() for p in pool
                 if p.ready is not None and p.ready.done() and not p.ready.cancelled() and p.ready.exception() is None]
        if ready:
            return
        await asyncio.sleep(0.2)


async def measure_on(config: Config, opts: BenchOptions, node_cpus: int) -> dict:
    """The benchmark against the Ray cluster this process is connected to (``config.cluster``
    says what a session holds)."""
    from aiohttp import ClientSession, web

    from engine.cluster.app import FRONTDOOR_KEY, create_cluster_app
    # the bench reads the workers' frame numbers itself: no load checks resetting them meanwhile
    config = replace(config, cluster={"saturated_frame_p95_ms": 0.0})
    app = create_cluster_app(config)
    fd = app[FRONTDOOR_KEY]
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    base, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/v1/ws"
    fps = config.video.fps
    budget_ms = 1000.0 / fps
    clip, chunk = _clip(), 2 * 16000 // 50          # 20 ms of 16 kHz s16le
    sessions, steps, created_s, offer_s = [], [], [], []
    local_ping = relay_ping = []
    renderer_classes: set = set()    # what the workers' sessions really render with
    motion = opts.output == "motion"
    try:
        await _pool_ready(fd, config.cluster.place_timeout_s)
        async with ClientSession() as http:
            for k in range(1, opts.max_sessions + 1):
                ws = await http.ws_connect(ws_url)
                if k == 1:
                    local_ping = await _ping_ms(ws, opts.pings)
                t0 = time.perf_counter()
                await ws.send_json({"type": "session.create", **({"output": "motion"} if motion else {})})
                ready = await _event(ws, "session.ready", config.cluster.place_timeout_s + 30)
                created_s.append(time.perf_counter() - t0)
                if k == 1:
                    relay_ping = await _ping_ms(ws, opts.pings)
                if motion:
                    viewer = _MotionReader(ws)
                else:
                    viewer = _Viewer()
                    offer_s.append(await viewer.connect(http, base, ready["session_id"]))
                talk = asyncio.ensure_future(_talk(ws, clip, chunk))
                sessions.append((ws, viewer, talk, fd.routes[ready["session_id"]].actor))
                await asyncio.sleep(opts.settle_s)
                before = [v.frames for _, v, _, _ in sessions]
                await asyncio.gather(*(a.stats.remote(reset=True) for *_, a in sessions))
                t_start = time.perf_counter()
                await asyncio.sleep(opts.window_s)
                stats = await asyncio.gather(*(a.stats.remote() for *_, a in sessions))
                span = time.perf_counter() - t_start
                recv_fps = [(v.frames - b) / span for (_, v, _, _), b in zip(sessions, before)]
                step = {"sessions": k,
                        "frame_p95_ms_max": max((s["frame_p95_ms"] or 0.0) for s in stats),
                        "frame_p50_ms_max": max((s["frame_p50_ms"] or 0.0) for s in stats),
                        "wake_p95_ms_max": max((s["wake_p95_ms"] or 0.0) for s in stats),
                        "skipped_ticks": sum(s["skipped_ticks"] for s in stats),
                        "repeated": sum(s["repeated"] for s in stats),
                        "underruns": sum(s.get("underruns", 0) for s in stats),
                        "recv_fps_min": round(min(recv_fps), 2)}
                frames_made = sum(st["frames"] for st in stats)
                step["underrun_ratio"] = round(step["underruns"] / max(1, frames_made), 4)
                step["ok"] = (step["frame_p95_ms_max"] <= budget_ms and step["skipped_ticks"] == 0
                              and step["recv_fps_min"] >= opts.min_fps_ratio * fps
                              and step["underrun_ratio"] <= opts.max_underrun_ratio)
                steps.append(step)
                renderer_classes.update(st.get("renderer") for st in stats)
                if step["recv_fps_min"] < 0.5 * fps:
                    break      # far past the limit: more sessions tell nothing new
            for ws, viewer, talk, _ in sessions:
                talk.cancel()
                await viewer.close()       # first: a motion reader is this socket's reader
                await ws.close()
    finally:
        await runner.cleanup()
    per_node = 0
    for step in steps:             # the largest k such that every step up to k was within budget
        if not step["ok"]:
            break
        per_node = step["sessions"]
    return {
        "bench": "cluster", "node_cpus": node_cpus, "fps": fps, "budget_ms": round(budget_ms, 3),
        "video": f"{config.video.width}x{config.video.height}", "renderer": config.render.renderer,
        "renderer_class": sorted(renderer_classes - {None}) or None,
        "mode": "assistant", "output": opts.output, "steps": steps,
        "sessions_per_node": per_node,
        "signalling": {
            "new_session_s": [round(x, 3) for x in created_s], "new_session_p50_s": _pct(created_s, 50),
            "place_warm_s_p50": _pct(fd.samples.get("place_warm", []), 50),
            "place_cold_s_p50": _pct(fd.samples.get("place_cold", []), 50),
            "offer_view_ms_p50": _pct([x * 1000 for x in offer_s], 50),
            "offer_view_ms_max": round(max(offer_s) * 1000, 3) if offer_s else None,
            "offer_view_overhead_ms_p50": _pct([x * 1000 for x in fd.samples.get("offer_view_overhead", [])], 50),
            "ping_front_door_ms_p50": _pct(local_ping, 50), "ping_front_door_ms_p95": _pct(local_ping, 95),
            "ping_relayed_ms_p50": _pct(relay_ping, 50), "ping_relayed_ms_p95": _pct(relay_ping, 95),
        },
    }


def ramp_share(node_cpus: float, sessions: int) -> float:
    """CPU per session such that ``sessions`` fit on the node: cpus / sessions rounded *down* to
    Ray's 0.0001 resource precision (rounded to nearest, 2 / 3 → 0.666667 fits only 2)."""
    return math.floor(node_cpus / sessions * 10_000) / 10_000


def measure(opts: BenchOptions) -> dict:
    """Run the benchmark; returns the JSON-able result."""
    import ray
    config = load_config(opts.config_path)
    if opts.renderer is not None:
        config = replace(config, render={"renderer": opts.renderer})
    if opts.size is not None:
        config = replace(config, video={"width": opts.size, "height": opts.size})
    cluster = None
    node_cpus = opts.node_cpus or os.cpu_count() or 1
    if opts.address:
        ray.init(address=opts.address, namespace="facecast-bench", log_to_driver=False)
    else:
        from ray.cluster_utils import Cluster
        store = 100 * 1024 * 1024
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False,
                                                                  "object_store_memory": store})
        cluster.add_node(num_cpus=node_cpus, resources={config.cluster.node_resource or "facecast_worker": 1},
                         object_store_memory=store)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, namespace="facecast-bench", log_to_driver=False)
    # every session may go to the one node: the ramp, not the admission rule, finds the limit
    share = {"CPU": ramp_share(node_cpus, opts.max_sessions)}
    key = "motion" if opts.output == "motion" else f"{config.render.renderer}.assistant"
    config = replace(config, cluster={"address": "auto", "session_resources": {key: share}, "node_refresh_s": 0.5})
    try:
        return asyncio.run(measure_on(config, opts, node_cpus))
    finally:
        ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
