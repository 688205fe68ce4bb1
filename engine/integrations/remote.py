"""``RemoteAvatar``: the avatar stream of a session on a facecast server.

The speech goes in over the assistant WebSocket API (docs/protocol.md, through the bundled
``facecast_client``); the picture and the played audio come back over WebRTC, as any viewer gets
them (``POST /v1/offer`` with the session's id, a receive-only aiortc peer). Nothing but the
documented API is used, so the server may be on another machine.

Which received audio is speech follows the session's events: from ``playback.started`` of a
segment, until as much audio as the segment played (``playback.finished``'s ``position_s``,
whole frames) has arrived, then ``SegmentEnded``. What the server played in that time is what
comes out: when its speech input ran late (an underrun) it inserted a silent frame, and that
silence is in the stream too (in-process such frames carry no audio). Audio is attached to the video frames in
order of arrival, one frame's worth per frame, so picture and sound stay within about a frame
of each other (the server sends both at their due times; WebRTC jitter is the rest).
"""
from __future__ import annotations

import asyncio
import collections
import logging
import math
import os
from typing import AsyncIterator

import numpy as np

from engine.audio.pcm import to_mono_float
from engine.integrations.avatar import AvatarFrame, SegmentEnded

log = logging.getLogger(__name__)

WS_RATES = (16000, 24000, 48000)   # PCM rates the assistant API takes (docs/protocol.md)


class RemoteAvatarError(RuntimeError):
    """The server refused or dropped the session or its viewer."""


