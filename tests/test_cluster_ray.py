"""Sessions on a real multi-node Ray cluster (ray.cluster_utils.Cluster: a head + 3 worker nodes
of one CPU each on this machine) behind the real front door (engine/cluster/app.py).

- placement: sessions land on different nodes (the actors report their Ray node), the SDP answer
  comes from the worker (its aiortc peer is the one connected), the WebSocket API works through
  the front door's relay, and a full cluster refuses with ``cluster_full`` (HTTP 503 and WS);
- faults: a node removed mid-stream ends its session with an ``error`` ``session_closed`` event and
  a closed socket, the other session keeps streaming, and the next session avoids the dead node;
- motion mode through the front door: over WebRTC (a "motion" data channel, no video track) and
  the relayed WebSocket (binary frames), with its own small resources next to video sessions;
- admission by measured load, the one-box guard (token, Origin) at the front door, the browser
  client in real Chromium through the front door, and `facecast bench cluster`'s measurement
  (warp video, splat video and motion).

One cluster for the whole module (it takes ~10 s to start); the node-killing test runs last.
"""
from __future__ import annotations

import asyncio
import contextlib
import json
import os

import pytest

ray = pytest.importorskip("ray")

from aiohttp import ClientSession, WSMsgType  # noqa: E402

from cluster_support import FrontDoorServer, add_worker, start_cluster, stop_cluster, until  # noqa: E402
from rtc_client import Viewer  # noqa: E402
from ws_support import pcm16, speech  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    c, workers = start_cluster()
    yield c, workers
    stop_cluster(c)


async def _next_event(ws, kind: str, timeout_s: float = 30.0) -> dict:
    """The next JSON event of type ``kind`` (others are skipped)."""
    async def read():
        while True:
            msg = await ws.receive()
            if msg.type != WSMsgType.TEXT:
                raise AssertionError(f"socket ended ({msg.type}) before a {kind!r} event")
            event = json.loads(msg.data)
            if event.get("type") == kind:
                return event
    return await asyncio.wait_for(read(), timeout_s)


async def _create_over_ws(http, srv, **fields):
    ws = await http.ws_connect(srv.ws_url)
    await ws.send_json({"type": "session.create", **fields})
    ready = await _next_event(ws, "session.ready", 90)
    return ws, ready["session_id"]


async def _node_of(srv, sid: str) -> str:
    placement = srv.fd.routes[sid]
    where = await placement.actor.where.remote()
    assert where["pid"] != os.getpid()
    assert where["node_id"] == placement.node_id, "the actor runs on the node the front door chose"
    return where["node_id"]


async def _speak_pcm(ws, text: str = "Hello from the cluster.") -> dict:
    x = speech(text)
    for i in range(0, len(x), 3200):
        await ws.send_bytes(pcm16(x[i:i + 3200]))
    await ws.send_json({"type": "segment.end"})
    return await _next_event(ws, "playback.started", 30)


async def test_sessions_spread_over_nodes_media_from_the_worker_and_refusal_when_full(cluster):
    _, workers = cluster
    worker_ids = {w.node_id for w in workers}
    async with FrontDoorServer() as srv, ClientSession() as http:
        # A: driven over the WebSocket (relayed), watched by a real aiortc peer
        ws_a, sid_a = await _create_over_ws(http, srv)
        viewer_a = Viewer()
        answer = await viewer_a.connect(http, srv.http_url, session_id=sid_a)
        assert answer["session_id"] == sid_a
        # B: a WebRTC-owned session (the offer places it)
        viewer_b = Viewer()
        sid_b = (await viewer_b.connect(http, srv.http_url, mode="assistant"))["session_id"]
        node_a, node_b = await _node_of(srv, sid_a), await _node_of(srv, sid_b)
        assert node_a != node_b and {node_a, node_b} <= worker_ids
        # the answer came from the worker: its peer is the one connected and sending video
        assert await until(lambda: len(viewer_a.video) > 10 and len(viewer_b.video) > 10, 30)
        peers = await srv.fd.routes[sid_a].actor.peers_info.remote()
        assert [p["state"] for p in peers] == ["connected"] and peers[0]["video_sent"] > 0
        # the assistant API through the front door: speech → playback.started from the worker
        started = await _speak_pcm(ws_a)
        assert started["segment"] == 1
        # C fills the third node; D is refused, over HTTP and over the WebSocket
        ws_c, sid_c = await _create_over_ws(http, srv)
        assert {node_a, node_b, await _node_of(srv, sid_c)} == worker_ids
        late = Viewer()
        await late.pc.setLocalDescription(await late.pc.createOffer())
        resp = await http.post(f"{srv.http_url}/v1/offer", json={"sdp": late.pc.localDescription.sdp, "type": "offer"})
        body = await resp.json()
        assert resp.status == 503 and body["error"] == "cluster_full", body
        assert "3 of 3 session slots" in body["message"]
        await late.close()
        ws_d = await http.ws_connect(srv.ws_url)
        await ws_d.send_json({"type": "session.create"})
        refusal = await _next_event(ws_d, "error")
        assert refusal["code"] == "cluster_full" and not refusal["fatal"]
        await ws_d.close()
        health = await (await http.get(f"{srv.http_url}/healthz")).json()
        assert health["sessions"] == 3 and health["cluster"]["nodes"] == 4
        # closing a session frees its node for the next one
        await ws_c.send_json({"type": "session.close"})
        assert await until(lambda: sid_c not in srv.fd.routes, 15)
        ws_e, sid_e = await _create_over_ws(http, srv)
        assert await _node_of(srv, sid_e) not in (node_a, node_b)
        for ws in (ws_a, ws_c, ws_e):
            await ws.close()
        await viewer_a.close()
        await viewer_b.close()
        assert await until(lambda: not srv.fd.routes and not srv.fd.placed, 20), (srv.fd.routes, srv.fd.placed)
        # the warm pool: sessions took actors started ahead of them (cluster.warm_workers_per_node)
        assert srv.fd.samples["place_warm"], dict(srv.fd.samples)


