"""``facecast data real-av``: training targets from real talking-face videos (their own audio and mouths).

    facecast data real-av --split configs/eval/lipsync_split.toml --subset train --out data/real_av
    facecast data real-av VIDEO... --speaker NAME --out DIR

Each clip's phones are aligned, the teacher's motion gets the real speaker's lip opening
(engine/training/real_av.py), and the result is a corpus directory for
``facecast train audio2motion --extra-corpus DIR``. Only training speakers belong here: the
split file keeps them apart from `facecast eval lipsync`'s test speakers.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", nargs="*", help="talking-face videos with their own audio")
    p.add_argument("--speaker", default="speaker", help="speaker id of the videos given on the command line")
    p.add_argument("--split", default=None, help="split file (configs/eval/lipsync_split.toml) instead of videos")
    p.add_argument("--subset", default="train", choices=("train", "test"))
    p.add_argument("--media-dir", default="../shared/media/dev", help="where the split file's clips are")
    p.add_argument("--out", required=True, help="corpus directory to write")


def run(args: argparse.Namespace) -> int:
    from engine.training.lipsync_eval import LipsyncEvalError, load_split
    from engine.training.real_av import build_real_corpus

    try:
        clips = load_split(args.split, args.subset, args.media_dir) if args.split else \
            [(args.speaker, Path(v)) for v in args.videos]
    except LipsyncEvalError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not clips:
        print("error: give videos or --split", file=sys.stderr)
        return 2
    rows = build_real_corpus(clips, args.out)
    minutes = sum(r["duration_s"] for r in rows) / 60
    print(f"wrote {len(rows)} clips ({minutes:.1f} min, {len({r['voice'] for r in rows})} speakers) to {args.out}")
    return 0 if rows else 1
