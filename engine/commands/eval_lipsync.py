"""``facecast eval lipsync``: every stage of facecast against real talking mouths.

    facecast eval lipsync VIDEO|DIR ... [--avatar A] --json [--plot OUT.png]
    facecast eval lipsync --split configs/eval/lipsync_split.toml --subset test [--media-dir DIR]

For each real video with its own audio: the real inner-lip opening (face mesh) against the
teacher, the model, the avatar rig's lip gap, the rendered image (tracked the same way) and the
loudness envelope. Method and conventions: ``engine/training/lipsync_eval.py``. Prints a per-clip
and a mean table; with ``--json`` the last stdout line is one JSON object. Progress on stderr.
"""
from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

VIDEO_EXTS = (".mp4", ".mov", ".mkv", ".webm", ".avi")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("videos", nargs="*", help="real talking videos with audio, or directories of them")
    parser.add_argument("--avatar", action="append", default=None,
                        help="avatar file (repeatable; default: config render.avatar)")
    parser.add_argument("--split", help="split file (e.g. configs/eval/lipsync_split.toml)")
    parser.add_argument("--subset", default="test", choices=("train", "test"))
    parser.add_argument("--media-dir", default="../shared/media/dev", help="clip paths in --split are relative to this")
    parser.add_argument("--plot", help="write a PNG of the curves (one panel per clip)")
    parser.add_argument("--plot-clips", type=int, default=6, help="clips in the plot (first N)")
    parser.add_argument("--no-sync-correction", action="store_true",
                        help="score against the clip's own A/V timing (default: re-time clips whose "
                             "teacher peaks far outside the natural lead; see lipsync_eval.clip_sync)")
    parser.add_argument("--json", action="store_true", help="only the JSON line on stdout")


def _videos(args) -> list[tuple[str | None, Path]]:
    from engine.training.lipsync_eval import load_split

    out: list[tuple[str | None, Path]] = []
    for v in args.videos:
        p = Path(v)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.suffix.lower() in VIDEO_EXTS)
            if not found:
                raise FileNotFoundError(f"no videos ({', '.join(VIDEO_EXTS)}) in {p}")
            out += [(None, f) for f in found]
        else:
            out.append((None, p))
    if args.split:
        out += load_split(args.split, args.subset, args.media_dir)
    if not out:
        raise FileNotFoundError("give videos, a directory, or --split FILE")
    return out


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from engine.config import load_config
    from engine.training.align import AlignError
    from engine.training.lipsync_eval import LipsyncEvalError, eval_clip, summarize

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    try:
        clips = _videos(args)
    except (LipsyncEvalError, FileNotFoundError) as e:
        print(f"facecast eval lipsync: {e}", file=sys.stderr)
        return 2
    avatars = args.avatar or [config.render.avatar]
    results, curves, errors = [], [], []
    bar = tqdm(total=len(clips) * len(avatars), desc="eval lipsync", unit="clip", file=sys.stderr)
    for avatar in avatars:
        for speaker, video in clips:
            bar.set_postfix_str(video.name)
            try:
                res, cur = eval_clip(video, config, avatar, lambda s: bar.set_postfix_str(f"{video.name}: {s}"),
                                     correct_sync=not args.no_sync_correction)
            except (LipsyncEvalError, AlignError, FileNotFoundError, RuntimeError) as e:
                errors.append({"clip": str(video), "avatar": avatar, "error": str(e)})
                print(f"facecast eval lipsync: {e}", file=sys.stderr)
            else:
                res["speaker"], res["avatar"] = speaker, str(avatar)
                results.append(res)
                curves.append((res, cur))
            bar.update(1)
    bar.close()
    out = {"clips": results, "mean": summarize(results) if results else None, "errors": errors,
           "conventions": {"lag": "r(real(t), stage(t - lag)); lag > 0: the real mouth is later",
                           "sync": "real curve re-timed per clip by sync_shift_ms (teacher peak moved to "
                                   "-30 ms); r_uncorrected: against the clip's own timing",
                           "motion_frame_stamp": "k / 25 s (the instant the frame shows)", "video_frame_stamp": "pts - audio start",
                           "pauses": "energy VAD: 20 ms RMS below p5 + 0.3 (p95 - p5) in dB, runs >= 250 ms, "
                                     "trimmed 50 ms each side", "closed_below_face_heights": 0.01}}
    if args.plot and curves:
        plot(curves[:args.plot_clips], args.plot)
        out["plot"] = args.plot
    if not args.json:
        print(tables(results, out["mean"]))
    print(json.dumps(out))
    return 1 if errors else 0


