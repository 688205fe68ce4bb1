"""A tiny synthetic corpus in the real corpus format, for smoke tests of train/export/eval.

Audio: a harmonic "voice" whose loudness follows random syllables; motion: jawOpen follows the
syllable envelope (closed in the gaps, with a small lead), mouthFunnel follows a slow random
rounding, head pose is a smooth random walk. Nothing here is meant to be realistic speech.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.audio import MODEL_RATE
from engine.motion.space import INDEX, VECTOR_DIM

SR, FPS, SPF = MODEL_RATE, 25, 640


def synth_utterance(seconds: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    n = int(seconds * SR)
    t = np.arange(n) / SR
    f0 = rng.uniform(90, 220) * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))
    phase = 2 * np.pi * np.cumsum(f0) / SR
    voice = sum(np.sin(k * phase) / k for k in range(1, 25))
    n_frames = -(-n // SPF)
    env_f = np.zeros(n_frames)
    k = int(rng.integers(3, 8))
    while k < n_frames - 6:
        length = int(rng.integers(3, 7))
        env_f[k:k + length] = rng.uniform(0.4, 1.0)
        k += length + int(rng.integers(1, 5))
    kernel = np.hanning(5) / np.hanning(5).sum()
    env_f = np.convolve(env_f, kernel, mode="same")
    env = np.interp(t, (np.arange(n_frames) + 0.5) / FPS, env_f)
    audio = (0.2 * voice * env + 0.002 * rng.standard_normal(n)).astype(np.float32)
    motion = np.zeros((n_frames, VECTOR_DIM), np.float32)
    motion[:, INDEX["jawOpen"]] = 0.5 * np.concatenate([env_f[1:], env_f[-1:]])      # 40 ms lead
    motion[:, INDEX["mouthFunnel"]] = 0.2 * (0.5 + 0.5 * np.sin(np.arange(n_frames) / 7 + rng.uniform(0, 6)))
    motion[:, INDEX["mouthFunnel"]] *= env_f > 0.1
    walk = np.cumsum(rng.normal(0, 0.004, (n_frames, 3)), 0)
    motion[:, 52:55] = walk - walk.mean(0)
    return audio, motion


def write_corpus(out: str | Path, n_train: int = 6, n_val: int = 1, n_test: int = 2, seconds: float = 3.0,
                 seed: int = 0) -> Path:
    out = Path(out)
    (out / "utts").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    splits = ["train"] * n_train + ["val"] * n_val + ["test"] * n_test
    for i, split in enumerate(splits):
        audio, motion = synth_utterance(seconds, rng)
        uid = f"{i:04d}_synthetic"
        np.savez(out / "utts" / f"{uid}.npz", audio=audio, sample_rate=np.int32(SR), fps=np.int32(FPS),
                 motion=motion, phones=np.array(["sil"]), phone_starts=np.array([0.0]),
                 phone_ends=np.array([seconds]))
        rows.append({"id": uid, "voice": f"synthetic:{i % 3}", "engine": "synthetic", "split": split,
                     "path": f"utts/{uid}.npz", "duration_s": seconds, "augmented": False})
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out
