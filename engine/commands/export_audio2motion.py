"""``facecast export audio2motion``: torch checkpoint -> static-shape ONNX sampler (+ INT8 QDQ, TensorRT).

What is exported and how INT8 is calibrated: :mod:`engine.training.export`.
"""
from __future__ import annotations

import argparse
import json
import sys


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default="assets/audio2motion.pt")
    p.add_argument("--out", default=None, help="ONNX path (default: the checkpoint's stem + .onnx)")
    p.add_argument("--steps", type=int, default=2, help="sampler steps of the main export")
    p.add_argument("--extra-steps", default="1,4", help="comma-separated extra step counts ('' for none)")
    p.add_argument("--int8", action="store_true", help="also write INT8 QDQ exports (needs --corpus)")
    p.add_argument("--corpus", default=None, help="corpus for INT8 calibration")
    p.add_argument("--calib-utterances", type=int, default=12)
    p.add_argument("--tensorrt", choices=("fp16", "int8"), default=None, help="also build a TensorRT engine")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--draw-temperature", type=float, default=None,
                   help="scale of the final posterior draw for head/brows/eyes (default: the checkpoint's)")


def run(args: argparse.Namespace) -> int:
    from engine.motion.generators import ModelLoadError
    from engine.training.export import export_model

    if args.int8 and not args.corpus:
        print("error: --int8 needs --corpus DIR for calibration", file=sys.stderr)
        return 2
    try:
        report = export_model(args.checkpoint, args.out, steps=args.steps,
                              extra_steps=tuple(int(s) for s in args.extra_steps.split(",") if s.strip()),
                              int8=args.int8, corpus=args.corpus, calib_utterances=args.calib_utterances,
                              tensorrt=args.tensorrt, opset=args.opset, draw_temperature=args.draw_temperature)
    except ModelLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(report))
    return 0
