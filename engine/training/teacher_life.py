"""The non-mouth half of the teacher: head motion, brows, blinks and gaze, with randomness.

Speaking: head motion is a slow random sway (Ornstein-Uhlenbeck per axis, larger while speaking)
plus nods on pitch/loudness accents and a small head raise with high pitch; brows lift on
strong high-pitch accents; blinks follow a Poisson process that prefers phrase boundaries.
Listening: attentive nods, a faint smile, blinks, mostly steady gaze. Idle: breathing sway,
blinks, wandering gaze. Angles in radians (pitch > 0 = nose down, a nod), translation in
inter-ocular distances, weights 0..1.
"""
from __future__ import annotations

import math

import numpy as np

from engine.motion.space import INDEX

YAW, PITCH, ROLL, TX, TY, TZ = 52, 53, 54, 55, 56, 57
PROSODY_HZ = 100

# typical amplitudes (radians / weights) for an average speaker (style scales them)
SWAY_SPEAKING = np.array([0.045, 0.03, 0.02])     # yaw, pitch, roll std while speaking
SWAY_QUIET = np.array([0.02, 0.015, 0.01])
SWAY_TIME_CONSTANT_S = 1.2
NOD_RAD = 0.035
PITCH_FOLLOW_RAD_PER_ST = 0.004                  # head rises with the voice's pitch
BROW_RAISE = 0.35
BLINK_CLOSE_S, BLINK_OPEN_S = 0.07, 0.14


