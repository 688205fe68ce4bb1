"""Metrics for speech-driven motion: mouth-curve error, lip-vertex error, A/V offset, diversity."""
from __future__ import annotations

import numpy as np

from engine.audio import MODEL_RATE
from engine.motion.opening import OPENING_TERMS, mouth_opening, opening_term  # noqa: F401 (re-exported)
from engine.motion.space import INDEX, NUM_BLENDSHAPES

MOUTH_CURVES = ("jawOpen", "mouthFunnel", "mouthPucker", "mouthClose")
ENVELOPE_HZ = 100
MAX_AV_LAG_S = 0.2


def mouth_mae(pred: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    n = min(len(pred), len(ref))
    return {c: float(np.abs(pred[:n, INDEX[c]] - ref[:n, INDEX[c]]).mean()) for c in MOUTH_CURVES}


def lip_indices() -> np.ndarray:
    """Face-mesh landmark indices on the lips (mediapipe's FACEMESH_LIPS)."""
    import mediapipe as mp
    return np.array(sorted({i for e in mp.solutions.face_mesh.FACEMESH_LIPS for i in e}))


def lip_vertex_error(pred: np.ndarray, ref: np.ndarray, rig_deltas: np.ndarray, lips: np.ndarray) -> float:
    """Mean Euclidean distance (inter-ocular units) of the lip landmarks the two weight sets produce."""
    n = min(len(pred), len(ref))
    d = rig_deltas[:, lips, :].reshape(NUM_BLENDSHAPES, -1)               # (52, L*3)
    diff = (pred[:n, :NUM_BLENDSHAPES] - ref[:n, :NUM_BLENDSHAPES]) @ d   # (n, L*3)
    return float(np.linalg.norm(diff.reshape(n, -1, 3), axis=2).mean())


def audio_envelope(audio: np.ndarray, sample_rate: int = MODEL_RATE, hz: int = ENVELOPE_HZ) -> np.ndarray:
    """RMS envelope (dB, floored at -60 dB below the peak) at ``hz``; frame i = [i, i+1)/hz."""
    hop = sample_rate // hz
    n = len(audio) // hop
    rms = np.sqrt((audio[: n * hop].astype(np.float64).reshape(n, hop) ** 2).mean(1) + 1e-12)
    db = 20 * np.log10(rms)
    return np.maximum(db, db.max() - 60.0) if n else db


def upsample(curve: np.ndarray, fps: float, hz: int = ENVELOPE_HZ, n: int | None = None) -> np.ndarray:
    """Linear interpolation of a per-frame curve (frame k = the instant k/fps) to ``hz``."""
    n = n if n is not None else int(len(curve) * hz / fps)
    t = (np.arange(n) + 0.5) / hz
    return np.interp(t, np.arange(len(curve)) / fps, curve)


def pearson_at_lags(x: np.ndarray, y: np.ndarray, max_lag: int) -> dict[int, float]:
    """r(x[t], y[t - lag]) for lag in [-max_lag, max_lag] (lag > 0: x lags y)."""
    out = {}
    for lag in range(-max_lag, max_lag + 1):
        if lag >= 0:
            a, b = x[lag:], y[: len(y) - lag]
        else:
            a, b = x[:lag], y[-lag:]
        n = min(len(a), len(b))
        a, b = a[:n], b[:n]
        out[lag] = float(np.corrcoef(a, b)[0, 1]) if n > 2 and a.std() > 0 and b.std() > 0 else 0.0
    return out


def av_offset_ms(jaw: np.ndarray, audio: np.ndarray, fps: int, sample_rate: int = MODEL_RATE) -> float:
    """Lag (ms) maximising the correlation of mouth opening with the audio envelope (> 0: mouth late)."""
    env = audio_envelope(audio, sample_rate)
    up = upsample(jaw, fps, ENVELOPE_HZ, len(env))
    r = pearson_at_lags(up, env, int(MAX_AV_LAG_S * ENVELOPE_HZ))
    return 1000.0 * max(r, key=r.get) / ENVELOPE_HZ


def head_diversity(runs: list[np.ndarray]) -> dict[str, float]:
    """Across seeds: mean pairwise RMS difference of head rotation (degrees), and mean per-run std."""
    rot = [np.degrees(r[:, NUM_BLENDSHAPES:NUM_BLENDSHAPES + 3]) for r in runs]
    n = min(len(r) for r in rot)
    pairs = [np.sqrt(((rot[i][:n] - rot[j][:n]) ** 2).mean()) for i in range(len(rot)) for j in range(i + 1, len(rot))]
    return {"head_diversity_deg": float(np.mean(pairs)) if pairs else 0.0,
            "head_motion_std_deg": float(np.mean([r[:n].std(0).mean() for r in rot]))}


def jitter(curve: np.ndarray) -> float:
    """Mean absolute second difference (frame-to-frame roughness)."""
    return float(np.abs(np.diff(curve, 2)).mean()) if len(curve) > 2 else 0.0


def with_opening(motion: np.ndarray, target: np.ndarray) -> np.ndarray:
    """``motion`` with jawOpen chosen so that ``mouth_opening`` is ``target`` (where finite)."""
    rest = sum(w * opening_term(motion, n) for n, w in OPENING_TERMS.items() if n != "jawOpen")
    out = motion.copy()
    ok = np.isfinite(target)
    out[ok, INDEX["jawOpen"]] = np.clip(target[ok] - rest[ok], 0.0, 1.0)
    return out

