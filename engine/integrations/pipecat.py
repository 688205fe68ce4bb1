"""facecast as a Pipecat ``FrameProcessor`` that goes after the TTS (extra ``facecast[pipecat]``).

    from engine.integrations.pipecat import FacecastProcessor
    from engine.integrations.avatar import InProcessAvatar          # the engine in this process
    from engine.integrations.remote import RemoteAvatar             # or a facecast server
    avatar = FacecastProcessor(InProcessAvatar())                   # RemoteAvatar("ws://host:8080/v1/ws")
    pipeline = Pipeline([transport.input(), stt, llm, tts, avatar, transport.output()])

In: ``TTSAudioRawFrame`` (any channel count, a rate facecast takes: 8–48 kHz) is the speech;
``TTSStoppedFrame`` ends the segment. These and ``TTSStartedFrame`` are consumed.
Out, one video frame at a time, paced by the avatar's clock: ``OutputImageRawFrame`` (RGB) and,
while it speaks, right after it the ``TTSAudioRawFrame`` (48 kHz mono) that frame shows, the
speech re-timed to the video; ``TTSStartedFrame`` before a segment's first frame and
``TTSStoppedFrame`` after its last, so the output transport's bot-speaking logic follows what is
actually played. Idle frames carry no audio.
``StartInterruptionFrame`` (and ``UserStartedSpeakingFrame`` when the pipeline allows
interruptions) clears the avatar at once: nothing older is shown with audio after it.
``EndFrame`` lets the queued speech play out (at most ``end_timeout_s``), then closes the avatar.
Every other frame passes through.
"""
from __future__ import annotations

import asyncio
import logging

import numpy as np
from pipecat.frames.frames import (CancelFrame, EndFrame, ErrorFrame, Frame, OutputImageRawFrame, StartFrame,
                                   StartInterruptionFrame, TTSAudioRawFrame, TTSStartedFrame,
                                   TTSStoppedFrame, UserStartedSpeakingFrame, UserStoppedSpeakingFrame)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from engine.integrations.avatar import AvatarFrame, AvatarSource, SegmentEnded

log = logging.getLogger(__name__)


class FacecastProcessor(FrameProcessor):
    def __init__(self, avatar: AvatarSource, *, end_timeout_s: float = 60.0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.avatar = avatar
        self.end_timeout_s = end_timeout_s
        self._started = False
        self._out_task: asyncio.Task | None = None
        self._playing = 0                 # segment whose frames are going out (0: none)
        self._queued = 0                  # segments ended on the input side
        self._finished = 0                # ... and played out (or dropped by an interrupt)
        self._progress = asyncio.Event()
        self._open = False                # TTS audio came since the last segment end
        self.frames_out = 0               # images pushed
        self.error: BaseException | None = None

    # ---- input side ---------------------------------------------------------------------------
    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is not FrameDirection.DOWNSTREAM:
            await self.push_frame(frame, direction)
        elif isinstance(frame, StartFrame):
            await self.push_frame(frame, direction)
            try:
                await self._start()
            except Exception as e:   # no avatar (a server that cannot be reached, a bad avatar file)
                self.error = e
                log.error("%s: the avatar did not start: %s", self, e)
                await self.push_error(ErrorFrame(f"facecast avatar did not start: {e}", fatal=True))
        elif isinstance(frame, TTSAudioRawFrame):
            try:
                await self._push_audio(frame)
            except Exception as e:   # bad audio, a full speech buffer: tell the pipeline, keep going
                log.warning("%s: TTS audio refused: %s", self, e)
                await self.push_error(ErrorFrame(f"facecast refused TTS audio: {e}"))
        elif isinstance(frame, TTSStoppedFrame):
            await self._end_segment()
        elif isinstance(frame, TTSStartedFrame):
            pass   # our own TTSStartedFrame goes out when the avatar starts saying it
        elif isinstance(frame, StartInterruptionFrame):
            await self._interrupt()
            await self.push_frame(frame, direction)
        elif isinstance(frame, UserStartedSpeakingFrame):
            if self.interruptions_allowed:
                await self._start_interruption()   # frames already queued to go out are dropped too
                await self._interrupt()
            await self._hint("listening")
            await self.push_frame(frame, direction)
        elif isinstance(frame, UserStoppedSpeakingFrame):
            await self._hint("thinking")
            await self.push_frame(frame, direction)
        elif isinstance(frame, EndFrame):
            await self._end_segment()
            await self._drain()
            await self._stop()
            await self.push_frame(frame, direction)
        elif isinstance(frame, CancelFrame):
            await self._stop()
            await self.push_frame(frame, direction)
        else:
            await self.push_frame(frame, direction)

    async def _start(self) -> None:
        if self._started:
            return
        try:
            await self.avatar.start()
        except BaseException:
            try:
                await self.avatar.close()   # whatever it had opened
            except Exception:
                pass
            raise
        self._started = True
        self._out_task = asyncio.get_running_loop().create_task(self._emit_frames(), name=f"{self.name}-out")

    async def _stop(self) -> None:
        if self._out_task is not None:
            self._out_task.cancel()
            try:
                await self._out_task
            except (asyncio.CancelledError, Exception):
                pass
            self._out_task = None
        if self._started:
            self._started = False
            await self.avatar.close()

    async def cleanup(self) -> None:
        await self._stop()
        await super().cleanup()

    async def _push_audio(self, frame: TTSAudioRawFrame) -> None:
        if not self._started:
            raise RuntimeError("FacecastProcessor got TTS audio before the pipeline's StartFrame")
        if len(frame.audio) % (2 * max(1, frame.num_channels)):
            raise ValueError(f"TTSAudioRawFrame of {len(frame.audio)} bytes is not whole 16-bit samples "
                             f"for {frame.num_channels} channel(s)")
        pcm = np.frombuffer(frame.audio, "<i2")
        if frame.num_channels > 1:
            pcm = pcm[: len(pcm) // frame.num_channels * frame.num_channels].reshape(-1, frame.num_channels)
        await self.avatar.push_audio(pcm, frame.sample_rate)
        self._open = True

    async def _end_segment(self) -> None:
        if self._open and self._started:
            await self.avatar.end_segment()
            self._open = False
            self._queued += 1

    async def _interrupt(self) -> None:
        if self._started:
            await self.avatar.interrupt()
        self._open = False
        self._playing = 0
        self._finished = self._queued   # what was queued is dropped
        self._progress.set()

    async def _hint(self, state: str) -> None:
        if self._started:
            await self.avatar.set_state(state)

    async def _drain(self) -> None:
        """Wait until every ended segment has played out (or ``end_timeout_s`` passed)."""
        loop = asyncio.get_running_loop()
        until = loop.time() + self.end_timeout_s
        while self._finished < self._queued and self._out_task is not None and not self._out_task.done():
            self._progress.clear()
            try:
                await asyncio.wait_for(self._progress.wait(), max(0.0, until - loop.time()))
            except asyncio.TimeoutError:
                log.warning("%s: speech still playing after %.0f s at the EndFrame; closing", self, self.end_timeout_s)
                return

    # ---- output side --------------------------------------------------------------------------
    async def _emit_frames(self) -> None:
        avatar = self.avatar
        try:
            async for item in avatar.frames():
                if isinstance(item, SegmentEnded):
                    if self._playing == item.segment:
                        await self.push_frame(TTSStoppedFrame())
                        self._playing = 0
                    self._finished += 1
                    self._progress.set()
                    continue
                await self._emit_frame(item)
            raise RuntimeError("the avatar's frame stream ended (the session or its server went away)")
        except asyncio.CancelledError:
            raise
        except Exception as e:   # the avatar failed: say so upstream instead of going silent
            self.error = e
            log.error("%s: %s", self, e)
            await self.push_error(ErrorFrame(f"facecast avatar failed: {e}", fatal=True))
        finally:
            self._progress.set()

    async def _emit_frame(self, item: AvatarFrame) -> None:
        if item.audio is not None and item.segment != self._playing:
            await self.push_frame(TTSStartedFrame())
            self._playing = item.segment
        h, w = item.image.shape[:2]
        await self.push_frame(OutputImageRawFrame(image=item.image.tobytes(), size=(w, h), format="RGB"))
        self.frames_out += 1
        if item.audio is not None:
            await self.push_frame(TTSAudioRawFrame(audio=item.audio.astype("<i2", copy=False).tobytes(),
                                                   sample_rate=item.sample_rate, num_channels=1))
