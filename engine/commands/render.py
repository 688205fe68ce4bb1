"""``facecast render``: audio (or text) → an mp4 of the avatar speaking it, offline.

    facecast render --audio IN.(wav|flac|ogg|mp3) [--text "..."] [--avatar PATH] --out OUT.mp4
    facecast render --text "Hello there." --out OUT.mp4          # speech from espeak-ng

The same Session pipeline as live streaming, on a virtual clock: frame k
carries output audio samples [k*spf, (k+1)*spf), so the mp4's audio and video
are in sync by construction. H.264 (yuv420p) + AAC; the video has
ceil(duration * fps) frames and its last frame is shortened so the video
track lasts exactly as long as the audio. With both ``--audio`` and
``--text``, the text is only a caption for the log (the motion comes from the audio).
"""
from __future__ import annotations

import argparse
import asyncio
import logging
from pathlib import Path

from engine.audio import OUTPUT_RATE
from engine.audio.pcm import AudioFormatError, load_audio
from engine.config import load_config, replace
from engine.offline_render import render_to_mp4


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--audio", help="speech to render: wav, flac, ogg or mp3")
    parser.add_argument("--text", help="text to speak with espeak-ng when --audio is not given")
    parser.add_argument("--avatar", help="avatar file (default: render.avatar)")
    parser.add_argument("--out", required=True, help="output .mp4")
    parser.add_argument("--crf", type=int, default=20, help="H.264 quality (lower is better, 0-51)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    if not args.audio and not args.text:
        print("facecast render: give --audio FILE or --text TEXT")
        return 2
    if args.avatar:
        config = replace(config, render={"avatar": str(Path(args.avatar).resolve())})
    try:
        if args.audio:
            audio, rate = load_audio(args.audio, OUTPUT_RATE)
        else:
            from engine.audio.tts import OUTPUT_SAMPLE_RATE, Speaker
            audio, rate = Speaker(config.tts).synthesize(args.text), OUTPUT_SAMPLE_RATE
        summary = asyncio.run(render_to_mp4(config, audio, rate, args.out, crf=args.crf,
                                            progress=not args.quiet))
    except (AudioFormatError, FileNotFoundError, ValueError, RuntimeError) as e:
        print(f"facecast render: {e}")
        return 1
    print(f"wrote {summary['out']}: {summary['frames']} frames at {summary['fps']} fps, "
          f"{summary['duration_s']:.3f} s of audio")
    return 0