async def test_the_front_door_keeps_the_one_box_guard(cluster):
    """Token and Origin checks apply at the front door before anything is placed."""
    token = "cluster-door-token"
    async with FrontDoorServer(server={"token": token}, cluster={"warm_workers_per_node": 0}) as srv, \
            ClientSession() as http:
        resp = await http.post(f"{srv.http_url}/v1/offer", json={"sdp": "v=0", "type": "offer"})
        assert resp.status == 401 and (await resp.json())["error"] == "unauthorized"
        resp = await http.get(srv.ws_url.replace("ws://", "http://"), headers={"Origin": "https://evil.example"})
        assert resp.status == 403 and (await resp.json())["error"] == "forbidden_origin"
        ws = await http.ws_connect(f"{srv.ws_url}?token={token}")
        await ws.send_json({"type": "ping", "id": 7})
        assert await _next_event(ws, "pong", 5) == {"type": "pong", "id": 7}   # answered by the front door
        await ws.send_json({"type": "speak", "text": "hi"})
        assert (await _next_event(ws, "error", 5))["code"] == "no_session"
        # a session.create the worker would refuse is refused before anything is placed
        for fields, code in [({"mode": "karaoke"}, "bad_mode"), ({"avatar": "nobody"}, "unknown_avatar"),
                             ({"avatar": "../../etc/passwd"}, "bad_avatar"),
                             ({"format": {"sample_rate": 44100}}, "unsupported_format")]:
            await ws.send_json({"type": "session.create", **fields})
            assert (await _next_event(ws, "error", 5))["code"] == code, fields
        await ws.close()
        assert not srv.fd.placed and srv.fd.pool.count() == 0


async def test_nodes_over_the_frame_budget_take_no_new_session(cluster):
    """Admission by measured load: with a budget no real frame meets, every node hosting a session
    is saturated after the next load check, and a cluster with free slots refuses."""
    sections = {"cluster": {"saturated_frame_p95_ms": 0.001, "load_check_s": 1.0, "warm_workers_per_node": 0,
                            "session_resources": {"warp.assistant": {"CPU": 0.5}}}}    # 2 slots per node
    async with FrontDoorServer(**sections) as srv, ClientSession() as http:
        sockets, nodes = [], set()
        for _ in range(3):
            ws, sid = await _create_over_ws(http, srv)
            sockets.append(ws)
            node = await _node_of(srv, sid)
            assert node not in nodes, "a session was placed on a node over the frame budget"
            nodes.add(node)
            assert await until(lambda: node in srv.fd.load.saturated, 20), "the load check never ran"
        ws_d = await http.ws_connect(srv.ws_url)
        await ws_d.send_json({"type": "session.create"})
        refusal = await _next_event(ws_d, "error")
        assert refusal["code"] == "cluster_full" and "over the frame budget" in refusal["message"], refusal
        metrics = await (await http.get(f"{srv.http_url}/metrics")).text()
        assert "facecast_cluster_saturated_nodes 3.0" in metrics
        assert metrics.count("facecast_cluster_node_frame_p95_seconds{") == 3
        for ws in (*sockets, ws_d):
            await ws.close()
        assert await until(lambda: not srv.fd.routes, 20)


