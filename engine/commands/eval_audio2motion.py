"""``facecast eval audio2motion``: the learned model vs the baseline on held-out voices.

Metrics are described in :mod:`engine.training.evaluate`; ``--real-video`` adds the
real-speech check (:mod:`engine.training.realvideo`). The last stdout line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--corpus", default="data/corpus_v1", help="corpus with a test split")
    p.add_argument("--model", default=None, help="model path (default: config motion.model_path)")
    p.add_argument("--backends", default=None, help="comma-separated backend order (default: config)")
    p.add_argument("--limit", type=int, default=60, help="test utterances to use")
    p.add_argument("--chunk-ms", type=int, default=40, help="audio pushed per call")
    p.add_argument("--seeds", type=int, default=4, help="seeds for head-motion diversity")
    p.add_argument("--steps-sweep", default="1,2,4", help="sampler steps to compare ('' to skip)")
    p.add_argument("--avatar", default=None, help="avatar for the lip-vertex error (default: config)")
    p.add_argument("--plot", default=None, help="write teacher/model/baseline mouth curves to this PNG")
    p.add_argument("--real-video", action="append", default=[], help="real talking-face video to check against")
    p.add_argument("--teacher-opening", default=None,
                   help="score against the teacher with this fitted lip opening (assets/teacher_opening.json)")
    p.add_argument("--json", action="store_true", help="only the JSON line on stdout")


def run(args: argparse.Namespace) -> int:
    from engine.audio.pcm import AudioFormatError
    from engine.motion.generators import ModelLoadError
    from engine.training.dataset import CorpusError
    from engine.training.evaluate import eval_avatar, eval_config, evaluate, generators

    backends = [b.strip() for b in args.backends.split(",") if b.strip()] if args.backends else None
    result: dict = {}
    try:
        cfg = eval_config(args.config, args.model, backends)
        if args.corpus and Path(args.corpus).exists():
            sweep = tuple(int(s) for s in args.steps_sweep.split(",") if s.strip())
            result = evaluate(cfg, args.corpus, limit=args.limit, chunk_ms=args.chunk_ms, seeds=args.seeds,
                              steps_sweep=sweep, avatar=args.avatar, plot=args.plot,
                              teacher_opening=args.teacher_opening)
        elif not args.real_video:
            raise CorpusError(f"corpus {args.corpus} does not exist")
        if args.real_video:
            from engine.training.realvideo import real_video_check
            model, baseline = generators(cfg)
            avatar, _ = eval_avatar(cfg, args.avatar)
            result["real_video"] = {Path(v).name: real_video_check(v, model, baseline, avatar)
                                    for v in args.real_video}
    except (CorpusError, ModelLoadError, FileNotFoundError, AudioFormatError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.json:
        for name in ("model", "baseline"):
            if name in result:
                print(f"{name:9s} " + "  ".join(f"{k}={v:.4g}" for k, v in result[name].items()))
    print(json.dumps(result))
    return 0
