"""Hand check of the teacher on a real talking-face video (not used by tests).

    facecast eval teacher VIDEO [VIDEO ...] [--text T] [--png OUT.png]

Tracks the real speaker's mouth opening with mediapipe face mesh (inner-lip gap, landmarks
13-14, over the face height 10-152), aligns the audio with pocketsphinx (``facecast data align``),
builds the teacher, and prints Pearson r at the best lag within +-80 ms (lag > 0: the real mouth
is later than the curve) for the teacher's jawOpen, a rig-free lip opening, the lip gap on the default avatar's rig
and the loudness
envelope (dB and RMS). The PNG shows the three curves over time.
"""
from __future__ import annotations

import math
import subprocess
from pathlib import Path

import numpy as np

from engine.audio import MODEL_RATE as SAMPLE_RATE
from engine.audio.pcm import load_audio
from engine.training.align import align
from engine.training.metrics import mouth_opening
from engine.motion.space import INDEX
from engine.training.teacher import ArticulationStyle, loudness_01, teacher_motion

GRID_HZ = 100
MAX_LAG_S = 0.08


def mouth_track(video: str) -> tuple[np.ndarray, np.ndarray]:
    """(times s, inner-lip gap / face height) for each video frame (NaN where no face)."""
    from engine.training.realvideo import lip_gap_per_frame

    vals, fps = lip_gap_per_frame(video, refine_landmarks=True)
    return _video_start(video) + np.arange(len(vals)) / fps, vals


def _video_start(video: str) -> float:
    res = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "stream=start_time", "-of", "csv=p=0", video], capture_output=True, text=True)
    try:
        return float(res.stdout.strip())
    except ValueError:
        return 0.0


# lip gap per unit weight on the default avatar's rig (landmark 14 minus 13, y, inter-ocular units);
# used when assets/default.avatar cannot be loaded
_GAP_FALLBACK = {"jawOpen": 0.414, "mouthClose": -0.577, "mouthPressLeft": -0.04, "mouthPressRight": -0.04,
                 "mouthUpperUpLeft": 0.018, "mouthUpperUpRight": 0.018, "mouthLowerDownLeft": 0.006,
                 "mouthLowerDownRight": 0.006, "mouthFunnel": 0.12, "mouthPucker": -0.162}
_NEUTRAL_GAP = 0.162


def rig_gap(motion: np.ndarray) -> np.ndarray:
    """Inner-lip gap the teacher weights give on the default avatar's rig (clipped at closed)."""
    try:
        from engine.avatar.asset import load_avatar
        from engine.config import ASSETS_DIR
        av = load_avatar(ASSETS_DIR / "default.avatar")
        coef = av.rig_deltas[:, 14, 1] - av.rig_deltas[:, 13, 1]
        neutral = float(av.rig_neutral[14, 1] - av.rig_neutral[13, 1])
    except Exception:  # noqa: BLE001 - no avatar here: the default rig's numbers
        coef = np.zeros(52)
        for name, v in _GAP_FALLBACK.items():
            coef[INDEX[name]] = v
        neutral = _NEUTRAL_GAP
    return np.maximum(neutral + motion[:, :52] @ coef, 0.0)


def best_lag_r(ref: np.ndarray, x: np.ndarray, hz: int = GRID_HZ) -> tuple[float, float]:
    """Max Pearson r of ref(t) vs x(t - lag) over |lag| <= 80 ms; returns (r, lag_s)."""
    best = (-2.0, 0.0)
    m = int(MAX_LAG_S * hz)
    for lag in range(-m, m + 1):
        if lag >= 0:
            a, b = ref[lag:], x[:len(x) - lag]
        else:
            a, b = ref[:lag], x[-lag:]
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 20:
            continue
        r = float(np.corrcoef(a[ok], b[ok])[0, 1])
        if r > best[0]:
            best = (r, lag / hz)
    return best


def check(video: str | Path, text: str | None = None, mode: str = "asr", style=None, al=None) -> dict:
    """Correlations of the teacher's curves (and loudness) with the real mouth in ``video``."""
    audio, _ = load_audio(video, SAMPLE_RATE)
    dur = len(audio) / SAMPLE_RATE
    al = al or align(audio, text, mode)
    motion = teacher_motion(audio, SAMPLE_RATE, al.phones, al.starts, al.ends, 25,
                            style or ArticulationStyle.neutral(), seed=0)
    grid = np.arange(int(dur * GRID_HZ)) / GRID_HZ
    tv, mv = mouth_track(video)
    ok = np.isfinite(mv)
    real = np.interp(grid, tv[ok], mv[ok])
    centers = (np.arange(len(motion)) + 0.5) / 25
    jaw = np.interp(grid, centers, motion[:, INDEX["jawOpen"]])
    proxy = np.interp(grid, centers, mouth_opening(motion))
    gap = np.interp(grid, centers, rig_gap(motion))
    loud = _fit(loudness_01(audio, SAMPLE_RATE, GRID_HZ), len(grid))
    rms = _fit(_rms_env(audio), len(grid))
    out = {"clip": Path(video).stem, "duration_s": round(dur, 2), "text": al.text}
    for name, curve in (("jaw", jaw), ("opening", proxy), ("rig_gap", gap), ("loudness_db", loud),
                        ("loudness_rms", rms)):
        r, lag = best_lag_r(real, curve)
        out[name] = {"r": round(r, 3), "lag_ms": round(lag * 1000)}
    out["_curves"] = (grid, real, jaw, proxy, loud, al)
    return out


def _rms_env(audio: np.ndarray) -> np.ndarray:
    hop = SAMPLE_RATE // GRID_HZ
    n = int(math.ceil(len(audio) / hop))
    x = np.pad(audio, (0, n * hop - len(audio)))
    rms = np.sqrt((x.reshape(n, hop) ** 2).mean(1))
    k = np.ones(3) / 3
    return np.convolve(rms, k, "same")


def _fit(x, n):
    return x[:n] if len(x) >= n else np.pad(x, (0, n - len(x)), mode="edge")


def plot(results: list[dict], png: str | Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 1, figsize=(14, 3.2 * len(results)), squeeze=False)
    for ax, res in zip(axes[:, 0], results):
        grid, real, jaw, proxy, loud, al = res["_curves"]
        z = lambda x: (x - np.nanmean(x)) / (np.nanstd(x) + 1e-9)  # noqa: E731
        ax.plot(grid, z(real), "k", lw=2, label="real mouth (face mesh)")
        ax.plot(grid, z(proxy), "tab:red", label=f"teacher opening r={res['opening']['r']}")
        ax.plot(grid, z(jaw), "tab:orange", lw=0.8, label=f"teacher jawOpen r={res['jaw']['r']}")
        ax.plot(grid, z(loud), "tab:blue", lw=0.8, alpha=0.7, label=f"loudness r={res['loudness_db']['r']}")
        for p, s, e in zip(al.phones, al.starts, al.ends):
            if p != "sil":
                ax.text((s + e) / 2, -2.6, p, fontsize=6, ha="center")
        ax.set_ylim(-2.9, 3.5)
        ax.set_title(f"{res['clip']}: {res['text'][:90]}", fontsize=9)
        ax.legend(loc="upper right", fontsize=7, ncol=4)
    fig.tight_layout()
    fig.savefig(png, dpi=90)
