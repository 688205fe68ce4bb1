"""A speech corpus with exact phone timings and teacher motion.

Writes ``OUT/manifest.jsonl`` (one JSON per utterance, docs/ARCHITECTURE.md) and
``OUT/utts/<id>.npz``. ``hours`` counts all audio, augmented copies included. Work runs in
``jobs`` processes with a progress bar; the manifest grows as utterances finish.
"""
from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal

from engine.audio import MODEL_RATE
from engine.training import augment as aug
from engine.training.text import generate_sentences
from engine.audio.tts import ENGINES, FestivalEngine, Synthesis, TTSError, Voice
from engine.training.voices import VoicePicker, is_test_voice
from engine.training.teacher import ArticulationStyle, inhale_windows, n_frames, teacher_motion

SAMPLE_RATE = MODEL_RATE
FPS = 25
VAL_FRACTION = 0.05
LEAD_SILENCE_S = (0.1, 0.6)       # silence kept/added before and after the speech
BREATH_PROBABILITY = 0.8          # share of utterances with an audible breath where the teacher inhales
BREATH_LEVEL_DB = (-38.0, -22.0)  # breath level relative to the speech RMS
CHUNK = 8                         # utterances per worker task (festival starts once per task)
FIRST_GUESS_S_PER_UTT = 4.2
TEACHER_VERSION = 5


@dataclass
class UttSpec:
    index: int
    text: str
    voice: Voice
    split: str
    seed: int
    aug_copies: int
    out_dir: str


def synthesize(out: str | Path, hours: float, jobs: int = 2, seed: int = 0, aug_copies: int = 1,
               engines: tuple[str, ...] = ("espeak", "flite", "festival"), test_engines: frozenset[str] = frozenset(),
               n_sentences: int = 4000, progress: bool = True) -> dict:
    """Make the corpus; returns summary statistics (also written to ``out/corpus.json``)."""
    from tqdm import tqdm

    out = Path(out)
    (out / "utts").mkdir(parents=True, exist_ok=True)
    sentences = generate_sentences(n_sentences, seed)
    (out / "sentences.txt").write_text("\n".join(sentences) + "\n")
    picker = VoicePicker(engines)
    rng = np.random.default_rng(seed)
    manifest = out / "manifest.jsonl"
    manifest.write_text("")
    target_s = hours * 3600.0
    total_s, n_done, failures, next_index = 0.0, 0, 0, 0
    per_utt = FIRST_GUESS_S_PER_UTT * (1 + aug_copies)
    t0 = time.time()
    bar = tqdm(total=int(target_s), unit="s audio", desc="synth", disable=not progress)
    with _pool(jobs) as pool:
        for wave in range(6):
            remaining = target_s - total_s
            if remaining <= 0.02 * target_s:
                break
            # the first wave aims short (the length per utterance is a guess), later ones fill up
            share = 0.8 if wave == 0 else 1.02
            n_new = max(1, int(math.ceil(remaining * share / per_utt)))
            specs = _plan(n_new, next_index, sentences, picker, rng, aug_copies, test_engines, str(out))
            next_index += n_new
            tasks = _chunks(specs)
            results = pool.imap_unordered(_work, tasks) if pool else map(_work, tasks)
            wave_s, wave_n = 0.0, 0
            with manifest.open("a") as mf:
                for rows, failed in results:
                    failures += failed
                    for row in rows:
                        mf.write(json.dumps(row) + "\n")
                        wave_s += row["duration_s"]
                        total_s += row["duration_s"]
                        bar.update(min(row["duration_s"], max(bar.total - bar.n, 0)))
                    wave_n += sum(1 for r in rows if not r["augmented"])
                    mf.flush()
            if wave_n:
                per_utt = wave_s / wave_n
            n_done += wave_n
    bar.close()
    rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    rows.sort(key=lambda r: r["id"])
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    stats = {
        "out": str(out), "utterances": len(rows), "hours": round(total_s / 3600, 3),
        "clean_utterances": sum(not r["augmented"] for r in rows), "failures": failures,
        "voices": len({r["voice"] for r in rows}),
        "split_hours": {s: round(sum(r["duration_s"] for r in rows if r["split"] == s) / 3600, 3)
                        for s in ("train", "val", "test")},
        "engines": sorted({r["engine"] for r in rows}), "seed": seed, "teacher_version": TEACHER_VERSION,
        "wall_s": round(time.time() - t0, 1), "jobs": jobs,
    }
    (out / "corpus.json").write_text(json.dumps(stats, indent=2) + "\n")
    return stats


