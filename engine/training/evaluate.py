"""``facecast eval audio2motion``: the learned model vs the baseline on held-out voices.

Both generators run exactly as the engine runs them (streaming pushes, then flush) on the
corpus's ``test`` split (voices/engines never seen in training). Metrics, same names for both:
mouth-curve MAE vs the teacher (jawOpen, mouthFunnel, mouthPucker, mouthClose), lip-vertex
error on the default avatar's rig (inter-ocular units), A/V offset (lag of best correlation of
jawOpen with the audio envelope) and its error vs the teacher's, head-motion diversity across
seeds. Also the model's mouth error vs the number of sampler steps. ``--real-video`` adds the
real-speech check (engine/training/realvideo.py). The last stdout line is one JSON object.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from engine.training import metrics as M


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
    p.add_argument("--json", action="store_true", help="only the JSON line on stdout")


def stream(gen, audio: np.ndarray, chunk: int, seed: int | None = None) -> np.ndarray:
    gen.reset(seed)
    out = [gen.push(audio[i:i + chunk]) for i in range(0, len(audio), chunk)]
    out.append(gen.flush())
    return np.concatenate(out)


def _cfg(args):
    from engine.config import load_config, replace
    cfg = load_config(args.config)
    over = {}
    if args.model:
        over["model_path"] = str(Path(args.model).resolve())
    if args.backends:
        over["backends"] = [b.strip() for b in args.backends.split(",") if b.strip()]
    return replace(cfg, motion=over) if over else cfg


def _generators(cfg, steps: int | None = None):
    from engine.config import replace
    from engine.motion.model.stream import load_streaming_generator
    from engine.motion.generators import create_baseline
    c = replace(cfg, motion={"diffusion_steps": steps}) if steps else cfg
    return load_streaming_generator(c), create_baseline(cfg)


def score(name_runs: dict, utts, avatar, lips) -> dict:
    """Per-generator metrics from {'model': [motion per utt], ...}."""
    out = {}
    for name, runs in name_runs.items():
        maes = [M.mouth_mae(r, u.motion) for r, u in zip(runs, utts)]
        d = {f"{c}_mae": float(np.mean([m[c] for m in maes])) for c in M.MOUTH_CURVES}
        d["mouth_mae_mean"] = float(np.mean([d[f"{c}_mae"] for c in M.MOUTH_CURVES]))
        if avatar is not None:
            d["lip_vertex_error_iod"] = float(np.mean([M.lip_vertex_error(r, u.motion, avatar.rig_deltas, lips)
                                                      for r, u in zip(runs, utts)]))
        offs = [M.av_offset_ms(r[:, M.INDEX["jawOpen"]], u.audio, 25) for r, u in zip(runs, utts)]
        d["av_offset_ms"] = float(np.median(offs))
        d["jaw_jitter"] = float(np.mean([M.jitter(r[:, M.INDEX["jawOpen"]]) for r in runs]))
        out[name] = d
    return out


def evaluate(args) -> dict:
    from tqdm import tqdm

    from engine.training.dataset import load_corpus
    from engine.motion.model.spec import ModelSpec

    cfg = _cfg(args)
    model, baseline = _generators(cfg)
    utts = load_corpus(args.corpus, ("test",), ModelSpec(), limit=args.limit)
    chunk = int(args.chunk_ms * 16)
    runs = {"model": [], "baseline": [], "teacher": [u.motion for u in utts]}
    for u in tqdm(utts, desc="eval audio2motion", file=sys.stderr, mininterval=2.0):
        runs["model"].append(stream(model, u.audio, chunk))
        runs["baseline"].append(stream(baseline, u.audio, chunk))
    avatar, lips = _avatar(args, cfg)
    result = score(runs, utts, avatar, lips)
    teacher = result.pop("teacher")
    for name in ("model", "baseline"):
        result[name]["av_offset_error_ms"] = abs(result[name]["av_offset_ms"] - teacher["av_offset_ms"])
    div_utts = utts[: min(8, len(utts))]
    for name, gen in (("model", model), ("baseline", baseline)):
        per = [M.head_diversity([stream(gen, u.audio, chunk, seed=s) for s in range(args.seeds)]) for u in div_utts]
        for k in per[0]:
            result[name][k] = float(np.mean([p[k] for p in per]))
    result["teacher"] = {"av_offset_ms": teacher["av_offset_ms"],
                         "head_motion_std_deg": float(np.mean([np.degrees(u.motion[:, 52:55]).std(0).mean()
                                                               for u in div_utts]))}
    mouth_keys = [f"{c}_mae" for c in M.MOUTH_CURVES] + ["mouth_mae_mean"] + \
        (["lip_vertex_error_iod"] if avatar is not None else [])
    result["model_beats_baseline"] = {k: result["model"][k] < result["baseline"][k] for k in mouth_keys}
    result["backend"] = model.runtime.name
    result["utterances"] = len(utts)
    result["voices"] = sorted({u.voice for u in utts})
    sweep = [int(s) for s in args.steps_sweep.split(",") if s.strip()]
    result["model_vs_steps"] = {}
    for k in sweep:
        try:
            g, _ = _generators(cfg, k)
        except Exception as e:     # a missing export for k steps is reported, not fatal
            result["model_vs_steps"][str(k)] = {"error": str(e)}
            continue
        rs = [stream(g, u.audio, chunk) for u in utts[:20]]
        maes = [M.mouth_mae(r, u.motion) for r, u in zip(rs, utts[:20])]
        result["model_vs_steps"][str(k)] = {
            "backend": g.runtime.name,
            "mouth_mae_mean": float(np.mean([np.mean(list(m.values())) for m in maes])),
            **M.head_diversity([stream(g, utts[0].audio, chunk, seed=s) for s in range(args.seeds)])}
    if args.plot:
        plot_curves(args.plot, utts[0], runs["model"][0], runs["baseline"][0])
        result["plot"] = args.plot
    return result


def _avatar(args, cfg):
    try:
        from engine.avatar.asset import load_avatar
        avatar = load_avatar(cfg.resolve_path(args.avatar or cfg.render.avatar))
        return avatar, M.lip_indices()
    except Exception as e:        # the metric is skipped, and said so, without an avatar
        print(f"[eval] no lip-vertex error: avatar not loadable ({e})", file=sys.stderr)
        return None, None


def plot_curves(path: str, utt, model: np.ndarray, baseline: np.ndarray) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(5, 1, figsize=(12, 10), sharex=True)
    t = np.arange(len(utt.audio)) / 16000
    axes[0].plot(t, utt.audio, lw=0.4, color="0.4")
    axes[0].set_title(f"held-out utterance {utt.id} ({utt.voice})")
    tf = (np.arange(len(utt.motion)) + 0.5) / 25
    for ax, c in zip(axes[1:], M.MOUTH_CURVES):
        i = M.INDEX[c]
        ax.plot(tf, utt.motion[:, i], label="teacher", color="k", lw=2)
        ax.plot(tf, model[: len(tf), i], label="model", color="tab:blue")
        ax.plot(tf, baseline[: len(tf), i], label="baseline", color="tab:orange", alpha=0.8)
        ax.set_ylabel(c)
    axes[1].legend(loc="upper right")
    axes[-1].set_xlabel("s")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from engine.training.dataset import CorpusError
    from engine.motion.generators import ModelLoadError

    result: dict = {}
    try:
        if args.corpus and Path(args.corpus).exists():
            result = evaluate(args)
        elif not args.real_video:
            raise CorpusError(f"corpus {args.corpus} does not exist")
        if args.real_video:
            from engine.training.realvideo import real_video_check
            cfg = _cfg(args)
            model, baseline = _generators(cfg)
            avatar, _ = _avatar(args, cfg)
            result["real_video"] = {Path(v).name: real_video_check(v, model, baseline, avatar)
                                    for v in args.real_video}
    except (CorpusError, ModelLoadError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if not args.json:
        for name in ("model", "baseline"):
            if name in result:
                print(f"{name:9s} " + "  ".join(f"{k}={v:.4g}" for k, v in result[name].items()))
    print(json.dumps(result))
    return 0
