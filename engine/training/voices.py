"""The voice inventory for corpus synthesis and which voices are held out (split ``test``).

Held out by default: flite ``awb`` (a whole speaker), festival ``kal_diphone`` (the diphone
engine speaker), espeak-ng's Scottish accent (all its variants) and four espeak-ng variants in
every accent. ``--test-engines`` on ``facecast data synth`` holds out whole engines as well.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.audio.tts import EspeakEngine, Voice, festival_voices, flite_voices

ESPEAK_ACCENTS = ("en-us", "en", "en-gb-x-rp", "en-gb-scotland", "en-gb-x-gbclan",
                  "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
# natural-ish variants only (no robots, whispers or effects)
ESPEAK_VARIANTS = ("", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
                   "klatt", "klatt2", "klatt3", "klatt4", "Alex", "Alicia", "Andrea", "Andy", "Annie",
                   "Denis", "Gene", "Hugo", "Jacky", "Lee", "Marco", "Michael", "Mike", "adam",
                   "anika", "announcer", "antonio", "aunty", "belinda", "benjamin", "boris", "caleb",
                   "david", "ed", "edward", "grandma", "grandpa", "gustave", "iven", "john", "linda",
                   "max", "michel", "norbert", "pablo", "paul", "pedro", "quincy", "rob", "robert",
                   "sandro", "shelby", "steph", "travis", "victor")
TEST_VOICES = frozenset({"flite:awb", "festival:kal_diphone"})
TEST_ESPEAK_ACCENTS = frozenset({"en-gb-scotland"})
TEST_ESPEAK_VARIANTS = frozenset({"m7", "f4", "edward", "klatt3"})

# share of clean utterances per engine, and per voice within flite / festival
ENGINE_SHARE = {"espeak": 0.4, "flite": 0.4, "festival": 0.2}
FESTIVAL_VOICE_WEIGHT = {"cmu_us_slt_arctic_hts": 0.7, "kal_diphone": 0.3}


def is_test_voice(voice_id: str, test_engines: frozenset[str] = frozenset()) -> bool:
    engine, _, name = voice_id.partition(":")
    if engine in test_engines or voice_id in TEST_VOICES:
        return True
    if engine == "espeak":
        accent, _, variant = name.partition("+")
        return accent in TEST_ESPEAK_ACCENTS or variant in TEST_ESPEAK_VARIANTS
    return False


@dataclass
class VoicePicker:
    """Draws a voice (with per-utterance prosody) for each utterance, engine by engine share."""
    engines: tuple[str, ...]

    def __post_init__(self) -> None:
        self._pools: dict[str, list[tuple[str, float]]] = {}
        if "espeak" in self.engines and EspeakEngine.available():
            names = [a + ("+" + v if v else "") for a in ESPEAK_ACCENTS for v in ESPEAK_VARIANTS]
            self._pools["espeak"] = [(n, 1.0) for n in names]
        if "flite" in self.engines:
            self._pools["flite"] = [(v, 1.0) for v in flite_voices()]
        if "festival" in self.engines:
            self._pools["festival"] = [(v, FESTIVAL_VOICE_WEIGHT.get(v, 0.5)) for v in festival_voices()]
        self._pools = {k: v for k, v in self._pools.items() if v}
        if not self._pools:
            raise RuntimeError("no TTS engine is installed (need espeak-ng, flite or festival)")

    @property
    def available_engines(self) -> list[str]:
        return sorted(self._pools)

    def pick(self, rng: np.random.Generator) -> Voice:
        engines = self.available_engines
        share = np.array([ENGINE_SHARE.get(e, 0.2) for e in engines])
        engine = engines[rng.choice(len(engines), p=share / share.sum())]
        names, weights = zip(*self._pools[engine])
        w = np.asarray(weights) / sum(weights)
        name = names[rng.choice(len(names), p=w)]
        if engine == "espeak":
            return Voice("espeak", name, rate=float(rng.uniform(0.8, 1.35)),
                         pitch=float(rng.uniform(0.3, 0.7)), pitch_range=float(rng.uniform(0.3, 0.9)))
        if engine == "flite":
            return Voice("flite", name, rate=float(rng.uniform(0.85, 1.2)))
        # festival's HTS voice ignores Duration_Stretch; tempo augmentation varies it instead
        return Voice("festival", name, rate=float(rng.uniform(0.85, 1.15)))