def _plan(n, first_index, sentences, picker, rng, aug_copies, test_engines, out_dir) -> list[UttSpec]:
    specs = []
    for i in range(first_index, first_index + n):
        voice = picker.pick(rng)
        if is_test_voice(voice.id, test_engines):
            split = "test"
        else:
            split = "val" if rng.random() < VAL_FRACTION else "train"
        specs.append(UttSpec(i, sentences[i % len(sentences)], voice, split,
                             int(rng.integers(1 << 31)), aug_copies, out_dir))
    return specs


def _chunks(specs: list[UttSpec]) -> list[list[UttSpec]]:
    # group by voice for festival (one process per voice per task), others in order
    fest: dict[str, list[UttSpec]] = {}
    other: list[UttSpec] = []
    for s in specs:
        (fest.setdefault(s.voice.name, []) if s.voice.engine == "festival" else other).append(s)
    groups = [other] + list(fest.values())
    return [g[i:i + CHUNK] for g in groups for i in range(0, len(g), CHUNK)]


class _NoPool:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _pool(jobs: int):
    if jobs <= 1:
        return _NoPool()
    import multiprocessing as mp
    return mp.get_context("fork").Pool(jobs, initializer=_worker_init)


def _worker_init() -> None:
    os.environ["OMP_NUM_THREADS"] = "1"


_ENGINE_CACHE: dict[str, object] = {}


def _engine(name: str):
    if name not in _ENGINE_CACHE:
        _ENGINE_CACHE[name] = ENGINES[name]()
    return _ENGINE_CACHE[name]


def _work(task: list[UttSpec]) -> tuple[list[dict], int]:
    """Synthesize a task's utterances (+ augmented copies); returns manifest rows, failures."""
    rows, failed = [], 0
    synths: list[Synthesis | None]
    try:
        if task[0].voice.engine == "festival":
            eng: FestivalEngine = _engine("festival")
            synths = list(eng.synth_batch([s.text for s in task], task[0].voice))
        else:
            synths = []
            for s in task:
                try:
                    synths.append(_engine(s.voice.engine).synth(s.text, s.voice))
                except (TTSError, KeyError) as e:
                    print(f"[synth] skip {s.voice.id}: {e}", file=sys.stderr)
                    synths.append(None)
    except (TTSError, KeyError) as e:
        print(f"[synth] skip task of {task[0].voice.id}: {e}", file=sys.stderr)
        return [], len(task)
    for spec, syn in zip(task, synths):
        if syn is None or not any(p != "sil" for p in syn.phones):
            failed += 1
            continue
        rows += _make_utterance(spec, syn)
    return rows, failed


def make_clean(syn: Synthesis, rng: np.random.Generator):
    """Resample to 16 kHz and set the silence before/after the speech; returns audio, phones, starts, ends."""
    audio = _resample(syn.audio, syn.sample_rate)
    phones, starts, ends = list(syn.phones), syn.starts.copy(), syn.ends.copy()
    speech = [i for i, p in enumerate(phones) if p != "sil"]
    first, last = starts[speech[0]], ends[speech[-1]]
    lead, tail = rng.uniform(*LEAD_SILENCE_S), rng.uniform(*LEAD_SILENCE_S)
    a0 = int(round((first - lead) * SAMPLE_RATE))
    a1 = int(round((last + tail) * SAMPLE_RATE))
    pad0, pad1 = max(0, -a0), max(0, a1 - len(audio))
    audio = np.pad(audio[max(a0, 0):min(a1, len(audio))], (pad0, pad1))
    shift = -(first - lead)
    dur = len(audio) / SAMPLE_RATE
    keep_p, keep_s, keep_e = [], [], []
    for p, s, e in zip(phones, starts + shift, ends + shift):
        s, e = max(s, 0.0), min(e, dur)
        if e - s > 1e-4:
            keep_p.append(p)
            keep_s.append(s)
            keep_e.append(e)
    _cover_edges(keep_p, keep_s, keep_e, dur)
    peak = float(np.max(np.abs(audio))) + 1e-9
    audio = (audio / peak * rng.uniform(0.3, 0.9)).astype(np.float32)
    return audio, keep_p, np.asarray(keep_s), np.asarray(keep_e)


