"""The ``facecast`` command line.

Each command lives in its own module that defines ``add_arguments(parser)`` and
``run(args) -> int``; modules are imported only when their command runs, so a
missing optional dependency of one command never breaks another.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys

# (command path, module, help)
COMMANDS: list[tuple[tuple[str, ...], str, str]] = [
    (("serve",), "engine.commands.serve", "serve the avatar over WebRTC + the assistant WebSocket API"),
    (("doctor",), "engine.commands.doctor", "check port, STUN/TURN servers, codecs, espeak-ng, avatar and model: OK/FAIL per line"),
    (("render",), "engine.commands.render", "render audio (or text) to an mp4 offline"),
    (("avatar", "create"), "engine.commands.avatar_create", "create an avatar from a portrait photo"),
    (("avatar", "export"), "engine.commands.avatar_export", "export an avatar: glTF 2.0 (.glb) with ARKit morph targets, or its Gaussians as a 3DGS .ply"),
    (("avatar", "preview"), "engine.commands.avatar_preview", "write a contact sheet of an avatar's expressions"),
    (("avatar", "fit"), "engine.commands.avatar_fit", "refine an avatar's Gaussians against a video of the person"),
    (("data", "synth"), "engine.commands.data_synth", "synthesize a speech corpus with phone timings + teacher motion"),
    (("data", "align"), "engine.commands.data_align", "teacher motion for a real recording via forced alignment"),
    (("data", "augment"), "engine.commands.data_augment", "augmented copies of a real-video / aligned corpus (targets time-warped)"),
    (("data", "real-av"), "engine.commands.data_real_av", "training targets from real talking-face videos (audio + mouth)"),
    (("train", "teacher"), "engine.commands.train_teacher", "fit the lip-opening teacher to real faces (facecast data real-av)"),
    (("train", "audio2motion"), "engine.commands.train_audio2motion", "train the audio-to-motion diffusion model"),
    (("eval", "audio2motion"), "engine.commands.eval_audio2motion", "evaluate the audio-to-motion model against the baseline"),
    (("eval", "lipsync"), "engine.commands.eval_lipsync", "every stage (teacher, model, rig, render) vs real talking mouths"),
    (("eval", "teacher-fit"), "engine.commands.eval_teacher_fit", "the teacher vs real mouths per phone (from facecast data real-av)"),
    (("eval", "teacher"), "engine.commands.eval_teacher", "hand check of the teacher against real talking-face videos"),
    (("export", "audio2motion"), "engine.commands.export_audio2motion", "export the model to ONNX (+INT8) / TensorRT"),
    (("bench", "pipeline"), "engine.commands.bench_pipeline", "benchmark the streaming pipeline"),
    (("bench", "render"), "engine.commands.bench_render", "benchmark the renderer and tracker"),
    (("bench", "motion"), "engine.commands.bench_motion", "benchmark the audio-to-motion model"),
    (("webcam", "check"), "engine.commands.webcam_check", "retarget a face video onto an avatar: curves + frame sheet"),
    (("webcam", "yaw"), "engine.commands.webcam_yaw", "how far the head turns in face videos (tracked yaw per clip, before the clamp)"),
    (("bench", "coldstart"), "engine.commands.bench_coldstart", "benchmark server cold start: /healthz and the first WebRTC video frame"),
    (("bench", "gpu"), "engine.commands.bench_gpu", "benchmark the Triton renderer and the torch model on a CUDA GPU"),
    (("bench", "soak"), "engine.commands.bench_soak", "soak a live session under continuous speech: RSS, threads, fds, A/V drift per minute"),
    (("local",), "engine.commands.local", "echo mode on the local mic and speaker: window or mp4"),
    (("bench", "browser"), "engine.commands.bench_browser", "benchmark real headless Chromium viewing a session (first frame, fps)"),
    (("bench", "cluster"), "engine.commands.bench_cluster", "benchmark sessions per Ray worker node and the cluster front door's signalling"),
    (("bench", "sessions"), "engine.commands.bench_sessions", "how many live sessions (motion or video mode) one machine holds at the frame budget"),
    (("bench", "frameworks"), "engine.commands.bench_frameworks", "benchmark the Pipecat processor and the LiveKit video generator (engine in-process)"),
    (("livekit-avatar",), "engine.commands.livekit_avatar", "the LiveKit avatar dispatcher: sends avatar workers into agents' rooms"),
    (("bench", "splat"), "engine.commands.bench_splat", "benchmark the Gaussian-splat renderer (CPU one thread; GPU with gsplat) + quality"),
]

# Commands that run live sessions get one BLAS thread per process (unless $OPENBLAS_NUM_THREADS is
# set): numpy's OpenBLAS otherwise keeps a thread per core that busy-waits after each threaded call,
# ~0.17 cores per splat session (BENCHMARKS.md, "Splat video sessions"); sessions are parallel
# across sessions, not inside a matrix product. OpenBLAS reads the variable once, when numpy is
# first imported: so before the command's module is. (Ray's worker actors: engine/cluster/worker.py.)
LIVE_SESSION_COMMANDS = {("serve",), ("bench", "sessions")}


def limit_blas_threads() -> None:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="facecast", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default=None, help="TOML config (default: configs/default.toml)")
    sub = parser.add_subparsers(dest="command", required=True)
    groups: dict[str, argparse._SubParsersAction] = {}
    for path, module, help_ in COMMANDS:
        if len(path) == 1:
            p = sub.add_parser(path[0], help=help_)
        else:
            if path[0] not in groups:
                g = sub.add_parser(path[0], help=f"{path[0]} commands")
                groups[path[0]] = g.add_subparsers(dest="subcommand", required=True)
            p = groups[path[0]].add_parser(path[1], help=help_)
        p.set_defaults(_module=module)
        p.set_defaults(_path=path)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    # Two passes: find the command, then let its module add its own arguments.
    # --help goes to the command's own parser (it knows the options), unless no command is named.
    wants_help = any(a in ("-h", "--help") for a in argv)
    first_pass = [a for a in argv if a not in ("-h", "--help")]
    if wants_help and not _names_a_command(parser, first_pass):
        parser.parse_args(argv)  # top-level or group help; exits
    known, _ = parser.parse_known_args(first_pass)
    if known._path in LIVE_SESSION_COMMANDS:
        limit_blas_threads()
    mod = importlib.import_module(known._module)
    sub_parser = argparse.ArgumentParser(prog="facecast " + " ".join(known._path))
    sub_parser.add_argument("--config", default=known.config)
    mod.add_arguments(sub_parser)
    args = sub_parser.parse_args(_strip_command(argv, known._path))
    from engine.config import ConfigError
    try:
        return int(mod.run(args) or 0)
    except ConfigError as e:   # a bad config file or option: one line, not a traceback
        print(f"facecast {' '.join(known._path)}: bad configuration: {e}", file=sys.stderr)
        return 2


def _names_a_command(parser: argparse.ArgumentParser, argv: list[str]) -> bool:
    import contextlib
    import io
    try:
        with contextlib.redirect_stderr(io.StringIO()):
            parser.parse_known_args(argv)
        return True
    except SystemExit:
        return False


def _strip_command(argv: list[str], path: tuple[str, ...]) -> list[str]:
    out, want = [], list(path)
    for a in argv:
        if want and a == want[0]:
            want.pop(0)
            continue
        out.append(a)
    return out


if __name__ == "__main__":
    sys.exit(main())
