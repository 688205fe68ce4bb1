"""Phones and teacher motion for any recording (pocketsphinx).

With ``--text``: forced alignment of the transcript. Without: ``--mode asr`` (default) first
recognises the words with pocketsphinx's bundled language model and then force-aligns that
hypothesis; ``--mode allphone`` decodes phones directly with the phone language model. Words
missing from cmudict get their phones from espeak-ng. The output npz has the corpus layout
(``audio``, ``sample_rate``, ``fps``, ``motion``, ``phones``, ``phone_starts``, ``phone_ends``),
so users can build training data from their own recordings (``facecast data align --corpus DIR``
writes many files as a corpus, manifest.jsonl + utts/, that training reads like a synthesized one).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.audio import MODEL_RATE
from engine.audio.pcm import float_to_s16, load_audio
from engine.audio.phones import map_phone

SAMPLE_RATE = MODEL_RATE
FRAME_S = 0.01                     # pocketsphinx frames are 10 ms
WIDE_BEAMS = {"beam": 1e-80, "wbeam": 1e-60, "pbeam": 1e-80}


class AlignError(RuntimeError):
    """The audio could not be aligned."""


@dataclass
class Alignment:
    phones: list[str]
    starts: np.ndarray
    ends: np.ndarray
    words: list[tuple[str, float, float]]
    text: str


def _model_dir() -> Path:
    import pocketsphinx
    return Path(pocketsphinx.get_model_path()) / "en-us"


def _decoder(**kw):
    from pocketsphinx import Decoder
    return Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", **kw)


def _pcm(audio: np.ndarray) -> bytes:
    return float_to_s16(audio).tobytes()


def _decode(dec, pcm: bytes) -> None:
    dec.start_utt()
    dec.process_raw(pcm, full_utt=True)
    dec.end_utt()


def recognise(audio: np.ndarray) -> str:
    """Words pocketsphinx hears (bundled en-us language model)."""
    dec = _decoder()
    _decode(dec, _pcm(audio))
    hyp = dec.hyp()
    return "" if hyp is None else hyp.hypstr


def _espeak_arpabet(word: str) -> list[str]:
    from engine.audio.tts import EspeakEngine, Voice
    syn = EspeakEngine().synth(word, Voice("espeak", "en-us"))
    return [p for p in syn.phones if p != "sil"]


def _words_for(dec, text: str) -> list[str]:
    """Transcript words, adding out-of-dictionary words with espeak-ng phones."""
    words = [w for w in re.findall(r"[a-z']+", text.lower()) if w.strip("'")]
    out = []
    for w in words:
        if dec.lookup_word(w) is None:
            try:
                phones = _espeak_arpabet(w)
            except Exception:  # noqa: BLE001 - no espeak: drop the word
                phones = []
            if not phones:
                continue
            dec.add_word(w, " ".join(p.upper() for p in phones), True)
        out.append(w)
    return out


def force_align(audio: np.ndarray, text: str) -> Alignment:
    """Phone times of ``text`` in ``audio`` (pocketsphinx two-pass forced alignment)."""
    pcm = _pcm(audio)
    for beams in ({}, WIDE_BEAMS):
        dec = _decoder(**beams)
        words = _words_for(dec, text)
        if not words:
            raise AlignError("the transcript has no alignable words")
        dec.set_align_text(" ".join(words))
        try:
            _decode(dec, pcm)
            dec.set_alignment()
            _decode(dec, pcm)
        except (RuntimeError, ValueError):  # no path through the transcript: retry with wide beams
            continue
        al = dec.get_alignment()
        if al is None:
            continue
        phones, starts, ends, wlist = [], [], [], []
        for w in al:
            ws = w.start * FRAME_S
            wlist.append((w.name, ws, ws + w.duration * FRAME_S))
            for p in w:
                phones.append(p.name)
                starts.append(p.start * FRAME_S)
                ends.append((p.start + p.duration) * FRAME_S)
        if phones:
            return _finish(phones, starts, ends, wlist, " ".join(words), len(audio))
    raise AlignError("pocketsphinx could not align the transcript to the audio")


def allphone_decode(audio: np.ndarray) -> Alignment:
    """Phones recognised directly (phone language model), no words needed."""
    dec = _decoder(lm=None, allphone=str(_model_dir() / "en-us-phone.lm.bin"))
    _decode(dec, _pcm(audio))
    phones, starts, ends = [], [], []
    for seg in dec.seg():
        phones.append(seg.word)
        starts.append(seg.start_frame * FRAME_S)
        ends.append((seg.end_frame + 1) * FRAME_S)
    if not phones:
        raise AlignError("all-phone decoding found nothing")
    return _finish(phones, starts, ends, [], "", len(audio))


def _finish(labels, starts, ends, words, text, n_samples) -> Alignment:
    dur = n_samples / SAMPLE_RATE
    ph, s, e = [], [], []
    for lab, a, b in zip(labels, starts, ends):
        mapped = map_phone(lab, "sphinx") if not lab.startswith("<") else ["sil"]
        p = mapped[0] if len(mapped) == 1 else "sil"
        a, b = max(0.0, a), min(dur, b)
        if b - a <= 0:
            continue
        if s and a > e[-1] + 1e-6:          # gap -> silence
            _append(ph, s, e, "sil", e[-1], a)
        elif not s and a > 0:
            _append(ph, s, e, "sil", 0.0, a)
        _append(ph, s, e, p, a, b)
    if not ph:
        ph, s, e = ["sil"], [0.0], [dur]
    if e[-1] < dur:
        _append(ph, s, e, "sil", e[-1], dur)
    return Alignment(ph, np.asarray(s), np.asarray(e), words, text)


def _append(ph, s, e, p, a, b) -> None:
    if ph and ph[-1] == "sil" and p == "sil":
        e[-1] = b
        return
    if s and a < e[-1]:
        a = e[-1]
    if b > a:
        ph.append(p)
        s.append(a)
        e.append(b)


def split_points(audio: np.ndarray, max_s: float = 20.0, min_s: float = 8.0) -> list[int]:
    """Sample indices that cut long audio at its quietest 300 ms between ``min_s`` and ``max_s``."""
    hop = SAMPLE_RATE // 100
    n = len(audio) // hop
    energy = np.convolve((audio[: n * hop].reshape(n, hop) ** 2).mean(1), np.ones(30) / 30, "same")
    cuts, start = [], 0
    while n - start > max_s * 100:
        lo, hi = start + int(min_s * 100), start + int(max_s * 100)
        cut = lo + int(np.argmin(energy[lo:hi]))
        cuts.append(cut * hop)
        start = cut
    return cuts


def align(audio: np.ndarray, text: str | None = None, mode: str = "asr") -> Alignment:
    """Phones of ``audio``: forced alignment of ``text``, or (no text) recognised per <= 20 s piece."""
    if len(audio) < SAMPLE_RATE // 10:
        raise AlignError("audio is shorter than 0.1 s")
    if text:
        return force_align(audio, text)
    cuts = split_points(audio)
    if cuts:
        pieces = [_align_piece(audio[a:b], mode) for a, b in zip([0] + cuts, cuts + [len(audio)])]
        return _join(pieces, [0] + cuts, len(audio))
    return _align_untranscribed(audio, mode)


def _join(pieces: list[Alignment], offsets: list[int], n_samples: int) -> Alignment:
    labels, starts, ends, words = [], [], [], []
    for al, off in zip(pieces, offsets):
        t0 = off / SAMPLE_RATE
        labels += al.phones
        starts += (al.starts + t0).tolist()
        ends += (al.ends + t0).tolist()
        words += [(w, a + t0, b + t0) for w, a, b in al.words]
    text = " ".join(al.text for al in pieces if al.text)
    ph, s, e = [], [], []
    for p, a, b in zip(labels, starts, ends):
        _append(ph, s, e, p, a, b)
    return Alignment(ph, np.asarray(s), np.asarray(e), words, text)


def _align_piece(audio: np.ndarray, mode: str) -> Alignment:
    """One piece of a long recording; a piece with nothing recognisable is silence."""
    try:
        return _align_untranscribed(audio, mode)
    except AlignError:
        if mode not in ("asr", "allphone"):
            raise
        return _finish([], [], [], [], "", len(audio))


def _align_untranscribed(audio: np.ndarray, mode: str) -> Alignment:
    if mode == "allphone":
        return allphone_decode(audio)
    if mode != "asr":
        raise AlignError(f"unknown mode {mode!r} (asr or allphone)")
    hyp = recognise(audio)
    if not re.search(r"[a-z]", hyp):
        return allphone_decode(audio)
    try:
        al = force_align(audio, hyp)
    except AlignError:
        return allphone_decode(audio)
    return al


def align_file(path: str | Path, out: str | Path, text: str | None = None, mode: str = "asr",
               speaker: str = "neutral", seed: int = 0, fps: int = 25) -> dict:
    """Align one recording and write its npz (corpus layout); returns a summary."""
    from engine.training.teacher import ArticulationStyle, teacher_motion

    audio, _ = load_audio(path, SAMPLE_RATE)
    al = align(audio, text, mode)
    style = ArticulationStyle.neutral() if speaker == "neutral" else ArticulationStyle.for_speaker(speaker)
    motion = teacher_motion(audio, SAMPLE_RATE, al.phones, al.starts, al.ends, fps, style, seed)
    np.savez(out, audio=audio.astype(np.float32), sample_rate=np.int32(SAMPLE_RATE), fps=np.int32(fps),
             motion=motion, phones=np.array(al.phones), phone_starts=al.starts, phone_ends=al.ends,
             text=np.array(al.text))
    return {"out": str(out), "duration_s": round(len(audio) / SAMPLE_RATE, 4), "phones": len(al.phones),
            "text": al.text, "frames": int(len(motion))}
