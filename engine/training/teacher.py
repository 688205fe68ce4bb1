"""Teacher motion: phones (+ the audio) -> ARKit mouth/jaw, head, brows, blinks at the video fps.

Mouth: every phone (diphthongs: two sub-targets) pulls each mouth control towards its viseme
target with a dominance that rises ahead of the phone (anticipation) and falls after it
(carry-over); the control's value is the dominance-weighted mean of all targets (coarticulation
by dominance blending). Jaw opening is modulated by the local loudness (stressed syllables open
wider). The controls then map to ARKit weights. Head, brows, blinks and gaze come from
:mod:`engine.training.teacher_life`. All randomness is seeded; a speaker's
:class:`ArticulationStyle` is derived from its voice id, so a voice keeps its style.

Frame ``k`` shows the mouth at the instant ``k/fps`` (the mean over one frame centred there),
the instant a camera frame with that pts shows and the instant the engine presents the frame
(its audio starts there). See docs/teacher.md for the table and the measured lag/correlation on real speech.
"""
from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace

import numpy as np

from engine.audio import MODEL_RATE
from engine.training import visemes
from engine.motion.space import INDEX, VECTOR_DIM

INTERNAL_HZ = 200                 # mouth curves are built at 200 Hz, then averaged per frame
_CORE_FRACTION = 0.35             # dominance is flat over this fraction of the phone either side
_SMOOTH_S = 0.02                  # final gaussian smoothing (s)
_LOUDNESS_FLOOR_DB = -50.0
_PAUSE_EDGE_S = 0.06              # a pause's rest posture yields to its neighbours this close to them
_REST_WEIGHT = 0.01               # weak pull of every control to rest where no phone is near


@dataclass(frozen=True)
class ArticulationStyle:
    """How one speaker articulates (and moves); ``neutral()`` is the average speaker."""
    jaw_scale: float = 1.0        # how wide the jaw opens
    round_scale: float = 1.0      # funnel/pucker strength
    spread_scale: float = 1.0     # stretch/smile strength on spread vowels
    closure: float = 1.0          # how firmly bilabials seal (press)
    coarticulation: float = 1.4   # scales anticipation/carry-over widths (sloppy > 1 > crisp)
    loudness_coupling: float = 0.0  # how much loudness widens the jaw on stressed vowels
    rest_open: float = 0.02       # jaw at rest
    asymmetry: float = 0.0        # left/right imbalance of lip shapes (-1..1, small)
    lag_s: float = 0.0            # mouth lag behind the acoustic phone times
    inhale_s: float = 0.3         # lips part this long before speech that follows a pause
    inhale_open: float = 1.0      # scales the inhale's jaw opening (0 = lips stay shut)
    head_scale: float = 1.0
    brow_scale: float = 1.0
    blink_rate_per_min: float = 17.0

    @classmethod
    def neutral(cls) -> "ArticulationStyle":
        return cls()

    @classmethod
    def for_speaker(cls, speaker: str, seed: int = 0) -> "ArticulationStyle":
        """A deterministic, plausible style for a speaker id (e.g. ``espeak:en-us+f3``)."""
        h = hashlib.sha256(f"{speaker}|{seed}".encode()).digest()
        rng = np.random.default_rng(int.from_bytes(h[:8], "little"))

        def around(lo: float, hi: float) -> float:
            return float(rng.uniform(lo, hi))

        return cls(jaw_scale=around(0.8, 1.2), round_scale=around(0.75, 1.25),
                   spread_scale=around(0.7, 1.3), closure=around(0.8, 1.2),
                   coarticulation=around(1.1, 1.8), loudness_coupling=around(0.0, 0.25),
                   rest_open=around(0.0, 0.05), asymmetry=around(-0.15, 0.15),
                   lag_s=around(-0.01, 0.01), inhale_s=around(0.15, 0.45),
                   inhale_open=around(0.3, 1.3), head_scale=around(0.6, 1.4),
                   brow_scale=around(0.5, 1.5), blink_rate_per_min=around(10.0, 24.0))

    def jitter(self, rng: np.random.Generator, amount: float = 0.05) -> "ArticulationStyle":
        """Small per-utterance variation of the same speaker."""
        f = lambda v: float(v * (1.0 + rng.normal(0.0, amount)))  # noqa: E731
        return replace(self, jaw_scale=f(self.jaw_scale), round_scale=f(self.round_scale),
                       spread_scale=f(self.spread_scale), head_scale=f(self.head_scale))


