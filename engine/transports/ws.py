"""The assistant WebSocket API at ``/v1/ws`` (documented in docs/protocol.md).

One WebSocket drives one session. The first text message creates a session
(``session.create``) or attaches to one a viewer already opened over WebRTC
(``session.attach``); then binary messages carry s16le mono PCM at the declared
rate, and JSON messages carry ``segment.end``, ``interrupt``, ``state`` hints,
``speak`` (server-side TTS) and ``session.close``. Session events (``state``,
``playback.started``, ``playback.finished``) are forwarded as JSON text.

Every problem a client causes is answered by an ``error`` event naming it; only
a protocol violation that leaves the stream unusable closes the socket. A
session this socket created is closed when the socket goes away; other sessions
are never touched.
"""
from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from aiohttp import WSCloseCode, WSMsgType, web

from engine.audio.pcm import s16le_to_float
from engine.audio import MODEL_RATE
from engine.config import Config
from engine.pipeline.speech import SpeechBufferFull
from engine.session import SessionClosed
from engine.audio.tts import OUTPUT_SAMPLE_RATE, Speaker, TTSError

DEFAULT_PCM_RATE = MODEL_RATE   # a client that names no rate sends 16 kHz (docs/protocol.md)
log = logging.getLogger(__name__)

WS_PATH = "/v1/ws"
PROTOCOL_VERSION = 1
SUPPORTED_ENCODINGS = ("s16le",)
STATE_HINTS = ("idle", "listening", "thinking")
WS_MODES = ("assistant", "echo")
# Messages up to this multiple of max_ws_message_bytes are read and refused with an
# error event; anything larger is not even read (the socket closes with 1009).
HARD_LIMIT_FACTOR = 4
# WebSocket ping interval: a client that vanished without a TCP reset is noticed within
# HEARTBEAT_S + HEARTBEAT_S / 2 (aiohttp closes when the pong does not come back).
HEARTBEAT_S = 20.0


class ProtocolError(Exception):
    """A client mistake: becomes an ``error`` event with ``code`` and ``message``."""

    def __init__(self, code: str, message: str, fatal: bool = False):
        super().__init__(message)
        self.code, self.message, self.fatal = code, message, fatal


@dataclass(frozen=True)
class _Speak:
    text: str
    voice: str | None
    rate_wpm: int | None


@dataclass(frozen=True)
class PcmFormat:
    encoding: str
    sample_rate: int
    channels: int

    @classmethod
    def parse(cls, spec: Any, allowed_rates: list[int]) -> "PcmFormat":
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            raise ProtocolError("bad_format", "'format' must be an object like "
                                '{"encoding": "s16le", "sample_rate": 16000, "channels": 1}')
        unknown = set(spec) - {"encoding", "sample_rate", "channels"}
        if unknown:
            raise ProtocolError("bad_format", f"unknown format field(s) {sorted(unknown)}")
        enc = spec.get("encoding", "s16le")
        rate = spec.get("sample_rate", DEFAULT_PCM_RATE)
        ch = spec.get("channels", 1)
        if enc not in SUPPORTED_ENCODINGS:
            raise ProtocolError("unsupported_format",
                                f"encoding {enc!r} is not supported; use one of {list(SUPPORTED_ENCODINGS)}")
        if isinstance(rate, bool) or not isinstance(rate, int) or rate not in allowed_rates:
            raise ProtocolError("unsupported_format",
                                f"sample_rate {rate!r} is not supported; use one of {allowed_rates}")
        if ch != 1 or isinstance(ch, bool):
            raise ProtocolError("unsupported_format", f"channels {ch!r} is not supported; send mono (1)")
        return cls(enc, rate, ch)

    def decode(self, data: bytes) -> np.ndarray:
        """s16le bytes → float32 in [-1, 1]; a partial sample is an error, not silently cut."""
        if len(data) % 2:
            raise ProtocolError("bad_pcm", f"binary message of {len(data)} bytes is not a whole number "
                                           "of 2-byte s16le samples; the message was dropped")
        return s16le_to_float(data)

    def as_dict(self) -> dict:
        return {"encoding": self.encoding, "sample_rate": self.sample_rate, "channels": self.channels}