class RemoteAvatar:
    def __init__(self, url: str, *, sample_rate: int = 24000, avatar: str | None = None,
                 token: str | None = None, ice_servers: list | None = None, timeout_s: float = 30.0) -> None:
        """``url``: ws://HOST:PORT/v1/ws; ``sample_rate``: of the TTS audio you will push (16000,
        24000 or 48000); ``token``: the server's bearer token (default $FACECAST_TOKEN);
        ``ice_servers``: aiortc ``RTCIceServer``s for the viewer (none: host candidates only)."""
        from facecast_client.client import check_url
        check_url(url)
        if sample_rate not in WS_RATES:
            raise ValueError(f"sample_rate {sample_rate} is not one the facecast API takes: {list(WS_RATES)}")
        self.url, self.sample_rate_in, self.avatar_name = url, sample_rate, avatar
        self.token = token if token is not None else os.environ.get("FACECAST_TOKEN") or None
        self.ice_servers, self.timeout_s = ice_servers or [], timeout_s
        self.client = None
        self.pc = None
        self.fps, self.width, self.height, self.sample_rate = 25, 0, 0, 48000
        self._tasks: list[asyncio.Task] = []
        self._video: asyncio.Queue = asyncio.Queue(maxsize=8)
        # received speech, in order: (segment, int16 samples) chunks and SegmentEnded markers
        self._audio: collections.deque = collections.deque()
        self._audio_n = 0
        # segments the events announced, oldest first: [segment, samples received, whole length or None]
        self._segments: collections.deque[list] = collections.deque()
        self._positions: dict[int, float] = {}
        self._frame_index = 0

    # ---- life cycle ---------------------------------------------------------------------------
    async def start(self) -> None:
        from facecast_client import FacecastClient
        self.client = await FacecastClient.connect(self.url, sample_rate=self.sample_rate_in, avatar=self.avatar_name,
                                                   timeout=self.timeout_s, token=self.token)
        video = self.client.ready.get("video", {})
        self.fps = int(video.get("fps", self.fps))
        self.width, self.height = int(video.get("width", 0)), int(video.get("height", 0))
        self._spf = self.sample_rate // self.fps
        try:
            await self._watch()
        except BaseException:
            await self.close()
            raise
        self._tasks.append(asyncio.create_task(self._read_events(), name="facecast-remote-events"))

    async def _watch(self) -> None:
        from aiohttp import ClientSession
        from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
        self.pc = pc = RTCPeerConnection(RTCConfiguration(iceServers=self.ice_servers))
        pc.addTransceiver("audio", direction="recvonly")
        pc.addTransceiver("video", direction="recvonly")
        pc.on("track", lambda track: self._tasks.append(asyncio.create_task(self._pull(track), name=f"pull-{track.kind}")))
        await pc.setLocalDescription(await pc.createOffer())
        http_url = self.url.replace("ws://", "http://", 1).replace("wss://", "https://", 1).rsplit("/v1/ws", 1)[0]
        body = {"sdp": pc.localDescription.sdp, "type": "offer", "session_id": self.client.session_id}
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else None
        async with ClientSession() as http:
            async with http.post(http_url + "/v1/offer", json=body, headers=headers) as resp:
                answer = await resp.json(content_type=None)
                if resp.status != 200:
                    raise RemoteAvatarError(f"POST /v1/offer: HTTP {resp.status} {answer}")
        await pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))

    async def close(self) -> None:
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            try:
                await t
            except (asyncio.CancelledError, Exception):
                pass
        self._tasks.clear()
        if self.pc is not None:
            await self.pc.close()
        if self.client is not None:
            await self.client.close()
        if not self._video.full():
            self._video.put_nowait(None)   # a reader of frames() stops

    # ---- speech in ----------------------------------------------------------------------------
    async def push_audio(self, samples: np.ndarray, sample_rate: int) -> None:
        if sample_rate != self.sample_rate_in:
            raise ValueError(f"this RemoteAvatar sends {self.sample_rate_in} Hz PCM (its session's format); "
                             f"got {sample_rate} Hz: create it with sample_rate={sample_rate}")
        x = to_mono_float(samples, sample_rate)
        if len(x):
            await self.client.send_audio(x)

    async def end_segment(self) -> None:
        await self.client.end_segment()

    async def interrupt(self) -> None:
        self._stop_speech()   # first, at once: audio of the old segment still on its way is not speech
        await self.client.interrupt()

    async def set_state(self, state: str) -> None:
        await self.client.set_state(state)

    # ---- media and events out -----------------------------------------------------------------
    def _stop_speech(self) -> None:
        self._segments.clear()
        self._audio.clear()
        self._audio_n = 0

    async def _read_events(self) -> None:
        async for ev in self.client.events():
            t = ev.get("type")
            if t == "playback.started":
                self._segments.append([ev["segment"], 0, None])
            elif t == "playback.finished":
                if ev.get("interrupted"):
                    self._stop_speech()
                    continue
                for entry in self._segments:
                    if entry[0] == ev["segment"]:   # the session plays whole frames (the last one padded)
                        entry[2] = math.ceil(round(ev["position_s"] * self.fps, 6)) * self._spf
                        self._positions[entry[0]] = ev["position_s"]
                self._assign(np.zeros(0, np.int16))
            elif t == "error" and ev.get("fatal"):
                log.error("facecast server: %s", ev)
        await self._video.put(None)   # the socket closed: the stream ends

    def _assign(self, pcm: np.ndarray) -> None:
        """Give received audio to the segments the events announced, in order; a segment that has
        all its audio ends (a SegmentEnded marker after it); audio outside any segment is idle."""
        while self._segments:
            entry = self._segments[0]
            seg, got, whole = entry
            # (more may have come than the segment's length by the time playback.finished says
            # it: the events run a little ahead of the media; that excess stays with the segment)
            take = len(pcm) if whole is None else max(0, min(len(pcm), whole - got))
            if take:
                self._audio.append((seg, pcm[:take]))
                self._audio_n += take
                entry[1] += take
                pcm = pcm[take:]
            if whole is not None and entry[1] >= whole:
                self._segments.popleft()
                self._audio.append(SegmentEnded(seg, self._positions.pop(seg, whole / self.sample_rate)))
                continue
            return

    async def _pull(self, track) -> None:
        from aiortc.mediastreams import MediaStreamError
        try:
            while True:
                frame = await track.recv()
                if track.kind == "video":
                    if self._video.full():
                        self._video.get_nowait()   # the consumer is behind: keep the newest pictures
                    self._video.put_nowait(frame.to_ndarray(format="rgb24"))
                elif self._segments:
                    pcm = frame.to_ndarray().reshape(-1, len(frame.layout.channels)).mean(axis=1)
                    self._assign(np.rint(pcm).astype(np.int16))
        except MediaStreamError:
            await self._video.put(None)

    def _take_frame_audio(self) -> tuple[np.ndarray | None, int, list[SegmentEnded]]:
        """The speech audio to show with the next picture: every whole frame's worth received of
        the oldest segment (all of it, padded to a whole frame, once its end is in), its segment,
        and the segments it ends. Pictures may arrive slower than the sound (a loaded machine,
        dropped video), so a picture can carry more than one frame of audio: none is held back."""
        n = self._spf
        head, ends = 0, False
        for item in self._audio:
            if isinstance(item, SegmentEnded):
                ends = True
                break
            head += len(item[1])
        want = head if ends else head // n * n
        if not want:
            return None, 0, []
        parts, got, segment = [], 0, 0
        while got < want:
            seg, a = self._audio.popleft()
            segment = segment or seg
            if got + len(a) > want:
                self._audio.appendleft((seg, a[want - got:]))
                a = a[:want - got]
            parts.append(a)
            got += len(a)
        self._audio_n -= got
        ended = []
        while self._audio and isinstance(self._audio[0], SegmentEnded):
            ended.append(self._audio.popleft())
        out = np.concatenate(parts)
        return np.concatenate([out, np.zeros(-len(out) % n, np.int16)]), segment, ended

    async def frames(self) -> AsyncIterator[AvatarFrame | SegmentEnded]:
        while True:
            image = await self._video.get()
            if image is None:
                return
            while self._audio and isinstance(self._audio[0], SegmentEnded):
                yield self._audio.popleft()
            audio, segment, ended = self._take_frame_audio()
            yield AvatarFrame(self._frame_index, image, audio, self.sample_rate, segment)
            self._frame_index += 1
            for item in ended:
                yield item
