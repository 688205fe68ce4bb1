"""``FacecastVideoGenerator``: facecast behind LiveKit's self-hosted avatar contract
(``livekit.agents.voice.avatar.VideoGenerator``), for an ``AvatarRunner`` on the avatar side.

    gen = FacecastVideoGenerator(InProcessAvatar())
    runner = AvatarRunner(room, audio_recv=DataStreamAudioReceiver(room), video_gen=gen,
                          options=gen.options())

``push_audio(rtc.AudioFrame)`` is the agent's speech (any channel count, 8–48 kHz);
``push_audio(AudioSegmentEnd())`` ends the utterance; ``clear_buffer()`` drops everything not yet
played (an interrupt). Iterating gives, per video frame, an RGBA ``rtc.VideoFrame`` and, while
speaking, right after it the ``rtc.AudioFrame`` (48 kHz mono, one video frame long) it shows;
``AudioSegmentEnd`` after the last frame of an utterance that played to its end. Idle frames
carry no audio, so the runner's playback position counts speech only.
"""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

import numpy as np
from livekit import rtc
from livekit.agents.voice.avatar import AudioSegmentEnd, AvatarOptions, VideoGenerator

from engine.integrations.avatar import AvatarFrame, AvatarSource, SegmentEnded


class FacecastVideoGenerator(VideoGenerator):
    def __init__(self, avatar: AvatarSource) -> None:
        self.avatar = avatar
        self._started = False
        self._start_lock = asyncio.Lock()
        self.audio_frames_out = 0     # speech audio frames handed out (for tests and metrics)

    async def start(self) -> None:
        """Start the avatar (also done by the first ``push_audio`` or iteration)."""
        async with self._start_lock:
            if not self._started:
                await self.avatar.start()
                self._started = True

    async def aclose(self) -> None:
        if self._started:
            self._started = False
            await self.avatar.close()

    def options(self) -> AvatarOptions:
        """The ``AvatarOptions`` for the runner: the avatar's video size and fps, 48 kHz mono audio.
        (Known once the avatar has started for a remote one; an in-process one knows at once.)"""
        return AvatarOptions(video_width=self.avatar.width, video_height=self.avatar.height,
                             video_fps=float(self.avatar.fps), audio_sample_rate=self.avatar.sample_rate,
                             audio_channels=1)

    async def push_audio(self, frame: rtc.AudioFrame | AudioSegmentEnd) -> None:
        await self.start()
        if isinstance(frame, AudioSegmentEnd):
            await self.avatar.end_segment()
            return
        if not isinstance(frame, rtc.AudioFrame):
            raise TypeError(f"push_audio takes an rtc.AudioFrame or AudioSegmentEnd, not {type(frame).__name__}")
        pcm = np.frombuffer(frame.data, np.int16)
        if frame.num_channels > 1:
            pcm = pcm.reshape(-1, frame.num_channels)
        await self.avatar.push_audio(pcm, frame.sample_rate)

    async def clear_buffer(self) -> None:
        if self._started:
            await self.avatar.interrupt()

    def __aiter__(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        return self._stream()

    async def _stream(self) -> AsyncIterator[rtc.VideoFrame | rtc.AudioFrame | AudioSegmentEnd]:
        await self.start()
        async for item in self.avatar.frames():
            if isinstance(item, SegmentEnded):
                yield AudioSegmentEnd()
                continue
            yield video_frame(item)
            if item.audio is not None:
                self.audio_frames_out += 1
                yield rtc.AudioFrame(item.audio.astype("<i2", copy=False).tobytes(), item.sample_rate, 1, len(item.audio))


def video_frame(item: AvatarFrame) -> rtc.VideoFrame:
    """The frame's RGB image as an RGBA ``rtc.VideoFrame`` (the format LiveKit's sources take everywhere)."""
    h, w = item.image.shape[:2]
    rgba = np.empty((h, w, 4), np.uint8)
    rgba[..., :3] = item.image
    rgba[..., 3] = 255
    return rtc.VideoFrame(w, h, rtc.VideoBufferType.RGBA, rgba.tobytes())
