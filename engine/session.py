"""The Session: the one API every transport drives (see docs/ARCHITECTURE.md).

    session = Session(config, avatar_path=None, mode="assistant"|"echo"|"webcam")
    await session.start()
    session.push_speech(samples, sample_rate); session.end_segment()
    session.push_mic(samples, sample_rate); session.push_webcam(rgb)
    session.interrupt(); session.set_state("thinking")
    async for frame in session.video_frames(): ...   # VideoFrame, carries its 1-frame audio
    async for event in session.events(): ...         # dicts
    await session.close()

Motion mode (``output="motion"``): the same session without the render stage. Each tick
publishes a ``MotionOutput`` (the MotionFrame the renderer would have drawn + its one frame of
audio) to ``session.motion_frames()``; no renderer is loaded, so a motion session costs only
its speech model and the tick loop. Interruption, states and events are the same.

One frame clock drives everything: at each tick k the session takes the next
ready ``MotionPacket`` from the speech stage (speech motion + exactly one frame of
output audio) or, when nothing is being spoken, idle/listening motion with silence;
layers speech over idle (or webcam) motion; renders in a worker thread under a
deadline; and publishes ``VideoFrame(pts=k)`` with that audio. Audio is the master
clock: a frame and the audio it shows leave together, so sync cannot drift.

Interruption has one owner: ``self.epoch``. ``interrupt()`` bumps it and tells the speech
stage to drop what is older; every consumer compares a packet's epoch with it (the frame
subscriptions below hand out an older frame with silent audio; the WebRTC tracks do the
same for what they queued; the WebSocket API's pending ``speak`` lane skips older work).
Published frames are never modified.

Events: ``{"type": "state", "state"}``, ``{"type": "playback.started",
"segment"}``, ``{"type": "playback.finished", "segment", "position_s",
"interrupted"}``, ``{"type": "warning", "message"}``. Segments are numbered
from 1 in push order; ``position_s`` is how much of the segment was played.
"""
from __future__ import annotations

import asyncio
import collections
import logging
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path

import numpy as np

from engine.audio.pcm import to_mono_float
from engine.audio.vad import VoiceActivityDetector
from engine.clock import MediaClock, RealtimeClock
from engine.config import Config
from engine.metrics import Metrics
from engine.motion.idle import IdleMotion
from engine.motion.space import BINARY_SIZE as MOTION_FRAME_BYTES, MotionFrame
from engine.packets import AudioChunk, MotionOutput, VideoFrame
from engine.pipeline.channel import Channel, ChannelClosed, Policy
from engine.pipeline.compose import SpeechBlend
from engine.pipeline.render import RenderStage, create_renderer, set_worker_threads
from engine.pipeline.speech import SpeechStage
from engine.pipeline.webcam import WebcamStage
from engine.pipeline.workers import session_pool

log = logging.getLogger(__name__)

MODES = ("assistant", "echo", "webcam")
OUTPUTS = ("video", "motion")   # what the session publishes: rendered frames, or motion only
STATES = ("idle", "listening", "thinking", "speaking")
HINTS = ("idle", "listening", "thinking")


class SessionClosed(RuntimeError):
    """The session was closed."""


class _Subscription:
    """An async iterator over one channel; subscribes when created (not when first iterated)."""

    def __init__(self, channel: Channel, unsubscribe, current_epoch=None) -> None:
        self.channel, self._unsubscribe = channel, unsubscribe
        self._current_epoch = current_epoch   # frames: older-epoch frames come out silenced

    def __aiter__(self):
        return self

    async def __anext__(self):
        try:
            item = await self.channel.get()
        except ChannelClosed:
            self._unsubscribe(self.channel)
            raise StopAsyncIteration from None
        if self._current_epoch is not None and item.epoch < self._current_epoch():
            return item.silenced()   # made before an interrupt: it must not be heard
        return item

    async def aclose(self) -> None:
        self._unsubscribe(self.channel)


