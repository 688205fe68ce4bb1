"""``facecast data synth``: a speech corpus with exact phone timings and teacher motion.

The corpus layout and the work split are described in :mod:`engine.training.synth`.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--hours", type=float, required=True, help="total audio to make (augmented copies included)")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--aug-copies", type=int, default=1, help="augmented copies per clean utterance")
    p.add_argument("--engines", default="espeak,flite,festival", help="comma-separated engines to use")
    p.add_argument("--test-engines", default="", help="comma-separated engines held out entirely (split test)")
    p.add_argument("--sentences", type=int, default=4000, help="size of the generated sentence set")


def run(args: argparse.Namespace) -> int:
    from engine.audio.tts import ENGINES
    from engine.training.synth import synthesize

    if args.hours <= 0:
        print("error: --hours must be positive", file=sys.stderr)
        return 2
    if args.jobs < 1 or args.aug_copies < 0:
        print("error: --jobs must be >= 1 and --aug-copies >= 0", file=sys.stderr)
        return 2
    engines = tuple(e for e in args.engines.split(",") if e)
    test_engines = frozenset(e for e in args.test_engines.split(",") if e)
    bad = [e for e in engines + tuple(test_engines) if e not in ENGINES]
    if bad:
        print(f"error: unknown engine(s) {bad}; choose from {sorted(ENGINES)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    (out / "utts").mkdir(parents=True, exist_ok=True)
    stats = synthesize(out, args.hours, jobs=args.jobs, seed=args.seed, aug_copies=args.aug_copies,
                       engines=engines, test_engines=test_engines, n_sentences=args.sentences)
    print(json.dumps(stats))
    return 0
