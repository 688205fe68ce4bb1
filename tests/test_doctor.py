"""`facecast doctor` against a real TURN/STUN server (coturn on 127.0.0.1) and a taken port:
one OK/FAIL line per check, exit status 0 only when everything passed. Real subprocesses."""
import os
import socket
import subprocess
import sys

from engine.config import REPO_ROOT
from turn_support import PASSWORD, USER, coturn, free_port

ENV = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}


def _doctor(config_path, *args):
    out = subprocess.run([sys.executable, "-m", "engine.cli", "--config", str(config_path), "doctor", *args],
                         capture_output=True, text=True, timeout=120, cwd=REPO_ROOT, env=ENV)
    lines = {}
    for line in out.stdout.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0] in ("OK", "FAIL"):
            lines.setdefault(parts[1], []).append((parts[0], parts[2]))
    return out, lines


def _config(tmp_path, name, ice):
    p = tmp_path / name
    p.write_text("[webrtc]\nice_servers = [" + ", ".join(ice) + "]\n")
    return p


def test_doctor_passes_with_a_real_turn_server_and_a_free_port(tmp_path):
    with coturn(tmp_path) as turn:
        cfg = _config(tmp_path, "ok.toml", [
            f'{{urls = "stun:127.0.0.1:{turn.port}"}}',
            f'{{urls = ["turn:127.0.0.1:{turn.port}", "turn:127.0.0.1:{turn.port}?transport=tcp"], '
            f'username = "{USER}", credential = "{PASSWORD}"}}'])
        out, lines = _doctor(cfg, "--port", str(free_port()))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert [s for s, _ in lines["stun"]] == ["OK"] and "STUN binding" in lines["stun"][0][1]
    assert [s for s, _ in lines["turn"]] == ["OK", "OK"], lines["turn"]
    assert all("allocated a relay (127.0.0.1:" in d for _, d in lines["turn"])
    for what in ("config", "port", "codecs", "espeak-ng", "avatar", "model"):
        assert lines[what][0][0] == "OK", (what, lines[what])
    assert "VP8" in lines["codecs"][0][1] and "all checks passed" in out.stdout


def test_doctor_fails_on_taken_port_wrong_credentials_and_silent_stun(tmp_path):
    with coturn(tmp_path) as turn, socket.socket() as taken, \
            socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as mute:
        mute.bind(("127.0.0.1", 0))        # a "STUN server" that never answers
        silent = mute.getsockname()[1]
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        cfg = _config(tmp_path, "bad.toml", [
            f'{{urls = "stun:127.0.0.1:{silent}"}}',
            f'{{urls = "turn:127.0.0.1:{turn.port}", username = "{USER}", credential = "wrong-password"}}'])
        out, lines = _doctor(cfg, "--port", str(taken.getsockname()[1]), "--timeout", "1.5")
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    status, detail = lines["port"][0]
    assert status == "FAIL" and "in use" in detail and "--port" in detail
    status, detail = lines["stun"][0]
    assert status == "FAIL" and "did not answer" in detail
    status, detail = lines["turn"][0]
    assert status == "FAIL" and "401" in detail and "credential" in detail, detail
    assert lines["codecs"][0][0] == "OK" and "3 check(s) failed" in out.stdout


async def test_doctor_accepts_a_port_held_by_a_running_facecast(server, tmp_path):
    import asyncio
    cfg = tmp_path / "plain.toml"
    cfg.write_text("")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "engine.cli", "--config", str(cfg), "doctor", "--port", str(server.port),
        cwd=REPO_ROOT, env=ENV, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    stdout, _ = await asyncio.wait_for(proc.communicate(), 120)
    port_line = [l for l in stdout.decode().splitlines() if l.split()[1:2] == ["port"]][0]
    assert port_line.startswith("OK") and "a facecast server is already running there" in port_line, port_line
    assert proc.returncode == 0
