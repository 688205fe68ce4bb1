"""The learned model vs the baseline on held-out voices.

Both generators run exactly as the engine runs them (streaming pushes, then flush) on the
corpus's ``test`` split (voices/engines never seen in training). Metrics, same names for both:
mouth-curve MAE vs the teacher (jawOpen, mouthFunnel, mouthPucker, mouthClose), lip-vertex
error on the default avatar's rig (inter-ocular units), A/V offset (lag of best correlation of
jawOpen with the audio envelope) and its error vs the teacher's, head-motion diversity across
seeds. Also the model's mouth error vs the number of sampler steps. The real-speech check is
engine/training/realvideo.py. ``facecast eval audio2motion`` is the command.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from engine.audio import MODEL_RATE
from engine.training import metrics as M


def stream(gen, audio: np.ndarray, chunk: int, seed: int | None = None) -> np.ndarray:
    gen.reset(seed)
    out = [gen.push(audio[i:i + chunk]) for i in range(0, len(audio), chunk)]
    out.append(gen.flush())
    return np.concatenate(out)


def eval_config(config: str | Path | None = None, model: str | Path | None = None,
                backends: list[str] | None = None):
    """The config to evaluate with: ``config`` (default config if None) with the model/backends overridden."""
    from engine.config import load_config, replace
    cfg = load_config(config)
    over: dict = {}
    if model:
        over["model_path"] = str(Path(model).resolve())
    if backends:
        over["backends"] = list(backends)
    return replace(cfg, motion=over) if over else cfg


def generators(cfg, steps: int | None = None):
    """(learned streaming generator, baseline) as the engine creates them from ``cfg``."""
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


def evaluate(cfg, corpus: str | Path, limit: int = 60, chunk_ms: int = 40, seeds: int = 4,
             steps_sweep: tuple[int, ...] = (1, 2, 4), avatar: str | Path | None = None,
             plot: str | Path | None = None, teacher_opening: str | Path | None = None) -> dict:
    """Score model and baseline on ``corpus``'s test split; returns the result dict.
    ``teacher_opening``: score against the teacher with that fitted lip opening (what a model
    trained with ``--teacher-opening`` learned) instead of the hand table's."""
    from tqdm import tqdm

    from engine.training.dataset import load_corpus
    from engine.training.teacher_opening import OpeningTable
    from engine.motion.model.spec import ModelSpec

    model, baseline = generators(cfg)
    opening = OpeningTable.load(teacher_opening) if teacher_opening else None
    utts = load_corpus(corpus, ("test",), ModelSpec(), limit=limit, teacher_opening=opening)
    chunk = int(chunk_ms * MODEL_RATE // 1000)
    runs = {"model": [], "baseline": [], "teacher": [u.motion for u in utts]}
    for u in tqdm(utts, desc="eval audio2motion", file=sys.stderr, mininterval=2.0):
        runs["model"].append(stream(model, u.audio, chunk))
        runs["baseline"].append(stream(baseline, u.audio, chunk))
    rig_avatar, lips = eval_avatar(cfg, avatar)
    result = score(runs, utts, rig_avatar, lips)
    teacher = result.pop("teacher")
    for name in ("model", "baseline"):
        result[name]["av_offset_error_ms"] = abs(result[name]["av_offset_ms"] - teacher["av_offset_ms"])
    div_utts = utts[: min(8, len(utts))]
    for name, gen in (("model", model), ("baseline", baseline)):
        per = [M.head_diversity([stream(gen, u.audio, chunk, seed=s) for s in range(seeds)]) for u in div_utts]
        for k in per[0]:
            result[name][k] = float(np.mean([p[k] for p in per]))
    result["teacher"] = {"av_offset_ms": teacher["av_offset_ms"],
                         "head_motion_std_deg": float(np.mean([np.degrees(u.motion[:, 52:55]).std(0).mean()
                                                               for u in div_utts]))}
    mouth_keys = [f"{c}_mae" for c in M.MOUTH_CURVES] + ["mouth_mae_mean"] + \
        (["lip_vertex_error_iod"] if rig_avatar is not None else [])
    result["model_beats_baseline"] = {k: result["model"][k] < result["baseline"][k] for k in mouth_keys}
    result["backend"] = model.runtime.name
    result["utterances"] = len(utts)
    result["voices"] = sorted({u.voice for u in utts})
    result["model_vs_steps"] = {}
    for k in steps_sweep:
        try:
            g, _ = generators(cfg, k)
        except Exception as e:     # a missing export for k steps is reported, not fatal
            result["model_vs_steps"][str(k)] = {"error": str(e)}
            continue
        rs = [stream(g, u.audio, chunk) for u in utts[:20]]
        maes = [M.mouth_mae(r, u.motion) for r, u in zip(rs, utts[:20])]
        result["model_vs_steps"][str(k)] = {
            "backend": g.runtime.name,
            "mouth_mae_mean": float(np.mean([np.mean(list(m.values())) for m in maes])),
            **M.head_diversity([stream(g, utts[0].audio, chunk, seed=s) for s in range(seeds)])}
    if plot:
        plot_curves(plot, utts[0], runs["model"][0], runs["baseline"][0])
        result["plot"] = str(plot)
    return result


def eval_avatar(cfg, avatar: str | Path | None = None):
    """(avatar, lip indices) for the lip-vertex error, or (None, None) (said on stderr) if not loadable."""
    try:
        from engine.avatar.asset import load_avatar
        avatar = load_avatar(cfg.resolve_path(avatar or cfg.render.avatar))
        return avatar, M.lip_indices()
    except Exception as e:        # the metric is skipped, and said so, without an avatar
        print(f"[eval] no lip-vertex error: avatar not loadable ({e})", file=sys.stderr)
        return None, None


def plot_curves(path: str | Path, utt, model: np.ndarray, baseline: np.ndarray) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(5, 1, figsize=(12, 10), sharex=True)
    t = np.arange(len(utt.audio)) / MODEL_RATE
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
