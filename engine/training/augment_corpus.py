"""Augmented copies of a corpus whose targets are not re-synthesised (real talking video, aligned
real speech): the audio gets a voice and channel change (``augment.random_plan``: tempo, pitch,
formants, reverb, noise, band, source rate, level), the targets keep their motion, time-warped by
the same factor when the tempo or formant shift changed the duration.

Why: the model fits the few real training speakers' own voices (mean r 0.75 on their clips, 0.45 on
held-out speakers, BENCHMARKS.md); the same mouths under other voices and rooms teach it the
mouth, not the voice. Output: a corpus directory (docs/ARCHITECTURE.md layout) with the source
rows and ``copies`` augmented rows per utterance (``augmented: true``, ``source``, ``augment``).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.audio import MODEL_RATE

FPS = 25


def warp(x: np.ndarray, scale: float, n_out: int, fps: int = FPS) -> np.ndarray:
    """(T, ...) per-frame values of the source at the instants (k / fps) / scale (linear, held at the end)."""
    src_t = np.arange(len(x)) / fps
    t = np.minimum(np.arange(n_out) / fps / scale, src_t[-1])
    flat = x.reshape(len(x), -1).astype(np.float64)
    out = np.stack([np.interp(t, src_t, flat[:, j]) for j in range(flat.shape[1])], 1)
    return out.reshape((n_out,) + x.shape[1:]).astype(x.dtype)


def augment_utterance(z, rng: np.random.Generator) -> tuple[dict, dict]:
    """(new npz fields, plan dict) for one utterance's npz ``z``."""
    from engine.training import augment as aug

    plan = aug.random_plan(rng)
    audio, scale = aug.augment(z["audio"].astype(np.float32), plan, rng)
    n = -(-len(audio) // (MODEL_RATE // FPS))
    out = {k: z[k] for k in z.files}
    out["audio"] = audio
    out["motion"] = warp(z["motion"].astype(np.float32), scale, n)
    if "mouth_valid" in z.files:      # a frame is valid only where the source frame it reads was
        out["mouth_valid"] = (warp(z["mouth_valid"].astype(np.float32), scale, n) > 0.999).astype(np.float32)
    out["phone_starts"] = np.asarray(z["phone_starts"], np.float64) * scale
    out["phone_ends"] = np.asarray(z["phone_ends"], np.float64) * scale
    return out, {**plan.as_dict(), "applied": plan.applied, "time_scale": round(scale, 4)}


def augment_corpus(src: str | Path, out: str | Path, copies: int, seed: int = 0, progress: bool = True) -> list[dict]:
    """Write ``out``: every row of ``src`` (its npz copied) plus ``copies`` augmented rows each."""
    from tqdm import tqdm

    from engine.training.dataset import read_manifest

    if copies < 1:
        raise ValueError(f"copies must be >= 1 (got {copies})")
    src, out = Path(src), Path(out)
    if src.resolve() == out.resolve():
        raise ValueError("--out must differ from the source corpus")
    (out / "utts").mkdir(parents=True, exist_ok=True)
    rows = []
    rng = np.random.default_rng(seed)
    for row in tqdm(read_manifest(src), desc="augment", disable=not progress):
        if row.get("augmented"):
            continue
        z = np.load(src / row["path"])
        np.savez(out / "utts" / f"{row['id']}.npz", **{k: z[k] for k in z.files})
        rows.append({**row, "path": f"utts/{row['id']}.npz"})
        for i in range(copies):
            fields, plan = augment_utterance(z, rng)
            uid = f"{row['id']}_aug{i}"
            np.savez(out / "utts" / f"{uid}.npz", **fields)
            rows.append({**row, "id": uid, "path": f"utts/{uid}.npz", "augmented": True, "source": row["id"],
                         "augment": plan, "duration_s": round(len(fields["audio"]) / MODEL_RATE, 3),
                         "n_frames": int(len(fields["motion"]))})
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows
