"""``FacecastClient``: one WebSocket, one session (see docs/protocol.md).

    async with await FacecastClient.connect("ws://127.0.0.1:8080/v1/ws", sample_rate=16000) as c:
        print("watch it:", c.session_id)
        await c.stream_pcm(pcm_bytes)            # paced in real time
        await c.end_segment()
        ev = await c.wait_for("playback.finished")

Motion mode (``output="motion"``): the server also sends one binary message per frame, read with
``async for m in c.motion_frames(): m.pts, m.blendshapes, m.head_rotation, m.pcm`` (docs/protocol.md,
"Motion mode"; this parser does not use the server's code).
"""
from __future__ import annotations

import asyncio
import json
import os
import struct
import time
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

import numpy as np
from websockets.asyncio.client import ClientConnection, connect as ws_connect
from websockets.exceptions import ConnectionClosed

SUPPORTED_RATES = (16000, 24000, 48000)
MOTION_FRAME_BYTES = 244     # "FM", version 1, flags, int64 pts, 58 float32 (docs/protocol.md)
_MOTION_HEADER = struct.Struct("<2sBBq")


@dataclass
class MotionMessage:
    """One frame of a motion-mode session: frame ``pts`` starts at output audio sample
    ``pts * samples_per_frame``; ``pcm`` is that frame's audio (s16le mono)."""
    pts: int
    blendshapes: np.ndarray        # (52,) ARKit order
    head_rotation: np.ndarray      # yaw, pitch, roll (radians)
    head_translation: np.ndarray   # inter-ocular units
    pcm: bytes
    arrival: float                 # time.monotonic() when it arrived

    @classmethod
    def parse(cls, data: bytes, arrival: float = 0.0) -> "MotionMessage":
        if len(data) < MOTION_FRAME_BYTES:
            raise ValueError(f"motion message of {len(data)} bytes is shorter than a {MOTION_FRAME_BYTES}-byte frame")
        magic, version, _flags, pts = _MOTION_HEADER.unpack_from(data)
        if magic != b"FM" or version != 1:
            raise ValueError(f"not a motion frame (header {magic!r} v{version})")
        v = np.frombuffer(data, "<f4", 58, _MOTION_HEADER.size).astype(np.float32)
        return cls(pts, v[:52], v[52:55], v[55:58], bytes(data[MOTION_FRAME_BYTES:]), arrival)


