"""Life when the avatar is not speaking: blinks, breathing, small head motion,
listening attention and nods, a thinking glance. Never a frozen frame.

``IdleMotion.vector(k, state)`` returns the 58-float motion for video frame
``k``; it is a pure function of (seed, frame index, state history), so the
same session replays identically. States: idle, listening, thinking, speaking
(speaking keeps blinks and breathing; head motion then comes mostly from the
speech generator). State changes are eased, never jumped.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.motion.space import INDEX, NUM_BLENDSHAPES, VECTOR_DIM

YAW, PITCH, ROLL = NUM_BLENDSHAPES, NUM_BLENDSHAPES + 1, NUM_BLENDSHAPES + 2
TX, TY, TZ = NUM_BLENDSHAPES + 3, NUM_BLENDSHAPES + 4, NUM_BLENDSHAPES + 5


@dataclass(frozen=True)
class IdleStyle:
    """Amplitudes (radians / inter-ocular units / blendshape weights) and timings."""
    blink_close_s: float = 0.07
    blink_open_s: float = 0.13
    breath_period_s: float = 4.2
    breath_pitch: float = 0.012
    breath_ty: float = 0.012
    sway_yaw: float = 0.045
    sway_pitch: float = 0.025
    sway_roll: float = 0.02
    listen_roll: float = 0.06        # attentive head tilt
    listen_brow: float = 0.18        # browInnerUp while listening
    nod_pitch: float = 0.06          # listening nod amplitude
    nod_every_s: float = 2.5         # mean interval between nods
    nod_duration_s: float = 0.7
    think_gaze: float = 0.35         # eyeLookUp/Out while thinking
    speaking_sway_factor: float = 0.4
    ease_s: float = 0.35             # time constant of state transitions


class IdleMotion:
    def __init__(self, fps: int, seed: int = 0, blink_rate_per_min: float = 17.0,
                 head_motion_scale: float = 1.0, style: IdleStyle | None = None) -> None:
        self.fps = fps
        self.style = style or IdleStyle()
        self.blink_rate_per_min = blink_rate_per_min
        self.head_motion_scale = head_motion_scale
        rng = np.random.default_rng(seed)
        # Head sway: a few incommensurate slow sinusoids per axis.
        self._sway_f = rng.uniform(0.05, 0.35, size=(3, 3))
        self._sway_phase = rng.uniform(0, 2 * np.pi, size=(3, 3))
        self._rng = np.random.default_rng(seed + 1)
        self._next_blink = self._draw_blink_gap()
        self._blink_start = -10**9
        self._next_nod = None
        self._nod_start = -10**9
        self._mix = {"listening": 0.0, "thinking": 0.0, "speaking": 0.0}
        self._k = -1

    def _draw_blink_gap(self) -> int:
        if self.blink_rate_per_min <= 0:
            return 10**12
        mean_s = 60.0 / self.blink_rate_per_min
        gap = max(0.6, self._rng.gamma(4.0, mean_s / 4.0))  # more regular than Poisson
        return int(gap * self.fps)

    def _blink(self, k: int) -> float:
        s = self.style
        if self._next_blink <= 0:
            self._blink_start = k
            self._next_blink = self._draw_blink_gap()
        self._next_blink -= 1
        t = (k - self._blink_start) / self.fps
        if t < s.blink_close_s:
            return t / s.blink_close_s
        if t < s.blink_close_s + s.blink_open_s:
            return 1.0 - (t - s.blink_close_s) / s.blink_open_s
        return 0.0

    def _nod(self, k: int, listening: bool) -> float:
        s = self.style
        if listening and self._next_nod is None:
            self._next_nod = k + int(self._rng.uniform(0.4, 1.0) * s.nod_every_s * self.fps)
        if not listening:
            self._next_nod = None
        elif k >= self._next_nod:
            self._nod_start = k
            self._next_nod = k + int(self._rng.uniform(0.6, 1.4) * s.nod_every_s * self.fps)
        t = (k - self._nod_start) / self.fps
        if 0 <= t < s.nod_duration_s:
            return float(np.sin(np.pi * t / s.nod_duration_s) ** 2)
        return 0.0

    def vector(self, k: int, state: str = "idle") -> np.ndarray:
        """Motion vector (58,) for frame ``k``; call with increasing ``k``."""
        if state not in ("idle", "listening", "thinking", "speaking"):
            raise ValueError(f"unknown state {state!r}")
        s = self.style
        steps = max(1, k - self._k)
        self._k = k
        alpha = 1.0 - np.exp(-steps / (s.ease_s * self.fps))
        for name in self._mix:
            target = 1.0 if state == name else 0.0
            self._mix[name] += alpha * (target - self._mix[name])
        listen, think, speak = self._mix["listening"], self._mix["thinking"], self._mix["speaking"]

        v = np.zeros(VECTOR_DIM, np.float32)
        t = k / self.fps
        blink = self._blink(k)
        v[INDEX["eyeBlinkLeft"]] = v[INDEX["eyeBlinkRight"]] = blink
        breath = np.sin(2 * np.pi * t / s.breath_period_s)
        sway = (np.sin(2 * np.pi * self._sway_f * t + self._sway_phase).sum(axis=1) / 3.0)
        hs = self.head_motion_scale * (1.0 - (1.0 - s.speaking_sway_factor) * speak)
        v[YAW] = hs * s.sway_yaw * sway[0]
        v[PITCH] = hs * s.sway_pitch * sway[1] + s.breath_pitch * breath
        v[ROLL] = hs * s.sway_roll * sway[2]
        v[TY] = s.breath_ty * breath
        # Listening: attentive tilt, raised inner brows, eyes on the viewer, nods.
        nod = self._nod(k, state == "listening")
        v[ROLL] += listen * s.listen_roll * self.head_motion_scale
        v[PITCH] += s.nod_pitch * nod * self.head_motion_scale
        v[INDEX["browInnerUp"]] += listen * s.listen_brow
        v[YAW] *= 1.0 - 0.6 * listen
        # Thinking: glance up and aside.
        for name in ("eyeLookUpLeft", "eyeLookUpRight", "eyeLookOutLeft", "eyeLookInRight"):
            v[INDEX[name]] += think * s.think_gaze
        v[INDEX["browInnerUp"]] += think * 0.1
        return v
