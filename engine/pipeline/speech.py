"""Speech-motion stage: the avatar's speech audio → (motion, audio) per video frame.

Audio arrives in chunks (any supported rate). A worker thread resamples it
exactly to the model rate (16 kHz) and to the output rate (48 kHz), runs the
speech-motion generator, and hands back motion vectors plus output audio. The
event-loop side keeps, per segment, the motion frames and the output audio not
yet played; a frame is *ready* when both its motion and its full one-frame
audio exist. ``pop_frame`` hands the next ready frame to the frame clock, so
the audio leaves together with the frame that shows it (sync by construction).

Packets: ``push`` queues an ``AudioChunk`` and ``end_segment`` a ``SegmentEnd`` on the
stage's input channel; ``pop_frame`` returns a ``MotionPacket`` (one video frame's speech
motion plus exactly one frame of output audio).

Interruption: the epoch lives in the Session; the stage reads it (``epoch()``) and never
keeps a copy. Every packet carries the epoch it was made in; ``drop_stale()`` (called by
``Session.interrupt`` right after the bump) purges queued packets and buffered segments of
older epochs at once; a job already running in the worker comes back with an old epoch and
is discarded; the generator is reset before the first job of a new epoch.
"""
from __future__ import annotations

import asyncio
import collections
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Callable

import numpy as np

from engine.audio.resample import StreamingResampler
from engine.motion.streaming import SpeechMotionGenerator
from engine.motion.space import VECTOR_DIM
from engine.packets import AudioChunk, MotionPacket, SegmentEnd
from engine.pipeline.channel import Channel, Policy


MAX_MARGIN_S = 0.12        # the adaptive start margin never exceeds this
MARGIN_STEP_S = 0.02       # added per underrun
MARGIN_DECAY_S = 0.0005    # removed per speech frame played on time


# Work is split into jobs of at most this much audio, so the first frames of a long push are
# ready after one short job instead of after the whole push (docs/streaming.md).
MAX_JOB_S = 0.2


class SpeechBufferFull(RuntimeError):
    """More speech was pushed than ``pipeline.max_buffered_speech_s`` allows."""


class TooManySegments(SpeechBufferFull):
    """More segments are queued than ``pipeline.max_queued_segments`` allows."""


@dataclass
class Segment:
    id: int
    epoch: int
    sample_rate: int = 0
    input_samples: int = 0                     # samples pushed, at sample_rate
    motion: collections.deque = field(default_factory=collections.deque)
    audio: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))   # output-rate, unplayed
    audio_arrivals: list = field(default_factory=list)   # (output sample index at chunk end, arrival)
    ended: bool = False        # end_segment() was called
    flushed: bool = False      # the worker flushed the generator: no more motion will come
    frames_played: int = 0
    behind: int = 0            # ticks the frame clock waited for it mid-segment, not yet caught up
    audio_played: int = 0      # output samples handed out
    first_ready: float | None = None   # monotonic time its first frame became ready
    owed_s: float = 0.0        # its share of SpeechStage's running total of buffered seconds

    @property
    def duration_s(self) -> float:
        return self.input_samples / self.sample_rate if self.sample_rate else 0.0


