"""Prometheus metrics for the streaming engine (text format at ``GET /metrics``).

One ``Metrics`` object per server (its own ``CollectorRegistry``, so several
servers or tests in one process never collide); sessions report into it. A
session created on its own gets a private one.
"""
from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

# Seconds; dense below one frame period (40 ms) where the real-time budget lives.
_STAGE_BUCKETS = (0.001, 0.002, 0.004, 0.006, 0.008, 0.010, 0.013, 0.016, 0.020, 0.025, 0.030,
                  0.040, 0.050, 0.065, 0.080, 0.100, 0.150, 0.250, 0.500, 1.0)
_LATENCY_BUCKETS = (0.02, 0.04, 0.06, 0.08, 0.10, 0.12, 0.14, 0.16, 0.18, 0.20, 0.225, 0.25, 0.30,
                    0.40, 0.50, 0.75, 1.0, 2.0, 5.0)

CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self, keep_samples: bool = False) -> None:
        """``keep_samples``: also keep every raw observation (benchmarks want exact percentiles)."""
        self.samples: dict[str, list[float]] | None = {} if keep_samples else None
        self.registry = CollectorRegistry()
        r = self.registry
        self.stage_seconds = Histogram("facecast_stage_seconds", "Time spent per pipeline stage per item",
                                       ["stage"], buckets=_STAGE_BUCKETS, registry=r)
        self.audio_to_frame_seconds = Histogram(
            "facecast_audio_to_frame_seconds",
            "Audio-in to frame-out latency (arrival of a frame's middle audio sample to its output)",
            buckets=_LATENCY_BUCKETS, registry=r)
        self.frames = Counter("facecast_frames_total", "Output video frames by kind",
                              ["kind"], registry=r)   # rendered | repeated | skipped
        self.deadline_misses = Counter("facecast_deadline_misses_total",
                                       "Frames not ready by their deadline (repeated or late)", registry=r)
        self.dropped = Counter("facecast_dropped_total", "Items dropped by a channel policy or interruption",
                               ["what"], registry=r)
        self.sessions = Gauge("facecast_sessions", "Open sessions", registry=r)
        self.sessions_created = Counter("facecast_sessions_created_total", "Sessions created", ["mode"], registry=r)
        self.interrupts = Counter("facecast_interrupts_total", "Interruptions", registry=r)
        self.underruns = Counter("facecast_speech_underruns_total",
                                 "Frames during a segment whose audio had not arrived yet", registry=r)

        # Series that exist from the start (at 0), so dashboards and alerts see them before any event.
        for kind in ("rendered", "repeated", "skipped"):
            self.frames.labels(kind=kind)
        for what in ("video_frame", "webcam_frame", "stale_output", "silent_frame"):
            self.dropped.labels(what=what)
        self._stages = {stage: self.stage_seconds.labels(stage=stage)
                        for stage in ("speech", "motion", "render", "frame", "wake")}

    def observe_stage(self, stage: str, seconds: float) -> None:
        child = self._stages.get(stage)   # (a label lookup per frame costs more than the observation)
        if child is None:
            child = self._stages[stage] = self.stage_seconds.labels(stage=stage)
        child.observe(seconds)
        if self.samples is not None:
            self.samples.setdefault(stage, []).append(seconds)

    def observe_audio_to_frame(self, seconds: float) -> None:
        self.audio_to_frame_seconds.observe(seconds)
        if self.samples is not None:
            self.samples.setdefault("audio_to_frame", []).append(seconds)

    def render_text(self) -> bytes:
        return generate_latest(self.registry)
