"""WebRTC transport (aiortc): one peer connection per viewer of a session.

``POST /v1/offer`` → ``WebRTCPeer``: the browser's mic goes to
``session.push_mic``, its webcam (webcam mode) to ``session.push_webcam``;
the session's frames go out as one video track (VP8 or H.264) and one audio
track (Opus). A single feeder task reads ``session.video_frames()`` and splits
each frame's audio (one video frame long) into 20 ms audio frames with
consecutive pts, so audio and video come from the same packet and the same
media clock: video pts = k * 90000 / fps (90 kHz), audio pts = 48 kHz sample
index. Both tracks hand a frame to aiortc at its due time on the session clock.

Motion mode (a session with ``output == "motion"``): no video track. The peer's offer must
carry a data channel labelled ``"motion"``; each frame's 244-byte ``MotionFrame`` (pts = frame
index k) goes out on it as soon as the frame exists (``render_lead_ms`` before it is due), and
its audio on the Opus track as usual (48 kHz pts = k · samples_per_frame). Text messages on the
channel: ``motion.start`` (the stream's layout) and, about once a second, ``clock`` with the
RTP timestamp of audio sample 0 (``audio_rtp_origin``), which ties the RTP timestamps the
client's audio receiver reports (``getSynchronizationSources().rtpTimestamp``) to frame pts.
"""
from __future__ import annotations

import asyncio
import collections
import fractions
import json
import logging
import statistics
import time
from typing import Awaitable, Callable

import av
import numpy as np
from aiortc import (RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpSender,
                    RTCSessionDescription)
from aiortc.rtcconfiguration import RTCIceTransportPolicy
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from engine.audio.pcm import float_to_s16, s16_to_float
from engine.config import Config
from engine.pipeline.channel import Channel, ChannelClosed, Policy
from engine.session import Session
from engine.transports.encoder_bitrate import set_encoder_bitrate

log = logging.getLogger(__name__)

VIDEO_CLOCK = 90000
AUDIO_FRAME_MS = 20
MOTION_CHANNEL = "motion"   # the data channel label a motion-mode peer creates
ORIGIN_CONFIRM_FRAMES = 10  # motion mode: RTP origin readings that must agree before it changes
CLOCK_EVERY_S = 1.0         # motion mode: the `clock` message is repeated this often (and on change)
MOTION_BUFFER_BYTES = 16 * 1024   # motion mode: more unsent on the data channel (~2.6 s) → drop frames
# A frame whose due time passed this long ago is stale (the peer was not reading yet): skip it.
STALE_S = 0.2


class _PacedTrack(MediaStreamTrack):
    """Returns queued frames no earlier than their due time on the session clock."""

    compensate_encode = False

    def __init__(self, session: Session, capacity: int) -> None:
        super().__init__()
        self.session = session
        self.queue: Channel = Channel(capacity, Policy.DROP_OLDEST, f"{self.kind}-out")
        self.sent = 0
        self.stale = 0
        self.lead_s = 0.0   # hand frames over this much before they are due (encode time)
        self._returned_at: float | None = None
        self._busy: collections.deque[float] = collections.deque(maxlen=25)

    def _learn_lead(self) -> None:
        """aiortc encodes and sends between our recv() calls; that time is how early a frame
        must be handed over for its packets to leave at its due time (what the receiver's
        lip sync sees through the sender reports)."""
        if self._returned_at is None or not self.compensate_encode:
            return
        self._busy.append(time.monotonic() - self._returned_at)
        # A frame exists only render_lead_ms before it is due: never ask for it earlier.
        cap = 0.9 * self.session.config.pipeline.render_lead_ms / 1000.0
        self.lead_s = min(statistics.median(self._busy), cap)

    async def _next(self):
        clock = self.session.clock
        self._learn_lead()
        while True:
            try:
                due, epoch, frame = await self.queue.get()
            except ChannelClosed:
                self.stop()
                raise MediaStreamError from None
            if clock.now() - due > STALE_S and len(self.queue):
                self.stale += 1
                self.session.metrics.dropped.labels(what="stale_output").inc()
                continue
            if epoch < self.session.epoch and self.kind == "video":
                continue    # interrupted after it was queued: drop it, the next frame is on its way
            await clock.wait_until(due - self.lead_s)
            if epoch < self.session.epoch and self.kind == "audio":
                frame = _silent_like(frame)   # interrupted after it was queued: it must not be heard
            self.sent += 1
            self._returned_at = time.monotonic()
            return frame

    def stop(self) -> None:
        self.queue.close()
        super().stop()


