"""Helpers for pipeline/WebRTC/offline tests: speech clips, mouth pixel change, envelope lag.

Not a test module (no ``test_`` prefix). Uses the real renderer and espeak-ng.
"""
from __future__ import annotations

import numpy as np

from engine.audio.resample import resample
from engine.motion.space import MotionFrame

MOUTH_SHAPES = ("jawOpen", "mouthClose", "mouthFunnel", "mouthPucker", "mouthStretchLeft",
                "mouthStretchRight", "mouthLowerDownLeft", "mouthLowerDownRight",
                "mouthUpperUpLeft", "mouthUpperUpRight", "mouthRollLower", "mouthRollUpper",
                "mouthPressLeft", "mouthPressRight", "mouthShrugLower", "mouthShrugUpper")


def speech_bursts(config, texts=("Hello there.", "How are you today?"), gap_s=0.8, lead_s=0.6,
                  rate=48000) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """espeak-ng utterances separated by silence, at ``rate``; returns (audio, [(start_s, end_s)])."""
    from engine.audio.tts import Speaker
    speaker = Speaker(config.tts)
    parts, spans, t = [np.zeros(int(lead_s * 16000), np.float32)], [], lead_s
    for text in texts:
        x = speaker.synthesize(text)
        x = 0.9 * x / (np.abs(x).max() + 1e-9)
        voiced = np.nonzero(np.abs(x) > 0.02)[0]
        spans.append((t + voiced[0] / 16000, t + voiced[-1] / 16000))
        parts += [x, np.zeros(int(gap_s * 16000), np.float32)]
        t += (len(x) + int(gap_s * 16000)) / 16000
    audio = np.concatenate(parts).astype(np.float32)
    return (audio if rate == 16000 else resample(audio, 16000, rate)), spans


def mouth_weight(motion: MotionFrame) -> float:
    return float(max(motion[n] for n in MOUTH_SHAPES))


def mouth_roi(renderer) -> tuple[slice, slice]:
    """The pixels that change when the jaw opens (found by rendering, so any renderer works)."""
    a = renderer.render(MotionFrame.neutral()).astype(np.int16)
    b = renderer.render(MotionFrame.from_weights({"jawOpen": 0.8})).astype(np.int16)
    ys, xs = np.nonzero(np.abs(a - b).max(axis=2) > 20)
    assert len(ys) > 50, "opening the jaw changed (almost) no pixels"
    return slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1)


def mouth_pixel_change(images, roi, reference) -> np.ndarray:
    """Mean absolute pixel difference of each image's mouth region from a closed-mouth reference."""
    ref = reference[roi].astype(np.float32)
    return np.array([np.abs(im[roi].astype(np.float32) - ref).mean() for im in images])


def envelope(audio: np.ndarray, rate: int, hop_s: float = 0.01) -> np.ndarray:
    n = int(rate * hop_s)
    frames = audio[: len(audio) // n * n].reshape(-1, n).astype(np.float64)
    return np.sqrt((frames ** 2).mean(axis=1))


def best_lag(a_times, a, b_times, b, max_lag_s=0.3, step_s=0.005) -> tuple[float, float]:
    """(lag, correlation): signal b relative to a, b(t) ≈ a(t - lag), maximising the correlation."""
    t0, t1 = max(a_times[0], b_times[0]) + max_lag_s, min(a_times[-1], b_times[-1]) - max_lag_s
    grid = np.arange(t0, t1, step_s)
    aa = np.interp(grid, a_times, a)
    aa = (aa - aa.mean()) / (aa.std() + 1e-12)
    lags = np.arange(-max_lag_s, max_lag_s + 1e-9, step_s)
    scores = []
    for lag in lags:
        bb = np.interp(grid + lag, b_times, b)
        bb = (bb - bb.mean()) / (bb.std() + 1e-12)
        scores.append(float((aa * bb).mean()))
    return float(lags[int(np.argmax(scores))]), float(max(scores))


def mouth_opening(images, static: bool = False) -> np.ndarray:
    """How far the lips are apart in each image, measured by the real face mesh (mediapipe):
    the distance between the inner-lip midpoints (landmarks 13, 14) over the distance between
    the outer eye corners (33, 263), which no expression moves. Geometry, not pixels, so head
    sway, lighting and codec noise do not enter it. ``static``: images are unrelated stills."""
    from engine.tracking.tracker import FaceTracker
    out = np.full(len(images), np.nan)
    with FaceTracker(static_image_mode=static) as tracker:
        for i, im in enumerate(images):
            lm = tracker.track(im)
            if lm is not None:
                out[i] = np.linalg.norm(lm[14, :2] - lm[13, :2]) / np.linalg.norm(lm[263, :2] - lm[33, :2])
    assert not np.isnan(out).any(), f"no face found in {np.isnan(out).sum()} of {len(images)} images"
    return out
