"""Shared pieces of the Pipecat tests (not a test module): TTS frames from a wav, a collector at
the end of a real pipecat Pipeline, and a running PipelineTask."""
from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import numpy as np
from avatar_support import read_wav
from pipecat.frames.frames import (Frame, OutputImageRawFrame, TTSAudioRawFrame, TTSStartedFrame,
                                   TTSStoppedFrame)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineParams, PipelineTask
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor


def tts_frames(path: Path, chunk_ms: int = 20) -> list[Frame]:
    """What a Pipecat TTS service sends for one utterance, from a wav: started, audio, stopped."""
    pcm, rate = read_wav(path)
    step = rate * chunk_ms // 1000
    audio = [TTSAudioRawFrame(audio=pcm[i:i + step].tobytes(), sample_rate=rate, num_channels=1)
             for i in range(0, len(pcm), step)]
    return [TTSStartedFrame(), *audio, TTSStoppedFrame()]


class Collector(FrameProcessor):
    """The last processor: records every downstream frame with its arrival time."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[tuple[float, Frame]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is FrameDirection.DOWNSTREAM:
            self.frames.append((time.monotonic(), frame))
        await self.push_frame(frame, direction)

    def of(self, *types) -> list[Frame]:
        return [f for _, f in self.frames if isinstance(f, types)]

    def count(self, *types) -> int:
        return len(self.of(*types))

    async def wait_for(self, predicate, timeout: float, what: str) -> None:
        end = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > end:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; got "
                                     f"{self.count(OutputImageRawFrame)} images, "
                                     f"{self.count(TTSAudioRawFrame)} audio frames")
            await asyncio.sleep(0.02)


class UpstreamRecorder(FrameProcessor):
    """Placed before the processor under test: records the frames it sends upstream."""

    def __init__(self) -> None:
        super().__init__()
        self.frames: list[Frame] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if direction is FrameDirection.UPSTREAM:
            self.frames.append(frame)
        await self.push_frame(frame, direction)


class RunningPipeline:
    """``async with RunningPipeline([processor], allow_interruptions=...) as (task, collector):``"""

    def __init__(self, processors: list[FrameProcessor], allow_interruptions: bool = False) -> None:
        self.collector = Collector()
        self.task = PipelineTask(Pipeline([*processors, self.collector]),
                                 PipelineParams(allow_interruptions=allow_interruptions))
        self._run: asyncio.Task | None = None

    async def __aenter__(self):
        self._run = asyncio.create_task(PipelineRunner(handle_sigint=False).run(self.task))
        return self.task, self.collector

    async def __aexit__(self, *exc) -> None:
        # a pipeline that got its EndFrame finishes by itself: give it a moment, so cancel() does
        # not race its own shutdown (pipecat's cancel() then re-raises its push task's CancelledError)
        await asyncio.wait({self._run}, timeout=1.0)
        if not self.task.has_finished() and not self._run.done():
            with contextlib.suppress(asyncio.CancelledError):
                await self.task.cancel()
        try:
            await asyncio.wait_for(self._run, 30)
        except asyncio.CancelledError:
            pass


def audio_of(frames: list[Frame]) -> np.ndarray:
    return np.concatenate([np.frombuffer(f.audio, "<i2") for f in frames]) if frames else np.zeros(0, np.int16)