async def _motion_over_ws(ws, n: int, timeout_s: float = 90.0) -> tuple[dict, list[bytes]]:
    """session.ready and the first ``n`` binary messages (MotionFrame + its PCM) of a motion socket."""
    ready, binary = None, []

    async def read():
        nonlocal ready
        while ready is None or len(binary) < n:
            msg = await ws.receive()
            if msg.type == WSMsgType.BINARY:
                binary.append(msg.data)
            elif msg.type == WSMsgType.TEXT:
                event = json.loads(msg.data)
                assert event["type"] != "error", event
                if event["type"] == "session.ready":
                    ready = event
            else:
                raise AssertionError(f"socket ended ({msg.type})")
    await asyncio.wait_for(read(), timeout_s)
    return ready, binary


async def test_motion_mode_sessions_through_the_front_door(cluster):
    """Motion mode (no renderer) placed on worker actors with its own, small, resources: over
    WebRTC (a data channel labelled "motion", no video track) and over the WebSocket (binary
    MotionFrame + PCM messages); a video session then only fits on a node without one."""
    from engine.motion.space import BINARY_SIZE, MotionFrame
    from test_motion_webrtc import MotionPeer
    _, workers = cluster
    async with FrontDoorServer(cluster={"warm_workers_per_node": 0}) as srv, ClientSession() as http:
        free_cpus = lambda: ray.available_resources().get("CPU", 0.0)
        assert await until(lambda: abs(free_cpus() - 3.0) < 1e-6, 30), ray.available_resources()
        peer = MotionPeer()
        sid_rtc = (await peer.connect(http, srv.http_url, output="motion"))["session_id"]
        placement = srv.fd.routes[sid_rtc]
        assert placement.output == "motion" and placement.need == {"CPU": 0.1}   # the shipped default
        assert await until(lambda: len(peer.frames) >= 10, 30), "no motion frames on the data channel"
        assert peer.tracks == ["audio"], peer.tracks                              # no video track
        assert [pts for _, pts, _ in peer.frames[:10]] == sorted({pts for _, pts, _ in peer.frames[:10]})
        # a viewer asking for another output than the session's is refused by the front door
        other = MotionPeer()
        await other.pc.setLocalDescription(await other.pc.createOffer())
        resp = await http.post(f"{srv.http_url}/v1/offer", json={
            "sdp": other.pc.localDescription.sdp, "type": "offer", "session_id": sid_rtc, "output": "video"})
        assert resp.status == 400 and (await resp.json())["error"] == "bad_output"
        await other.close()
        # over the WebSocket: binary motion + PCM messages relayed from the worker
        ws = await http.ws_connect(srv.ws_url)
        await ws.send_json({"type": "session.create", "output": "motion"})
        ready, binary = await _motion_over_ws(ws, 10)
        assert ready["output"] == "motion" and ready["created"] is True and "video" not in ready
        assert all(len(b) == BINARY_SIZE + 2 * ready["motion"]["samples_per_frame"] for b in binary)
        pts = [MotionFrame.from_bytes(b[:BINARY_SIZE])[0] for b in binary]
        assert pts == sorted(set(pts)), pts
        sid_ws = ready["session_id"]
        node_rtc, node_ws = await _node_of(srv, sid_rtc), await _node_of(srv, sid_ws)
        assert node_rtc != node_ws and {node_rtc, node_ws} <= {w.node_id for w in workers}
        # Ray's accounting agrees: two motion actors hold 0.1 CPU each
        assert await until(lambda: abs(free_cpus() - 2.8) < 1e-6, 10), ray.available_resources()
        # a 1-CPU video session fits only on the third node; then no node has a whole CPU free
        ws_video, sid_video = await _create_over_ws(http, srv)
        assert await _node_of(srv, sid_video) not in (node_rtc, node_ws)
        ws_full = await http.ws_connect(srv.ws_url)
        await ws_full.send_json({"type": "session.create"})
        assert (await _next_event(ws_full, "error"))["code"] == "cluster_full"
        # ... while motion sessions still fit next to the others
        ws_more = await http.ws_connect(srv.ws_url)
        await ws_more.send_json({"type": "session.create", "output": "motion"})
        more, _ = await _motion_over_ws(ws_more, 1)
        assert await _node_of(srv, more["session_id"]) in (node_rtc, node_ws)
        for sock in (ws, ws_video, ws_full, ws_more):
            await sock.close()
        await peer.close()
        assert await until(lambda: not srv.fd.routes and not srv.fd.placed and not srv.fd.held, 20), \
            (srv.fd.routes, srv.fd.placed, srv.fd.held)