# ----------------------------------------------------------------------------- prosody
def prosody(audio: np.ndarray, sample_rate: int, hz: int = PROSODY_HZ):
    """(loudness_db, f0_semitones_rel_median (0 where unvoiced), voiced mask) at ``hz``."""
    hop = sample_rate // hz
    win = int(0.04 * sample_rate)
    n = max(1, int(math.ceil(len(audio) / hop)))
    pad = np.pad(audio.astype(np.float32), (win // 2, win))
    idx = np.arange(n)[:, None] * hop + np.arange(win)[None, :]
    frames = pad[idx] * np.hanning(win).astype(np.float32)[None, :]
    energy = (frames ** 2).mean(1)
    loud_db = 10 * np.log10(energy + 1e-10)
    nfft = 1 << (2 * win - 1).bit_length()
    spec = np.fft.rfft(frames, nfft, axis=1)
    ac = np.fft.irfft(np.abs(spec) ** 2, nfft, axis=1)[:, :win]
    ac = ac / np.maximum(ac[:, :1], 1e-12)
    lo, hi = int(sample_rate / 400), int(sample_rate / 70)
    seg = ac[:, lo:hi]
    lag = seg.argmax(1) + lo
    peak = seg.max(1)
    voiced = (peak > 0.45) & (loud_db > loud_db.max() - 35)
    f0 = sample_rate / lag
    st = np.zeros(n)
    if voiced.any():
        ref = np.median(f0[voiced])
        st[voiced] = 12 * np.log2(f0[voiced] / ref)
    return loud_db, st, voiced


def _ou(n: int, dt: float, tau: float, std: np.ndarray, rng, smooth_s: float = 0.15) -> np.ndarray:
    """Smooth Ornstein-Uhlenbeck noise (n, len(std)), stationary std ~``std`` (per row if 2-D).

    The OU path is low-passed (gaussian, ``smooth_s``) so heads drift without frame jitter.
    """
    a = math.exp(-dt / tau)
    std = np.broadcast_to(std, (n, np.shape(std)[-1]))
    x = np.zeros((n, std.shape[1]))
    x[0] = rng.normal(0, 1, std.shape[1])
    noise = rng.normal(0, 1, x.shape) * math.sqrt(1 - a * a)
    for i in range(1, n):
        x[i] = a * x[i - 1] + noise[i]
    sig = smooth_s / dt
    if sig > 0 and n > 1:
        r = int(3 * sig) + 1
        k = np.exp(-0.5 * (np.arange(-r, r + 1) / sig) ** 2)
        k /= k.sum()
        xp = np.pad(x, ((r, r), (0, 0)), mode="reflect" if n > r else "edge")
        x = np.stack([np.convolve(xp[:, j], k, mode="valid") for j in range(x.shape[1])], 1)
        x /= math.sqrt(_smoothed_var(a, k))
    return x * std


def _smoothed_var(a: float, k: np.ndarray) -> float:
    """Variance of unit-variance AR(1) (coefficient ``a``) after filtering with kernel ``k``."""
    lags = np.arange(len(k))
    acf = a ** lags
    full = np.convolve(k, k[::-1])
    mid = len(k) - 1
    return float(full[mid] + 2 * (full[mid + 1:] * acf[1:len(full) - mid]).sum())


def _bump(n: int, fps: int, center_s: float, width_s: float) -> np.ndarray:
    t = (np.arange(n) + 0.5) / fps
    return np.exp(-0.5 * ((t - center_s) / width_s) ** 2)


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    if len(x) == 0:
        return np.zeros(n)
    src = np.linspace(0, 1, len(x))
    return np.interp(np.linspace(0, 1, n), src, x)


# ----------------------------------------------------------------------------- pieces
def add_blinks(out: np.ndarray, fps: int, rate_per_min: float, rng, prefer_s=()) -> None:
    """Blinks at ~``rate_per_min`` (Poisson, 1 s refractory); ``prefer_s``: likely blink times."""
    n = len(out)
    dur = n / fps
    times = []
    t = rng.exponential(60.0 / max(rate_per_min, 1e-3)) * 0.5
    while t < dur:
        times.append(t)
        t += 1.0 + rng.exponential(60.0 / max(rate_per_min, 1e-3))
    for p in prefer_s:
        if rng.random() < 0.5 and all(abs(p - q) > 1.0 for q in times):
            times.append(p + rng.uniform(0.0, 0.15))
    tt = (np.arange(n) + 0.5) / fps
    for t0 in times:
        depth = rng.uniform(0.85, 1.0)
        closing = np.clip((tt - t0 + BLINK_CLOSE_S) / BLINK_CLOSE_S, 0, 1)
        opening = np.clip(1 - (tt - t0) / BLINK_OPEN_S, 0, 1)
        v = depth * np.where(tt <= t0, closing, opening)
        asym = rng.normal(0, 0.03)
        for side, s in (("Left", 1 + asym), ("Right", 1 - asym)):
            k = INDEX["eyeBlink" + side]
            out[:, k] = np.maximum(out[:, k], np.clip(v * s, 0, 1))


def add_gaze(out: np.ndarray, fps: int, rng, spread: float = 0.08) -> None:
    """Fixations with saccades every 0.4-2.5 s, mostly near the camera."""
    n = len(out)
    gx = np.zeros(n)
    gy = np.zeros(n)
    i = 0
    while i < n:
        hold = int(rng.uniform(0.4, 2.5) * fps) + 1
        gx[i:i + hold] = rng.normal(0, spread)
        gy[i:i + hold] = rng.normal(0, spread * 0.6)
        i += hold
    for side in ("Left", "Right"):
        out[:, INDEX["eyeLookOut" + side] if side == "Left" else INDEX["eyeLookIn" + side]] = np.clip(-gx, 0, 1)
        out[:, INDEX["eyeLookIn" + side] if side == "Left" else INDEX["eyeLookOut" + side]] = np.clip(gx, 0, 1)
        out[:, INDEX["eyeLookUp" + side]] = np.clip(gy, 0, 1)
        out[:, INDEX["eyeLookDown" + side]] = np.clip(-gy, 0, 1)


def _accents(loud_db: np.ndarray, st: np.ndarray, voiced: np.ndarray, hz: int):
    """Accent times (s) and strengths: peaks of loudness+pitch on voiced stretches."""
    score = np.where(voiced, (loud_db - loud_db.max()) / 10 + 0.3 * st, -np.inf)
    out = []
    w = int(0.25 * hz)
    for i in range(len(score)):
        if not np.isfinite(score[i]):
            continue
        lo, hi = max(0, i - w), min(len(score), i + w + 1)
        if score[i] >= score[lo:hi].max() and score[i] > -1.5:
            out.append((i / hz, float(np.clip(score[i] + 1.5, 0, 3) / 3)))
    return out


def _box_same(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average over ``width`` (odd) samples, zero-padded, len(x) long: np.convolve's "same",
    also for signals shorter than the window (where "same" returns the window's length)."""
    half = width // 2
    return np.convolve(x, np.ones(width) / width, mode="full")[half:half + len(x)]


# ----------------------------------------------------------------------------- speaking
def add_speaking_life(out: np.ndarray, audio: np.ndarray, sample_rate: int, phones, starts, ends,
                      fps: int, style, rng) -> None:
    """Head pose, brows, blinks and gaze for a speaking segment, written into ``out`` (T, 58)."""
    n = len(out)
    loud_db, st, voiced = prosody(audio, sample_rate)
    loud_f = _resample(loud_db, n)
    st_f = _resample(np.where(voiced, st, 0.0), n)
    speaking = np.zeros(n)
    tt = (np.arange(n) + 0.5) / fps
    for ph, s, e in zip(phones, starts, ends):
        if ph != "sil":
            speaking[(tt >= s) & (tt < e)] = 1.0
    speaking = _box_same(speaking, 9)
    std = SWAY_QUIET[None, :] + speaking[:, None] * (SWAY_SPEAKING - SWAY_QUIET)[None, :]
    rot = _ou(n, 1.0 / fps, SWAY_TIME_CONSTANT_S, std * style.head_scale, rng)
    accents = _accents(loud_db, st, voiced, PROSODY_HZ)
    brow = np.zeros(n)
    for t0, strength in accents:
        if rng.random() < 0.7:
            rot[:, 1] += style.head_scale * NOD_RAD * strength * rng.uniform(0.5, 1.2) * (
                _bump(n, fps, t0 + 0.05, 0.09) - 0.4 * _bump(n, fps, t0 + 0.25, 0.12))
        if strength > 0.45 and rng.random() < 0.5:
            brow += style.brow_scale * BROW_RAISE * strength * _bump(n, fps, t0, rng.uniform(0.15, 0.3))
    rot[:, 1] -= style.head_scale * PITCH_FOLLOW_RAD_PER_ST * _box_same(st_f, 7)
    out[:, YAW:ROLL + 1] = rot
    out[:, TX] = 0.25 * rot[:, 0] + rng.normal(0, 0.002)
    out[:, TY] = 0.15 * rot[:, 1]
    out[:, TZ] = 0.01 * style.head_scale * np.clip((loud_f - loud_f.max() + 30) / 30, 0, 1)
    brow = np.clip(brow, 0, 1)
    out[:, INDEX["browInnerUp"]] = np.maximum(out[:, INDEX["browInnerUp"]], brow)
    out[:, INDEX["browOuterUpLeft"]] = np.maximum(out[:, INDEX["browOuterUpLeft"]], 0.7 * brow)
    out[:, INDEX["browOuterUpRight"]] = np.maximum(out[:, INDEX["browOuterUpRight"]], 0.7 * brow)
    pauses = [float(s) for ph, s, e in zip(phones, starts, ends) if ph == "sil" and e - s > 0.15]
    add_blinks(out, fps, style.blink_rate_per_min, rng, prefer_s=pauses)
    add_gaze(out, fps, rng)


# ----------------------------------------------------------------------------- listening / idle
def listening_motion(n: int, fps: int, style, rng) -> np.ndarray:
    """(n, 58) attentive listening: small nods every few seconds, faint smile, blinks, gaze."""
    out = np.zeros((n, 58), np.float32)
    rot = _ou(n, 1.0 / fps, 2.0, SWAY_QUIET[None, :] * style.head_scale, rng)
    t = rng.uniform(0.5, 2.5)
    while t < n / fps:
        rot[:, 1] += style.head_scale * NOD_RAD * rng.uniform(0.4, 1.0) * _bump(n, fps, t, 0.15)
        t += rng.uniform(1.5, 5.0)
    out[:, YAW:ROLL + 1] = rot
    smile = np.clip(0.08 + _ou(n, 1.0 / fps, 3.0, np.array([0.04]), rng)[:, 0], 0, 0.3)
    out[:, INDEX["mouthSmileLeft"]] = smile
    out[:, INDEX["mouthSmileRight"]] = smile
    out[:, INDEX["jawOpen"]] = style.rest_open
    add_blinks(out, fps, style.blink_rate_per_min, rng)
    add_gaze(out, fps, rng, spread=0.04)
    return out


def idle_motion(n: int, fps: int, style, rng) -> np.ndarray:
    """(n, 58) idle: breathing sway, slow drift, blinks, wandering gaze, mouth at rest."""
    out = np.zeros((n, 58), np.float32)
    out[:, YAW:ROLL + 1] = _ou(n, 1.0 / fps, 3.0, SWAY_QUIET[None, :] * style.head_scale, rng)
    tt = np.arange(n) / fps
    out[:, TY] = 0.004 * np.sin(2 * np.pi * rng.uniform(0.2, 0.3) * tt + rng.uniform(0, 6.3))
    out[:, INDEX["jawOpen"]] = style.rest_open
    add_blinks(out, fps, style.blink_rate_per_min, rng)
    add_gaze(out, fps, rng, spread=0.12)
    return out
