"""A real TURN server for tests: Debian's coturn (``turnserver``) on 127.0.0.1 (not a test module).

``coturn(tmp_path)`` is a context manager that starts ``turnserver`` with one static user
(``USER``/``PASSWORD``, long-term credentials, realm ``facecast``) listening on a free loopback
port (UDP and TCP), relaying on 127.0.0.1 (loopback peers allowed), and yields a ``Turn``:
``port``, ``url``, ``log()``. Tests skip with a clear reason when ``turnserver`` is not installed
(``facecast.sh`` installs the ``coturn`` package when run as root).
"""
from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

USER, PASSWORD, REALM = "facecast", "turn-test-pass", "facecast"


def free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 (bounded tries)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                u.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port on 127.0.0.1")


@dataclass
class Turn:
    port: int
    log_path: Path
    proc: subprocess.Popen

    @property
    def url(self) -> str:
        return f"turn:127.0.0.1:{self.port}"

    def ice_server(self, transport: str = "udp") -> dict:
        url = self.url if transport == "udp" else f"{self.url}?transport={transport}"
        return {"urls": url, "username": USER, "credential": PASSWORD}

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


def require_turnserver() -> str:
    exe = shutil.which("turnserver")
    if exe is None:
        pytest.skip("coturn's `turnserver` is not installed (apt-get install coturn; facecast.sh installs it as root)")
    return exe


@contextlib.contextmanager
def coturn(tmp_path: Path):
    exe = require_turnserver()
    port = free_port()
    relay_lo = free_port()
    log_path = tmp_path / "turnserver.log"
    cmd = [exe, "-n", "--lt-cred-mech", "--user", f"{USER}:{PASSWORD}", "--realm", REALM,
           "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1", "--listening-port", str(port),
           "--min-port", str(max(relay_lo, 1024)), "--max-port", str(min(max(relay_lo, 1024) + 200, 65535)),
           "--no-tls", "--no-dtls", "--allow-loopback-peers", "--no-cli", "--no-rfc5780",
           "--no-stun-backward-compatibility", "--userdb", str(tmp_path / "turndb"),
           "--pidfile", str(tmp_path / "turnserver.pid"), "--log-file", str(log_path), "--simple-log",
           "--no-stdout-log", "--verbose"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:     # ready when its TCP listener accepts
            if proc.poll() is not None:
                raise RuntimeError(f"turnserver exited ({proc.returncode}): {proc.stderr.read().decode()[-500:]}")
            with socket.socket() as s:
                s.settimeout(0.2)
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        else:
            raise RuntimeError("turnserver did not start listening within 10 s")
        time.sleep(0.2)   # the UDP listener starts alongside the TCP one
        yield Turn(port, log_path, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
