"""A non-learned streaming speech-to-motion generator: the fallback and the bar to beat.

Per 10 ms log-mel frame it measures loudness (relative to a causal peak tracker, gated in
dBFS) and spectral shape: the centroid of 200-1000 Hz (a first-formant proxy: open vs close
vowels), the centroid of 900-2800 Hz (a second-formant proxy: front/spread vs back/rounded)
and the share of energy above 3.5 kHz (fricatives). These give viseme-like activations
(open, rounded, spread, fricative, closure) that become jawOpen / mouthClose / mouthFunnel /
mouthPucker / mouthStretch curves; each video frame averages them with a Gaussian centred
``lead_ms`` ahead of the frame (lips lead the sound), using only audio inside the look-ahead.
Head motion: seeded slow random walks (Ornstein-Uhlenbeck) plus small nods and brow raises
on loudness accents, scaled by ``head_motion_scale``.

A ``engine.motion.streaming.StreamingGenerator`` (that class does the framing). After ``flush`` the next ``push``
starts a new segment (its frame 0 is the first new sample); head motion stays continuous.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.audio import MODEL_RATE
from engine.motion.emotion import emotion_offset
from engine.motion.features import MelSpec, StreamingLogMel, mel_center_hz, mel_filterbank
from engine.motion.streaming import MotionControls, StreamingGenerator
from engine.motion.space import INDEX, VECTOR_DIM



@dataclass(frozen=True)
class BaselineParams:
    lead_ms: float = 10.0            # frame k shows the sound at instant k/fps + this (lips lead a little)
    smooth_sigma_ms: float = 25.0    # Gaussian averaging of 10 ms descriptors per video frame
    gate_dbfs: float = -50.0         # frames below this are silence
    gate_soft_db: float = 8.0        # soft knee above the gate
    dynamic_range_db: float = 30.0   # activity spans [peak - range, peak]
    peak_decay_db_per_s: float = 4.0
    jaw_closed: float = 0.12         # jawOpen of a close vowel at full activity
    jaw_open: float = 0.55           # jawOpen of an open vowel at full activity
    f1_close_hz: float = 350.0
    f1_open_hz: float = 750.0
    f2_back_hz: float = 1100.0
    f2_front_hz: float = 1900.0
    funnel_gain: float = 0.45
    pucker_gain: float = 0.55
    stretch_gain: float = 0.3
    closure_gain: float = 0.1        # (tuned on train-split teacher curves, like the other gains)
    closure_context_ms: float = 150.0
    yaw_sigma_rad: float = 0.05
    pitch_sigma_rad: float = 0.025
    roll_sigma_rad: float = 0.02
    head_tau_s: float = 1.5
    nod_gain_rad: float = 0.06
    brow_gain: float = 0.3
    accent_tau_s: float = 0.6
    listening_head_factor: float = 0.5


class BaselineGenerator(StreamingGenerator):
    """Loudness + spectral shape -> visemes -> ARKit mouth curves, plus gentle head motion."""

    def __init__(self, fps: int = 25, sample_rate: int = MODEL_RATE, lookahead_ms: float = 80.0,
                 seed: int = 0, controls: MotionControls | None = None,
                 params: BaselineParams = BaselineParams()):
        if sample_rate != MODEL_RATE:
            raise ValueError(f"the baseline consumes 16 kHz audio, got sample_rate={sample_rate}")
        super().__init__(fps, sample_rate, int(round(lookahead_ms * sample_rate / 1000.0)), seed, controls)
        self.spec = MelSpec(sample_rate=sample_rate)
        self.params = params
        self._mel = StreamingLogMel(self.spec)
        self._prepare_bands()
        self.reset()

    # --- StreamingGenerator ---------------------------------------------------------
    def _reset_state(self) -> None:
        self._rng = np.random.default_rng(self._seed)
        self._peak_db = self.params.gate_dbfs + self.params.dynamic_range_db
        self._head = np.zeros(3)            # OU state (yaw, pitch, roll), unit variance
        self._accent_slow = 0.0
        self._nod = 0.0

    def _take(self, audio: np.ndarray) -> None:
        mel = self._mel.push(audio)
        if len(mel):
            self._desc = np.concatenate([self._desc, self._describe(mel)])

    def _emit(self, k_from: int, k_to: int) -> np.ndarray:
        return np.stack([self._frame(k) for k in range(k_from, k_to)]).astype(np.float32)

    def _start_segment(self) -> None:
        self._mel.reset()
        self._desc = np.zeros((0, 6), np.float64)   # activity, f1, f2, fricative, voiced, level
        self._desc_base = 0                          # mel index of _desc[0]

    def _prepare_bands(self) -> None:
        c = mel_center_hz(self.spec)
        self._band_f1 = (c >= 200) & (c < 1000)
        self._band_f2 = (c >= 900) & (c < 2800)
        self._band_high = c >= 3500
        self._c = c
        # dBFS reference: the mel power sum of unit-variance white noise
        w = np.hanning(self.spec.win_length + 1)[:-1]
        self._ref_db = 10 * np.log10((w ** 2).sum() * mel_filterbank(self.spec).sum())
        self._decay = self.params.peak_decay_db_per_s * self.spec.hop / self.sample_rate

    def _describe(self, mel: np.ndarray) -> np.ndarray:
        p = self.params
        power = np.exp(mel.astype(np.float64))
        total = power.sum(1) + 1e-12
        level = 10 * np.log10(total) - self._ref_db
        out = np.zeros((len(mel), 6))
        for t in range(len(mel)):
            self._peak_db = max(level[t], self._peak_db - self._decay, p.gate_dbfs + 10.0)
            act = np.clip((level[t] - (self._peak_db - p.dynamic_range_db)) / p.dynamic_range_db, 0, 1)
            gate = np.clip((level[t] - p.gate_dbfs) / p.gate_soft_db, 0, 1)
            out[t, 0] = act * gate
        f1p, f2p = power[:, self._band_f1], power[:, self._band_f2]
        out[:, 1] = (f1p * self._c[self._band_f1]).sum(1) / (f1p.sum(1) + 1e-12)
        out[:, 2] = (f2p * self._c[self._band_f2]).sum(1) / (f2p.sum(1) + 1e-12)
        out[:, 3] = power[:, self._band_high].sum(1) / total
        out[:, 4] = f1p.sum(1) / total
        out[:, 5] = level
        return out

    def _weights(self, k: int) -> tuple[int, np.ndarray]:
        """Mel index of the first weight and Gaussian weights for video frame k."""
        p, hop = self.params, self.spec.hop
        centre = k * self.samples_per_frame + p.lead_ms * self.sample_rate / 1000   # frame k = instant k/fps
        last = ((k + 1) * self.samples_per_frame + self.lookahead_samples) // hop - 1
        sigma = p.smooth_sigma_ms * self.sample_rate / 1000
        first = max(0, int((centre - 3 * sigma) // hop))
        j = np.arange(first, last + 1)
        t = (j + 1) * hop - self.spec.win_length / 2          # centre of mel frame j
        w = np.exp(-0.5 * ((t - centre) / sigma) ** 2)
        return first, w / max(w.sum(), 1e-12)

    def _frame(self, k: int) -> np.ndarray:
        p, c = self.params, self._controls
        first, w = self._weights(k)
        d = self._desc[first - self._desc_base: first - self._desc_base + len(w)]
        act_t, f1_t, f2_t, fric_t, voiced_t = d[:, 0], d[:, 1], d[:, 2], d[:, 3], d[:, 4]
        act = float(w @ act_t)
        aw = w * act_t
        aws = aw.sum() + 1e-9
        f1, f2 = float(aw @ f1_t) / aws, float(aw @ f2_t) / aws
        fric, voiced = float(aw @ fric_t) / aws, float(aw @ voiced_t) / aws
        openness = np.clip((f1 - p.f1_close_hz) / (p.f1_open_hz - p.f1_close_hz), 0, 1)
        rounded = np.clip((p.f2_front_hz - f2) / (p.f2_front_hz - p.f2_back_hz), 0, 1)
        vowel = np.clip(voiced * (1 - fric) * 1.5, 0, 1)
        jaw = act * (p.jaw_closed + (p.jaw_open - p.jaw_closed) * openness) * (1 - 0.5 * fric)
        # closure: a dip of activity inside speech (bilabial stops, pauses between words)
        ctx_lo = max(0, first - self._desc_base - int(p.closure_context_ms / 10))
        ctx = self._desc[ctx_lo: first - self._desc_base + len(w), 0]
        context = float(ctx.max()) if len(ctx) else 0.0
        closure = np.clip(context - 1.5 * act, 0, 1) * p.closure_gain

        v = np.zeros(VECTOR_DIM, np.float64)
        speaking = c.state == "speaking"
        if speaking:
            v[INDEX["jawOpen"]] = jaw
            v[INDEX["mouthClose"]] = min(closure, 0.6) * min(1.0, jaw * 4 + 0.2)
            v[INDEX["mouthFunnel"]] = act * vowel * rounded * p.funnel_gain
            v[INDEX["mouthPucker"]] = act * vowel * rounded * (1 - openness) * p.pucker_gain
            spread = act * ((1 - rounded) * vowel * 0.6 + fric) * p.stretch_gain
            v[INDEX["mouthStretchLeft"]] = v[INDEX["mouthStretchRight"]] = spread
            v[INDEX["mouthLowerDownLeft"]] = v[INDEX["mouthLowerDownRight"]] = 0.3 * jaw
            v[INDEX["mouthUpperUpLeft"]] = v[INDEX["mouthUpperUpRight"]] = 0.15 * jaw * (1 - rounded)
            v[INDEX["mouthPressLeft"]] = v[INDEX["mouthPressRight"]] = 0.5 * v[INDEX["mouthClose"]]
        self._head_step(act if speaking else 0.0, v)
        v += emotion_offset(c.emotion, c.emotion_intensity)
        v[:52] = np.clip(v[:52], 0.0, 1.0)
        return v.astype(np.float32)

    def _head_step(self, act: float, v: np.ndarray) -> None:
        p, c = self.params, self._controls
        dt = 1.0 / self.fps
        decay = np.exp(-dt / p.head_tau_s)
        self._head = decay * self._head + np.sqrt(1 - decay ** 2) * self._rng.standard_normal(3)
        a_dec = np.exp(-dt / p.accent_tau_s)
        self._accent_slow = a_dec * self._accent_slow + (1 - a_dec) * act
        accent = max(0.0, act - self._accent_slow - 0.1)
        self._nod = 0.6 * self._nod + 0.4 * accent
        scale = c.head_motion_scale * (1.0 if c.state == "speaking" else p.listening_head_factor)
        liveliness = 0.5 + 0.5 * min(1.0, 2 * self._accent_slow)
        yaw = p.yaw_sigma_rad * self._head[0] * liveliness
        pitch = p.pitch_sigma_rad * self._head[1] + p.nod_gain_rad * self._nod
        roll = p.roll_sigma_rad * self._head[2] * liveliness
        v[52:55] = scale * np.array([yaw, pitch, roll])
        v[55:58] = scale * np.array([0.3 * yaw, 0.2 * pitch, 0.0])
        brow = p.brow_gain * self._nod * c.head_motion_scale
        v[INDEX["browInnerUp"]] += brow
        v[INDEX["browOuterUpLeft"]] += 0.6 * brow
        v[INDEX["browOuterUpRight"]] += 0.6 * brow

    def _forget(self) -> None:
        """Drop descriptors no future frame can need."""
        if self._next == 0:
            return
        first, _ = self._weights(self._next)
        keep_from = max(0, first - int(self.params.closure_context_ms / 10) - 1)
        drop = keep_from - self._desc_base
        if drop > 0:
            self._desc = self._desc[drop:]
            self._desc_base = keep_from