class AssistantConnection:
    """One client socket and the session it drives."""

    def __init__(self, ws: web.WebSocketResponse, registry: Any, config: Config, speaker: Speaker):
        self.ws, self.registry, self.config, self.speaker = ws, registry, config, speaker
        self.session: Any = None
        self.session_id: str | None = None
        self.owns_session = False
        self.mode = "assistant"
        self.fmt: PcmFormat | None = None
        # speech waiting behind a `speak`: (epoch when queued, item); older epochs are skipped
        self.lane: collections.deque = collections.deque()
        self.lane_task: asyncio.Task | None = None
        self.tasks: set[asyncio.Task] = set()
        self.send_lock = asyncio.Lock()

    # ---- sending ---------------------------------------------------------------------------
    async def send(self, event: dict) -> None:
        if self.ws.closed:
            return
        async with self.send_lock:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.ws.send_str(json.dumps(event, allow_nan=False, default=_json_default))

    async def send_error(self, err: ProtocolError) -> None:
        log.info("ws %s: %s: %s", self.session_id or "-", err.code, err.message)
        await self.send({"type": "error", "code": err.code, "message": err.message, "fatal": err.fatal})

    # ---- main loop ---------------------------------------------------------------------------
    async def run(self) -> None:
        limit = self.config.server.max_ws_message_bytes
        try:
            async for msg in self.ws:
                try:
                    if msg.type == WSMsgType.TEXT:
                        size = len(msg.data.encode())
                        if size > limit:
                            raise _too_large(size, limit)
                        await self.on_text(msg.data)
                    elif msg.type == WSMsgType.BINARY:
                        if len(msg.data) > limit:
                            raise _too_large(len(msg.data), limit)
                        self.on_pcm(msg.data)
                    elif msg.type == WSMsgType.ERROR:
                        log.info("ws %s: connection error: %s", self.session_id or "-", msg.data)
                        break
                except ProtocolError as err:
                    await self.send_error(err)
                    if err.fatal:
                        await self.ws.close(code=WSCloseCode.POLICY_VIOLATION, message=err.code.encode())
                        break
                except Exception as e:  # a server bug must not silently drop the socket
                    log.exception("ws %s: internal error handling a message", self.session_id or "-")
                    await self.send_error(ProtocolError("internal_error", f"{type(e).__name__}: {e}"))
        finally:
            await self.cleanup()

    async def on_text(self, text: str) -> None:
        try:
            msg = json.loads(text, parse_constant=_reject_constant)
        except (ValueError, RecursionError) as e:
            raise ProtocolError("bad_json", f"text message is not valid JSON: {e}") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            raise ProtocolError("bad_message", 'a text message must be a JSON object with a string "type"')
        kind = msg["type"]
        handler = self.HANDLERS.get(kind)
        if handler is None:
            raise ProtocolError("unknown_type", f"unknown message type {kind!r}; expected one of "
                                                f"{sorted(self.HANDLERS)}")
        if self.session is None and kind not in ("session.create", "session.attach", "ping"):
            raise ProtocolError("no_session", f"{kind!r} before session.create / session.attach")
        await handler(self, msg)

    def on_pcm(self, data: bytes) -> None:
        if self.session is None or self.fmt is None:
            raise ProtocolError("no_session", "binary PCM before session.create / session.attach")
        samples = self.fmt.decode(data)
        if samples.size == 0:
            return
        if self.mode == "echo":
            with _session_errors():
                self.session.push_mic(samples, self.fmt.sample_rate)
        else:
            self._in_order(lambda: self.session.push_speech(samples, self.fmt.sample_rate))

    # ---- message handlers ----------------------------------------------------------------------
    async def h_create(self, msg: dict) -> None:
        self._check_fresh()
        _only_fields(msg, {"type", "avatar", "format", "mode"})
        mode = msg.get("mode", "assistant")
        if mode not in WS_MODES:
            raise ProtocolError("bad_mode", f"mode {mode!r} is not available over the WebSocket; "
                                            f"use one of {list(WS_MODES)} (webcam needs WebRTC)")
        avatar = msg.get("avatar")
        if avatar is not None and (not isinstance(avatar, str) or not avatar):
            raise ProtocolError("bad_avatar", "'avatar' must be a non-empty string")
        fmt = PcmFormat.parse(msg.get("format"), list(self.config.audio.input_sample_rates))
        try:
            session = await _maybe_await(self.registry.create(mode, avatar=avatar))
        except FileNotFoundError as e:
            raise ProtocolError("unknown_avatar", f"could not create a session: {e}") from None
        except (ValueError, KeyError, RuntimeError, OSError) as e:
            raise ProtocolError("session_failed", f"could not create a session: {e}") from None
        except Exception as e:  # a bug or a broken asset: still an answer, not a dropped socket
            log.exception("ws: session creation failed")
            raise ProtocolError("session_failed", f"could not create a session: {type(e).__name__}: {e}") from None
        self.owns_session = True
        await self._bind(session, mode, fmt)

    async def h_attach(self, msg: dict) -> None:
        self._check_fresh()
        _only_fields(msg, {"type", "session_id", "format"})
        sid = msg.get("session_id")
        if not isinstance(sid, str) or not sid:
            raise ProtocolError("bad_session_id", "'session_id' must be a non-empty string")
        session = self.registry.find(sid)
        if session is None:
            raise ProtocolError("unknown_session", f"no session with id {sid!r}")
        fmt = PcmFormat.parse(msg.get("format"), list(self.config.audio.input_sample_rates))
        mode = getattr(session, "mode", "assistant")
        await self._bind(session, "echo" if mode == "echo" else "assistant", fmt)

    async def h_segment_end(self, msg: dict) -> None:
        _only_fields(msg, {"type"})
        self._in_order(self.session.end_segment)

    async def h_interrupt(self, msg: dict) -> None:
        _only_fields(msg, {"type"})
        with _session_errors():
            self.session.interrupt()   # the epoch bump also voids queued speech and pending TTS here

    async def h_state(self, msg: dict) -> None:
        _only_fields(msg, {"type", "state"})
        state = msg.get("state")
        if state not in STATE_HINTS:
            raise ProtocolError("bad_state", f"state hint {state!r} is not one of {list(STATE_HINTS)}")
        with _session_errors():
            self.session.set_state(state)

    async def h_speak(self, msg: dict) -> None:
        _only_fields(msg, {"type", "text", "voice", "rate_wpm"})
        text, voice, rate = msg.get("text"), msg.get("voice"), msg.get("rate_wpm")
        if not isinstance(text, str):
            raise ProtocolError("bad_text", "'text' must be a string")
        if voice is not None and not isinstance(voice, str):
            raise ProtocolError("bad_voice", "'voice' must be a string")
        if rate is not None and (isinstance(rate, bool) or not isinstance(rate, int)):
            raise ProtocolError("bad_rate", "'rate_wpm' must be an integer")
        self.lane.append((self.session.epoch, _Speak(text, voice, rate)))
        if self.lane_task is None:
            self.lane_task = asyncio.create_task(self._run_lane())

    # ---- ordering of speech: PCM / segment.end sent after a `speak` wait for its audio ----------
    def _in_order(self, action) -> None:
        if self.lane_task is None:
            with _session_errors():
                action()
        else:
            self.lane.append((self.session.epoch, action))

    async def _run_lane(self) -> None:
        try:
            while self.lane:
                epoch, item = self.lane.popleft()
                if epoch < self.session.epoch:
                    continue   # queued before an interrupt
                try:
                    if isinstance(item, _Speak):
                        await self._speak(item, epoch)
                    else:
                        with _session_errors():
                            item()
                except ProtocolError as err:
                    await self.send_error(err)
                    if err.fatal:
                        await self.ws.close(code=WSCloseCode.GOING_AWAY, message=err.code.encode())
                        return
                except Exception as e:
                    log.exception("ws %s: internal error in queued speech", self.session_id or "-")
                    await self.send_error(ProtocolError("internal_error", f"{type(e).__name__}: {e}"))
        finally:
            if self.lane_task is asyncio.current_task():
                self.lane_task = None

    async def _speak(self, req: "_Speak", epoch: int) -> None:
        synth = asyncio.ensure_future(self.speaker.speak(req.text, req.voice, req.rate_wpm))
        cut = asyncio.ensure_future(self.session.interrupted(epoch))
        await asyncio.wait({synth, cut}, return_when=asyncio.FIRST_COMPLETED)
        cut.cancel()
        if not synth.done():        # interrupted while synthesizing: its audio is not wanted
            synth.cancel()
            return
        try:
            audio = synth.result()
        except TTSError as e:
            raise ProtocolError("tts_failed", str(e)) from None
        if epoch < self.session.epoch:
            return
        with _session_errors():
            self.session.push_speech(audio, OUTPUT_SAMPLE_RATE)
            self.session.end_segment()
        await self.send({"type": "speak.queued", "duration_s": round(len(audio) / OUTPUT_SAMPLE_RATE, 3)})

    async def h_close(self, msg: dict) -> None:
        _only_fields(msg, {"type"})
        await self.ws.close(code=WSCloseCode.OK, message=b"session.close")

    async def h_ping(self, msg: dict) -> None:
        await self.send({"type": "pong", **({"id": msg["id"]} if "id" in msg else {})})

    HANDLERS = {
        "session.create": h_create, "session.attach": h_attach, "segment.end": h_segment_end,
        "interrupt": h_interrupt, "state": h_state, "speak": h_speak, "session.close": h_close,
        "ping": h_ping,
    }

    # ---- helpers -------------------------------------------------------------------------------
    def _check_fresh(self) -> None:
        if self.session is not None:
            raise ProtocolError("session_exists", f"this socket already drives session {self.session_id!r}")

    async def _bind(self, session: Any, mode: str, fmt: PcmFormat) -> None:
        self.session, self.mode, self.fmt = session, mode, fmt
        self.session_id = session.id
        events = session.events()  # subscribe now: nothing emitted from here on is missed
        v = self.config.video
        await self.send({
            "type": "session.ready", "protocol": PROTOCOL_VERSION, "session_id": self.session_id,
            "mode": session.mode, "created": self.owns_session, "format": fmt.as_dict(),
            "avatar": session.avatar_path.stem,
            "video": {"width": v.width, "height": v.height, "fps": v.fps},
            "viewer": {"offer_url": "/v1/offer", "session_id": self.session_id},
        })
        self._spawn(self._forward_events(events))

    async def _forward_events(self, events: Any) -> None:
        try:
            async for event in events:
                if event.get("type") == "error":
                    event = {"code": "session_failed", "fatal": False, **event}
                await self.send(event)
                if self.ws.closed:
                    return
            # the event stream ended: someone else (e.g. the WebRTC viewer owning it) closed the session
            await self.send_error(ProtocolError("session_closed", "the session has been closed", True))
            await self.ws.close(code=WSCloseCode.GOING_AWAY, message=b"session closed")
        except asyncio.CancelledError:
            raise
        except Exception:  # the session died under us: tell the client, then hang up
            log.exception("ws %s: session event stream failed", self.session_id)
            await self.send_error(ProtocolError("session_failed", "the session stopped unexpectedly", True))
            await self.ws.close(code=WSCloseCode.INTERNAL_ERROR)
        finally:
            await events.aclose()  # an attached session outlives this socket: unsubscribe

    def _spawn(self, coro) -> None:
        task = asyncio.create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def cleanup(self) -> None:
        if self.lane_task is not None:
            self.tasks.add(self.lane_task)
        for task in list(self.tasks):
            task.cancel()
        for task in list(self.tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self.session is not None and self.owns_session:
            with contextlib.suppress(Exception):
                await _maybe_await(self.registry.remove(self.session_id))
        self.session = None


@contextlib.contextmanager
def _session_errors():
    """What the session refuses (full buffer, bad audio, closed) becomes an error event."""
    try:
        yield
    except SpeechBufferFull as e:
        raise ProtocolError("buffer_full", f"{e}; the audio was dropped") from None
    except SessionClosed:
        raise ProtocolError("session_closed", "the session has been closed", fatal=True) from None
    except ValueError as e:  # AudioFormatError and friends: the message says what was wrong
        raise ProtocolError("bad_audio", str(e)) from None


def _too_large(n: int, limit: int) -> ProtocolError:
    return ProtocolError("message_too_large", f"message of {n} bytes exceeds server.max_ws_message_bytes "
                                              f"= {limit}; split audio into smaller chunks (it was dropped)")


def _only_fields(msg: dict, allowed: set[str]) -> None:
    extra = set(msg) - allowed - {"id"}
    if extra:
        raise ProtocolError("bad_message", f"{msg['type']!r} does not take field(s) {sorted(extra)}")


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not allowed")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


async def _maybe_await(x: Any) -> Any:
    return await x if asyncio.iscoroutine(x) or isinstance(x, asyncio.Future) else x


def add_routes(app: web.Application, registry: Any, config: Config) -> None:
    """Mount the assistant WebSocket API on ``app`` at ``/v1/ws``."""
    speaker = Speaker(config.tts)
    hard_limit = config.server.max_ws_message_bytes * HARD_LIMIT_FACTOR

    async def handle(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(max_msg_size=hard_limit, heartbeat=HEARTBEAT_S)
        if not ws.can_prepare(request).ok:
            return web.Response(status=426, text="this endpoint speaks WebSocket; see docs/protocol.md\n")
        await ws.prepare(request)
        await AssistantConnection(ws, registry, config, speaker).run()
        return ws

    app.router.add_get(WS_PATH, handle)
