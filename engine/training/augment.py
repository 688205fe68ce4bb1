"""Audio augmentation that keeps phone times exact: tempo, pitch, formant shift (sox), noise,
reverb, band-limiting, level and source sample rate (numpy/scipy).

:func:`augment` returns the new audio (16 kHz float32) and the factor by which time was scaled
(phone times are multiplied by it).
"""
from __future__ import annotations

import math
import shutil
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np
from scipy import signal

from engine.audio import MODEL_RATE
SAMPLE_RATE = MODEL_RATE
SOURCE_RATES = (8000, 11025, 16000, 22050, 44100, 48000)


class AugmentError(RuntimeError):
    """sox is missing or failed."""


@dataclass
class AugmentPlan:
    """The augmentations applied to one utterance (stored in the manifest for reference)."""
    tempo: float = 1.0            # >1 faster (sox tempo: pitch kept)
    pitch_cents: float = 0.0      # sox pitch: duration kept
    formant: float = 1.0          # sox speed f + pitch back: formants x f, pitch kept, time / f
    reverb_rt60_s: float = 0.0
    noise_snr_db: float | None = None
    noise_color: float = 0.0      # spectral slope exponent: 0 white, 1 pink, 2 brown
    band: tuple[float, float] | None = None   # (low Hz, high Hz)
    source_rate: int = SAMPLE_RATE
    gain_db: float = 0.0
    applied: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        d = {"tempo": round(self.tempo, 3), "pitch_cents": round(self.pitch_cents, 1),
             "formant": round(self.formant, 3), "reverb_rt60_s": round(self.reverb_rt60_s, 3),
             "noise_snr_db": None if self.noise_snr_db is None else round(self.noise_snr_db, 1),
             "noise_color": round(self.noise_color, 2), "band": self.band,
             "source_rate": self.source_rate, "gain_db": round(self.gain_db, 1)}
        return d


def random_plan(rng: np.random.Generator) -> AugmentPlan:
    """A random mix of 2-4 augmentations (always at least one timbre and one channel change)."""
    p = AugmentPlan()
    if rng.random() < 0.5:
        p.tempo = float(rng.uniform(0.85, 1.18))
    if rng.random() < 0.5:
        p.pitch_cents = float(rng.uniform(-350, 350))
    if rng.random() < 0.4:
        p.formant = float(rng.uniform(0.88, 1.14))
    if p.tempo == 1.0 and p.pitch_cents == 0.0 and p.formant == 1.0:
        p.pitch_cents = float(rng.choice([-1, 1]) * rng.uniform(100, 300))
    if rng.random() < 0.4:
        p.reverb_rt60_s = float(rng.uniform(0.15, 0.7))
    if rng.random() < 0.5:
        p.noise_snr_db = float(rng.uniform(5, 35))
        p.noise_color = float(rng.choice([0.0, 1.0, 2.0]))
    if rng.random() < 0.3:
        p.band = (float(rng.uniform(60, 350)), float(rng.uniform(3000, 7000)))
    if rng.random() < 0.3:
        p.source_rate = int(rng.choice(SOURCE_RATES))
    p.gain_db = float(rng.uniform(-24, 0))
    return p


def sox_available() -> bool:
    return shutil.which("sox") is not None


def _sox(audio: np.ndarray, effects: list[str]) -> np.ndarray:
    if not sox_available():
        raise AugmentError("sox is not installed (apt-get install sox)")
    cmd = ["sox", "-q", "-t", "f32", "-r", str(SAMPLE_RATE), "-c", "1", "-",
           "-t", "f32", "-r", str(SAMPLE_RATE), "-c", "1", "-"] + effects
    res = subprocess.run(cmd, input=audio.astype(np.float32).tobytes(), capture_output=True,
                         timeout=120)
    if res.returncode != 0:
        raise AugmentError(f"sox {' '.join(effects)} failed: {res.stderr.decode()[:200]}")
    return np.frombuffer(res.stdout, np.float32).copy()


