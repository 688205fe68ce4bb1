"""``facecast train teacher --corpus data/real_av --out assets/teacher_opening.json``: fit the lip-opening
teacher to real faces (engine/training/teacher_opening.py); ``--compare DIR`` scores the hand and the
fitted teacher on another real-video corpus (e.g. the test speakers)."""
from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", required=True, help="real-video corpus to fit on (facecast data real-av --out DIR)")
    p.add_argument("--out", default="assets/teacher_opening.json", help="table to write (JSON)")
    p.add_argument("--compare", action="append", default=[],
                   help="real-video corpus to score the hand and the fitted teacher on (held-out speakers)")
    p.add_argument("--json", action="store_true", help="only the JSON summary on stdout")


def run(args: argparse.Namespace) -> int:
    from engine.training.teacher_opening import TeacherOpeningError, compare_on, fit_opening

    say = (lambda m: print(m, file=sys.stderr, flush=True)) if args.json else (lambda m: print(m, flush=True))
    try:
        table = fit_opening(args.corpus, progress=say)
        table.save(args.out)
        summary = {"out": args.out, **table.fitted, "anticipation_s": table.anticipation_s,
                   "carryover_s": table.carryover_s, "units_per_std": table.units_per_std,
                   "compare": {c: compare_on(c, table) for c in args.compare}}
    except (TeacherOpeningError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.json:
        say(f"wrote {args.out}: mean r on its {table.fitted['clips']} training clips "
            f"{table.fitted['mean_r_train']:.3f} (hand table {table.fitted['hand_teacher_mean_r_train']:.3f})")
        for c, res in summary["compare"].items():
            for row in res["clips"]:
                say(f"  {row['clip']:48} hand {row['hand']:.3f}  fitted {row['fitted']:.3f}")
            say(f"{c}: mean r hand {res['mean_hand']:.3f}, fitted {res['mean_fitted']:.3f}")
    print(json.dumps(summary))
    return 0