def _silent_like(frame: av.AudioFrame) -> av.AudioFrame:
    silent = av.AudioFrame.from_ndarray(np.zeros_like(frame.to_ndarray()), format=frame.format.name,
                                        layout=frame.layout.name)
    silent.sample_rate, silent.pts, silent.time_base = frame.sample_rate, frame.pts, frame.time_base
    return silent


class SessionVideoTrack(_PacedTrack):
    kind = "video"
    compensate_encode = True

    async def recv(self) -> av.VideoFrame:
        return await self._next()


class SessionAudioTrack(_PacedTrack):
    kind = "audio"
    sender = None                      # the RTCRtpSender sending this track (set by the peer)
    rtp_origin: int | None = None      # RTP timestamp of session audio sample 0, once known
    _last_pts: int | None = None
    _candidate: int | None = None
    _seen = 0

    async def recv(self) -> av.AudioFrame:
        self._learn_rtp_origin()
        frame = await self._next()
        self._last_pts = frame.pts
        return frame

    def _learn_rtp_origin(self) -> None:
        """aiortc stamps a frame with RTP timestamp = a random origin + the samples it encoded
        before it (not our pts: a skipped stale frame shifts the mapping), and calls recv() again
        only once that frame's packet is sent, so here the sender's last RTP timestamp belongs to
        the frame returned last: origin = that timestamp - its pts. aiortc keeps the timestamp
        private (1.16: ``RTCRtpSender.__rtp_timestamp``); without it the origin stays unknown."""
        if self._last_pts is None or self.sender is None:
            return
        ts = getattr(self.sender, "_RTCRtpSender__rtp_timestamp", None)
        if not isinstance(ts, int) or getattr(self.sender, "_RTCRtpSender__packet_count", 0) == 0:
            return
        seen = (ts - self._last_pts) % 2**32
        # a reading taken while the encoder still buffered a frame is off by that frame: take a
        # new origin only once the same value is seen several frames in a row
        self._candidate, self._seen = (seen, self._seen + 1) if seen == self._candidate else (seen, 1)
        if self._seen >= ORIGIN_CONFIRM_FRAMES:
            self.rtp_origin = seen


def _ice_servers(config: Config) -> list[RTCIceServer]:
    """``webrtc.ice_servers`` (validated in engine/config.py). aioice uses the first STUN and the
    first TURN URL it can (turn: over udp or tcp, turns: over tcp); the rest are ignored."""
    return [RTCIceServer(urls=s["urls"], username=s.get("username"), credential=s.get("credential"))
            for s in config.webrtc.ice_servers]


def rtc_configuration(config: Config) -> RTCConfiguration:
    policy = (RTCIceTransportPolicy.RELAY if config.webrtc.ice_transport_policy == "relay"
              else RTCIceTransportPolicy.ALL)
    return RTCConfiguration(iceServers=_ice_servers(config), iceTransportPolicy=policy)


def _retrieve(task: asyncio.Task) -> None:
    """Done callback: a task that ended on a closed channel or stream is a normal hang-up, not
    an error to report as "Task exception was never retrieved"; anything else is logged once."""
    if task.cancelled():
        return
    e = task.exception()
    if e is None or isinstance(e, (ChannelClosed, MediaStreamError, ConnectionError)):
        return
    log.error("peer task %s failed: %s: %s", task.get_name(), type(e).__name__, e, exc_info=e)


