"""The framework-neutral avatar stream the Pipecat and LiveKit adapters read.

    avatar = InProcessAvatar(config)            # or engine.integrations.remote.RemoteAvatar(url)
    await avatar.start()
    await avatar.push_audio(pcm, sample_rate)   # TTS audio the avatar says (int16 or float, mono)
    await avatar.end_segment()                  # the end of one utterance
    await avatar.interrupt()                    # barge-in: everything not yet played is dropped
    async for item in avatar.frames():          # AvatarFrame per video frame, SegmentEnded
        ...
    await avatar.close()

Each ``AvatarFrame`` is one video frame and, while a segment is playing, the speech audio
that frame shows (``audio``: int16 mono, ``sample_rate`` Hz; exactly one frame long in-process;
from a ``RemoteAvatar``, whole frames received since the previous picture: usually one), so an
adapter that emits a frame's image and audio together keeps them in sync. Frames with
``audio=None`` are not speech (idle, listening, a frame made before an interrupt, or a gap while
the TTS is late): adapters show the image and send no audio, so a framework's "bot is
speaking" logic and playback positions count speech only. ``SegmentEnded`` follows the last
frame of a segment that played to its end (never an interrupted one).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Protocol

import numpy as np

from engine.audio.pcm import float_to_s16
from engine.config import Config, load_config


@dataclass(frozen=True, slots=True)
class AvatarFrame:
    index: int                  # video frame number since the avatar started (gaps: frames skipped)
    image: np.ndarray           # (H, W, 3) uint8 RGB
    audio: np.ndarray | None    # int16 mono speech shown by this frame, or None
    sample_rate: int
    segment: int                # the segment the audio belongs to (0 when audio is None)


@dataclass(frozen=True, slots=True)
class SegmentEnded:
    segment: int
    position_s: float           # seconds of the segment played (its whole length)


class AvatarSource(Protocol):
    """What the framework adapters drive: ``InProcessAvatar`` or ``RemoteAvatar``."""
    fps: int
    width: int
    height: int
    sample_rate: int            # of the audio in the frames

    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def push_audio(self, samples: np.ndarray, sample_rate: int) -> None: ...
    async def end_segment(self) -> None: ...
    async def interrupt(self) -> None: ...
    async def set_state(self, state: str) -> None: ...
    def frames(self) -> AsyncIterator[AvatarFrame | SegmentEnded]: ...


class InProcessAvatar:
    """A facecast ``Session`` (assistant mode, real-time clock) in this process."""

    def __init__(self, config: Config | None = None, avatar_path: str | Path | None = None) -> None:
        from engine.session import Session
        self.config = config or load_config()
        self.session = Session(self.config, avatar_path, mode="assistant")
        self.fps = self.session.fps
        self.sample_rate = self.session.output_rate
        self.width, self.height = self.config.video.width, self.config.video.height
        self._open_segment = False

    async def start(self) -> None:
        await self.session.start()

    async def close(self) -> None:
        await self.session.close()

    async def push_audio(self, samples: np.ndarray, sample_rate: int) -> None:
        if len(samples):
            self.session.push_speech(samples, sample_rate)
            self._open_segment = True

    async def end_segment(self) -> None:
        if self._open_segment:   # an end with no audio before it is not a segment
            self.session.end_segment()
            self._open_segment = False

    async def interrupt(self) -> None:
        self.session.interrupt()
        self._open_segment = False

    async def set_state(self, state: str) -> None:
        self.session.set_state(state)

    async def frames(self) -> AsyncIterator[AvatarFrame | SegmentEnded]:
        """The session's frames. Its events are read after each frame: the session emits
        ``playback.finished`` in the same step as it publishes the segment's last frame, so the
        ``SegmentEnded`` comes right after that frame."""
        session = self.session
        frames, events = session.video_frames(), session.events()
        try:
            async for vf in frames:
                ended = []
                while (ev := events.channel.get_nowait()) is not None:
                    if ev["type"] == "playback.finished" and not ev["interrupted"]:
                        ended.append(SegmentEnded(ev["segment"], ev["position_s"]))
                chunk = vf.audio
                segment = chunk.segment if chunk is not None and vf.epoch == session.epoch else 0
                audio = float_to_s16(chunk.samples) if segment else None
                yield AvatarFrame(vf.pts, vf.image, audio, self.sample_rate, segment)
                for item in ended:
                    yield item
        finally:
            await frames.aclose()
            await events.aclose()