class FacecastError(RuntimeError):
    """An ``error`` event from the server (``code``, ``message``) or a lost connection."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code, self.message = code, message


def check_url(url: str) -> None:
    """A WebSocket URL, or a ``FacecastError`` saying what to use instead (an http:// URL is
    the usual mistake: the page's address, not the API's)."""
    from urllib.parse import urlsplit
    parts = urlsplit(url)
    if parts.scheme in ("http", "https"):
        ws = "wss" if parts.scheme == "https" else "ws"
        path = parts.path if parts.path not in ("", "/") else "/v1/ws"
        raise FacecastError("bad_url", f"{url} is an {parts.scheme}:// URL; the assistant API is a WebSocket: "
                            f"use {ws}://{parts.netloc}{path}")
    if parts.scheme not in ("ws", "wss") or not parts.netloc:
        raise FacecastError("bad_url", f"{url!r} is not a WebSocket URL; use ws://HOST:PORT/v1/ws")


class FacecastClient:
    def __init__(self, ws: ClientConnection, sample_rate: int):
        self.ws = ws
        self.sample_rate = sample_rate
        self.ready: dict = {}
        self.history: list[dict] = []      # every event received, in order
        self._queue: asyncio.Queue[dict | None] = asyncio.Queue()
        self._motion: asyncio.Queue[MotionMessage | None] = asyncio.Queue(maxsize=250)   # motion mode
        self._reader = asyncio.create_task(self._read())

    # ---- life cycle -------------------------------------------------------------------------
    @classmethod
    async def connect(cls, url: str, *, sample_rate: int = 16000, avatar: str | None = None,
                      mode: str = "assistant", session_id: str | None = None,
                      timeout: float = 30.0, max_size: int | None = 8 << 20,
                      token: str | None = None, output: str = "video") -> "FacecastClient":
        """Open the socket and create a session (or attach to ``session_id``); wait for ``session.ready``.
        ``token``: the server's bearer token (default: $FACECAST_TOKEN, if set), sent as
        ``Authorization: Bearer``. ``output="motion"``: a motion-mode session (or, with
        ``session_id``, the motion stream of one); read its frames with ``motion_frames()``."""
        check_url(url)
        token = token if token is not None else os.environ.get("FACECAST_TOKEN") or None
        headers = {"Authorization": f"Bearer {token}"} if token else None
        ws = await ws_connect(url, open_timeout=timeout, max_size=max_size, additional_headers=headers)
        client = cls(ws, sample_rate)
        fmt = {"encoding": "s16le", "sample_rate": sample_rate, "channels": 1}
        if session_id:
            msg = {"type": "session.attach", "session_id": session_id, "format": fmt}
            if output != "video":
                msg["output"] = output
            await client.send_json(msg)
        else:
            msg = {"type": "session.create", "mode": mode, "format": fmt}
            if output != "video":
                msg["output"] = output
            if avatar:
                msg["avatar"] = avatar
            await client.send_json(msg)
        try:
            client.ready = await client.wait_for("session.ready", timeout=timeout)
        except BaseException:
            await client.close()
            raise
        return client

    @property
    def session_id(self) -> str:
        return self.ready.get("session_id", "")

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        try:
            await self._reader
        except (asyncio.CancelledError, Exception):
            pass

    async def __aenter__(self) -> "FacecastClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ---- sending ----------------------------------------------------------------------------
    async def send_json(self, msg: dict) -> None:
        await self.ws.send(json.dumps(msg))

    async def send_pcm(self, data: bytes) -> None:
        """One binary message of s16le mono PCM at the session's sample rate."""
        await self.ws.send(bytes(data))

    async def send_audio(self, samples: np.ndarray) -> None:
        """Float samples in [-1, 1] → one s16le message."""
        await self.send_pcm(float_to_pcm16(samples))

    async def stream_pcm(self, pcm: bytes, *, chunk_ms: int = 20, realtime: bool = True) -> None:
        """Send ``pcm`` in ``chunk_ms`` pieces, paced like a live source unless ``realtime=False``."""
        step = self.sample_rate * chunk_ms // 1000 * 2
        start = time.monotonic()
        for i, off in enumerate(range(0, len(pcm), step)):
            if realtime:
                delay = start + i * chunk_ms / 1000 - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            await self.send_pcm(pcm[off:off + step])

    async def end_segment(self) -> None:
        await self.send_json({"type": "segment.end"})

    async def interrupt(self) -> None:
        await self.send_json({"type": "interrupt"})

    async def set_state(self, state: str) -> None:
        await self.send_json({"type": "state", "state": state})

    async def speak(self, text: str, voice: str | None = None, rate_wpm: int | None = None) -> None:
        msg: dict = {"type": "speak", "text": text}
        if voice:
            msg["voice"] = voice
        if rate_wpm:
            msg["rate_wpm"] = rate_wpm
        await self.send_json(msg)

    # ---- receiving --------------------------------------------------------------------------
    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                if isinstance(raw, str):
                    event = json.loads(raw)
                    event.setdefault("_t", time.monotonic())
                    self.history.append(event)
                    await self._queue.put(event)
                else:
                    if self._motion.full():   # nobody reads the motion: keep the newest 10 s
                        self._motion.get_nowait()
                    self._motion.put_nowait(MotionMessage.parse(raw, time.monotonic()))
        except ConnectionClosed:
            pass
        finally:
            await self._queue.put(None)
            if self._motion.full():
                self._motion.get_nowait()
            self._motion.put_nowait(None)

    async def events(self) -> AsyncIterator[dict]:
        """Events as they arrive, until the connection closes."""
        while True:
            event = await self._queue.get()
            if event is None:
                self._queue.put_nowait(None)  # keep reporting the end to later readers
                return
            yield event

    async def motion_frames(self) -> AsyncIterator[MotionMessage]:
        """Motion mode: the frames as they arrive, until the connection closes."""
        while True:
            m = await self._motion.get()
            if m is None:
                self._motion.put_nowait(None)
                return
            yield m

    async def wait_for(self, *types: str, timeout: float | None = 30.0) -> dict:
        """The next event of one of ``types``; an ``error`` event (unless asked for) raises."""
        async def _wait() -> dict:
            async for event in self.events():
                if event["type"] in types:
                    return event
                if event["type"] == "error":
                    raise FacecastError(event.get("code", "error"), event.get("message", ""))
            code = self.ws.close_code
            raise FacecastError("closed", f"connection closed (code {code}) while waiting for {types}")
        return await asyncio.wait_for(_wait(), timeout)


# ---- audio helpers ------------------------------------------------------------------------------
def float_to_pcm16(samples: np.ndarray) -> bytes:
    """s16le bytes; the server's rule (engine/audio/pcm.py): clip, scale by 32768, round to nearest."""
    x = np.nan_to_num(np.asarray(samples, np.float32), nan=0.0, posinf=1.0, neginf=-1.0)
    return np.clip(np.rint(np.clip(x, -1.0, 1.0) * 32768.0), -32768, 32767).astype("<i2").tobytes()


def load_wav_pcm16(path: str | Path) -> tuple[bytes, int]:
    """A wav file as (s16le mono bytes, rate); stereo is mixed down and rates the server
    does not take are resampled to 16 kHz (linear interpolation)."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path}: no such audio file")
    try:
        import soundfile  # reads float / 24-bit wavs, flac, ogg as well
    except ImportError:
        soundfile = None
    if soundfile is not None:
        try:
            audio, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
        except (RuntimeError, TypeError) as e:  # soundfile.LibsndfileError and friends
            raise ValueError(f"{path}: cannot read this audio file ({e})") from None
    else:
        try:
            with wave.open(str(path), "rb") as w:
                if w.getsampwidth() != 2:
                    raise ValueError(f"{path}: only 16-bit PCM wavs can be read without the soundfile package")
                rate, ch = w.getframerate(), w.getnchannels()
                audio = np.frombuffer(w.readframes(w.getnframes()), "<i2").reshape(-1, ch) / 32768.0
        except (wave.Error, EOFError) as e:
            raise ValueError(f"{path}: cannot read this wav file ({e})") from None
    mono = audio.mean(axis=1).astype(np.float32)
    if rate not in SUPPORTED_RATES:
        n = int(round(len(mono) * 16000 / rate))
        mono = np.interp(np.arange(n) * rate / 16000, np.arange(len(mono)), mono).astype(np.float32)
        rate = 16000
    return float_to_pcm16(mono), rate