def _speed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play ``factor`` times faster (pitch and formants up by ``factor``, duration / ``factor``)."""
    frac = Fraction(factor).limit_denominator(400)
    return signal.resample_poly(x, frac.denominator, frac.numerator).astype(np.float32)


def add_breaths(audio: np.ndarray, windows, level_db: float, rng: np.random.Generator) -> np.ndarray:
    """Add a soft breath (band-passed noise, rise-fall envelope) in each (start, end) window,
    ``level_db`` relative to the speech RMS, so the teacher's pre-speech inhale is audible."""
    x = audio.astype(np.float32).copy()
    speech = x[np.abs(x) > 0.02 * (np.abs(x).max() + 1e-9)]
    rms = float(np.sqrt(np.mean(speech ** 2))) if len(speech) else 0.0
    if rms == 0.0:
        return x
    sos = signal.butter(2, [400, 4000], btype="band", fs=SAMPLE_RATE, output="sos")
    for s, e in windows:
        a, b = int(s * SAMPLE_RATE), min(int(e * SAMPLE_RATE), len(x))
        if b - a < 160:
            continue
        noise = signal.sosfilt(sos, rng.normal(0, 1, b - a))
        env = np.hanning(b - a) ** 0.7
        noise = noise / (np.sqrt(np.mean(noise ** 2)) + 1e-12) * env
        x[a:b] += (rms * 10 ** (level_db / 20) * noise).astype(np.float32)
    return x


def _coloured_noise(n: int, color: float, rng) -> np.ndarray:
    spec = np.fft.rfft(rng.normal(0, 1, n))
    f = np.arange(len(spec)) + 1.0
    x = np.fft.irfft(spec / f ** (color / 2), n)
    return x / (np.std(x) + 1e-12)


def _room_ir(rt60: float, rng) -> np.ndarray:
    n = int(rt60 * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE
    ir = rng.normal(0, 1, n) * np.exp(-6.9 * t / rt60)
    ir[: int(0.002 * SAMPLE_RATE)] = 0.0
    ir[0] = 1.0 / (0.3 + rt60)     # direct sound: louder than the tail in small rooms
    return ir / np.sqrt((ir ** 2).sum())


def augment(audio: np.ndarray, plan: AugmentPlan, rng: np.random.Generator
            ) -> tuple[np.ndarray, float]:
    """Apply ``plan`` to 16 kHz ``audio``; returns (audio, time_scale)."""
    x = audio.astype(np.float32)
    scale = 1.0
    effects: list[str] = []
    cents = plan.pitch_cents
    if plan.formant != 1.0:
        # speed change by resampling (sox's own "speed" + "pitch" chain crashes), pitch put back
        x = _speed(x, plan.formant)
        cents -= 1200 * math.log2(plan.formant)
        scale /= plan.formant
        plan.applied.append("formant")
    if abs(cents) > 0.5:
        effects += ["pitch", f"{cents:.1f}"]
    if plan.pitch_cents != 0.0:
        plan.applied.append("pitch")
    if plan.tempo != 1.0:
        effects += ["tempo", "-s", f"{plan.tempo:.4f}"]
        scale /= plan.tempo
        plan.applied.append("tempo")
    if effects:
        x = _sox(x, effects)
        want = int(round(len(audio) * scale))
        x = x[:want] if len(x) >= want else np.pad(x, (0, want - len(x)))
    if plan.reverb_rt60_s > 0:
        ir = _room_ir(plan.reverb_rt60_s, rng)
        x = signal.fftconvolve(x, ir)[: len(x)].astype(np.float32)
        plan.applied.append("reverb")
    if plan.source_rate != SAMPLE_RATE:
        g = math.gcd(plan.source_rate, SAMPLE_RATE)
        y = signal.resample_poly(x, plan.source_rate // g, SAMPLE_RATE // g)
        x = signal.resample_poly(y, SAMPLE_RATE // g, plan.source_rate // g)[: len(x)]
        plan.applied.append("source_rate")
    if plan.band is not None:
        lo, hi = plan.band
        sos = signal.butter(4, [lo, min(hi, 0.45 * SAMPLE_RATE)], btype="band", fs=SAMPLE_RATE,
                            output="sos")
        x = signal.sosfilt(sos, x)
        plan.applied.append("band")
    if plan.noise_snr_db is not None:
        p_sig = float(np.mean(x ** 2)) + 1e-12
        noise = _coloured_noise(len(x), plan.noise_color, rng)
        x = x + noise * math.sqrt(p_sig / 10 ** (plan.noise_snr_db / 10))
        plan.applied.append("noise")
    peak = float(np.max(np.abs(x))) + 1e-9
    x = x / peak * 0.9 * 10 ** (plan.gain_db / 20)
    plan.applied.append("level")
    return x.astype(np.float32), scale