@pytest.mark.slow
async def test_the_browser_client_through_the_front_door(cluster, tmp_path):
    """Real Chromium loads the page from the front door, its offer is answered by the worker's
    peer (video plays), its WebSocket attaches through the relay, and the text box speaks."""
    from browser_support import browser_page, require_browser
    require_browser()
    events = "(t) => facecast.events.filter(e => e.type === t)"
    async with FrontDoorServer() as srv, browser_page(tmp_path / "profile") as page:
        await page.goto(f"{srv.http_url}/?mode=assistant&mic=0&autoconnect=1")
        await page.wait_for_function("window.facecast && window.facecast.firstFrameAt !== null", timeout=90_000)
        sid = await page.evaluate("facecast.sessionId")
        await page.wait_for_function(f"({events})('session.ready').length >= 1")
        ready = (await page.evaluate(events, "session.ready"))[0]
        assert ready["session_id"] == sid and ready["created"] is False     # attached to the offer's session
        assert await _node_of(srv, sid) in {w.node_id for w in cluster[1]}
        await page.fill("#text", "Hello from a worker node.")
        await page.click("#speak")
        await page.wait_for_function(f"({events})('playback.started').length >= 1", timeout=60_000)
        await page.wait_for_function("facecast.stats && facecast.stats.fps > 0", timeout=30_000)   # video plays
        await page.click("#disconnect")
        assert await until(lambda: sid not in srv.fd.routes, 15), "Disconnect did not end the session"
        assert page.js_errors == []