class WebRTCPeer:
    """One viewer: a peer connection bound to a session."""

    def __init__(self, session: Session, config: Config,
                 on_closed: Callable[["WebRTCPeer"], Awaitable[None]] | None = None) -> None:
        self.session, self.config, self.on_closed = session, config, on_closed
        self.pc = RTCPeerConnection(rtc_configuration(config))
        self.video = SessionVideoTrack(session, capacity=3)
        self.audio = SessionAudioTrack(session, capacity=64)
        self.tasks: set[asyncio.Task] = set()
        self.closed = False
        self.frames_in = {"audio": 0, "video": 0}
        self.motion_channel = None      # motion mode: the peer's "motion" data channel
        self.motion_sent = self.motion_dropped = 0
        self._connected_at: float | None = None
        self.bitrate_applied = False
        self.mic_errors = 0

        @self.pc.on("connectionstatechange")
        async def _state() -> None:
            state = self.pc.connectionState
            log.info("peer %s: connection %s", session.id, state)
            if state == "connected" and self._connected_at is None:
                self._connected_at = asyncio.get_running_loop().time()
                self._spawn(self._watchdog())
            elif state in ("failed", "closed"):
                await self.close()

        @self.pc.on("datachannel")
        def _datachannel(channel) -> None:
            if channel.label == MOTION_CHANNEL and session.output == "motion" and self.motion_channel is None:
                self.motion_channel = channel
                self._send_motion_start()

        @self.pc.on("track")
        def _track(track: MediaStreamTrack) -> None:
            if track.kind == "audio":
                self._spawn(self._read_mic(track))
            elif track.kind == "video" and session.mode == "webcam":
                self._spawn(self._read_webcam(track))

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        task.add_done_callback(_retrieve)

    async def answer(self, sdp: str, type_: str) -> RTCSessionDescription:
        """Apply the remote offer (raises ValueError on a malformed one) and answer it."""
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=type_))
        for t in self.pc.getTransceivers():
            if t.kind == "audio" and t.sender.track is None:
                self.audio.sender = self.pc.addTrack(self.audio)
                break
        for t in self.pc.getTransceivers():
            if t.kind == "video" and self.session.output == "video":
                if t.sender.track is None:
                    self.pc.addTrack(self.video)
                self._prefer_codecs(t)
                break
        answer = await self.pc.createAnswer()
        await self.pc.setLocalDescription(answer)
        self._spawn(self._feed() if self.session.output == "video" else self._feed_motion())
        self._spawn(self._connect_deadline())
        return self.pc.localDescription

    async def _connect_deadline(self) -> None:
        """A peer that answered but never connects (a half-open offer, a blocked network) is
        closed after ``webrtc.connect_timeout_s``, and with it the session it owns."""
        timeout = self.config.webrtc.connect_timeout_s
        await asyncio.sleep(timeout)
        if self._connected_at is None and not self.closed:
            log.info("peer %s: not connected after %.1f s (state %s); closing", self.session.id, timeout,
                     self.pc.connectionState)
            await self.close()

    def _prefer_codecs(self, transceiver) -> None:
        caps = RTCRtpSender.getCapabilities("video").codecs
        order = [c.upper() for c in self.config.video.codecs]
        chosen = [c for name in order for c in caps if c.mimeType.split("/")[1].upper() == name]
        chosen += [c for c in caps if c.mimeType.lower() == "video/rtx"]
        if chosen:
            transceiver.setCodecPreferences(chosen)

    async def _feed(self) -> None:
        """Session frames → the two tracks (audio split into 20 ms frames)."""
        session = self.session
        clock = session.clock
        vt = fractions.Fraction(1, VIDEO_CLOCK)
        frames = session.video_frames()
        try:
            async for frame in frames:
                if not self.bitrate_applied:
                    self.bitrate_applied = self._apply_bitrate()
                due = clock.frame_time(frame.pts)
                vf = av.VideoFrame.from_ndarray(frame.image, format="rgb24")
                vf.pts = frame.pts * VIDEO_CLOCK // session.fps
                vf.time_base = vt
                if self.video.queue.closed or self.audio.queue.closed:
                    break   # aiortc stopped our tracks: the peer hung up (close() follows)
                before = self.video.queue.dropped
                self.video.queue.put_nowait((due, frame.epoch, vf))
                if self.video.queue.dropped > before:   # the encoder fell behind: newest picture wins
                    session.metrics.dropped.labels(what="video_frame").inc()
                self._queue_audio(frame.audio, due, frame.epoch)
        except ChannelClosed:
            pass    # a track stopped between the check above and the put: the peer hung up
        finally:
            await frames.aclose()
        if not self.closed:   # the session ended (closed elsewhere, or failed): hang up
            log.info("peer %s: the session's frames ended; closing the connection", session.id)
            self._spawn(self.close())

    async def _feed_motion(self) -> None:
        """Motion mode: each frame's motion → the data channel at once; its audio → the Opus
        track at its due time (20 ms frames, as in video mode)."""
        session = self.session
        frames = session.motion_frames()
        clock_sent_at, origin_sent = -1e9, None
        try:
            async for frame in frames:
                if self.audio.queue.closed:
                    break
                due = session.clock.frame_time(frame.pts)
                self._queue_audio(frame.audio, due, frame.epoch)
                ch = self.motion_channel
                if ch is not None and ch.readyState == "open":
                    origin = self.audio.rtp_origin
                    if origin is not None and (due - clock_sent_at >= CLOCK_EVERY_S or origin != origin_sent):
                        ch.send(json.dumps({"type": "clock", "audio_rtp_origin": origin, "pts": frame.pts}))
                        clock_sent_at, origin_sent = due, origin
                    if ch.bufferedAmount > MOTION_BUFFER_BYTES:   # the peer does not keep up: drop, stay current
                        self.motion_dropped += 1
                        session.metrics.dropped.labels(what="motion_frame").inc()
                        continue
                    ch.send(frame.motion.to_bytes(frame.pts))
                    self.motion_sent += 1
        except ChannelClosed:
            pass
        finally:
            await frames.aclose()
        if not self.closed:
            log.info("peer %s: the session's frames ended; closing the connection", session.id)
            self._spawn(self.close())

    def _queue_audio(self, audio, due: float, epoch: int) -> None:
        """One frame's audio → the audio track's queue as 20 ms frames with consecutive pts."""
        rate = self.session.output_rate
        step = rate * AUDIO_FRAME_MS // 1000
        pcm = float_to_s16(audio.samples)
        for i in range(0, len(pcm), step):
            af = av.AudioFrame.from_ndarray(pcm[None, i:i + step], format="s16", layout="mono")
            af.sample_rate = rate
            af.pts = audio.pts + i
            af.time_base = fractions.Fraction(1, rate)
            self.audio.queue.put_nowait((due + i / rate, epoch, af))

    def _send_motion_start(self) -> None:
        ch = self.motion_channel
        info = {"type": "motion.start", "session_id": self.session.id, **self.session.motion_layout()}

        def send_start() -> None:
            ch.send(json.dumps(info))
        if ch.readyState == "open":
            send_start()
        else:
            ch.once("open", send_start)

    def _apply_bitrate(self) -> bool:
        """Start the video encoder at ``video.bitrate_kbps`` (aiortc starts at 500 kbps and only
        adapts on REMB, which browsers using transport-cc never send). True once applied."""
        for sender in self.pc.getSenders():
            if sender.track is self.video:
                return set_encoder_bitrate(sender, self.config.video.bitrate_kbps * 1000)
        return True   # no video sender

    async def _read_mic(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self.frames_in["audio"] += 1
                pcm = frame.to_ndarray()
                if pcm.dtype == np.int16:
                    pcm = s16_to_float(pcm)
                channels = len(frame.layout.channels)
                if frame.format.is_planar:
                    mono = pcm.astype(np.float32).mean(axis=0)
                else:
                    mono = pcm.reshape(-1, channels).astype(np.float32).mean(axis=1)
                if self.session.closed:
                    continue
                try:
                    self.session.push_mic(mono, frame.sample_rate)
                except (ValueError, RuntimeError) as e:   # bad rate, full buffer: drop this frame, keep going
                    self.mic_errors += 1
                    if self.mic_errors == 1 or self.mic_errors % 500 == 0:
                        log.warning("peer %s: microphone frame dropped (%d so far): %s",
                                    self.session.id, self.mic_errors, e)
        except MediaStreamError:
            pass
        except Exception:
            log.exception("peer %s: microphone stream failed", self.session.id)

    async def _read_webcam(self, track: MediaStreamTrack) -> None:
        try:
            while True:
                frame = await track.recv()
                self.frames_in["video"] += 1
                if not self.session.closed:
                    self.session.push_webcam(frame.to_ndarray(format="rgb24"))
        except MediaStreamError:
            pass
        except Exception:
            log.exception("peer %s: webcam stream failed", self.session.id)

    async def _watchdog(self) -> None:
        """Close the connection when the peer stops sending RTCP (it vanished)."""
        timeout = self.config.webrtc.peer_timeout_s
        loop = asyncio.get_running_loop()
        last = loop.time()
        last_stamp = None
        while not self.closed:
            await asyncio.sleep(min(1.0, timeout / 4))
            stamp = None
            for sender in self.pc.getSenders():
                try:
                    report = await sender.getStats()
                except Exception:
                    continue
                for s in report.values():
                    if s.type == "remote-inbound-rtp":
                        stamp = s.timestamp if stamp is None else max(stamp, s.timestamp)
            if stamp is not None and stamp != last_stamp:
                last_stamp, last = stamp, loop.time()
            elif loop.time() - last > timeout:
                log.info("peer %s: no RTCP for %.1f s; closing", self.session.id, timeout)
                await self.close()
                return

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        current = asyncio.current_task()
        for task in list(self.tasks):
            if task is not current:
                task.cancel()
        self.video.stop()
        self.audio.stop()
        try:
            await self.pc.close()
        except Exception:
            log.exception("peer %s: error while closing", self.session.id)
        if self.on_closed is not None:
            await self.on_closed(self)

