"""The viseme table: for every ARPAbet phone, mouth targets and how strongly it holds them.

Each phone gives, per mouth control, a ``(target, dominance)`` pair. The teacher blends
overlapping phones by dominance (Cohen & Massaro style): a phone with high dominance on a control
(``m`` on lip closure, ``uw`` on rounding, open vowels on the jaw) reaches its target even when
short, one with low dominance (``hh``, ``t`` on the lips) takes its shape from its neighbours.
Diphthongs have two targets (onset, offglide). docs/teacher.md prints this table.

Mouth controls (not all are ARKit shapes; the teacher maps them to ARKit weights):
- ``jaw``: jawOpen
- ``close``: lip seal, 0..1 (the teacher sets mouthClose = close * jawOpen so the lips meet
  however far the jaw is open)
- ``press``: lips pressed together (mouthPress + a little lip roll), bilabials
- ``round``: mouthFunnel (protruded, open rounding), ``pucker``: mouthPucker (tight rounding)
- ``spread``: mouthStretch + a little mouthSmile
- ``lowerlip``: lower lip tucked under the upper teeth (f, v): mouthRollLower + mouthUpperUp
- ``teeth``: lips drawn off the teeth (s, sh, ch, vowels like ae): mouthUpperUp + mouthLowerDown
- ``tongue``: tongueOut (th, dh)
"""
from __future__ import annotations

CONTROLS: tuple[str, ...] = ("jaw", "close", "press", "round", "pucker", "spread", "lowerlip", "teeth",
                             "tongue")

# Dominance a phone has on a control it does not name: vowels hold the lips neutral firmly,
# consonants let their neighbours decide (that is what makes rounding spread across "str").
VOWEL_DEFAULT_DOMINANCE = 0.8
# ...except the lip seal: a vowel opens the lips firmly, so a neighbouring m/b/p closes them only
# briefly (its high dominance still wins inside the closure itself)
VOWEL_SEAL_DOMINANCE = 4.0
CONSONANT_DEFAULT_DOMINANCE = 0.12

VOWELS = frozenset("aa ae ah ao aw ay eh er ey ih iy ow oy uh uw".split())
DIPHTHONGS = {"aw": ("aa", "uw"), "ay": ("aa", "iy"), "ey": ("eh", "iy"), "ow": ("ao", "uw"),
              "oy": ("ao", "iy")}

