"""``facecast data augment --corpus data/real_av --copies 4 --out data/real_av_aug``: augmented copies
(voice and channel changes, targets time-warped with the audio) of a corpus whose targets come
from real video or alignment (engine/training/augment_corpus.py)."""
from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", required=True, help="source corpus (facecast data real-av / data align)")
    p.add_argument("--out", required=True, help="corpus directory to write (source rows + augmented copies)")
    p.add_argument("--copies", type=int, default=4, help="augmented copies per utterance")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from engine.training.augment import AugmentError, sox_available
    from engine.training.augment_corpus import augment_corpus
    from engine.training.dataset import CorpusError

    if not sox_available():
        print("error: sox is needed for the voice changes (apt install sox)", file=sys.stderr)
        return 2
    try:
        rows = augment_corpus(args.corpus, args.out, args.copies, args.seed, progress=not args.no_progress)
    except (ValueError, OSError, CorpusError, AugmentError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    aug = sum(1 for r in rows if r.get("augmented"))
    print(f"wrote {args.out}: {len(rows) - aug} source + {aug} augmented utterances")
    return 0
