"""Training targets from real talking-face video (audio + the speaker's own mouth).

For each clip: the audio (16 kHz) is aligned into phones (pocketsphinx recognition + alignment),
the teacher turns the phones into full ARKit motion (rounding, presses, head, brows), and then
the teacher's mouth opening is replaced by the real one: the inner-lip gap 13/14 over the face
height 10/152, tracked in every video frame on the container timeline
(``engine.training.lipsync_eval.mouth_curve``), sampled at each motion frame's instant k/25, minus
the speaker's own rest (the 10th percentile of the gap in pauses, so a speaker who rests with
lips apart still teaches closed pauses), in units of ``OPENING_PER_UNIT``. jawOpen is set so
that ``metrics.mouth_opening(motion)`` (jaw minus seal/press plus lip raise/funnel) equals that target.
Before that, the clip's video is re-timed against its audio exactly as ``facecast eval lipsync``
does (``lipsync_eval.clip_sync``: the teacher's best lag moved to the natural lead), so a
clip whose video track is offset teaches the model the natural lead, not its offset.
Frames where the face was not found keep the teacher's mouth and are marked in ``mouth_valid``
(left out of the jaw/mouth loss).

The output is a corpus directory in the usual layout (docs/ARCHITECTURE.md), split "train",
voice ``real:<speaker>``; ``facecast train audio2motion --init ... --extra-corpus DIR`` fine-tunes
on it. Media stay outside the project; only the commands that rebuild the corpus are committed.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from engine.audio import MODEL_RATE
from engine.audio.pcm import load_audio
from engine.training.metrics import with_opening

FPS = 25
# face heights of inner-lip gap per unit of mouth opening: the motion space's convention, chosen
# as the default avatar's visible gap at jawOpen 1 (0.118 face heights, BENCHMARKS.md)
OPENING_PER_UNIT = 0.12
REST_PERCENTILE = 10
MIN_TRACKED = 0.8            # a clip needs the face in this share of its frames


def pause_frames(phones, starts, ends, n: int, fps: int = FPS) -> np.ndarray:
    """Frames inside aligned silences longer than 0.15 s."""
    mask = np.zeros(n, bool)
    for p, s, e in zip(phones, starts, ends):
        if p == "sil" and e - s > 0.15:
            mask[int(np.ceil(s * fps)): int(np.floor(e * fps)) + 1] = True
    return mask[:n]


def real_clip(video: str | Path, speaker: str) -> dict:
    """Audio, phones and motion targets of one real clip (see the module docstring)."""
    from engine.training.align import align
    from engine.training.lipsync_eval import GRID_HZ, clip_sync, motion_on_grid, mouth_curve, on_grid, probe
    from engine.training.metrics import mouth_opening
    from engine.training.teacher import ArticulationStyle, teacher_motion

    _, audio_start = probe(video)
    audio, _ = load_audio(video, MODEL_RATE)
    times, gap = mouth_curve(video, audio_start)
    al = align(audio)
    style = ArticulationStyle.for_speaker(f"real:{speaker}")
    motion = teacher_motion(audio, MODEL_RATE, al.phones, al.starts, al.ends, FPS, style, seed=0)
    grid = np.arange(int(len(motion) * GRID_HZ / FPS)) / GRID_HZ
    shift_ms = clip_sync(on_grid(times, gap, grid), motion_on_grid(mouth_opening(motion), grid, FPS))
    real = on_grid(times - shift_ms / 1000, gap, np.arange(len(motion)) / FPS)
    tracked = np.isfinite(real)
    if tracked.mean() < MIN_TRACKED:
        raise ValueError(f"{video}: the face was tracked in only {100 * tracked.mean():.0f}% of the frames")
    pauses = pause_frames(al.phones, al.starts, al.ends, len(motion)) & tracked
    rest = float(np.percentile(real[pauses] if pauses.sum() >= 10 else real[tracked], REST_PERCENTILE))
    target = np.maximum(real - rest, 0.0) / OPENING_PER_UNIT
    return {"audio": audio, "phones": al.phones, "starts": al.starts, "ends": al.ends, "text": al.text,
            "motion": with_opening(motion, target).astype(np.float32), "mouth_valid": tracked.astype(np.float32),
            "rest_fh": rest, "sync_shift_ms": shift_ms, "opening_p95_fh": float(np.nanpercentile(real, 95))}


def build_real_corpus(clips: list[tuple[str, Path]], out: str | Path, progress: bool = True) -> list[dict]:
    """Write a training corpus from (speaker, clip) pairs; returns its manifest rows."""
    from tqdm import tqdm

    out = Path(out)
    (out / "utts").mkdir(parents=True, exist_ok=True)
    rows, skipped = [], []
    for speaker, video in tqdm(clips, desc="real clips", disable=not progress):
        try:
            c = real_clip(video, speaker)
        except (ValueError, OSError) as e:   # no face, unreadable, no speech: named and skipped
            skipped.append(f"{video}: {e}")
            continue
        uid = f"real_{speaker}_{Path(video).stem}".replace("/", "_")
        path = Path("utts") / f"{uid}.npz"
        np.savez(out / path, audio=c["audio"].astype(np.float32), sample_rate=np.int32(MODEL_RATE),
                 fps=np.int32(FPS), motion=c["motion"], mouth_valid=c["mouth_valid"], phones=np.array(c["phones"]),
                 phone_starts=np.asarray(c["starts"], np.float64), phone_ends=np.asarray(c["ends"], np.float64),
                 text=np.array(c["text"]))
        rows.append({"id": uid, "voice": f"real:{speaker}", "engine": "real", "split": "train", "path": str(path),
                     "duration_s": round(len(c["audio"]) / MODEL_RATE, 3), "augmented": False, "state": "speaking",
                     "source": str(video), "rest_fh": round(c["rest_fh"], 4), "sync_shift_ms": c["sync_shift_ms"],
                     "opening_p95_fh": round(c["opening_p95_fh"], 4), "n_frames": int(len(c["motion"]))})
    (out / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    for s in skipped:
        print(f"skipped {s}")
    return rows