def n_frames(duration_s: float, fps: int) -> int:
    return int(math.ceil(duration_s * fps - 1e-9))


def inhale_windows(phones, starts, ends, style: ArticulationStyle) -> list[tuple[float, float]]:
    """(start, end) of the breath the teacher puts at the end of each pause (>= 2 x inhale)
    that precedes speech; corpus synthesis adds an audible breath there."""
    out = []
    if style.inhale_open <= 0:
        return out
    for i, (ph, s, e) in enumerate(zip(phones, starts, ends)):
        follows = i + 1 < len(phones) and phones[i + 1] != "sil"
        if ph == "sil" and follows and e - s >= 2 * style.inhale_s:
            out.append((float(e - style.inhale_s), float(e)))
    return out


def _with_inhales(phones, starts, ends, style: ArticulationStyle):
    """Split each inhale window off the end of its pause as an ``inhale`` target."""
    windows = {round(e, 9): s for s, e in inhale_windows(phones, starts, ends, style)}
    out = []
    for ph, s, e in zip(phones, starts, ends):
        w = windows.get(round(float(e), 9)) if ph == "sil" else None
        if w is not None:
            out.append(("sil", s, w))
            out.append(("inhale", w, e))
        else:
            out.append((ph, s, e))
    return out


def _expand_targets(phones, starts, ends, style: ArticulationStyle):
    """(center, half_duration, phone_for_targets) per sub-target; diphthongs give two."""
    out = []
    for ph, s, e in _with_inhales(phones, starts, ends, style):
        d = max(float(e - s), 1e-3)
        glide = visemes.offglide(ph)
        if glide is None:
            out.append((0.5 * (s + e), 0.5 * d, ph))
        else:
            out.append((s + 0.3 * d, 0.25 * d, ph))
            out.append((s + 0.8 * d, 0.2 * d, glide))
    return out


def mouth_controls(phones, starts, ends, duration_s: float, style: ArticulationStyle,
                   loudness: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Mouth controls (see :mod:`engine.training.visemes`) at ``INTERNAL_HZ``.

    ``loudness``: optional loudness in [0, 1] at ``INTERNAL_HZ`` (same length) for jaw emphasis.
    """
    if len(phones) != len(starts) or len(phones) != len(ends):
        raise ValueError("phones, starts and ends must have the same length")
    n = max(1, int(math.ceil(duration_s * INTERNAL_HZ)))
    t = (np.arange(n) + 0.5) / INTERNAL_HZ - style.lag_s
    subs = _expand_targets(phones, np.asarray(starts, float), np.asarray(ends, float), style)
    if not subs:
        subs = [(duration_s / 2, duration_s / 2, "sil")]
    centers = np.array([c for c, _, _ in subs])[:, None]
    halves = np.array([h for _, h, _ in subs])[:, None]
    tabs = [visemes.targets(p) for _, _, p in subs]
    is_sil = np.array([p == "sil" for _, _, p in subs])[:, None]
    inhale = np.array([p == "inhale" for _, _, p in subs])[:, None]
    dt = t[None, :] - centers                                 # (S, n): >0 after the centre
    # a pause holds the rest posture over its whole length but for its edges
    core = np.where(is_sil, np.maximum(halves - _PAUSE_EDGE_S, _CORE_FRACTION * 2 * halves),
                    _CORE_FRACTION * 2 * halves)
    dist = np.maximum(np.abs(dt) - core, 0.0)
    out: dict[str, np.ndarray] = {}
    for c in visemes.CONTROLS:
        tgt = np.array([tb[c][0] for tb in tabs])[:, None]
        dom = np.array([tb[c][1] for tb in tabs])[:, None]
        if c == "jaw":
            tgt = np.where(is_sil, tgt * 0 + style.rest_open, tgt)
            tgt = np.where(inhale, tgt * style.inhale_open, tgt)
        tau = np.where(dt < 0, visemes.ANTICIPATION_S[c], visemes.CARRYOVER_S[c]) * style.coarticulation
        power = visemes.SHAPE_POWER.get(c, visemes.DEFAULT_SHAPE_POWER)
        w = dom * np.exp(-np.power(dist / tau, power))
        rest = style.rest_open if c == "jaw" else 0.0
        val = ((w * tgt).sum(0) + _REST_WEIGHT * rest) / (w.sum(0) + _REST_WEIGHT)
        out[c] = val
    if loudness is not None and len(loudness) == n:
        emph = 1.0 + style.loudness_coupling * (np.clip(loudness, 0, 1) - 0.5)
        out["jaw"] = out["jaw"] * emph
    out["jaw"] = out["jaw"] * style.jaw_scale
    out["round"] = out["round"] * style.round_scale
    out["pucker"] = out["pucker"] * style.round_scale
    out["spread"] = out["spread"] * style.spread_scale
    out["close"] = np.clip(out["close"], 0, 1)
    sig = _SMOOTH_S * INTERNAL_HZ
    for c in out:
        out[c] = _gauss(out[c], sig)
    return out


def controls_to_arkit(ctrl: dict[str, np.ndarray], style: ArticulationStyle) -> np.ndarray:
    """Mouth controls (n,) -> (n, 52) ARKit weights."""
    n = len(ctrl["jaw"])
    w = np.zeros((n, 52), np.float32)
    jaw = np.clip(ctrl["jaw"], 0, 1)
    close = np.clip(ctrl["close"], 0, 1)
    a = float(np.clip(style.asymmetry, -0.5, 0.5))
    left, right = 1.0 + a, 1.0 - a

    def pair(name: str, v: np.ndarray) -> None:
        w[:, INDEX[name + "Left"]] = np.clip(v * left, 0, 1)
        w[:, INDEX[name + "Right"]] = np.clip(v * right, 0, 1)

    w[:, INDEX["jawOpen"]] = jaw
    w[:, INDEX["mouthClose"]] = np.clip(close * jaw, 0, 1)
    press = np.clip(ctrl["press"] * style.closure, 0, 1)
    pair("mouthPress", press)
    w[:, INDEX["mouthRollUpper"]] = np.clip(0.25 * press, 0, 1)
    lowerlip = np.clip(ctrl["lowerlip"], 0, 1)
    w[:, INDEX["mouthRollLower"]] = np.clip(0.3 * press + 0.6 * lowerlip, 0, 1)
    w[:, INDEX["mouthFunnel"]] = np.clip(ctrl["round"], 0, 1)
    w[:, INDEX["mouthPucker"]] = np.clip(ctrl["pucker"], 0, 1)
    spread = np.clip(ctrl["spread"], 0, 1)
    pair("mouthStretch", 0.8 * spread)
    pair("mouthSmile", 0.35 * spread)
    teeth = np.clip(ctrl["teeth"], 0, 1)
    pair("mouthUpperUp", 0.5 * teeth + 0.35 * lowerlip)
    # the lower lip follows an open jaw a little (visible lower teeth on open vowels)
    pair("mouthLowerDown", 0.5 * teeth + 0.25 * np.clip(jaw - 0.3, 0, 1))
    w[:, INDEX["mouthShrugUpper"]] = np.clip(0.2 * lowerlip, 0, 1)
    w[:, INDEX["tongueOut"]] = np.clip(ctrl["tongue"], 0, 1)
    return w


def frame_average(x: np.ndarray, n_out: int, hz: int, fps: int) -> np.ndarray:
    """Average (n, ...) samples at ``hz`` into ``n_out`` frames at ``fps`` (frame k = [k, k+1)/fps)."""
    edges = np.round(np.arange(n_out + 1) * hz / fps).astype(int)
    edges = np.clip(edges, 0, len(x))
    csum = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, 0)], 0)
    cnt = np.maximum(edges[1:] - edges[:-1], 1).reshape((-1,) + (1,) * (x.ndim - 1))
    out = (csum[edges[1:]] - csum[edges[:-1]]) / cnt
    # frames past the end (rounding) repeat the last value
    empty = edges[1:] <= edges[:-1]
    if empty.any() and len(x):
        out[empty] = x[-1]
    return out


def frame_at_instants(x: np.ndarray, n_out: int, hz: int, fps: int) -> np.ndarray:
    """(n, ...) samples at ``hz`` -> ``n_out`` frames, frame k = the mean over one frame centred at
    the instant k/fps (before the first sample: the first sample's value)."""
    half = int(round(hz / fps / 2))
    padded = np.concatenate([np.repeat(x[:1], half, axis=0), x], 0) if len(x) else x
    return frame_average(padded, n_out, hz, fps)


def loudness_01(audio: np.ndarray, sample_rate: int, hz: int) -> np.ndarray:
    """Loudness in [0, 1] at ``hz`` (dB RMS over 30 ms, relative to the utterance's 95th pct)."""
    hop = sample_rate / hz
    win = int(0.03 * sample_rate)
    n = max(1, int(math.ceil(len(audio) / hop)))
    sq = np.concatenate([[0.0], np.cumsum(audio.astype(np.float64) ** 2)])
    centers = ((np.arange(n) + 0.5) * hop).astype(int)
    lo = np.clip(centers - win // 2, 0, len(audio))
    hi = np.clip(centers + win // 2, 0, len(audio))
    rms = np.sqrt((sq[hi] - sq[lo]) / np.maximum(hi - lo, 1))
    db = 20 * np.log10(rms + 1e-9)
    ref = np.percentile(db, 95) if len(db) else 0.0
    return np.clip((db - (ref + _LOUDNESS_FLOOR_DB * 0.5)) / (-_LOUDNESS_FLOOR_DB * 0.5), 0, 1)


def teacher_mouth(phones, starts, ends, duration_s: float, fps: int = 25,
                  style: ArticulationStyle | None = None, audio: np.ndarray | None = None,
                  sample_rate: int = MODEL_RATE) -> np.ndarray:
    """(T, 52) ARKit mouth/jaw weights for the phones, T = ceil(duration * fps)."""
    style = style or ArticulationStyle.neutral()
    n_int = max(1, int(math.ceil(duration_s * INTERNAL_HZ)))
    loud = None
    if audio is not None:
        loud = _fit_len(loudness_01(audio, sample_rate, INTERNAL_HZ), n_int)
    ctrl = mouth_controls(phones, starts, ends, duration_s, style, loud)
    w = controls_to_arkit(ctrl, style)
    return frame_at_instants(w, n_frames(duration_s, fps), INTERNAL_HZ, fps).astype(np.float32)


def teacher_motion(audio: np.ndarray, sample_rate: int, phones, starts, ends, fps: int = 25,
                   style: ArticulationStyle | None = None, seed: int = 0) -> np.ndarray:
    """Full teacher motion (T, 58): mouth from phones, head/brows/blinks/gaze from prosody."""
    from engine.training import teacher_life

    if audio.ndim != 1:
        raise ValueError("audio must be mono (1-D)")
    style = style or ArticulationStyle.neutral()
    duration = len(audio) / sample_rate
    out = np.zeros((n_frames(duration, fps), VECTOR_DIM), np.float32)
    out[:, :52] = teacher_mouth(phones, starts, ends, duration, fps, style, audio, sample_rate)
    rng = np.random.default_rng(seed)
    teacher_life.add_speaking_life(out, audio, sample_rate, phones, starts, ends, fps, style, rng)
    return out


def _fit_len(x: np.ndarray, n: int) -> np.ndarray:
    if len(x) >= n:
        return x[:n]
    return np.concatenate([x, np.full(n - len(x), x[-1] if len(x) else 0.0)])


def _gauss(x: np.ndarray, sigma: float) -> np.ndarray:
    if sigma <= 0:
        return x
    r = int(3 * sigma) + 1
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    pad = np.pad(x, r, mode="edge")
    return np.convolve(pad, k, mode="valid")
