"""Shared pieces of the WebSocket / browser tests (not a test module).

A real facecast server (engine.server.create_app) on 127.0.0.1 in the test's
event loop, the bundled Python client (clients/python), and speech clips
synthesized with espeak-ng.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from aiohttp.test_utils import TestServer

from engine.audio.pcm import float_to_s16le
from engine.config import REPO_ROOT, load_config, replace
from engine.motion.space import ARKIT_NAMES
from engine.server import REGISTRY_KEY, create_app
from engine.audio.tts import Speaker

CLIENT_DIR = REPO_ROOT / "clients" / "python"
if str(CLIENT_DIR) not in sys.path:
    sys.path.insert(0, str(CLIENT_DIR))

MOUTH_INDICES = [i for i, n in enumerate(ARKIT_NAMES) if n.startswith(("mouth", "jaw"))]


# Every test client is 127.0.0.1: the per-IP limits (server.rate_limit_requests,
# max_connections_per_ip) are off here unless a test sets them (tests/test_hardening_ratelimit.py).
NO_PER_IP_LIMITS = {"rate_limit_requests": 0, "max_connections_per_ip": 0}


class LiveServer:
    """The real aiohttp app on a free loopback port (tests get one from conftest's ``live_server``).
    Per-IP limits are off unless ``server={...}`` names them."""

    def __init__(self, **config_sections):
        self.config = load_config()
        config_sections = dict(config_sections)
        config_sections["server"] = {**NO_PER_IP_LIMITS, **config_sections.get("server", {})}
        self.config = replace(self.config, **config_sections)
        self.app = create_app(self.config)
        self.server = TestServer(self.app, host="127.0.0.1", port=0)

    async def start(self) -> "LiveServer":
        await self.server.start_server()
        return self

    async def close(self) -> None:
        await self.server.close()

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/ws"

    @property
    def http_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def registry(self):
        return self.app[REGISTRY_KEY]



def speech(text: str, rate: int = 16000) -> np.ndarray:
    """espeak-ng speech as float32 at ``rate`` (16/24/48 kHz), peak-normalized to 0.9."""
    x = Speaker().synthesize(text)
    x = 0.9 * x / (np.abs(x).max() + 1e-9)
    if rate != 16000:
        from scipy.signal import resample_poly
        x = resample_poly(x, rate // 8000, 2).astype(np.float32)
    return x


def pcm16(x: np.ndarray) -> bytes:
    return float_to_s16le(np.asarray(x, np.float32))


def frame_mouth_weight(frame) -> float:
    """Largest mouth/jaw blendshape weight of a session VideoFrame's motion."""
    return float(np.abs(frame.motion.to_vector()[MOUTH_INDICES]).max())


def write_wav(path: Path, x: np.ndarray, rate: int) -> Path:
    import wave
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm16(x))
    return path
