"""A phonetically rich English sentence set, generated from cmudict (ships with pocketsphinx).

Sentences mix function words (~40%) with content words drawn from cmudict, in a few phrase
shapes with commas, questions and exclamations for varied prosody. From many random candidates
a greedy pass keeps the sentences that add the most not-yet-covered diphones, so the set covers
the phone pairs of English well. Deterministic for a given seed.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import numpy as np

_FUNCTION = ("the a an this that these those my your his her our their its some every no one "
             "two three of in on at by for with from into over under about after before "
             "and but or so because while if when then there here is was are were be been has "
             "have had will would can could should may might must do does did not very quite "
             "just also still only even never always often again now today I you he she we "
             "they it me him us them who what where why how which all both many much more "
             "most such up down out off through around between").split()
_PHRASES = (
    "{F} {F} {C} {C} {F} {F} {C}",
    "{F} {C} {C} {F} {C} {F} {F} {C} {C}",
    "{C} {F} {F} {C}, {F} {F} {C} {C}",
    "{F} {F} {C} {F} {C} {C}?",
    "{C} {C} {F} {F} {C}!",
    "{F} {C} {F} {F} {C} {C}, {F} {C} {F} {C}",
    "{F} {F} {F} {C} {C} {F} {F} {C}",
    "{C} {F} {C}, {C} {F} {C} {F} {F} {C}",
    "{F} {C} {C} {C} {F} {F} {C}?",
    "{F} {F} {C} {C}; {F} {F} {C} {F} {C}",
)
_WORD_RE = re.compile(r"^[a-z]{2,12}$")
_VOWEL_RE = re.compile(r"[aeiouy]")


def cmudict_path() -> Path:
    import pocketsphinx
    return Path(pocketsphinx.get_model_path()) / "en-us" / "cmudict-en-us.dict"


@lru_cache(maxsize=1)
def load_cmudict() -> dict[str, list[str]]:
    """word -> ARPAbet phones (lowercase, first pronunciation only)."""
    out: dict[str, list[str]] = {}
    for line in cmudict_path().read_text(encoding="utf-8", errors="replace").splitlines():
        parts = line.split()
        if len(parts) < 2 or "(" in parts[0]:
            continue
        out[parts[0]] = [p.lower().rstrip("012") for p in parts[1:]]
    return out


@lru_cache(maxsize=1)
def _content_words() -> list[str]:
    # words a TTS front end reads as words: lowercase letters, a vowel, 3..10 phones
    lexicon = load_cmudict()
    return sorted(w for w, p in lexicon.items()
                  if _WORD_RE.match(w) and _VOWEL_RE.search(w) and 3 <= len(p) <= 10)


def _diphones(words: list[str], lexicon: dict[str, list[str]]) -> set[tuple[str, str]]:
    seq = ["sil"]
    for w in words:
        seq += lexicon.get(w.strip(",.?!;").lower(), [])
    seq.append("sil")
    return set(zip(seq[:-1], seq[1:]))


def generate_sentences(n: int, seed: int = 0, candidates_per_sentence: int = 6) -> list[str]:
    """``n`` distinct sentences chosen greedily for diphone coverage from random candidates."""
    if n <= 0:
        raise ValueError("number of sentences must be positive")
    lexicon = load_cmudict()
    content = _content_words()
    rng = np.random.default_rng(seed)
    cands: list[str] = []
    for _ in range(n * candidates_per_sentence):
        shape = _PHRASES[rng.integers(len(_PHRASES))]
        words = [(_FUNCTION[rng.integers(len(_FUNCTION))] if tok.startswith("{F}")
                  else content[rng.integers(len(content))]) + tok[3:]
                 for tok in shape.split()]
        s = " ".join(words)
        s = s[0].upper() + s[1:]
        if s[-1] not in "?!":
            s += "."
        cands.append(s)
    cand_di = [_diphones(c.split(), lexicon) for c in cands]
    counts: dict[tuple[str, str], int] = {}
    chosen: list[str] = []
    used = np.zeros(len(cands), bool)
    # greedy in rounds over shuffled blocks: cheap, and keeps the set varied
    order = rng.permutation(len(cands))
    block = max(candidates_per_sentence, 2)
    for start in range(0, len(order), block):
        idx = order[start:start + block]
        scores = [sum(1.0 / (1 + counts.get(d, 0)) for d in cand_di[i]) for i in idx]
        best = int(idx[int(np.argmax(scores))])
        if used[best]:
            continue
        used[best] = True
        chosen.append(cands[best])
        for d in cand_di[best]:
            counts[d] = counts.get(d, 0) + 1
        if len(chosen) >= n:
            break
    return chosen


def diphone_coverage(sentences: list[str]) -> float:
    """Fraction of the diphones seen in cmudict words that the sentences contain."""
    lexicon = load_cmudict()
    have: set[tuple[str, str]] = set()
    for s in sentences:
        have |= _diphones(s.split(), lexicon)
    possible = _lexicon_diphones()
    return len(have & possible) / max(len(possible), 1)


@lru_cache(maxsize=1)
def _lexicon_diphones() -> frozenset[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for p in load_cmudict().values():
        out.update(zip(p[:-1], p[1:]))
    return frozenset(out)