class SpeechStage:
    def __init__(self, generator: SpeechMotionGenerator, fps: int, model_rate: int, output_rate: int,
                 max_buffered_s: float, executor: ThreadPoolExecutor, metrics=None,
                 start_margin_s: float = 0.0, inline: bool = False, silence_dbfs: float = -50.0,
                 epoch: Callable[[], int] = lambda: 0, max_segments: int = 64) -> None:
        if model_rate % fps or output_rate % fps:
            raise ValueError(f"fps {fps} must divide the model rate {model_rate} and output rate {output_rate}")
        self.generator = generator
        self.fps, self.model_rate, self.output_rate = fps, model_rate, output_rate
        self.spf_out = output_rate // fps
        self.max_buffered_s = max_buffered_s
        self.max_segments = max_segments
        self._buffered = 0.0     # Σ seg.owed_s, kept up to date on every change (O(1) per push)
        self._reserved = 0.0     # speech promised by callers (queued elsewhere), not pushed yet
        # A live segment starts this long after its first frame is ready, so the arrival jitter
        # of later chunks does not starve the frame clock mid-segment.
        self.start_margin_s = start_margin_s
        # Adaptive: each underrun (audio later than the margin covered) widens it, calm speech
        # narrows it back, so a loaded machine trades a little latency for steady lips.
        self.base_margin_s = start_margin_s
        self.max_margin_s = max(start_margin_s, MAX_MARGIN_S)
        self.underruns = 0
        # Live catch-up: a segment that fell behind (late audio made the frame clock wait, one
        # tick per underrun) skips as many *silent* frames to get back on time; speech audio is
        # never dropped, and audio pushed ahead of real time (a TTS) keeps all its pauses.
        self.catch_up = start_margin_s > 0
        self.silence_rms = 10 ** (silence_dbfs / 20)
        self.silent_frames_dropped = 0
        self.executor = executor
        self.inline = inline   # offline: run jobs on the loop (no thread hand-offs)
        self.metrics = metrics
        self.epoch = epoch          # the session's current epoch (read, never stored)
        self.segments: collections.deque[Segment] = collections.deque()
        self._next_segment_id = 1
        self._in: Channel[AudioChunk | SegmentEnd] = Channel(1 << 30, Policy.BLOCK, "speech-in")
        self._queued_s = 0.0
        # Worker-thread state (touched only inside jobs, which run one at a time).
        self._w_epoch = -1
        self._w_segment = -1
        self._w_rate = 0
        self._to_model: StreamingResampler | None = None
        self._to_out: StreamingResampler | None = None
        self._task: asyncio.Task | None = None
        self._in_flight = False
        self._progress = asyncio.Event()

    # ---- producer side (event loop) -----------------------------------------------------
    def _open_segment(self, sample_rate: int) -> Segment:
        if self.segments and not self.segments[-1].ended:
            seg = self.segments[-1]
            if seg.sample_rate != sample_rate:
                raise ValueError(f"sample rate changed within a segment ({seg.sample_rate} → {sample_rate} Hz); "
                                 "call end_segment() first")
            return seg
        if len(self.segments) >= self.max_segments:
            raise TooManySegments(f"{len(self.segments)} segments are already queued "
                                  f"(pipeline.max_queued_segments = {self.max_segments}); "
                                  "send longer segments or wait for playback.finished")
        seg = Segment(self._next_segment_id, self.epoch(), sample_rate)
        self._next_segment_id += 1
        self.segments.append(seg)
        return seg

    # ---- accounting: seconds of playback owed, O(1) per change -------------------------------
    def _owed(self, seg: Segment) -> float:
        """Playback time ``seg`` still needs: its audio, but at least one frame (every segment
        plays at least one), minus what has played."""
        return max(0.0, max(seg.duration_s, 1.0 / self.fps) - seg.frames_played / self.fps)

    def _account(self, seg: Segment) -> None:
        owed = self._owed(seg)
        self._buffered += owed - seg.owed_s
        seg.owed_s = owed

    def _forget(self, seg: Segment) -> None:
        self._buffered -= seg.owed_s
        seg.owed_s = 0.0
        if not self.segments:
            self._buffered = 0.0   # no rounding error survives an empty queue

    def buffered_s(self) -> float:
        """Seconds of playback pushed but not played yet (each segment counts at least one frame)."""
        return max(0.0, self._buffered)

    def cost_s(self, n_samples: int, sample_rate: int) -> float:
        """What pushing this much audio adds to ``buffered_s`` at most (one frame at least)."""
        return max(n_samples / sample_rate, 1.0 / self.fps)

    def check_room(self, seconds: float) -> None:
        """Raise ``SpeechBufferFull`` unless ``seconds`` more speech fit in the buffer."""
        if self.buffered_s() + self._reserved + seconds > self.max_buffered_s + 1e-9:
            raise SpeechBufferFull(f"more than pipeline.max_buffered_speech_s = {self.max_buffered_s} s of speech "
                                   "is waiting to be played; push audio closer to real time")

    def reserve(self, seconds: float) -> None:
        """Count speech queued elsewhere (e.g. behind a pending TTS request) against the limit
        now; ``release`` it before pushing it."""
        self.check_room(seconds)
        self._reserved += seconds

    def release(self, seconds: float) -> None:
        self._reserved = max(0.0, self._reserved - seconds)

    def push(self, samples: np.ndarray, sample_rate: int) -> Segment:
        """Queue validated mono float32 audio; returns the segment it belongs to. Long pushes are
        split into jobs of at most ``MAX_JOB_S`` (contiguous pts)."""
        opens = not self.segments or self.segments[-1].ended
        self.check_room(self.cost_s(len(samples), sample_rate) if opens else len(samples) / sample_rate)
        seg = self._open_segment(sample_rate)
        step = max(1, int(sample_rate * MAX_JOB_S))
        now = time.monotonic()
        for i in range(0, len(samples), step):
            part = samples[i:i + step]
            self._in.put_nowait(AudioChunk(seg.input_samples, Fraction(1, sample_rate), seg.epoch, part,
                                           sample_rate, seg.id, now))
            seg.input_samples += len(part)
        self._account(seg)
        return seg

    def end_segment(self) -> Segment | None:
        if not self.segments or self.segments[-1].ended:
            return None
        seg = self.segments[-1]
        seg.ended = True
        self._in.put_nowait(SegmentEnd(seg.input_samples, Fraction(1, seg.sample_rate), seg.epoch, seg.id,
                                       seg.sample_rate, time.monotonic()))
        return seg

    def drop_stale(self) -> list[Segment]:
        """Drop every queued packet and buffered segment of an older epoch than the session's,
        at once; return the segments that were cut."""
        epoch = self.epoch()
        self._in.purge(lambda p: p.epoch >= epoch)
        cut = [s for s in self.segments if s.epoch < epoch]
        self.segments = collections.deque(s for s in self.segments if s.epoch >= epoch)
        for s in cut:
            self._forget(s)
        return cut

    # ---- worker -------------------------------------------------------------------------
    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="speech-stage")

    async def stop(self) -> None:
        self._in.close()
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            job = await self._in.get()
            if job.epoch != self.epoch():
                continue
            t0 = time.perf_counter()
            self._in_flight = True
            try:
                if self.inline:
                    motion, audio = self._work(job)
                else:
                    motion, audio = await loop.run_in_executor(self.executor, self._work, job)
            finally:
                self._in_flight = False
                self._progress.set()
            if self.metrics is not None:
                self.metrics.observe_stage("speech", time.perf_counter() - t0)
            if job.epoch != self.epoch():
                continue  # interrupted while the worker ran
            seg = next((s for s in self.segments if s.id == job.segment), None)
            if seg is None:
                continue
            seg.motion.extend(motion)
            if len(audio):
                seg.audio = np.concatenate([seg.audio, audio])
            total_out = seg.audio_played + len(seg.audio)
            seg.audio_arrivals.append((total_out, job.arrival))
            if isinstance(job, SegmentEnd):
                seg.flushed = True
            if seg.first_ready is None and (seg.flushed or (seg.motion and len(seg.audio) >= self.spf_out)):
                seg.first_ready = time.monotonic()

    def _work(self, job: AudioChunk | SegmentEnd) -> tuple[np.ndarray, np.ndarray]:
        """Runs in the worker thread."""
        if job.epoch != self._w_epoch or job.segment != self._w_segment or job.sample_rate != self._w_rate:
            if job.epoch != self._w_epoch:
                self.generator.reset()
            self._w_epoch, self._w_segment, self._w_rate = job.epoch, job.segment, job.sample_rate
            self._to_model = StreamingResampler(job.sample_rate, self.model_rate)
            self._to_out = StreamingResampler(job.sample_rate, self.output_rate)
        if isinstance(job, SegmentEnd):
            x16 = self._to_model.flush()
            out = self._to_out.flush()
            m1 = self.generator.push(x16) if len(x16) else np.zeros((0, VECTOR_DIM), np.float32)
            m2 = self.generator.flush()
            self._w_segment = -1  # the next job starts fresh resamplers
            return np.concatenate([np.asarray(m1, np.float32).reshape(-1, VECTOR_DIM),
                                   np.asarray(m2, np.float32).reshape(-1, VECTOR_DIM)]), out
        x16 = self._to_model.push(job.samples)
        out = self._to_out.push(job.samples)
        m = self.generator.push(x16) if len(x16) else np.zeros((0, VECTOR_DIM), np.float32)
        return np.asarray(m, np.float32).reshape(-1, VECTOR_DIM), out

    # ---- consumer side (frame clock) ----------------------------------------------------
    def busy(self) -> bool:
        """Audio is queued for, or being processed by, the worker."""
        return self._in_flight or len(self._in) > 0

    async def wait_progress(self) -> None:
        """Until the worker finishes its next job (offline clocks wait instead of idling)."""
        self._progress.clear()
        await self._progress.wait()

    def pending(self) -> Segment | None:
        """The segment whose frames play next (possibly not ready yet)."""
        return self.segments[0] if self.segments else None

    def pop_frame(self) -> MotionPacket | None:
        """The next ready speech frame, or None (nothing queued, or waiting for audio/motion)."""
        while self.segments:
            seg = self.segments[0]
            n = self.spf_out
            finished_input = seg.flushed
            if finished_input and not seg.motion and len(seg.audio) == 0:
                self.segments.popleft()  # fully played (normally popped with its last frame)
                self._forget(seg)
                continue
            ready = (len(seg.audio) >= n and seg.motion) or (finished_input and (len(seg.audio) or seg.motion))
            if not ready:
                if seg.frames_played > 0 and self.catch_up:
                    self.underruns += 1
                    seg.behind += 1
                    self.start_margin_s = min(self.max_margin_s, self.start_margin_s + MARGIN_STEP_S)
                return None
            if (seg.frames_played == 0 and not finished_input and seg.first_ready is not None
                    and time.monotonic() - seg.first_ready < self.start_margin_s):
                return None
            if self._behind_in_silence(seg):
                self._consume(seg)
                seg.behind -= 1
                self.silent_frames_dropped += 1
                if self.metrics is not None:
                    self.metrics.dropped.labels(what="silent_frame").inc()
                continue
            if self.catch_up:
                self.start_margin_s = max(self.base_margin_s, self.start_margin_s - MARGIN_DECAY_S)
            return self._consume(seg)
        return None

    def _behind_in_silence(self, seg: Segment) -> bool:
        """The clock waited for this segment (``behind`` > 0), the next frame is silent and the
        one after it is ready too: dropping it brings the segment a frame closer to on time."""
        n = self.spf_out
        if not self.catch_up or seg.behind <= 0 or len(seg.motion) < 2 or len(seg.audio) < 2 * n:
            return False
        head = seg.audio[:n]
        return float(np.sqrt(np.dot(head, head) / n)) < self.silence_rms

    def _consume(self, seg: Segment) -> MotionPacket:
        n = self.spf_out
        finished_input = seg.flushed
        if seg.motion:
            motion = seg.motion.popleft()
        else:
            motion = np.zeros(VECTOR_DIM, np.float32)   # generator gave fewer frames than audio
        audio = seg.audio[:n]
        seg.audio = seg.audio[n:]
        if len(audio) < n:
            audio = np.concatenate([audio, np.zeros(n - len(audio), np.float32)])
        mid = seg.audio_played + n // 2
        seg.audio_played += n
        arrival = next((a for end, a in seg.audio_arrivals if end > mid), time.monotonic())
        seg.audio_arrivals = [(e, a) for e, a in seg.audio_arrivals if e > seg.audio_played]
        index = seg.frames_played
        seg.frames_played += 1
        last = finished_input and not seg.motion and len(seg.audio) == 0
        self._account(seg)
        if last:
            self.segments.popleft()
            self._forget(seg)
        chunk = AudioChunk(index * n, Fraction(1, self.output_rate), seg.epoch, audio, self.output_rate, seg.id, arrival)
        position = seg.duration_s if last else self.position_s(seg)
        return MotionPacket(index, Fraction(1, self.fps), seg.epoch, motion, chunk, seg.id, last, position)

    def position_s(self, seg: Segment) -> float:
        """Seconds of ``seg``'s speech played so far."""
        return min(seg.frames_played / self.fps, seg.duration_s)
