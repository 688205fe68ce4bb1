"""``facecast train audio2motion``: train the few-step diffusion model on a speech corpus.

The training itself (objective, determinism, what is saved) is :mod:`engine.training.train`.
"""
from __future__ import annotations

import argparse
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", required=True, help="corpus directory (facecast data synth --out DIR)")
    p.add_argument("--out", default="assets/audio2motion.pt", help="checkpoint to write (.pt)")
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=16, help="crops per step (each crop = crop/window windows)")
    p.add_argument("--crop", type=int, default=32, help="frames per crop")
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    p.add_argument("--limit", type=int, default=None, help="use at most this many utterances (smoke tests)")
    p.add_argument("--quiet-clips", type=int, default=40, help="listening/idle clips added for the state control")
    p.add_argument("--lookahead-ms", type=int, default=50, help="future audio per frame (multiple of 10 ms)")
    p.add_argument("--mask-inhale", action="store_true",
                   help="leave the teacher's pre-speech inhale out of the jaw/mouth loss")
    p.add_argument("--init", default=None, help="fine-tune from this checkpoint (keeps its spec and statistics)")
    p.add_argument("--extra-corpus", action="append", default=[],
                   help="a corpus mixed in (repeatable), e.g. real-video targets (facecast data real-av)")
    p.add_argument("--extra-weight", type=float, default=1.0, help="sampling weight per frame of --extra-corpus")
    p.add_argument("--opening-loss", type=float, default=0.0,
                   help="weight of the lip-opening loss (concordance correlation + L1, closures balanced)")
    p.add_argument("--teacher-lead-ms", type=float, default=0.0,
                   help="teacher targets show the mouth this far ahead of the sound (real mouths lead it; 0..80)")
    p.add_argument("--teacher-opening", default=None,
                   help="lip-opening table fitted to real faces (facecast train teacher): teacher targets take its opening")
    p.add_argument("--real-opening-std", type=float, default=None,
                   help="scale each real-video clip's lip opening to this std (weight units; e.g. 0.15)")
    p.add_argument("--eval-every", type=int, default=500)
    p.add_argument("--no-progress", action="store_true")


def options(args: argparse.Namespace):
    """The parsed command line as :class:`engine.training.train.TrainOptions` (ValueError if invalid)."""
    from engine.training.train import TrainOptions
    return TrainOptions(corpus=args.corpus, out=args.out, steps=args.steps, batch=args.batch, crop=args.crop,
                        lr=args.lr, seed=args.seed, threads=args.threads, limit=args.limit,
                        quiet_clips=args.quiet_clips, lookahead_ms=args.lookahead_ms,
                        mask_inhale=args.mask_inhale, eval_every=args.eval_every, progress=not args.no_progress,
                        init=args.init, extra_corpus=tuple(args.extra_corpus), extra_weight=args.extra_weight,
                        opening_loss=args.opening_loss, teacher_lead_ms=args.teacher_lead_ms,
                        teacher_opening=args.teacher_opening, real_opening_std=args.real_opening_std)


def run(args: argparse.Namespace) -> int:
    from engine.training.dataset import CorpusError
    from engine.training.teacher_opening import TeacherOpeningError
    from engine.training.train import train

    try:
        opts = options(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        train(opts)
    except (CorpusError, TeacherOpeningError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0
