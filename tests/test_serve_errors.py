"""`facecast serve` mistakes are one clear line on stderr and a quick non-zero exit, never a
traceback; the Python client refuses an http:// URL, saying to use ws://. Real subprocesses."""
import os
import socket
import subprocess
import sys
import time


from engine.config import REPO_ROOT

SERVE = [sys.executable, "-m", "engine.cli"]
# this checkout's engine, whatever the current directory (the venv may point at another checkout)
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), str(REPO_ROOT / "clients" / "python")])}


def _serve(*args, timeout=20.0, cwd=REPO_ROOT):
    t0 = time.monotonic()
    out = subprocess.run([*SERVE, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd, env=ENV)
    return out, time.monotonic() - t0


def _one_line_error(out, *words):
    err = out.stderr.strip()
    assert out.returncode != 0, out
    assert "Traceback" not in err, err
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def test_missing_config_file(tmp_path):
    out, dt = _serve("--config", str(tmp_path / "nope.toml"), "serve", "--port", "0")
    _one_line_error(out, "does not exist", "nope.toml")
    assert dt < 10


def test_invalid_config_file_names_the_key(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[server]\nport = 'eighty'\n")
    out, _ = _serve("--config", str(bad), "serve")
    _one_line_error(out, "server.port")
    bad.write_text("[server\n")
    out, _ = _serve("--config", str(bad), "serve")
    _one_line_error(out, "TOML")


def test_taken_port_is_reported_before_the_model_loads():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        out, dt = _serve("serve", "--port", str(port), "--log-level", "debug")
    line = _one_line_error(out, f"port {port}", "already in use", "--port")
    assert "another program" in line
    assert dt < 10, f"took {dt:.1f} s: it must not load the model before checking the port"
    assert "serving" not in out.stdout   # nothing was started


def test_avatar_is_resolved_from_the_current_directory_and_checked(tmp_path):
    not_avatar = tmp_path / "me.jpg"
    not_avatar.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    out, _ = _serve("serve", "--avatar", "me.jpg", "--port", "0", cwd=tmp_path)
    _one_line_error(out, "not a facecast avatar", "facecast avatar create")
    out, _ = _serve("serve", "--avatar", "missing.avatar", "--port", "0", cwd=tmp_path)
    line = _one_line_error(out, "does not exist")
    assert str(tmp_path / "missing.avatar") in line     # relative to the cwd, not the repository


def test_python_client_refuses_http_url():
    client = [sys.executable, "-m", "facecast_client", "speak", "hi", "--url", "http://127.0.0.1:9/"]
    out = subprocess.run(client, capture_output=True, text=True, timeout=20, env=ENV)
    _one_line_error(out, "ws://127.0.0.1:9/v1/ws")


async def test_normal_disconnects_leave_no_task_errors_and_no_ice_chatter(tmp_path):
    """A real `facecast serve` (loopback ICE) that a WebRTC viewer and two WebSockets connect to
    and leave normally: its log holds no "Task exception was never retrieved", no traceback and
    no aioice INFO lines."""
    import asyncio

    from aiohttp import ClientSession

    from facecast_client import FacecastClient
    from rtc_client import Viewer, use_loopback_ice
    from turn_support import free_port

    use_loopback_ice()   # this process's viewer; the server child sets it for itself below
    port = free_port()
    code = ("import sys; sys.path.insert(0, 'tests'); from rtc_client import use_loopback_ice; "
            "use_loopback_ice(); from engine.cli import main; "
            f"sys.exit(main(['serve', '--port', '{port}']))")
    log_path = tmp_path / "serve.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-c", code], cwd=REPO_ROOT, env=ENV, stdout=log,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        async with ClientSession() as http:
            for _ in range(600):                     # ≤ 60 s to answer /healthz
                assert proc.poll() is None, log_path.read_text()
                try:
                    if (await http.get(f"{base}/healthz")).status == 200:
                        break
                except OSError:
                    pass
                await asyncio.sleep(0.1)
            viewer = Viewer()
            answer = await viewer.connect(http, base, mode="assistant")
            for _ in range(300):                     # ≤ 30 s for 10 frames
                if len(viewer.video) >= 10:
                    break
                await asyncio.sleep(0.1)
            assert len(viewer.video) >= 10
            ws = await FacecastClient.connect(f"ws://127.0.0.1:{port}/v1/ws", session_id=answer["session_id"])
            await ws.close()
            await viewer.close()                     # the viewer leaves: its session closes
            own = await FacecastClient.connect(f"ws://127.0.0.1:{port}/v1/ws")
            await own.close()
            for _ in range(100):                     # ≤ 10 s for the server to notice
                health = await (await http.get(f"{base}/healthz")).json()
                if health["sessions"] == 0:
                    break
                await asyncio.sleep(0.1)
            assert health["sessions"] == 0
            await asyncio.sleep(1.0)
    finally:
        proc.send_signal(2)   # SIGINT: a normal stop
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    text = log_path.read_text()
    assert "serving" in text
    for bad in ("Task exception was never retrieved", "Traceback", "ChannelClosed"):
        assert bad not in text, text[-3000:]
    assert " INFO aioice" not in text and " INFO aiortc" not in text, text[-3000:]