def _cover_edges(ph: list, s: list, e: list, dur: float) -> None:
    """Make the phones start at 0 and end at ``dur`` with silence (extend or add a ``sil``)."""
    if ph[0] == "sil":
        s[0] = 0.0
    elif s[0] > 1e-4:
        ph.insert(0, "sil"); s.insert(0, 0.0); e.insert(0, s[1])  # noqa: E702
    if ph[-1] == "sil":
        e[-1] = dur
    elif dur - e[-1] > 1e-4:
        ph.append("sil"); s.append(e[-1]); e.append(dur)  # noqa: E702


def _make_utterance(spec: UttSpec, syn: Synthesis) -> list[dict]:
    rng = np.random.default_rng(spec.seed)
    audio, phones, starts, ends = make_clean(syn, rng)
    style = ArticulationStyle.for_speaker(spec.voice.id).jitter(rng)
    if rng.random() < BREATH_PROBABILITY:
        audio = aug.add_breaths(audio, inhale_windows(phones, starts, ends, style),
                                float(rng.uniform(*BREATH_LEVEL_DB)), rng)
    base_id = f"{spec.index:06d}_{spec.voice.engine}_{_slug(spec.voice.name)}"
    rows = [_save(base_id, spec, audio, audio, phones, starts, ends, style, rng, None, syn.sample_rate)]
    for k in range(spec.aug_copies):
        plan = aug.random_plan(rng)
        try:
            voiced, channel, scale = _augment_two_stage(audio, plan, rng)
        except aug.AugmentError as e:
            print(f"[synth] augmentation skipped: {e}", file=sys.stderr)
            break
        rows.append(_save(f"{base_id}_a{k + 1}", spec, channel, voiced, phones, starts * scale,
                          np.minimum(ends * scale, len(channel) / SAMPLE_RATE), style, rng, plan,
                          syn.sample_rate, source=base_id))
    return rows


def _augment_two_stage(audio, plan: aug.AugmentPlan, rng):
    """(voice-changed audio for the teacher's loudness, final audio, time scale)."""
    voice_plan = aug.AugmentPlan(tempo=plan.tempo, pitch_cents=plan.pitch_cents, formant=plan.formant,
                                 gain_db=0.0)
    voiced, scale = aug.augment(audio, voice_plan, rng)
    channel_plan = aug.AugmentPlan(reverb_rt60_s=plan.reverb_rt60_s, noise_snr_db=plan.noise_snr_db,
                                   noise_color=plan.noise_color, band=plan.band,
                                   source_rate=plan.source_rate, gain_db=plan.gain_db)
    channel, _ = aug.augment(voiced, channel_plan, rng)
    plan.applied = voice_plan.applied[:-1] + channel_plan.applied
    return voiced, channel, scale


def _save(uid, spec, audio, teacher_audio, phones, starts, ends, style, rng, plan, source_rate,
          source=None) -> dict:
    motion = teacher_motion(teacher_audio, SAMPLE_RATE, phones, starts, ends, FPS, style,
                            seed=int(rng.integers(1 << 31)))
    dur = len(audio) / SAMPLE_RATE
    assert len(motion) == n_frames(dur, FPS)
    path = Path("utts") / f"{uid}.npz"
    out_dir = Path(spec.out_dir)
    np.savez(out_dir / path, audio=audio.astype(np.float32), sample_rate=np.int32(SAMPLE_RATE),
             fps=np.int32(FPS), motion=motion.astype(np.float32), phones=np.array(phones),
             phone_starts=np.asarray(starts, np.float64), phone_ends=np.asarray(ends, np.float64),
             text=np.array(spec.text))
    row = {"id": uid, "voice": spec.voice.id, "engine": spec.voice.engine, "split": spec.split,
           "path": str(path), "duration_s": round(dur, 4), "augmented": plan is not None,
           "text": spec.text, "source_sample_rate": int(source_rate), "n_frames": int(len(motion)),
           "state": "speaking"}
    if plan is not None:
        row["source"] = source
        row["augment"] = plan.applied
    return row


def _resample(x: np.ndarray, sr: int) -> np.ndarray:
    if sr == SAMPLE_RATE:
        return x.astype(np.float32)
    g = math.gcd(sr, SAMPLE_RATE)
    return signal.resample_poly(x, SAMPLE_RATE // g, sr // g).astype(np.float32)


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")
