"""``facecast eval teacher VIDEO...``: hand check of the teacher on real talking-face videos.

Prints one JSON line per video (Pearson r at the best lag of the teacher's curves and the
loudness against the tracked real mouth, :mod:`engine.training.teacher_check`); ``--png``
plots the curves. Not used by tests with real media.
"""
from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", nargs="+", help="talking-face video(s) with an audio track")
    p.add_argument("--text", default=None, help="transcript (default: recognised)")
    p.add_argument("--mode", default="asr", choices=("asr", "allphone"),
                   help="without a transcript: recognise words then align (asr) or decode phones (allphone)")
    p.add_argument("--png", default=None, help="plot the curves into this PNG")


def run(args: argparse.Namespace) -> int:
    from engine.audio.pcm import AudioFormatError
    from engine.training.align import AlignError
    from engine.training.teacher_check import check, plot

    try:
        results = [check(v, args.text, args.mode) for v in args.videos]
    except (AlignError, AudioFormatError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    for r in results:
        print(json.dumps({k: v for k, v in r.items() if not k.startswith("_")}))
    if args.png:
        plot(results, args.png)
    return 0
