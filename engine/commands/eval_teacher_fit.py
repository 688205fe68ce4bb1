"""``facecast eval teacher-fit --corpus data/real_av [--json]``: the teacher against real mouths,
phone by phone, with the per-phone jaw scale that would match them (engine/training/teacher_fit.py)."""
from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", required=True, help="real-video corpus (facecast data real-av --out DIR)")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from engine.training.teacher_fit import fit
    result = fit(args.corpus)
    if not args.json:
        print(f"{'phone':6} {'n':>5} {'real':>6} {'teacher':>8} {'scale':>6}")
        for p, v in result["phones"].items():
            print(f"{p:6} {v['n']:5d} {v['real']:6.2f} {v['teacher']:8.2f} {str(v['jaw_scale']):>6}")
        for k in ("teacher_vs_real_r", "pause_opening_rel", "pre_speech_opening_rel"):
            print(f"{k}: {result[k]}")
    print(json.dumps(result))
    return 0
