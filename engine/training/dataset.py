"""Corpus loading and training windows for the audio-to-motion model.

The corpus format is docs/ARCHITECTURE.md's (``manifest.jsonl`` + ``utts/<id>.npz`` holding
``audio``, ``motion`` (T, 58) teacher motion at 25 fps, phones). Each utterance's audio is
padded at the end with the silence a streaming ``flush`` adds, turned into causal log-mel and
normalised with the causal running normalisation, exactly as at run time.

Training examples are crops of ``crop`` frames (audio embedding computed once per crop) cut
into denoiser windows, with control augmentation applied to the teacher motion: head-motion
scale (pose x s), emotion offsets, re-drawn blinks at a known rate; plus listening/idle clips
(teacher_life motion over near-silent audio) for the state control.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.audio import MODEL_RATE
from engine.training import teacher_life
from engine.motion.model.spec import ModelSpec, control_vector
from engine.motion.emotion import EMOTIONS, emotion_offset
from engine.motion.features import MelSpec, NormStats, log_mel, normalise_offline
from engine.motion.space import ARKIT_NAMES, INDEX, NUM_BLENDSHAPES, VECTOR_DIM
from engine.motion.streaming import STATES
from engine.training.metrics import mouth_opening, with_opening
from engine.training.teacher import ArticulationStyle, inhale_windows
from engine.training.teacher_opening import apply_opening

BLINK = [INDEX["eyeBlinkLeft"], INDEX["eyeBlinkRight"]]
SAMPLES_PER_FRAME = 640
ARTICULATION = [i for i, n in enumerate(ARKIT_NAMES) if n.startswith(("jaw", "mouth"))]


class CorpusError(ValueError):
    """A corpus directory or utterance that cannot be used."""


@dataclass
class Utterance:
    id: str
    voice: str
    split: str
    state: str
    audio: np.ndarray          # float32 16 kHz (unpadded)
    mel: np.ndarray            # (T_mel, n_mels) raw log-mel of audio + flush padding
    motion: np.ndarray         # (T, 58)
    pauses_s: list
    mouth_valid: np.ndarray | None = None   # (T,) 0 where jaw/mouth targets are left out of the loss

    @property
    def n_frames(self) -> int:
        return len(self.motion)


def read_manifest(corpus: str | Path) -> list[dict]:
    path = Path(corpus) / "manifest.jsonl"
    if not path.exists():
        raise CorpusError(f"{path} does not exist (make a corpus with `facecast data synth --out DIR`)")
    rows = []
    for i, line in enumerate(path.read_text().splitlines()):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise CorpusError(f"{path}:{i + 1}: not JSON: {e}") from e
    if not rows:
        raise CorpusError(f"{path} lists no utterances")
    return rows


def flush_padded_mel(audio: np.ndarray, spec: ModelSpec, mel_spec: MelSpec = MelSpec()) -> np.ndarray:
    """Log-mel of the audio followed by the silence a streaming flush adds."""
    n_frames = -(-len(audio) // SAMPLES_PER_FRAME)
    need = (spec.last_mel_of_frame(n_frames - 1) + 1) * mel_spec.hop
    padded = np.concatenate([audio, np.zeros(max(0, need - len(audio)), np.float32)])
    return log_mel(padded, mel_spec)


def load_corpus(corpus: str | Path, splits: tuple[str, ...], spec: ModelSpec,
                include_augmented: bool = True, limit: int | None = None,
                mask_inhale: bool = False, teacher_lead_ms: float = 0.0,
                teacher_opening=None, real_opening_std: float | None = None) -> list[Utterance]:
    """``mask_inhale``: mark the teacher's pre-speech inhale frames (lips parted before speech a
    causal model cannot foresee) so training leaves their jaw/mouth targets out of the loss.
    ``teacher_lead_ms``: teacher targets (utterances without real-video targets) show the mouth
    that much ahead of the sound (``lead_articulation``).
    ``teacher_opening``: an :class:`~engine.training.teacher_opening.OpeningTable`; teacher targets
    get its lip opening (fitted to real faces) in place of the hand table's, before the lead.
    ``real_opening_std``: real-video targets get their opening scaled to this std (``scale_opening``)."""
    root = Path(corpus)
    out = []
    for row in read_manifest(root):
        if row.get("split") not in splits or (row.get("augmented") and not include_augmented):
            continue
        try:
            z = np.load(root / row["path"], allow_pickle=False)
            audio = z["audio"].astype(np.float32)
            motion = z["motion"].astype(np.float32)
            if int(z["sample_rate"]) != MODEL_RATE or int(z["fps"]) != 25:
                raise CorpusError(f"{row['id']}: expected 16 kHz / 25 fps")
            phones, starts, ends = z["phones"], z["phone_starts"], z["phone_ends"]
        except (OSError, KeyError, ValueError) as e:
            raise CorpusError(f"{root / row.get('path', '?')}: unreadable utterance: {e}") from e
        if motion.ndim != 2 or motion.shape[1] != VECTOR_DIM or not np.isfinite(motion).all():
            raise CorpusError(f"{row['id']}: motion must be finite (T, {VECTOR_DIM})")
        n = -(-len(audio) // SAMPLES_PER_FRAME)
        if abs(len(motion) - n) > 1:
            raise CorpusError(f"{row['id']}: {len(motion)} motion frames for {n} frames of audio")
        motion = _fit(motion, n)
        if teacher_opening is not None and "mouth_valid" not in z.files and row.get("state", "speaking") == "speaking":
            jaw = ArticulationStyle.for_speaker(row.get("voice", "?")).jaw_scale
            motion = apply_opening(motion, [str(p) for p in phones], starts, ends, teacher_opening, jaw)
        if teacher_lead_ms and "mouth_valid" not in z.files:
            motion = lead_articulation(motion, teacher_lead_ms)
        pauses = [float(s) for p, s, e in zip(phones, starts, ends) if p == "sil" and e - s > 0.15]
        mouth_valid = inhale_free_frames(phones, starts, ends, row.get("voice", "?"), len(motion)) \
            if mask_inhale else None
        if "mouth_valid" in z.files:    # real-video targets: frames without a tracked face
            tracked = _fit(z["mouth_valid"].astype(np.float32)[:, None], len(motion))[:, 0]
            if real_opening_std:
                motion = scale_opening(motion, tracked > 0, real_opening_std)
            mouth_valid = tracked if mouth_valid is None else mouth_valid * tracked
        out.append(Utterance(row["id"], row.get("voice", "?"), row["split"], row.get("state", "speaking"),
                             audio, flush_padded_mel(audio, spec), motion, pauses, mouth_valid))
        if limit and len(out) >= limit:
            break
    if not out:
        raise CorpusError(f"{root}: no utterances in splits {splits}")
    return out


def scale_opening(motion: np.ndarray, valid: np.ndarray, std: float) -> np.ndarray:
    """Real-video targets with the lip opening scaled (about closed) so that its std over the
    tracked frames is ``std`` weight units: one speaker's wide mouth and another's narrow one
    become one amplitude, which no audio could tell apart for a voice never heard."""
    op = mouth_opening(motion)
    spread = float(op[valid].std()) if valid.sum() > 1 else 0.0
    return motion if spread < 1e-6 else with_opening(motion, op * (std / spread))


def inhale_free_frames(phones, starts, ends, voice: str, n: int, fps: int = 25) -> np.ndarray:
    """(n,) float32: 0 for frames that overlap one of the teacher's inhale windows (the speaker
    style synthesis used: ``ArticulationStyle.for_speaker(voice)``; jitter leaves inhale alone)."""
    out = np.ones(n, np.float32)
    for s, e in inhale_windows(phones, starts, ends, ArticulationStyle.for_speaker(voice)):
        out[max(0, int(np.floor(s * fps))): min(n, int(np.floor(e * fps)))] = 0.0   # onset frame kept
    return out


def lead_articulation(motion: np.ndarray, lead_ms: float, fps: int = 25) -> np.ndarray:
    """(T, 58) motion whose jaw and mouth weights at frame k are those of the instant
    k/fps + ``lead_ms`` (linear between frames, held at the end): the teacher places each phone's
    mouth at its sound, a real mouth shapes it ahead of the sound (by about 20-30 ms on the real
    clips, docs/teacher.md); head, brows and eyes stay."""
    out = motion.copy()
    src = np.arange(len(motion), dtype=np.float64) + lead_ms * fps / 1000.0
    for i in ARTICULATION:
        out[:, i] = np.interp(src, np.arange(len(motion)), motion[:, i])
    return out


def _fit(m: np.ndarray, n: int) -> np.ndarray:
    if len(m) >= n:
        return m[:n]
    return np.concatenate([m, np.repeat(m[-1:], n - len(m), 0)])


def quiet_clips(n_clips: int, seconds: float, spec: ModelSpec, seed: int) -> list[Utterance]:
    """Listening / idle clips: teacher_life motion over near-silent audio (noise at -90..-55 dBFS)."""
    rng = np.random.default_rng(seed)
    out = []
    n = int(seconds * 25)
    for i in range(n_clips):
        state = STATES[1 + i % 2]
        style = ArticulationStyle.for_speaker(f"quiet{i}", seed)
        motion = (teacher_life.listening_motion if state == "listening" else teacher_life.idle_motion)(
            n, 25, style, rng).astype(np.float32)
        level = 10 ** (rng.uniform(-90, -55) / 20)
        audio = (level * rng.standard_normal(n * SAMPLES_PER_FRAME)).astype(np.float32)
        out.append(Utterance(f"quiet{i}", "quiet", "train", state, audio, flush_padded_mel(audio, spec),
                             motion, []))
    return out


def mel_stats(utts: list[Utterance], time_constant_frames: float = 300.0) -> NormStats:
    cat = np.concatenate([u.mel for u in utts])
    return NormStats(mean=cat.mean(0).astype(np.float64), std=np.maximum(cat.std(0), 1e-3).astype(np.float64),
                     time_constant_frames=time_constant_frames)


def normalise_all(utts: list[Utterance], stats: NormStats) -> list[np.ndarray]:
    return [normalise_offline(u.mel, stats) for u in utts]


@dataclass(frozen=True)
class AugmentSpec:
    p_head_scale: float = 0.5
    head_scale_max: float = 2.0
    p_emotion: float = 0.4
    blink_rate_max: float = 40.0
    p_no_blinks: float = 0.15


def augment_motion(m: np.ndarray, rng: np.random.Generator, pauses_s: list, t0_s: float,
                   aug: AugmentSpec = AugmentSpec()) -> tuple[np.ndarray, tuple]:
    """Apply random controls to a teacher crop; returns (motion, (emotion, intensity, scale, blink))."""
    m = m.copy()
    scale = float(rng.uniform(0.0, aug.head_scale_max)) if rng.random() < aug.p_head_scale else 1.0
    m[:, NUM_BLENDSHAPES:] *= scale
    emotion, intensity = "neutral", 0.0
    if rng.random() < aug.p_emotion:
        emotion = EMOTIONS[1 + int(rng.integers(len(EMOTIONS) - 1))]
        intensity = float(rng.uniform(0.2, 1.0))
        m += emotion_offset(emotion, intensity)[None, :]
    rate = 0.0 if rng.random() < aug.p_no_blinks else float(rng.uniform(4.0, aug.blink_rate_max))
    m[:, BLINK] = 0.0
    if rate > 0:
        local = [p - t0_s for p in pauses_s if 0 <= p - t0_s < len(m) / 25]
        teacher_life.add_blinks(m, 25, rate, rng, prefer_s=local)
    m[:, :NUM_BLENDSHAPES] = np.clip(m[:, :NUM_BLENDSHAPES], 0.0, 1.0)
    return m, (emotion, intensity, scale, rate)


class WindowSampler:
    """Random training crops: mel windows, teacher motion (augmented), control vectors."""

    def __init__(self, utts: list[Utterance], mels_norm: list[np.ndarray], spec: ModelSpec,
                 crop: int, seed: int, aug: AugmentSpec = AugmentSpec(), weights: np.ndarray | None = None):
        """``weights``: per-utterance sampling weight (times its length); default 1."""
        self.utts, self.spec, self.crop, self.aug = utts, spec, crop, aug
        self.rng = np.random.default_rng(seed)
        pad = spec.mel_window(crop) + spec.mel_per_frame * spec.window
        self.pad_mel = pad
        right = spec.mel_per_frame * crop
        self.mels = [np.concatenate([np.zeros((pad, spec.n_mels), np.float32), m, np.repeat(m[-1:], right, 0)])
                     for m in mels_norm]
        lens = np.array([u.n_frames for u in utts], np.float64)
        if weights is not None:
            lens = lens * np.asarray(weights, np.float64)
        self.p = lens / lens.sum()

    def sample(self, batch: int):
        s, W = self.spec, self.spec.window
        mel = np.zeros((batch, s.mel_window(self.crop), s.n_mels), np.float32)
        mot = np.zeros((batch, self.crop, VECTOR_DIM), np.float32)
        valid = np.zeros((batch, self.crop), np.float32)
        mouth_valid = np.ones((batch, self.crop), np.float32)
        cond = np.zeros((batch, len(STATES) + len(EMOTIONS) + 3), np.float32)
        for b in range(batch):
            i = int(self.rng.choice(len(self.utts), p=self.p))
            u = self.utts[i]
            k0 = int(self.rng.integers(-(W - 1), max(1, u.n_frames - self.crop + 1)))
            last = s.last_mel_of_frame(k0 + self.crop - 1) + self.pad_mel
            mel[b] = self.mels[i][last - mel.shape[1] + 1: last + 1]
            idx = np.arange(k0, k0 + self.crop)
            ok = (idx >= 0) & (idx < u.n_frames)
            m = u.motion[np.clip(idx, 0, u.n_frames - 1)]
            m, (emo, inten, scale, rate) = augment_motion(m, self.rng, u.pauses_s, k0 / 25, self.aug)
            mot[b], valid[b] = m, ok
            if u.mouth_valid is not None:
                mouth_valid[b] = u.mouth_valid[np.clip(idx, 0, u.n_frames - 1)]
            cond[b] = control_vector(u.state, emo, inten, scale, rate)
        self.last_mouth_valid = mouth_valid      # (batch, crop), for training with masked targets
        return mel, mot, valid, cond
