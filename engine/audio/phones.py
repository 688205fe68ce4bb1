"""One phone set for every engine: the 39 CMU/ARPAbet phones (lowercase, no stress) + ``sil``.

This is pocketsphinx's en-us phone set, so labels from TTS engines and from forced alignment of
real speech look the same to the teacher and the model. Each engine's own labels are mapped here;
a few espeak-ng phonemes stand for two ARPAbet phones (``@L`` = ah l) and are split in time.
"""
from __future__ import annotations

import numpy as np

PHONES: tuple[str, ...] = (
    "sil", "aa", "ae", "ah", "ao", "aw", "ay", "b", "ch", "d", "dh", "eh", "er", "ey", "f", "g",
    "hh", "ih", "iy", "jh", "k", "l", "m", "n", "ng", "ow", "oy", "p", "r", "s", "sh", "t", "th",
    "uh", "uw", "v", "w", "y", "z", "zh",
)
PHONE_SET = frozenset(PHONES)

# flite / festival ("radio" phone set) and pocketsphinx extras -> ARPAbet 39
_RADIO = {"pau": "sil", "h#": "sil", "brth": "sil", "sil": "sil", "ax": "ah", "axr": "er",
          "ix": "ih", "el": "ah l", "em": "ah m", "en": "ah n", "dx": "t", "nx": "n",
          "hv": "hh", "+nsn+": "sil", "+spn+": "sil", "+nos+": "sil", "+bgn+": "sil"}

# espeak-ng English phoneme mnemonics -> ARPAbet (space separated = split in time)
_ESPEAK = {
    "a": "ae", "a#": "ah", "a2": "ah", "aa": "aa", "A:": "aa", "A": "aa", "A@": "aa r", "A#": "ae",
    "@": "ah", "@2": "ah", "@5": "ah", "@-": "ah", "@L": "ah l", "@r": "er", "3": "er", "3:": "er",
    "e": "eh", "E": "eh", "E2": "eh", "E#": "eh", "e@": "eh r", "E@": "eh r", "eI": "ey",
    "i": "iy", "i:": "iy", "i@": "iy ah", "i@3": "ih r", "I": "ih", "I#": "ih", "I2": "ih",
    "I2#": "ih", "IR": "ih r", "0": "aa", "0#": "aa", "O": "ao", "O:": "ao", "O@": "ao r",
    "o@": "ao r", "o": "ow", "OI": "oy", "oU": "ow", "oU#": "ow", "o:": "ow", "U": "uh",
    "u:": "uw", "u": "uw", "U@": "uh r", "V": "ah", "VR": "er", "aI": "ay", "aI@": "ay ah",
    "aI3": "ay er", "aU": "aw", "aU@": "aw ah", "u@": "uw ah", "eI@": "ey ah", "OI@": "oy ah",
    "p": "p", "b": "b", "t": "t", "d": "d", "k": "k", "g": "g", "f": "f", "v": "v", "T": "th",
    "D": "dh", "s": "s", "z": "z", "S": "sh", "Z": "zh", "tS": "ch", "dZ": "jh", "h": "hh",
    "m": "m", "n": "n", "N": "ng", "l": "l", "r": "r", "w": "w", "j": "y", "t#": "t", "d#": "d",
    "?": "t", "n-": "n", "m-": "m", "l-": "l", "L": "l", "r-": "r", "x": "hh", "W": "w",
    "t2": "t", "d2": "d", "z#": "z", "s2": "s", "l/": "l", "l/2": "l", "r/": "r", "*": "r",
    "@L2": "ah l", "3:r": "er", "i@r": "iy r", "a@": "aa r", "aI2": "ay", "aI3r": "ay er",
    "Q": "aa", "C": "hh", "hw": "w", "nj": "n y", "tj": "t y", "dj": "d y", "sj": "s y",
}


class UnknownPhoneError(KeyError):
    """An engine phone label with no ARPAbet mapping."""


def _clean_espeak(label: str) -> str:
    return label.replace("'", "").replace(",", "").replace("%", "").replace("=", "").strip()


def map_phone(label: str, engine: str) -> list[str]:
    """ARPAbet phones for one engine label ("espeak", "flite", "festival", "sphinx")."""
    if engine == "espeak":
        lab = _clean_espeak(label)
        if lab == "" or lab.startswith("_") or lab in (";", "|", "||"):
            return ["sil"]
        if lab in _ESPEAK:
            return _ESPEAK[lab].split()
        # unknown variants: strip trailing modifiers ("#", digits) and retry
        base = lab.rstrip("#0123456789;/-[")
        if base in _ESPEAK:
            return _ESPEAK[base].split()
        raise UnknownPhoneError(f"espeak phoneme {label!r} has no ARPAbet mapping")
    lab = label.strip().lower()
    lab = "".join(c for c in lab if not c.isdigit()) if engine == "sphinx" else lab
    if lab in _RADIO:
        return _RADIO[lab].split()
    if lab in PHONE_SET:
        return [lab]
    raise UnknownPhoneError(f"{engine} phone {label!r} has no ARPAbet mapping")


# how a two-phone espeak label shares its time: the first phone's fraction
_SPLIT_FIRST = 0.6


def normalise(labels: list[str], starts: list[float], ends: list[float], engine: str,
              ) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Map labels to ARPAbet, split compound labels, merge adjacent silences, drop empty phones."""
    out_p: list[str] = []
    out_s: list[float] = []
    out_e: list[float] = []
    for lab, s, e in zip(labels, starts, ends):
        if e - s <= 1e-6:
            continue
        parts = map_phone(lab, engine)
        if len(parts) == 1:
            bounds = [s, e]
        else:
            first = s + (e - s) * _SPLIT_FIRST
            rest = np.linspace(first, e, len(parts)).tolist()
            bounds = [s] + rest
        for k, ph in enumerate(parts):
            ps, pe = bounds[k], bounds[k + 1]
            if ph == "sil" and out_p and out_p[-1] == "sil":
                out_e[-1] = pe
                continue
            out_p.append(ph)
            out_s.append(ps)
            out_e.append(pe)
    return out_p, np.asarray(out_s, np.float64), np.asarray(out_e, np.float64)
