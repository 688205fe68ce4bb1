"""A real aiortc peer for tests: sends a wav as its microphone, records what it receives.

Not a test module. Records every received frame with its RTP timestamp and the
sender reports (RTCP SR) of each stream, so a test can put audio and video on
the sender's common clock exactly as a browser does for lip sync.
"""
from __future__ import annotations

import asyncio
import fractions
import time

import av
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCRtpSender, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.rtp import RtcpSrPacket

from engine.audio.pcm import float_to_s16, s16_to_float


def _loopback_host_addresses(use_ipv4: bool, use_ipv6: bool) -> list[str]:
    return ["127.0.0.1"]


def use_loopback_ice(monkeypatch=None) -> None:
    """ICE host candidates on 127.0.0.1 only: aioice leaves out loopback, and the tests talk over
    loopback only. The one place this is set: conftest's ``live_server`` fixture calls it with its
    ``monkeypatch`` (undone after the test); a peer in a subprocess calls it without."""
    import aioice.ice
    if monkeypatch is None:
        aioice.ice.get_host_addresses = _loopback_host_addresses
    else:
        monkeypatch.setattr(aioice.ice, "get_host_addresses", _loopback_host_addresses)


class WavMic(MediaStreamTrack):
    """48 kHz mono float audio played in real time as 20 ms frames, then silence."""
    kind = "audio"

    def __init__(self, samples: np.ndarray) -> None:
        super().__init__()
        self.samples = samples
        self.pos = 0
        self.t0: float | None = None

    async def recv(self) -> av.AudioFrame:
        if self.t0 is None:
            self.t0 = time.monotonic()
        n = 960
        await asyncio.sleep(max(0.0, self.t0 + self.pos / 48000 - time.monotonic()))
        chunk = self.samples[self.pos:self.pos + n]
        chunk = np.concatenate([chunk, np.zeros(n - len(chunk), np.float32)])
        frame = av.AudioFrame.from_ndarray(float_to_s16(chunk)[None], format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, self.pos, fractions.Fraction(1, 48000)
        self.pos += n
        return frame


class Viewer:
    """One receiving peer connection."""

    def __init__(self, mic: np.ndarray | None = None, video_codec: str | None = None,
                 rtc_config: RTCConfiguration | None = None) -> None:
        self.pc = RTCPeerConnection(rtc_config or RTCConfiguration(iceServers=[]))
        self.video: list[tuple[float, int, av.VideoFrame]] = []  # (arrival, pts, decoded frame)
        self.audio: list[tuple[float, int, np.ndarray]] = []    # (arrival, pts, mono float)
        self.sr: dict[str, list[tuple[float, int]]] = {"audio": [], "video": []}
        self._mappers = {}
        self.ended = asyncio.Event()
        self._tasks = []
        if mic is not None:
            self.pc.addTrack(WavMic(mic))
        else:
            self.pc.addTransceiver("audio", direction="recvonly")
        t = self.pc.addTransceiver("video", direction="recvonly")
        if video_codec:
            caps = RTCRtpSender.getCapabilities("video").codecs
            t.setCodecPreferences([c for c in caps if c.mimeType.lower() == f"video/{video_codec.lower()}"])

        @self.pc.on("track")
        def _on_track(track):
            self._tasks.append(asyncio.ensure_future(self._read(track)))

    async def _read(self, track) -> None:
        try:
            while True:
                frame = await track.recv()
                now = time.monotonic()
                if track.kind == "video":
                    self.video.append((now, frame.pts, frame))   # converted later: keep up with the stream
                else:
                    pcm = s16_to_float(frame.to_ndarray()).reshape(-1, len(frame.layout.channels)).mean(axis=1)
                    self.audio.append((now, frame.pts, pcm))
        except MediaStreamError:
            self.ended.set()

    def images(self) -> list[np.ndarray]:
        """The received video frames as RGB arrays."""
        return [f.to_ndarray(format="rgb24") for _, _, f in self.video]

    def _watch_sender_reports(self) -> None:
        for receiver in self.pc.getReceivers():
            kind = receiver.track.kind
            # aiortc hands out pts = RTP timestamp - first RTP timestamp; keep the mapper to undo it
            self._mappers[kind] = receiver._RTCRtpReceiver__timestamp_mapper
            original = receiver._handle_rtcp_packet

            async def handle(packet, kind=kind, original=original):
                if isinstance(packet, RtcpSrPacket):
                    ntp = packet.sender_info.ntp_timestamp
                    self.sr[kind].append(((ntp >> 32) + (ntp & 0xFFFFFFFF) / 2**32,
                                          packet.sender_info.rtp_timestamp))
                await original(packet)
            receiver._handle_rtcp_packet = handle

    async def connect(self, http, base_url: str, **body) -> dict:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        resp = await http.post(f"{base_url}/v1/offer",
                               json={"sdp": self.pc.localDescription.sdp, "type": "offer", **body})
        answer = await resp.json()
        assert resp.status == 200, answer
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], answer["type"]))
        self._watch_sender_reports()
        return answer

    def sender_times(self, kind: str, pts: np.ndarray, rate: int) -> np.ndarray:
        """Received frame pts → the sender's NTP seconds (median over its sender reports)."""
        rtp = (np.asarray(pts, np.int64) + self._mappers[kind]._origin) % 2**32
        ref = int(rtp[0])
        unwrap = lambda ts: ((np.asarray(ts, np.int64) - ref + 2**31) % 2**32) - 2**31
        assert self.sr[kind], f"no RTCP sender report received for {kind}"
        offsets = [ntp - unwrap(ts) / rate for ntp, ts in self.sr[kind]]
        return float(np.median(offsets)) + unwrap(rtp) / rate

    def selected_pair(self):
        """aioice's nominated candidate pair of the (bundled) connection, or None."""
        for t in self.pc.getTransceivers():
            transport = t.receiver.transport
            if transport is not None:
                return transport.transport._connection._nominated.get(1)
        return None

    async def close(self) -> None:
        await self.pc.close()
        for t in self._tasks:
            t.cancel()