def _fmt(v, spec=".2f") -> str:
    return "—" if v is None else format(v, spec)


def tables(results: list[dict], mean: dict | None) -> str:
    from engine.training.lipsync_eval import STAGES

    lines = ["clip | sync shift ms | " + " | ".join(f"{s} r@lag (sweep) [uncorrected r]" for s in STAGES)
             + " | real/rig/render closure | rig/render range | flags"]
    for r in results:
        st = r["stages"]
        cells = [f"{_fmt(st[s]['r'])}@{st[s]['lag_ms']} ({st[s]['sweep_best_lag_ms']}) [{_fmt(st[s].get('r_uncorrected'))}]"
                 for s in STAGES]
        lines.append(f"{r['clip']} | {r.get('sync_shift_ms', 0):+d} | " + " | ".join(cells) +
                     f" | {_fmt(r['real']['pause_closure'])}/{_fmt(st['rig']['pause_closure'])}/{_fmt(st['render']['pause_closure'])}"
                     f" | {_fmt(st['rig']['range_ratio'])}/{_fmt(st['render']['range_ratio'])} | {'; '.join(r['flags'])}")
    for name, t in (mean or {}).items():
        lines.append(f"\nmean over {t['clips']} clips ({name}): stage | r | lag ms | sweep lag ms | closure | range ratio"
                     " | r uncorrected")
        lines += [f"  {s} | {_fmt(t[s]['r'], '.3f')} | {_fmt(t[s]['lag_ms'], '.0f')} | {_fmt(t[s]['sweep_best_lag_ms'], '.0f')}"
                  f" | {_fmt(t[s]['pause_closure'])} | {_fmt(t[s]['range_ratio'])} | {_fmt(t[s].get('r_uncorrected'), '.3f')}"
                  for s in STAGES]
        lines.append(f"  real pause closure {_fmt(t['real']['pause_closure'])}; "
                     f"render beats loudness in {_fmt(t['render_beats_loudness_share'])} of clips")
    return "\n".join(lines)


def plot(curves: list, png: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    colours = {"teacher": "tab:red", "fitted": "tab:brown", "model": "tab:orange", "rig": "tab:green", "render": "tab:purple",
               "loudness": "tab:blue"}
    fig, axes = plt.subplots(len(curves), 1, figsize=(14, 3.0 * len(curves)), squeeze=False)
    z = lambda x: (x - np.nanmean(x)) / (np.nanstd(x) + 1e-9)  # noqa: E731
    for ax, (res, cur) in zip(axes[:, 0], curves):
        ax.fill_between(cur.grid, -3, 3.5, where=cur.pauses, color="0.9", label="pause")
        ax.plot(cur.grid, z(cur.real), "k", lw=2, label="real mouth")
        for s, c in colours.items():
            if not np.isfinite(cur.stages[s]).any():
                continue                     # e.g. no fitted teacher table
            st = res["stages"][s]
            ax.plot(cur.grid, z(cur.stages[s]), color=c, lw=0.9, alpha=0.85,
                    label=f"{s} r={_fmt(st['r'])}@{st['lag_ms']}ms")
        ax.set_ylim(-3, 3.5)
        ax.set_title(f"{res['clip']} ({res.get('speaker') or ''}): {res['text'][:100]}", fontsize=9)
        ax.legend(loc="upper right", fontsize=7, ncol=7)
    axes[-1, 0].set_xlabel("s (0 = first audio sample); curves z-scored")
    fig.tight_layout()
    fig.savefig(png, dpi=80)
    plt.close(fig)