# phone -> {control: (target, dominance)}
_T = dict[str, tuple[float, float]]
VISEMES: dict[str, _T] = {
    # silence: relaxed, lips together or barely parted (rest posture is per speaker)
    "sil": {"jaw": (0.02, 0.5), "close": (0.6, 1.0), "press": (0.05, 1.0), "round": (0.0, 2.0),
            "pucker": (0.0, 2.0), "spread": (0.0, 2.0), "teeth": (0.0, 2.0), "lowerlip": (0.0, 2.0),
            "tongue": (0.0, 2.0)},
    # the breath in before speech after a pause: lips part, jaw drops a little (teacher-internal)
    "inhale": {"jaw": (0.22, 0.7), "close": (0.0, 1.5), "press": (0.0, 1.5), "round": (0.0, 1.5),
               "pucker": (0.0, 1.5), "spread": (0.0, 1.5), "teeth": (0.08, 1.0), "lowerlip": (0.0, 1.5),
               "tongue": (0.0, 1.5)},
    # --- vowels (jaw height from vowel height, lips from rounding / spreading) ---
    "aa": {"jaw": (0.62, 1.0), "teeth": (0.15, 0.6)},
    "ae": {"jaw": (0.52, 1.0), "spread": (0.30, 1.0), "teeth": (0.30, 1.0), "round": (0.0, 1.5),
           "pucker": (0.0, 1.5)},
    "ah": {"jaw": (0.42, 1.0), "teeth": (0.10, 0.6)},
    "ao": {"jaw": (0.50, 1.0), "round": (0.35, 1.2), "pucker": (0.10, 1.0)},
    "eh": {"jaw": (0.36, 1.0), "spread": (0.22, 1.0), "teeth": (0.18, 0.8), "round": (0.0, 1.5),
           "pucker": (0.0, 1.5)},
    "er": {"jaw": (0.20, 1.0), "round": (0.35, 1.5), "pucker": (0.25, 1.5)},
    "ih": {"jaw": (0.22, 1.0), "spread": (0.28, 1.0), "teeth": (0.15, 0.8), "round": (0.0, 1.5),
           "pucker": (0.0, 1.5)},
    "iy": {"jaw": (0.14, 1.0), "spread": (0.42, 1.5), "teeth": (0.20, 1.0), "round": (0.0, 2.0),
           "pucker": (0.0, 2.0)},
    "uh": {"jaw": (0.22, 1.0), "round": (0.35, 1.5), "pucker": (0.30, 1.5)},
    "uw": {"jaw": (0.14, 1.0), "round": (0.40, 2.0), "pucker": (0.70, 2.0)},
    # --- consonants ---
    "p": {"jaw": (0.03, 0.9), "close": (1.0, 30.0), "press": (0.5, 20.0)},
    "b": {"jaw": (0.03, 0.9), "close": (1.0, 30.0), "press": (0.5, 20.0)},
    "m": {"jaw": (0.03, 0.9), "close": (1.0, 30.0), "press": (0.5, 20.0)},
    "f": {"jaw": (0.07, 2.0), "lowerlip": (0.75, 6.0), "close": (0.0, 1.0)},
    "v": {"jaw": (0.07, 2.0), "lowerlip": (0.70, 6.0), "close": (0.0, 1.0)},
    "th": {"jaw": (0.12, 0.6), "tongue": (0.25, 4.0), "close": (0.0, 1.0)},
    "dh": {"jaw": (0.10, 0.5), "tongue": (0.18, 3.0), "close": (0.0, 1.0)},
    "s": {"jaw": (0.06, 1.5), "spread": (0.18, 0.5), "teeth": (0.30, 1.5), "close": (0.0, 1.0)},
    "z": {"jaw": (0.06, 1.5), "spread": (0.15, 0.5), "teeth": (0.28, 1.5), "close": (0.0, 1.0)},
    "sh": {"jaw": (0.09, 1.2), "round": (0.45, 2.0), "pucker": (0.20, 1.0), "teeth": (0.35, 1.5),
           "close": (0.0, 1.0)},
    "zh": {"jaw": (0.09, 1.2), "round": (0.40, 2.0), "pucker": (0.20, 1.0), "teeth": (0.30, 1.5),
           "close": (0.0, 1.0)},
    "ch": {"jaw": (0.08, 1.2), "round": (0.40, 2.0), "pucker": (0.20, 1.0), "teeth": (0.35, 1.5),
           "close": (0.0, 1.0)},
    "jh": {"jaw": (0.08, 1.2), "round": (0.40, 2.0), "pucker": (0.20, 1.0), "teeth": (0.30, 1.5),
           "close": (0.0, 1.0)},
    "t": {"jaw": (0.12, 0.45), "teeth": (0.12, 0.4), "close": (0.0, 0.6)},
    "d": {"jaw": (0.13, 0.4), "close": (0.0, 0.6)},
    "n": {"jaw": (0.12, 0.4), "close": (0.0, 0.6)},
    "l": {"jaw": (0.18, 0.3), "close": (0.0, 0.6)},
    "k": {"jaw": (0.16, 0.35), "close": (0.0, 0.6)},
    "g": {"jaw": (0.16, 0.35), "close": (0.0, 0.6)},
    "ng": {"jaw": (0.14, 0.3), "close": (0.0, 0.6)},
    "hh": {"jaw": (0.25, 0.05)},
    # real lips nearly close and round on w and r
    "w": {"jaw": (0.05, 0.8), "round": (0.40, 2.5), "pucker": (0.80, 2.5), "close": (0.60, 1.5)},
    "r": {"jaw": (0.10, 0.5), "round": (0.40, 2.0), "pucker": (0.40, 2.0), "close": (0.35, 1.0)},
    "y": {"jaw": (0.08, 0.6), "spread": (0.30, 1.0), "teeth": (0.15, 0.6)},
}
for _d, (_a, _b) in DIPHTHONGS.items():
    VISEMES[_d] = VISEMES[_a]  # onset; the teacher adds the offglide as a second target

# How far ahead of its centre (s) a phone starts to pull a control (anticipation) and how long
# it lingers after (carry-over). Rounding and lip closure are anticipated well ahead.
ANTICIPATION_S = {"jaw": 0.07, "close": 0.03, "press": 0.03, "round": 0.14, "pucker": 0.14, "spread": 0.09,
                  "lowerlip": 0.05, "teeth": 0.06, "tongue": 0.04}
# Shape of the dominance fall-off exp(-(d / tau) ** power): lip seal and press switch sharply
# (the lips meet for a bilabial and part right after), the rest blend smoothly.
SHAPE_POWER = {"close": 2.5, "press": 2.5}
DEFAULT_SHAPE_POWER = 1.5

CARRYOVER_S = {"jaw": 0.05, "close": 0.025, "press": 0.025, "round": 0.08, "pucker": 0.08, "spread": 0.06,
               "lowerlip": 0.03, "teeth": 0.04, "tongue": 0.03}


def targets(phone: str) -> dict[str, tuple[float, float]]:
    """``{control: (target, dominance)}`` for every control (defaults filled in)."""
    if phone not in VISEMES:
        raise KeyError(f"no viseme for phone {phone!r}")
    base = VISEMES[phone]
    vowel = phone in VOWELS
    out = {}
    for c in CONTROLS:
        if vowel and c in ("close", "press"):
            dflt = VOWEL_SEAL_DOMINANCE
        else:
            dflt = VOWEL_DEFAULT_DOMINANCE if vowel else CONSONANT_DEFAULT_DOMINANCE
        out[c] = base.get(c, (0.0, dflt))
    return out


def offglide(phone: str) -> str | None:
    """The second target of a diphthong (``ay`` -> ``iy``), else None."""
    return DIPHTHONGS.get(phone, (None, None))[1]
