"""The assistant WebSocket API at ``/v1/ws`` (documented in docs/protocol.md).

One WebSocket drives one session. The first text message creates a session
(``session.create``) or attaches to one a viewer already opened over WebRTC
(``session.attach``); then binary messages carry s16le mono PCM at the declared
rate, and JSON messages carry ``segment.end``, ``interrupt``, ``state`` hints,
``speak`` (server-side TTS) and ``session.close``. Session events (``state``,
``playback.started``, ``playback.finished``) are forwarded as JSON text.

Motion mode (``"output": "motion"`` in ``session.create``, or in ``session.attach`` to a
motion-mode session): the server also sends one binary message per frame, the 244-byte
``MotionFrame`` encoding (pts = frame index) followed by that frame's audio as s16le mono at the
output rate (docs/protocol.md, "Motion mode").

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

from engine.audio.pcm import float_to_s16le, s16le_to_float
from engine.audio import MODEL_RATE
from engine.config import Config
from engine.pipeline.speech import SpeechBufferFull, TooManySegments
from engine.safety import clip, parse_json
from engine.session import OUTPUTS, SessionClosed
from engine.sessions import creation_error
from engine.audio.tts import MAX_TEXT_CHARS, OUTPUT_SAMPLE_RATE, Speaker, TTSError, split_for_speech

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
# PCM / segment.end waiting behind a `speak`, per socket (the PCM also counts against the speech
# buffer when queued); more is refused with `buffer_full`.
MAX_LANE_ITEMS = 4096
# `speak` synthesizes its next sentence once less than this much speech is waiting to play.
SPEAK_AHEAD_S = 4.0


@dataclass
class _Shared:
    """Per-server state of all sockets: who drives which session, TTS syntheses running."""
    sockets: collections.Counter = None        # session id → bound sockets
    tts_sessions: collections.Counter = None   # session id → syntheses running
    tts_running: int = 0

    def __post_init__(self) -> None:
        self.sockets = collections.Counter()
        self.tts_sessions = collections.Counter()


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

    def __init__(self, ws: web.WebSocketResponse, registry: Any, config: Config, speaker: Speaker,
                 shared: _Shared | None = None):
        self.ws, self.registry, self.config, self.speaker = ws, registry, config, speaker
        self.shared = shared or _Shared()
        self.pending_speaks = 0
        self.session: Any = None
        self.session_id: str | None = None
        self.owns_session = False
        self.mode = "assistant"
        self.output = "video"     # "motion": this socket also receives the motion stream
        self.fmt: PcmFormat | None = None
        # speech waiting behind a `speak`: (epoch when queued, item, seconds reserved in the
        # session's speech buffer); older epochs are skipped
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
                    await self.send_error(_internal(e))
        finally:
            await self.cleanup()

    async def on_text(self, text: str) -> None:
        try:
            msg = parse_json(text)
        except ValueError as e:
            raise ProtocolError("bad_json", f"text message is not valid JSON: {clip(str(e), 200)}") from None
        if not isinstance(msg, dict) or not isinstance(msg.get("type"), str):
            raise ProtocolError("bad_message", 'a text message must be a JSON object with a string "type"')
        kind = msg["type"]
        handler = self.HANDLERS.get(kind)
        if handler is None:
            raise ProtocolError("unknown_type", f"unknown message type {clip(kind)}; expected one of "
                                                f"{sorted(self.HANDLERS)}")
        if self.session is None and kind not in ("session.create", "session.attach", "ping"):
            raise ProtocolError("no_session", f"{clip(kind)} before session.create / session.attach")
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
            session, rate = self.session, self.fmt.sample_rate
            self._in_order(lambda: session.push_speech(samples, rate), samples.size, rate)

    # ---- message handlers ----------------------------------------------------------------------
    async def h_create(self, msg: dict) -> None:
        self._check_fresh()
        _only_fields(msg, {"type", "avatar", "format", "mode", "output"})
        mode = msg.get("mode", "assistant")
        if not isinstance(mode, str) or mode not in WS_MODES:
            raise ProtocolError("bad_mode", f"mode {clip(mode)} is not available over the WebSocket; "
                                            f"use one of {list(WS_MODES)} (webcam needs WebRTC)")
        output = _parse_output(msg)
        avatar = msg.get("avatar")
        if avatar is not None and (not isinstance(avatar, str) or not avatar):
            raise ProtocolError("bad_avatar", "'avatar' must be a non-empty string")
        fmt = PcmFormat.parse(msg.get("format"), list(self.config.audio.input_sample_rates))
        try:
            kwargs = {"output": output} if output != "video" else {}
            session = await _maybe_await(self.registry.create(mode, avatar=avatar, **kwargs))
        except Exception as e:  # a bug or a broken asset too: still an answer, not a dropped socket
            code, message = creation_error(e)
            if code == "session_failed":
                log.exception("ws: session creation failed")
            elif code == "too_many_sessions":
                code = "session_failed"    # the WebSocket API's code for it (docs/protocol.md)
            raise ProtocolError(code, f"could not create a session: {message}") from None
        self.owns_session = True
        await self._bind(session, mode, fmt, output)

    async def h_attach(self, msg: dict) -> None:
        self._check_fresh()
        _only_fields(msg, {"type", "session_id", "format", "output"})
        sid = msg.get("session_id")
        if not isinstance(sid, str) or not sid:
            raise ProtocolError("bad_session_id", "'session_id' must be a non-empty string")
        output = _parse_output(msg)
        session = self.registry.find(sid)
        if session is None:
            raise ProtocolError("unknown_session", f"no session with id {clip(sid)}")
        if output == "motion" and getattr(session, "output", "video") != "motion":
            raise ProtocolError("bad_output", f"session {clip(sid)} renders video; only a session created with "
                                              '"output": "motion" has a motion stream')
        fmt = PcmFormat.parse(msg.get("format"), list(self.config.audio.input_sample_rates))
        cap = self.config.server.max_sockets_per_session
        if self.shared.sockets[session.id] >= cap:
            raise ProtocolError("too_many_sockets", f"session {clip(sid)} already has {cap} WebSockets "
                                                    f"(server.max_sockets_per_session = {cap})")
        mode = getattr(session, "mode", "assistant")
        await self._bind(session, "echo" if mode == "echo" else "assistant", fmt, output)

    async def h_segment_end(self, msg: dict) -> None:
        _only_fields(msg, {"type"})
        self._in_order(self.session.end_segment)

    async def h_interrupt(self, msg: dict) -> None:
        _only_fields(msg, {"type"})
        with _session_errors():
            self.session.interrupt()   # the epoch bump also voids queued speech and pending TTS here
        self._drop_stale_lane()

    async def h_state(self, msg: dict) -> None:
        _only_fields(msg, {"type", "state"})
        state = msg.get("state")
        if state not in STATE_HINTS:
            raise ProtocolError("bad_state", f"state hint {clip(state)} is not one of {list(STATE_HINTS)}")
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
        cap = self.config.tts.max_pending_per_socket
        if self.pending_speaks >= cap:
            raise ProtocolError("too_many_pending", f"{self.pending_speaks} 'speak' requests are already waiting "
                                                    f"on this socket (tts.max_pending_per_socket = {cap})")
        self._check_lane_room()
        self.pending_speaks += 1
        self.lane.append((self.session.epoch, _Speak(text, voice, rate), 0.0))
        if self.lane_task is None:
            self.lane_task = asyncio.create_task(self._run_lane())

    # ---- ordering of speech: PCM / segment.end sent after a `speak` wait for its audio ----------
    def _in_order(self, action, n_samples: int = 0, rate: int = 0) -> None:
        """Run ``action`` now, or queue it behind a pending ``speak``. Queued PCM is counted
        against the session's speech buffer at once (refused like a direct push when full)."""
        if self.lane_task is None:
            with _session_errors():
                action()
            return
        self._check_lane_room()
        cost = 0.0
        if n_samples:
            with _session_errors():
                self.session._check_open()
                cost = self.session.speech.cost_s(n_samples, rate)
                self.session.speech.reserve(cost)
        self.lane.append((self.session.epoch, action, cost))

    def _check_lane_room(self) -> None:
        if len(self.lane) >= MAX_LANE_ITEMS:
            raise ProtocolError("buffer_full", f"{len(self.lane)} messages are waiting behind 'speak' on this "
                                               "socket; wait for speak.queued (the message was dropped)")

    def _unqueue(self, item: Any, cost: float) -> None:
        """Bookkeeping for a lane item leaving the lane (run or skipped)."""
        if isinstance(item, _Speak):
            self.pending_speaks -= 1
        if cost and self.session is not None and self.session.speech is not None:
            self.session.speech.release(cost)

    def _drop_stale_lane(self) -> None:
        """After an interrupt: what was queued before it is void; give back its reservations."""
        if self.session is None:
            return
        keep = collections.deque()
        for entry in self.lane:
            if entry[0] < self.session.epoch:
                self._unqueue(entry[1], entry[2])
            else:
                keep.append(entry)
        self.lane = keep

    async def _run_lane(self) -> None:
        try:
            while self.lane:
                epoch, item, cost = self.lane.popleft()
                self._unqueue(item, cost)
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
                    await self.send_error(_internal(e))
        finally:
            if self.lane_task is asyncio.current_task():
                self.lane_task = None

    async def _speak(self, req: "_Speak", epoch: int) -> None:
        """Synthesize ``req.text`` piece by piece (sentences, long ones cut at clauses: see
        ``split_for_speech``) and push each piece's audio into one segment as soon as it is
        ready, so playback starts after the first piece, not the whole text; the next piece is
        synthesized while the previous ones play. An interrupt (the session epoch moving past
        ``epoch``) stops the synthesis of further pieces at once."""
        tts, shared, sid = self.config.tts, self.shared, self.session_id
        if shared.tts_running >= tts.max_concurrent:
            raise ProtocolError("tts_busy", f"the server is already running {shared.tts_running} syntheses "
                                            f"(tts.max_concurrent = {tts.max_concurrent}); try again shortly")
        if shared.tts_sessions[sid] >= tts.max_concurrent_per_session:
            raise ProtocolError("tts_busy", f"this session is already running {shared.tts_sessions[sid]} "
                                            f"syntheses (tts.max_concurrent_per_session = "
                                            f"{tts.max_concurrent_per_session}); try again shortly")
        text = req.text
        if len(text) > MAX_TEXT_CHARS:
            raise ProtocolError("tts_failed", f"text of {len(text)} characters is longer than the limit of "
                                              f"{MAX_TEXT_CHARS}")
        pieces = split_for_speech(text) or [text]   # nothing to say: the Speaker's error says so
        shared.tts_running += 1
        shared.tts_sessions[sid] += 1
        pushed, samples = False, 0
        try:
            for i, piece in enumerate(pieces):
                while (self.session.speech.buffered_s() > SPEAK_AHEAD_S and self.session.epoch <= epoch
                       and not self.session.closed):
                    # far enough ahead of playback: wait (a long text neither fills the speech
                    # buffer nor is synthesized in vain when interrupted)
                    with contextlib.suppress(asyncio.TimeoutError):
                        await asyncio.wait_for(self.session.interrupted(epoch), 0.1)
                if self.session.epoch > epoch or self.session.closed:
                    return                     # interrupted: say no more of it
                synth = asyncio.ensure_future(self.speaker.speak(piece, req.voice, req.rate_wpm))
                cut = asyncio.ensure_future(self.session.interrupted(epoch))
                try:
                    await asyncio.wait({synth, cut}, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    cut.cancel()
                    if not synth.done():       # interrupted while synthesizing: not wanted
                        synth.cancel()
                if synth.cancelled() or self.session.epoch > epoch:
                    return
                try:
                    audio = synth.result()
                except TTSError as e:
                    if pushed:                 # close what was said so far
                        with _session_errors():
                            self.session.end_segment()
                    raise ProtocolError("tts_failed", clip(str(e), 300)) from None
                if audio.size == 0:
                    continue
                try:
                    with _session_errors():
                        self.session.push_speech(audio, OUTPUT_SAMPLE_RATE)
                except ProtocolError:
                    if pushed:                 # (buffer full) close what was said so far
                        with contextlib.suppress(Exception):
                            self.session.end_segment()
                    raise
                pushed, samples = True, samples + len(audio)
            if pushed and self.session.epoch <= epoch:
                with _session_errors():
                    self.session.end_segment()
        finally:
            shared.tts_running -= 1
            shared.tts_sessions[sid] -= 1
            if shared.tts_sessions[sid] <= 0:
                del shared.tts_sessions[sid]
        if pushed and self.session.epoch <= epoch:
            await self.send({"type": "speak.queued", "duration_s": round(samples / OUTPUT_SAMPLE_RATE, 3)})

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

    async def _bind(self, session: Any, mode: str, fmt: PcmFormat, output: str = "video") -> None:
        self.session, self.mode, self.fmt, self.output = session, mode, fmt, output
        self.session_id = session.id
        self.shared.sockets[session.id] += 1
        events = session.events()  # subscribe now: nothing emitted from here on is missed
        frames = session.motion_frames() if output == "motion" else None
        v = self.config.video
        ready = {
            "type": "session.ready", "protocol": PROTOCOL_VERSION, "session_id": self.session_id,
            "mode": session.mode, "created": self.owns_session, "format": fmt.as_dict(),
            "avatar": session.avatar_path.stem,
            "video": {"width": v.width, "height": v.height, "fps": v.fps},
            "viewer": {"offer_url": "/v1/offer", "session_id": self.session_id},
        }
        if getattr(session, "output", "video") == "motion":
            ready["output"] = "motion"
            ready["motion"] = motion_stream_info(session)
            del ready["video"]
        await self.send(ready)
        self._spawn(self._forward_events(events))
        if frames is not None:
            self._spawn(self._forward_motion(frames))

    async def _forward_motion(self, frames: Any) -> None:
        """Motion mode: one binary message per frame, 244-byte MotionFrame + its s16le audio."""
        try:
            async for f in frames:
                if self.ws.closed:
                    return
                data = f.motion.to_bytes(f.pts) + float_to_s16le(f.audio.samples)
                async with self.send_lock:
                    with contextlib.suppress(ConnectionError, RuntimeError):
                        await self.ws.send_bytes(data)
        finally:
            await frames.aclose()

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
        while self.lane:   # give back what queued speech reserved in the session's buffer
            _, item, cost = self.lane.popleft()
            self._unqueue(item, cost)
        if self.session_id is not None and self.session is not None:
            self.shared.sockets[self.session_id] -= 1
            if self.shared.sockets[self.session_id] <= 0:
                del self.shared.sockets[self.session_id]
        if self.session is not None and self.owns_session:
            with contextlib.suppress(Exception):
                await _maybe_await(self.registry.remove(self.session_id))
        self.session = None


@contextlib.contextmanager
def _session_errors():
    """What the session refuses (full buffer, bad audio, closed) becomes an error event."""
    try:
        yield
    except TooManySegments as e:
        raise ProtocolError("too_many_segments", f"{e}; the audio was dropped") from None
    except SpeechBufferFull as e:
        raise ProtocolError("buffer_full", f"{e}; the audio was dropped") from None
    except SessionClosed:
        raise ProtocolError("session_closed", "the session has been closed", fatal=True) from None
    except ValueError as e:  # AudioFormatError and friends: the message says what was wrong
        raise ProtocolError("bad_audio", clip(str(e), 300)) from None


def _parse_output(msg: dict) -> str:
    output = msg.get("output", "video")
    if not isinstance(output, str) or output not in OUTPUTS:
        raise ProtocolError("bad_output", f"output {clip(output)} is not one of {list(OUTPUTS)}")
    return output


def motion_stream_info(session: Any) -> dict:
    """``session.ready``'s ``motion`` object: the session's frame/audio layout + this socket's
    framing (one binary message = frame_bytes of MotionFrame + samples_per_frame s16le samples)."""
    layout = session.motion_layout()
    return {**layout, "audio_encoding": "s16le",
            "message_bytes": layout["frame_bytes"] + 2 * layout["samples_per_frame"]}


def _internal(e: BaseException) -> ProtocolError:
    """A server bug, told without its details (they may name files; they are in the log)."""
    return ProtocolError("internal_error", f"internal error ({type(e).__name__}) handling the message; "
                                           "details are in the server log")


def _too_large(n: int, limit: int) -> ProtocolError:
    return ProtocolError("message_too_large", f"message of {n} bytes exceeds server.max_ws_message_bytes "
                                              f"= {limit}; split audio into smaller chunks (it was dropped)")


def _only_fields(msg: dict, allowed: set[str]) -> None:
    extra = set(msg) - allowed - {"id"}
    if extra:
        raise ProtocolError("bad_message", f"{clip(msg['type'])} does not take field(s) {clip(sorted(extra))}")


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"{type(o).__name__} is not JSON serializable")


