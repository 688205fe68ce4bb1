"""``facecast local``: the avatar repeats what you say, on this machine's mic and speaker.

    facecast local [--audio-in DEVICE] [--audio-out DEVICE] [--window | --mp4 OUT.mp4] [--seconds N]

An echo-mode Session (``Session(mode="echo")``, fed by ``push_mic``) on the real-time
clock: each stretch of your voice becomes a segment the avatar speaks back, lip-synced.
Audio is the master clock: every VideoFrame carries its own 48 kHz audio, which is
written to the output device as the frame is shown (in an OpenCV window, delayed by the
output stream's latency so picture and sound meet) or written to the mp4 with it.
DEVICE is a PortAudio device number or (part of) its name (``python -m sounddevice``
lists them); ALSA PCMs defined in ~/.asoundrc are devices too. Without a usable sound
device the command says so in one line and exits with 2.
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import logging
import time
from pathlib import Path

import numpy as np

from engine.config import load_config, replace

log = logging.getLogger(__name__)

WINDOW = "facecast local"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--audio-in", metavar="DEVICE", help="microphone: PortAudio device number or name")
    parser.add_argument("--audio-out", metavar="DEVICE", help="speaker: PortAudio device number or name")
    out = parser.add_mutually_exclusive_group()
    out.add_argument("--window", action="store_true", help="show the avatar in a window (default)")
    out.add_argument("--mp4", metavar="OUT.mp4", help="write the avatar (video + its audio) to an mp4")
    parser.add_argument("--seconds", type=float, default=None, help="stop after this long (default: until q/Ctrl-C)")
    parser.add_argument("--avatar", help="avatar file (default: render.avatar)")


async def run_local(config, sd, in_dev: int, out_dev: int, seconds: float | None,
                    mp4: str | None, window: bool, avatar=None) -> dict:
    from engine.session import Session, SessionClosed
    from engine.transports.local_audio import LiveMp4Writer, MicReader, SpeakerWriter

    rate = config.audio.output_sample_rate
    session = Session(config, avatar_path=avatar, mode="echo")
    spf = session.samples_per_frame
    loop = asyncio.get_running_loop()

    def push(block) -> None:
        try:
            session.push_mic(block, rate)
        except SessionClosed:
            pass

    def from_mic(block) -> None:
        if not loop.is_closed():
            loop.call_soon_threadsafe(push, block)

    speaker = mic = writer = frames = cv2 = None
    n_max = None if seconds is None else max(1, round(seconds * session.fps))
    shown = gaps = displayed = 0
    first_pts = last_pts = None
    pending = collections.deque()   # (show at, image): the window waits for the speaker's latency
    t_start = time.monotonic()
    try:
        speaker = SpeakerWriter(sd, out_dev, rate, spf)
        mic = MicReader(sd, in_dev, rate, from_mic)
        if mp4:
            writer = LiveMp4Writer(mp4, config.video.width, config.video.height, session.fps, rate)
        if window:
            import cv2
        await session.start()
        frames = session.video_frames(capacity=2 * session.fps)
        speaker.start()
        mic.start()
        t_start = time.monotonic()
        async for frame in frames:
            if first_pts is None:
                first_pts = last_pts = frame.pts
            if frame.pts > last_pts + 1:   # ticks skipped (a stall) or frames dropped: keep the timeline
                gaps += frame.pts - last_pts - 1
                speaker.play(np.zeros((frame.pts - last_pts - 1) * spf, np.float32))
            last_pts = frame.pts
            speaker.play(frame.audio.samples)      # audio first: it is the clock
            if writer is not None:
                await loop.run_in_executor(None, writer.write, frame)
            if cv2 is not None:
                pending.append((time.monotonic() + speaker.delay_s(), frame.image))
                while pending and pending[0][0] <= time.monotonic():
                    cv2.imshow(WINDOW, cv2.cvtColor(pending.popleft()[1], cv2.COLOR_RGB2BGR))
                    displayed += 1
                if cv2.waitKey(1) & 0xFF in (ord("q"), 27):
                    break
            shown += 1
            if mic.error or speaker.error:
                raise RuntimeError(mic.error or speaker.error)
            if n_max is not None and frame.pts - first_pts + 1 >= n_max:
                break
    finally:
        if mic is not None:
            mic.stop()
        if frames is not None:
            await frames.aclose()
        await session.close()
        if speaker is not None:
            if speaker.is_alive():
                await loop.run_in_executor(None, speaker.finish)
            else:
                speaker.stream.close()
        if writer is not None:
            writer.close()
        if cv2 is not None:
            cv2.destroyAllWindows()
        if mic is not None:
            if mic.is_alive():
                mic.join(2.0)
            else:
                mic.stream.close()
    return {"frames": shown, "fps": session.fps, "wall_s": round(time.monotonic() - t_start, 3),
            "mic_s": round(mic.samples / rate, 3), "played_s": round(speaker.written / rate, 3),
            "speaker_latency_s": round(speaker.latency, 4), "mic_overflows": mic.overflows,
            "speaker_underflows": speaker.underflows, "speaker_max_queued": speaker.max_queued, "gap_frames": gaps, "displayed": displayed,
            "skipped_ticks": session.skipped_ticks, "dropped_frames": frames.channel.dropped, "out": mp4}


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    from engine.transports.local_audio import LocalAudioError, open_sounddevice, resolve_device

    config = load_config(args.config)
    if args.avatar:
        config = replace(config, render={"avatar": str(Path(args.avatar).resolve())})
    if args.seconds is not None and args.seconds <= 0:
        print("facecast local: --seconds must be positive")
        return 2
    window = not args.mp4
    try:
        sd = open_sounddevice()
        in_dev = resolve_device(sd, args.audio_in, "input")
        out_dev = resolve_device(sd, args.audio_out, "output")
    except LocalAudioError as e:
        print(f"facecast local: {e}")
        return 2
    if window:
        import os
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            print("facecast local: no display for --window (DISPLAY is not set); use --mp4 OUT.mp4")
            return 2
    try:
        summary = asyncio.run(run_local(config, sd, in_dev, out_dev, args.seconds, args.mp4, window))
    except LocalAudioError as e:
        print(f"facecast local: {e}")
        return 2
    except KeyboardInterrupt:
        return 0
    except (FileNotFoundError, RuntimeError, ValueError) as e:
        print(f"facecast local: {e}")
        return 1
    print(f"facecast local: {summary['frames']} frames at {summary['fps']} fps in {summary['wall_s']} s; "
          f"mic {summary['mic_s']} s, played {summary['played_s']} s (output latency "
          f"{summary['speaker_latency_s']} s, {summary['gap_frames']} gap frames)"
          + (f"; {summary['displayed']} frames displayed" if window else "") + (f"; wrote {summary['out']}" if summary["out"] else ""))
    return 0
