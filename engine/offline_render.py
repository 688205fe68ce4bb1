"""Offline rendering: speech in, an mp4 out, through the same Session as live streaming.

The Session runs on a virtual clock (no waiting, never a dropped frame); its VideoFrames carry
their audio, so the mp4's H.264 video (yuv420p) and AAC audio are in sync by construction. The
video has ceil(duration * fps) frames and its last frame is shortened, so both tracks last exactly
as long as the input audio. ``facecast render`` (engine/commands/render.py) is the CLI.
"""
from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from engine.audio import OUTPUT_RATE
from engine.clock import VirtualClock
from engine.config import Config

log = logging.getLogger(__name__)

PUSH_AHEAD_S = 8.0      # offline: keep this much speech queued ahead of the frame clock
VIDEO_TIME_BASE = Fraction(1, 90000)


async def render_to_mp4(config: Config, audio: np.ndarray, sample_rate: int, out: str | Path,
                        avatar: str | Path | None = None, crf: int = 20, progress: bool = True) -> dict:
    """Render ``audio`` through a Session on a virtual clock into ``out``; returns a summary."""
    from tqdm import tqdm

    from engine.session import Session

    if sample_rate != OUTPUT_RATE:
        from engine.audio.resample import resample
        audio = resample(audio, sample_rate, OUTPUT_RATE)
    fps = config.video.fps
    spf = OUTPUT_RATE // fps
    n_frames = -(-len(audio) // spf)
    session = Session(config, avatar_path=avatar, mode="assistant", clock=VirtualClock(fps))
    await session.start()
    pushed = 0

    def top_up() -> None:
        nonlocal pushed
        while pushed < len(audio) and session.speech.buffered_s() < PUSH_AHEAD_S:
            chunk = audio[pushed:pushed + OUTPUT_RATE * 2]
            session.push_speech(chunk, OUTPUT_RATE)
            pushed += len(chunk)
            if pushed >= len(audio):
                session.end_segment()

    top_up()   # before the first tick: frame 0 is the audio's first frame
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    container = av.open(str(out), mode="w")
    try:
        vstream = container.add_stream("libx264", rate=fps, options={"crf": str(crf), "preset": "veryfast", "x264-params": "bframes=0"})
        vstream.width, vstream.height = config.video.width, config.video.height
        vstream.pix_fmt = "yuv420p"
        vstream.codec_context.time_base = VIDEO_TIME_BASE   # fine enough to shorten the last frame
        astream = container.add_stream("aac", rate=OUTPUT_RATE, layout="mono")
        astream.codec_context.time_base = Fraction(1, OUTPUT_RATE)
        frames = session.video_frames()
        bar = tqdm(total=n_frames, unit="frame", desc="render", disable=not progress)
        video_packets = []
        async for frame in frames:
            k = frame.pts
            image = frame.image
            if image.shape[:2] != (vstream.height, vstream.width):
                raise RuntimeError(f"renderer gave {image.shape}, expected {vstream.height}x{vstream.width}")
            vf = av.VideoFrame.from_ndarray(image, format="rgb24")
            vf.pts, vf.time_base = round(k / fps / VIDEO_TIME_BASE), VIDEO_TIME_BASE
            video_packets.extend(vstream.encode(vf))
            _mux_all_but_last(container, video_packets)
            # The audio this frame carries through the pipeline; the last frame's padding is cut.
            samples = frame.audio.samples[:max(0, len(audio) - k * spf)]
            if len(samples):
                af = av.AudioFrame.from_ndarray(samples[None, :].astype(np.float32), format="flt", layout="mono")
                af.sample_rate, af.pts, af.time_base = OUTPUT_RATE, k * spf, Fraction(1, OUTPUT_RATE)
                for p in astream.encode(af):
                    container.mux(p)
            bar.update(1)
            top_up()
            if k + 1 >= n_frames:
                break
        bar.close()
        video_packets.extend(vstream.encode(None))
        _finish_video(container, video_packets, len(audio) / OUTPUT_RATE)
        for p in astream.encode(None):
            container.mux(p)
    finally:
        container.close()
        await session.close()
    return {"frames": n_frames, "duration_s": len(audio) / OUTPUT_RATE, "fps": fps, "out": str(out),
            "repeated_frames": session.render_stage.repeated if session.render_stage else 0}


def _mux_all_but_last(container, packets: list) -> None:
    """Mux encoded video packets, keeping the newest back (it may become the last frame)."""
    while len(packets) > 1:
        container.mux(packets.pop(0))


def _finish_video(container, packets: list, duration_s: float) -> None:
    """Mux the rest; shorten the final frame so the video ends exactly with the audio."""
    packets.sort(key=lambda p: p.pts)
    for i, p in enumerate(packets):
        if i == len(packets) - 1 and p.time_base is not None:
            end = round(duration_s / p.time_base)
            if end > p.pts:
                p.duration = int(end - p.pts)
        container.mux(p)