async def _maybe_await(x: Any) -> Any:
    return await x if asyncio.iscoroutine(x) or isinstance(x, asyncio.Future) else x


async def accept_websocket(request: web.Request, config: Config) -> web.StreamResponse:
    """The prepared socket of a ``GET /v1/ws`` request (a ``web.WebSocketResponse``), or the 426
    answer to a plain HTTP request. Shared with the cluster front door, which relays the socket."""
    ws = web.WebSocketResponse(max_msg_size=config.server.max_ws_message_bytes * HARD_LIMIT_FACTOR,
                               heartbeat=HEARTBEAT_S)
    if not ws.can_prepare(request).ok:
        return web.Response(status=426, text="this endpoint speaks WebSocket; see docs/protocol.md\n")
    await ws.prepare(request)
    return ws


def websocket_handler(registry: Any, config: Config):
    """The ``GET /v1/ws`` handler of the assistant WebSocket API over ``registry``'s sessions."""
    speaker = Speaker(config.tts)
    shared = _Shared()

    async def handle(request: web.Request) -> web.StreamResponse:
        ws = await accept_websocket(request, config)
        if isinstance(ws, web.WebSocketResponse):
            await AssistantConnection(ws, registry, config, speaker, shared).run()
        return ws

    return handle


def add_routes(app: web.Application, registry: Any, config: Config) -> None:
    """Mount the assistant WebSocket API on ``app`` at ``/v1/ws``."""
    app.router.add_get(WS_PATH, websocket_handler(registry, config))