class Session:
    def __init__(self, config: Config, avatar_path: str | Path | None = None, mode: str = "assistant",
                 session_id: str | None = None, *, clock: MediaClock | None = None,
                 metrics: Metrics | None = None, renderer=None, generator=None, output: str = "video") -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}; expected one of {list(MODES)}")
        if output not in OUTPUTS:
            raise ValueError(f"unknown output {output!r}; expected one of {list(OUTPUTS)}")
        self.config = config
        self.mode = mode
        self.output = output
        self.id = self.session_id = session_id or secrets.token_hex(8)
        self.avatar_path = Path(config.resolve_path(str(avatar_path) if avatar_path else config.render.avatar))
        if not self.avatar_path.is_file():
            raise FileNotFoundError(f"avatar file {self.avatar_path} does not exist")
        v, a, p = config.video, config.audio, config.pipeline
        self.fps = v.fps
        if a.output_sample_rate % v.fps or a.model_sample_rate % v.fps:
            raise ValueError(f"video.fps = {v.fps} must divide the audio rates "
                             f"({a.model_sample_rate}, {a.output_sample_rate})")
        self.output_rate = a.output_sample_rate
        self.samples_per_frame = a.output_sample_rate // v.fps
        self.clock = clock or RealtimeClock(v.fps)
        self.metrics = metrics or Metrics()
        self.epoch = 0
        self._epoch_waiters: list[tuple[int, asyncio.Future]] = []
        self.state = "idle"
        self.closed = False
        self._hint = "idle"
        self._renderer = renderer
        self._generator = generator
        self._render_pool = ThreadPoolExecutor(1, f"render-{self.id}", set_worker_threads, (p.render_threads,))
        self._speech_pool = session_pool(f"speech-{self.id}", p.shared_speech_workers, set_worker_threads,
                                         (p.torch_threads,))
        self._webcam_pool: ThreadPoolExecutor | None = None
        self.speech: SpeechStage | None = None
        self.render_stage: RenderStage | None = None
        self.webcam: WebcamStage | None = None
        self.idle = IdleMotion(v.fps, config.motion.seed, config.motion.blink_rate_per_min,
                               config.motion.head_motion_scale)
        self.blend = SpeechBlend(v.fps, p.speech_fade_in_ms, p.speech_fade_out_ms, p.interrupt_fade_ms)
        # the mic's rate is known with its first chunk; WebRTC delivers the output rate
        self._vad_rate = a.output_sample_rate
        self.vad = VoiceActivityDetector(self._vad_rate, a.vad_threshold_db, a.vad_hangover_ms, a.vad_min_speech_ms)
        self._preroll: collections.deque[np.ndarray] = collections.deque()
        self._preroll_samples = 0
        self._frame_subs: list[Channel] = []
        self._event_subs: list[Channel] = []
        self._task: asyncio.Task | None = None
        self.frame_index = 0          # next frame to produce
        self.frames_out = 0
        self.skipped_ticks = 0
        self._silence = np.zeros(self.samples_per_frame, np.float32)
        self._playing: int | None = None   # id of the segment whose frames are playing
        self.started_at: float | None = None
        self.arrivals: collections.deque = collections.deque(maxlen=256)  # (pts, audio arrival) of speech frames

    # ---- life cycle ---------------------------------------------------------------------
    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        cfg = self.config
        if self._renderer is None and self.output == "video":
            self._renderer = await loop.run_in_executor(self._render_pool, create_renderer, cfg, self.avatar_path)
        if self._generator is None:
            from engine.motion.generators import create_generator
            self._generator = await loop.run_in_executor(self._speech_pool, create_generator, cfg)
        # torch may only now be imported: apply the real-time thread count to it as well
        await loop.run_in_executor(self._speech_pool, set_worker_threads, cfg.pipeline.torch_threads)
        self.speech = SpeechStage(self._generator, self.fps, cfg.audio.model_sample_rate, self.output_rate,
                                  cfg.pipeline.max_buffered_speech_s, self._speech_pool, self.metrics,
                                  cfg.pipeline.jitter_margin_ms / 1000.0 if self.clock.realtime else 0.0,
                                  inline=not self.clock.realtime, silence_dbfs=cfg.audio.vad_threshold_db - 5.0,
                                  epoch=lambda: self.epoch, max_segments=cfg.pipeline.max_queued_segments)
        if self.output == "video":   # motion mode: no render stage at all
            self.render_stage = RenderStage(self._renderer, self.clock, self._render_pool, self.metrics,
                                            max_repeats_when_late=cfg.pipeline.max_repeats_when_late)
            await self.render_stage.warm_up(MotionFrame.neutral())
        if self.mode == "webcam":
            self._webcam_pool = ThreadPoolExecutor(1, f"webcam-{self.id}")
            self.webcam = WebcamStage(cfg, self.avatar_path, self._webcam_pool, self.metrics)
            await loop.run_in_executor(self._webcam_pool, self.webcam.load)
            if self.webcam.error:
                self._emit({"type": "warning", "message": self.webcam.error})
        self.speech.start()
        self.clock.start()
        self.started_at = time.monotonic()   # (subscribers got the initial state from events())
        self._task = loop.create_task(self._run_frames(), name=f"frames-{self.id}")
        self.metrics.sessions.inc()
        self.metrics.sessions_created.labels(mode=self.mode).inc()

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._wake_epoch_waiters()
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self.metrics.sessions.dec()
        if self.speech is not None:
            await self.speech.stop()
        for ch in self._frame_subs + self._event_subs:
            ch.close()
        for pool in (self._render_pool, self._speech_pool, self._webcam_pool):
            if pool is not None:
                pool.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> "Session":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    # ---- inputs -------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self.closed:
            raise SessionClosed(f"session {self.id} is closed")
        if self.speech is None:
            raise RuntimeError("call 'await session.start()' first")

    def push_speech(self, samples: np.ndarray, sample_rate: int) -> None:
        """Audio the avatar speaks (mono PCM, int16 or float in [-1, 1])."""
        self._check_open()
        x = to_mono_float(samples, sample_rate)
        if len(x):
            self.speech.push(x, sample_rate)

    def end_segment(self) -> None:
        """End of one utterance: the generator flushes and the segment plays to its end."""
        self._check_open()
        self.speech.end_segment()

    def push_mic(self, samples: np.ndarray, sample_rate: int) -> None:
        """The user's microphone: voice activity → listening; in echo mode also the speech."""
        self._check_open()
        x = to_mono_float(samples, sample_rate)
        if sample_rate != self._vad_rate:
            a = self.config.audio
            self.vad = VoiceActivityDetector(sample_rate, a.vad_threshold_db, a.vad_hangover_ms, a.vad_min_speech_ms)
            self._vad_rate = sample_rate
            self._preroll.clear()
            self._preroll_samples = 0
        was_active = self.vad.active
        changes = self.vad.push(x)
        if self.mode == "echo":
            self._echo(x, sample_rate, was_active, changes)

    def _echo(self, x: np.ndarray, sample_rate: int, was_active: bool, changes) -> None:
        """Echo mode: each stretch of voice (plus a short pre-roll) becomes one segment."""
        keep = int(self.config.pipeline.echo_preroll_ms * sample_rate / 1000)
        active, pos = was_active, 0
        for offset, on in changes:
            offset = min(max(0, offset), len(x))
            if on:
                history = np.concatenate(list(self._preroll) + [x[pos:offset]])
                self._preroll.clear()
                self._preroll_samples = 0
                self._push_echo(history[len(history) - keep:] if keep else history[:0], sample_rate)
            else:
                self._push_echo(x[pos:offset], sample_rate)
                self.speech.end_segment()
            pos, active = offset, on
        if active:
            self._push_echo(x[pos:], sample_rate)
        elif pos < len(x):
            self._preroll.append(x[pos:])
            self._preroll_samples += len(x) - pos
            while self._preroll and self._preroll_samples - len(self._preroll[0]) >= keep:
                self._preroll_samples -= len(self._preroll.popleft())

    def _push_echo(self, x: np.ndarray, sample_rate: int) -> None:
        if len(x):
            self.speech.push(x, sample_rate)

    def push_webcam(self, rgb: np.ndarray) -> None:
        """One webcam frame (H, W, 3) uint8 RGB; used in webcam mode, ignored otherwise."""
        self._check_open()
        if self.webcam is not None:
            self.webcam.push(rgb)

    def interrupt(self) -> None:
        """Stop speaking now: bump the epoch; everything older is dropped or silenced at once."""
        self._check_open()
        self.epoch += 1
        self.metrics.interrupts.inc()
        self._wake_epoch_waiters()
        self._playing = None
        for seg in self.speech.drop_stale():
            if seg.input_samples:
                self._emit({"type": "playback.finished", "segment": seg.id,
                            "position_s": round(self.speech.position_s(seg), 4), "interrupted": True})
        self.blend.interrupt()

    async def interrupted(self, epoch: int) -> None:
        """Return once the session's epoch is past ``epoch`` (an interrupt came after it), or
        the session closed. Lets a transport stop waiting on work of an older epoch."""
        if self.epoch > epoch or self.closed:
            return
        fut = asyncio.get_running_loop().create_future()
        self._epoch_waiters.append((epoch, fut))
        await fut

    def _wake_epoch_waiters(self) -> None:
        keep = []
        for epoch, fut in self._epoch_waiters:
            if fut.done():
                continue
            if self.epoch > epoch or self.closed:
                fut.set_result(None)
            else:
                keep.append((epoch, fut))
        self._epoch_waiters = keep

    def set_state(self, state: str) -> None:
        """State hint: 'thinking', 'listening' or 'idle' ('speaking' follows the audio)."""
        self._check_open()
        if state not in HINTS:
            raise ValueError(f"state hint must be one of {list(HINTS)}, got {state!r} "
                             "('speaking' is set by the audio itself)")
        self._hint = state

    # ---- outputs ------------------------------------------------------------------------
    def video_frames(self, capacity: int | None = None) -> _Subscription:
        """Async iterator of ``VideoFrame``. Live sessions drop the oldest frame for a
        consumer that falls behind; on a virtual clock the session waits for the consumer."""
        if self.output != "video":
            raise ValueError(f"session {self.id} is a motion-mode session: it has no video; use motion_frames()")
        return self._subscribe_frames(capacity)

    def motion_frames(self, capacity: int | None = None) -> _Subscription:
        """Async iterator of ``MotionOutput`` (motion mode): one per tick, same policies as
        ``video_frames``; frames made before an interrupt come out with silent audio."""
        if self.output != "motion":
            raise ValueError(f"session {self.id} renders video; open it with output='motion' for motion frames")
        return self._subscribe_frames(capacity)

    def motion_layout(self) -> dict:
        """How motion frames and their audio line up (sent to motion-mode clients): frame pts k
        ↔ output audio samples [k·samples_per_frame, (k+1)·samples_per_frame)."""
        return {"fps": self.fps, "frame_bytes": MOTION_FRAME_BYTES, "sample_rate": self.output_rate,
                "samples_per_frame": self.samples_per_frame}

    def _subscribe_frames(self, capacity: int | None) -> _Subscription:
        if self.clock.realtime:
            ch = Channel(capacity or self.config.pipeline.output_queue_frames, Policy.DROP_OLDEST, "frames")
        else:
            ch = Channel(capacity or 2, Policy.BLOCK, "frames")
        if self.closed:
            ch.close()
        self._frame_subs.append(ch)
        return _Subscription(ch, self._unsubscribe, lambda: self.epoch)

    def events(self) -> _Subscription:
        ch = Channel(1000, Policy.DROP_OLDEST, "events")
        ch.put_nowait({"type": "state", "state": self.state})
        if self.closed:
            ch.close()
        self._event_subs.append(ch)
        return _Subscription(ch, self._unsubscribe)

    def _unsubscribe(self, ch: Channel) -> None:
        for subs in (self._frame_subs, self._event_subs):
            if ch in subs:
                subs.remove(ch)

    def _emit(self, event: dict) -> None:
        for ch in self._event_subs:
            ch.put_nowait(dict(event))

    # ---- the frame clock ----------------------------------------------------------------
    async def _run_frames(self) -> None:
        p = self.config.pipeline
        lead, slack = p.render_lead_ms / 1000.0, p.deadline_slack_ms / 1000.0
        try:
            while True:
                k = self.frame_index
                due = self.clock.frame_time(k)
                await self.clock.wait_until(due - lead)
                if self.clock.realtime:   # how late the loop woke up for this tick (event-loop health)
                    self.metrics.observe_stage("wake", max(0.0, self.clock.now() - (due - lead)))
                behind = self.clock.frame_at(self.clock.now() + lead) - k
                if self.clock.realtime and behind > p.max_lag_frames:
                    # The machine stalled: jump to now (video pts gap; no speech audio is lost).
                    self.skipped_ticks += behind
                    self.metrics.frames.labels(kind="skipped").inc(behind)
                    self.frame_index += behind
                    continue
                await self._produce(k, due + slack)
                self.frame_index = k + 1
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("session %s: frame loop failed", self.id)
            self._emit({"type": "error", "message": "the session's frame loop failed"})
            for ch in self._frame_subs:
                ch.close()

    async def _produce(self, k: int, deadline: float) -> None:
        t0 = time.perf_counter()
        sf = self.speech.pop_frame()
        while sf is None and not self.clock.realtime and self.speech.busy():
            await self.speech.wait_progress()   # offline: wait for the speech, never pad with idle
            sf = self.speech.pop_frame()
        underrun = sf is None and self._playing is not None
        if underrun:
            self.metrics.underruns.inc()
        state = self._state_for(sf is not None or underrun)
        base = self.idle.vector(k, state)
        if self.webcam is not None and self.webcam.latest is not None:
            base = self.webcam.latest  # the user's face replaces idle life
        vec, weight = self.blend.mix(base, sf.motion if sf is not None else None)
        motion = MotionFrame.from_vector(vec)
        self.metrics.observe_stage("motion", time.perf_counter() - t0)
        if sf is not None and sf.pts == 0:
            self._playing = sf.segment
        epoch = self.epoch
        if self.render_stage is not None:
            image, repeated = await self.render_stage.render(motion, deadline)
        audio = sf.audio.samples if sf is not None else self._silence
        segment = sf.segment if sf is not None else 0   # which spoken segment this audio is (0: none)
        if epoch != self.epoch:   # interrupted while rendering: the audio is cut
            audio, segment = self._silence, 0
        chunk = AudioChunk(k * self.samples_per_frame, Fraction(1, self.output_rate), epoch, audio, self.output_rate,
                           segment)
        if self.render_stage is not None:
            frame = VideoFrame(k, Fraction(1, self.fps), epoch, image, chunk, motion, repeated)
        else:
            frame = MotionOutput(k, Fraction(1, self.fps), epoch, motion, chunk)
        for ch in list(self._frame_subs):
            if ch.policy is Policy.BLOCK:
                await ch.put(frame)
            else:
                before = ch.dropped
                ch.put_nowait(frame)
                if ch.dropped > before:
                    self.metrics.dropped.labels(what="video_frame").inc(ch.dropped - before)
        self.frames_out += 1
        if sf is not None and epoch == self.epoch:
            if self.clock.realtime:
                self.metrics.observe_audio_to_frame(max(0.0, time.monotonic() - sf.audio.arrival))
                self.arrivals.append((k, sf.audio.arrival))
            if sf.pts == 0:
                self._emit({"type": "playback.started", "segment": sf.segment})
            if sf.last:
                self._playing = None
                self._emit({"type": "playback.finished", "segment": sf.segment,
                            "position_s": round(sf.position_s, 4), "interrupted": False})
        self.metrics.observe_stage("frame", time.perf_counter() - t0)

    def _state_for(self, speaking: bool) -> str:
        if speaking:
            new = "speaking"
            if self._hint == "thinking":
                self._hint = "idle"
        elif self.vad.active or self._hint == "listening":
            new = "listening"
        elif self._hint == "thinking":
            new = "thinking"
        else:
            new = "idle"
        if new != self.state:
            self.state = new
            self._emit({"type": "state", "state": new})
        return new
