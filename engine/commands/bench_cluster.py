"""``facecast bench cluster --json``: sessions per Ray worker node at the p95 frame budget, and
the cluster front door's signalling overhead (engine/cluster/bench.py says what is measured).
Needs Ray (``pip install 'facecast[cluster]'``). One JSON object on the last stdout line."""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--cluster", default="", metavar="ADDRESS",
                        help="an existing Ray cluster (default: start a local one with one worker node)")
    parser.add_argument("--node-cpus", type=int, default=0, help="CPUs of the local worker node (default: all)")
    parser.add_argument("--max-sessions", type=int, default=6, help="stop the ramp here (per node)")
    parser.add_argument("--window", type=float, default=8.0, help="seconds measured per step")
    parser.add_argument("--output", choices=("video", "motion"), default="video",
                        help='"motion": motion-mode sessions (no renderer; the motion stream over the WebSocket)')
    parser.add_argument("--renderer", default=None, choices=("warp", "splat"),
                        help="video sessions' renderer (default: render.renderer of the config)")
    parser.add_argument("--size", type=int, default=None, metavar="N",
                        help="video sessions render and encode N×N (default: video.width × video.height)")
    parser.add_argument("--json", action="store_true", help="print only the JSON result")


def run(args: argparse.Namespace) -> int:
    if importlib.util.find_spec("ray") is None:
        print("facecast bench cluster: needs Ray: pip install 'facecast[cluster]'", file=sys.stderr)
        return 2
    if args.max_sessions < 1 or args.window <= 0:
        print("facecast bench cluster: --max-sessions must be >= 1 and --window > 0", file=sys.stderr)
        return 2
    from engine.config import ConfigError, load_config, replace
    try:      # a bad --size or config is refused here, before a Ray cluster is started
        replace(load_config(args.config), **({"video": {"width": args.size, "height": args.size}}
                                             if args.size is not None else {}))
    except ConfigError as e:
        print(f"facecast bench cluster: {e}", file=sys.stderr)
        return 2
    from engine.cluster.bench import BenchOptions, measure
    result = measure(BenchOptions(address=args.cluster, node_cpus=args.node_cpus, max_sessions=args.max_sessions,
                                  window_s=args.window, config_path=args.config, output=args.output,
                                  renderer=args.renderer, size=args.size))
    if not args.json:
        kind = f"{result['renderer']} {result['video']} video" if result["output"] == "video" else "motion"
        for step in result["steps"]:
            print(f"{step['sessions']} {kind} session(s): frame p95 {step['frame_p95_ms_max']} ms "
                  f"(budget {result['budget_ms']} ms), received fps >= {step['recv_fps_min']}, skipped "
                  f"{step['skipped_ticks']}, underruns {step['underruns']}: {'ok' if step['ok'] else 'over budget'}")
        print(f"sessions per node: {result['sessions_per_node']}; signalling: {result['signalling']}")
    print(json.dumps(result))
    return 0