async def test_a_front_door_that_dies_takes_its_sessions_with_it(cluster, tmp_path):
    """docs/deploy.md, "when the front door restarts": its actors are owned by its Ray driver, so
    killing the front door process (SIGKILL, no cleanup) ends them and frees their resources."""
    import signal
    import socket
    import subprocess
    import sys
    c, _ = cluster
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    conf = tmp_path / "door.toml"
    conf.write_text("\n".join([
        "[cluster]", f'address = "{c.address}"', "warm_workers_per_node = 0",
        '[cluster.session_resources."warp.assistant"]', "CPU = 1.0",
        "[server]", "rate_limit_requests = 0", "max_connections_per_ip = 0", ""]))
    free_cpus = lambda: ray.available_resources().get("CPU", 0.0)
    assert await until(lambda: free_cpus() == 3.0, 30), ray.available_resources()
    door = subprocess.Popen([sys.executable, "-m", "engine.cli", "--config", str(conf), "serve", "--port", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        async with ClientSession() as http:
            for _ in range(300):
                with contextlib.suppress(OSError):
                    if (await http.get(f"http://127.0.0.1:{port}/healthz")).status == 200:
                        break
                await asyncio.sleep(0.2)
            ws = await http.ws_connect(f"ws://127.0.0.1:{port}/v1/ws")
            await ws.send_json({"type": "session.create"})
            await _next_event(ws, "session.ready", 90)
            assert await until(lambda: free_cpus() == 2.0, 10), ray.available_resources()
            door.send_signal(signal.SIGKILL)
            door.wait(10)
            assert await until(lambda: free_cpus() == 3.0, 30), "the dead front door's actor still holds its CPU"
            await ws.close()
    finally:
        if door.poll() is None:
            door.kill()


async def test_bench_cluster_measures_a_session_and_the_relay(cluster):
    """`facecast bench cluster`'s measurement on this cluster, one session, a short window."""
    from engine.cluster.bench import BenchOptions, measure_on
    from engine.config import load_config, replace
    from cluster_support import CLUSTER_CONFIG
    # one eligible node (its own marker resource): one warm actor to start, not one per node
    config = replace(replace(load_config(), **CLUSTER_CONFIG), cluster={"node_resource": "fc_node_0"})
    result = await measure_on(config, BenchOptions(max_sessions=1, window_s=1.0, settle_s=0.3, pings=5), 1)
    json.dumps(result)
    (step,) = result["steps"]
    assert step["sessions"] == 1 and step["recv_fps_min"] > 5, step     # real frames reached the viewer
    assert step["frame_p95_ms_max"] > 0 and result["sessions_per_node"] in (0, 1)
    assert result["sessions_per_node"] == int(step["ok"])
    sig = result["signalling"]
    assert sig["new_session_s"][0] > 0 and sig["offer_view_ms_p50"] > 0
    # a relayed ping crosses two Ray calls; one answered by the front door does not
    assert sig["ping_relayed_ms_p50"] > sig["ping_front_door_ms_p50"] > 0
    assert result["renderer"] == "warp" and result["renderer_class"] == ["WarpRenderer"]
    # splat video: the Gaussian-splat renderer in the worker's session, VP8 to the viewer
    splat = replace(config, render={"renderer": "splat"},
                    cluster={"session_resources": {"splat.assistant": {"CPU": 1.0}}})
    result = await measure_on(splat, BenchOptions(max_sessions=1, window_s=1.0, settle_s=0.3, pings=3), 1)
    (step,) = result["steps"]
    assert result["renderer"] == "splat" and result["renderer_class"] == ["SplatRenderer"]
    assert step["recv_fps_min"] > 5 and step["frame_p95_ms_max"] > 0, step
    assert result["sessions_per_node"] == int(step["ok"])
    # motion mode: the motion stream over the relayed WebSocket is the received rate; no offer
    config = replace(config, cluster={"session_resources": {"motion": {"CPU": 1.0}}})
    result = await measure_on(config, BenchOptions(max_sessions=1, window_s=1.0, settle_s=0.3, pings=3,
                                                   output="motion"), 1)
    (step,) = result["steps"]
    assert result["output"] == "motion" and step["recv_fps_min"] > 5, step
    assert result["sessions_per_node"] == int(step["ok"]) and result["signalling"]["offer_view_ms_p50"] is None


async def test_a_node_killed_mid_stream_ends_only_its_session_and_new_sessions_avoid_it(cluster):
    c, workers = cluster
    async with FrontDoorServer() as srv, ClientSession() as http:
        ws_a, sid_a = await _create_over_ws(http, srv)
        ws_b, sid_b = await _create_over_ws(http, srv)
        viewer_a, viewer_b = Viewer(), Viewer()
        await viewer_a.connect(http, srv.http_url, session_id=sid_a)
        await viewer_b.connect(http, srv.http_url, session_id=sid_b)
        assert await until(lambda: len(viewer_a.video) > 10 and len(viewer_b.video) > 10, 30)
        node_a = await _node_of(srv, sid_a)
        assert await _node_of(srv, sid_b) != node_a
        dead = next(w for w in workers if w.node_id == node_a)

        loop = asyncio.get_running_loop()
        t_kill = loop.time()
        await loop.run_in_executor(None, c.remove_node, dead)   # mid-stream: A is playing idle video
        # A's client is told, and its socket closes
        err = await _next_event(ws_a, "error", 30)
        assert err["code"] == "session_closed" and err["fatal"] is True
        closing = await asyncio.wait_for(ws_a.receive(), 10)
        assert closing.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING)
        detect_s = loop.time() - t_kill
        assert await until(lambda: sid_a not in srv.fd.routes, 10)
        assert node_a in srv.fd.quarantine
        # A's media stopped (its peer died with the node); B's goes on and its API still answers
        await asyncio.sleep(1.0)
        a_before, b_before = len(viewer_a.video), len(viewer_b.video)
        await asyncio.sleep(3.0)
        assert len(viewer_a.video) == a_before, "frames still arrive from a killed worker"
        assert len(viewer_b.video) - b_before >= 25, "the other session stopped streaming"   # ≥ 8 of 25 fps
        assert (await _speak_pcm(ws_b))["segment"] == 1
        # the next sessions are placed on live nodes only; then the cluster (one node down) is full
        ws_c, sid_c = await _create_over_ws(http, srv)
        assert await _node_of(srv, sid_c) not in (node_a, await _node_of(srv, sid_b))
        ws_d = await http.ws_connect(srv.ws_url)
        await ws_d.send_json({"type": "session.create"})
        refusal = await _next_event(ws_d, "error")
        assert refusal["code"] == "cluster_full" and "2 of 2 session slots" in refusal["message"], refusal
        for ws in (ws_b, ws_c, ws_d):
            await ws.close()
        await viewer_a.close()
        await viewer_b.close()
        assert await until(lambda: not srv.fd.routes, 20)
        print(f"node loss noticed by the client after {detect_s:.2f} s")
    workers[workers.index(dead)] = add_worker(c, len(workers))   # a replacement, for any later test
