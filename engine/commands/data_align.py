"""``facecast data align AUDIO``: phones and teacher motion for any recording (pocketsphinx).

One npz per file in the corpus layout, or with ``--corpus DIR`` a training corpus
(manifest.jsonl + utts/, engine 'real'). The alignment itself is :mod:`engine.training.align`.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("audio", nargs="+", help="audio or video file(s) (anything ffmpeg reads)")
    p.add_argument("--text", default=None, help="transcript (or @file.txt) of a single file; "
                   "otherwise FILE.txt next to FILE is used if present, else the words are recognised")
    p.add_argument("--mode", choices=("asr", "allphone"), default="asr",
                   help="without a transcript: recognise words then align (asr) or decode phones (allphone)")
    p.add_argument("--out", default=None, help="output .npz of a single file (default: AUDIO with .npz)")
    p.add_argument("--corpus", default=None,
                   help="write a training corpus here instead (manifest.jsonl + utts/, engine 'real')")
    p.add_argument("--split", default="train", choices=("train", "val", "test"), help="split for --corpus rows")
    p.add_argument("--speaker", default="neutral", help="articulation style: 'neutral' or any speaker id")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fps", type=int, default=25)


def run(args: argparse.Namespace) -> int:
    from engine.audio.pcm import AudioFormatError
    from engine.training.align import AlignError, align_file

    if len(args.audio) > 1 and (args.out or args.text):
        print("error: --out and --text take a single AUDIO (use --corpus for many files)", file=sys.stderr)
        return 2
    corpus = Path(args.corpus) if args.corpus else None
    if corpus:
        (corpus / "utts").mkdir(parents=True, exist_ok=True)
    rows, failed = [], 0
    for path in args.audio:
        text = args.text
        if text and text.startswith("@"):
            text = Path(text[1:]).read_text()
        elif text is None and Path(path).with_suffix(".txt").exists():
            text = Path(path).with_suffix(".txt").read_text()
        if corpus:
            out = corpus / "utts" / (re.sub(r"[^A-Za-z0-9_-]+", "-", Path(path).stem) + ".npz")
        else:
            out = Path(args.out) if args.out else Path(path).with_suffix(".npz")
        try:
            info = align_file(path, out, text, args.mode, args.speaker, args.seed, args.fps)
        except (AlignError, AudioFormatError, OSError) as e:
            print(f"error: {path}: {e}", file=sys.stderr)
            failed += 1
            continue
        print(json.dumps(info))
        if corpus:
            rows.append({"id": out.stem, "voice": f"real:{args.speaker}", "engine": "real", "split": args.split,
                         "path": f"utts/{out.name}", "duration_s": info["duration_s"], "augmented": False,
                         "text": info["text"], "state": "speaking", "n_frames": info["frames"]})
    if corpus and rows:
        with (corpus / "manifest.jsonl").open("a") as mf:
            mf.writelines(json.dumps(r) + "\n" for r in rows)
    return 1 if failed else 0
