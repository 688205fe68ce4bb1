"""Text-to-speech engines that report phone timings: espeak-ng, flite, festival.

Every engine returns a :class:`Synthesis` (float32 audio at the engine's own rate plus ARPAbet
phones with start/end seconds, see :mod:`engine.training.phones`). Engines are used in batches per
voice (festival's start-up costs ~0.5 s, so one festival process synthesizes many sentences).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.training.phones import normalise


class TTSError(RuntimeError):
    """A TTS engine failed or is not installed."""


@dataclass
class Synthesis:
    audio: np.ndarray          # float32 mono
    sample_rate: int
    phones: list[str]
    starts: np.ndarray         # float64 seconds
    ends: np.ndarray


@dataclass(frozen=True)
class Voice:
    """One speaker: ``engine`` + engine-specific ``name`` + prosody settings."""
    engine: str
    name: str
    rate: float = 1.0          # speaking-rate factor (1 = engine default)
    pitch: float = 0.5         # espeak pitch 0..1
    pitch_range: float = 0.5   # espeak intonation range 0..1
    extra: tuple = field(default=())

    @property
    def id(self) -> str:
        return f"{self.engine}:{self.name}"


def clean_text(text: str) -> str:
    """Text every engine can take: printable ASCII, no quotes or backslashes."""
    text = re.sub(r"[^A-Za-z0-9 ,.;:!?'\-]", " ", text)
    return re.sub(r"\s+", " ", text).strip()


# --------------------------------------------------------------------------- espeak-ng
class _EvId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", _EvId)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))
_EV_LIST_TERMINATED, _EV_PHONEME = 0, 7
_AUDIO_OUTPUT_SYNCHRONOUS, _INITIALIZE_PHONEME_EVENTS = 2, 1
_ESPEAK_RATE, _ESPEAK_PITCH, _ESPEAK_RANGE = 1, 3, 4
_ESPEAK_ENDPAUSE = 0x1000


class EspeakEngine:
    """libespeak-ng through ctypes; phone starts come from its phoneme events (exact)."""
    name = "espeak"
    default_wpm = 165

    def __init__(self) -> None:
        self._lib = None
        self._rate = 0
        self._chunks: list[np.ndarray] = []
        self._events: list[tuple[str, int]] = []
        self._cb = _CALLBACK(self._on_audio)  # keep a reference: ctypes must not free it

    @staticmethod
    def available() -> bool:
        return _find_espeak_lib() is not None

    def _load(self):
        if self._lib is None:
            path = _find_espeak_lib()
            if path is None:
                raise TTSError("libespeak-ng is not installed (apt-get install libespeak-ng1)")
            lib = ctypes.CDLL(path)
            rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, None, _INITIALIZE_PHONEME_EVENTS)
            if rate <= 0:
                raise TTSError("espeak_Initialize failed")
            lib.espeak_SetSynthCallback(self._cb)
            lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                         ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
            self._lib, self._rate = lib, rate
        return self._lib

    def _on_audio(self, wav, n, events) -> int:
        if n > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (n,)).astype(np.float32) / 32768.0)
        i = 0
        while events[i].type != _EV_LIST_TERMINATED:
            ev = events[i]
            if ev.type == _EV_PHONEME:
                self._events.append((ev.id.string.decode("ascii", "replace"), ev.sample))
            i += 1
        return 0

    def synth(self, text: str, voice: Voice) -> Synthesis:
        lib = self._load()
        if lib.espeak_SetVoiceByName(voice.name.encode()) != 0:
            raise TTSError(f"espeak-ng has no voice {voice.name!r}")
        lib.espeak_SetParameter(_ESPEAK_RATE, int(round(self.default_wpm * voice.rate)), 0)
        lib.espeak_SetParameter(_ESPEAK_PITCH, int(round(100 * voice.pitch)), 0)
        lib.espeak_SetParameter(_ESPEAK_RANGE, int(round(100 * voice.pitch_range)), 0)
        self._chunks, self._events = [], []
        data = clean_text(text).encode("ascii")
        lib.espeak_Synth(data, len(data) + 1, 0, 1, 0, _ESPEAK_ENDPAUSE, None, None)
        lib.espeak_Synchronize()
        if not self._chunks:
            raise TTSError(f"espeak-ng produced no audio for {text!r}")
        audio = np.concatenate(self._chunks)
        dur = len(audio) / self._rate
        labels = [lab for lab, _ in self._events]
        starts = [smp / self._rate for _, smp in self._events]
        ends = starts[1:] + [dur]
        if not labels or starts[0] > 0:
            labels, starts, ends = ["_"] + labels, [0.0] + starts, [starts[0] if starts else dur] + ends
        phones, s, e = normalise(labels, starts, ends, "espeak")
        return Synthesis(audio, self._rate, phones, s, e)


def _find_espeak_lib() -> str | None:
    for cand in ("libespeak-ng.so.1", ctypes.util.find_library("espeak-ng")):
        if not cand:
            continue
        try:
            ctypes.CDLL(cand)
            return cand
        except OSError:
            continue
    return None


# --------------------------------------------------------------------------- flite
class FliteEngine:
    """The flite binary; ``-psdur`` prints ``phone:end_time`` for each segment."""
    name = "flite"

    @staticmethod
    def available() -> bool:
        return shutil.which("flite") is not None

    def synth(self, text: str, voice: Voice) -> Synthesis:
        if not self.available():
            raise TTSError("flite is not installed (apt-get install flite)")
        with tempfile.TemporaryDirectory() as tmp:
            wav = Path(tmp) / "out.wav"
            cmd = ["flite", "-voice", voice.name, "-psdur",
                   "--setf", f"duration_stretch={1.0 / voice.rate:.3f}", "-t", clean_text(text),
                   "-o", str(wav)]
            res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            if res.returncode != 0 or not wav.exists():
                raise TTSError(f"flite failed: {res.stderr.strip()[:300]}")
            audio, sr = sf.read(wav, dtype="float32")
        labels, ends = [], []
        for tok in res.stdout.split():
            if ":" not in tok:
                continue
            lab, _, t = tok.rpartition(":")
            try:
                ends.append(float(t))
                labels.append(lab)
            except ValueError:
                continue
        if not labels:
            raise TTSError(f"flite printed no phone durations for {text!r}")
        dur = len(audio) / sr
        ends[-1] = max(ends[-1], dur)
        starts = [0.0] + ends[:-1]
        phones, s, e = normalise(labels, starts, ends, "flite")
        return Synthesis(audio.reshape(-1), sr, phones, s, e)


# --------------------------------------------------------------------------- festival
class FestivalEngine:
    """festival in batch mode; phones from the utterance's ``Segment`` relation."""
    name = "festival"

    @staticmethod
    def available() -> bool:
        return shutil.which("festival") is not None

    def synth(self, text: str, voice: Voice) -> Synthesis:
        return self.synth_batch([text], voice)[0]

    def synth_batch(self, texts: list[str], voice: Voice) -> list[Synthesis]:
        if not self.available():
            raise TTSError("festival is not installed (apt-get install festival)")
        with tempfile.TemporaryDirectory() as tmp:
            lines = [f"(voice_{voice.name})"]
            if voice.rate != 1.0:
                lines.append(f"(Parameter.set 'Duration_Stretch {1.0 / voice.rate:.3f})")
            for i, t in enumerate(texts):
                t = clean_text(t)
                lines.append(
                    f'(set! utt (utt.synth (Utterance Text "{t}")))\n'
                    f'(utt.save.wave utt "{tmp}/{i}.wav" \'riff)\n'
                    f'(set! fd (fopen "{tmp}/{i}.lab" "w"))\n'
                    "(mapcar (lambda (s) (format fd \"%s %f %f\\n\" (item.name s) "
                    "(item.feat s \"segment_start\") (item.feat s \"end\"))) "
                    "(utt.relation.items utt 'Segment))\n(fclose fd)")
            script = Path(tmp) / "run.scm"
            script.write_text("\n".join(lines) + "\n")
            res = subprocess.run(["festival", "-b", str(script)], capture_output=True, text=True,
                                 timeout=60 + 20 * len(texts))
            out = []
            for i, t in enumerate(texts):
                wav, lab = Path(tmp) / f"{i}.wav", Path(tmp) / f"{i}.lab"
                if not wav.exists() or not lab.exists():
                    raise TTSError(f"festival voice {voice.name} failed on {t!r}: "
                                   f"{(res.stderr or res.stdout).strip()[:300]}")
                audio, sr = sf.read(wav, dtype="float32")
                labels, starts, ends = [], [], []
                for line in lab.read_text().splitlines():
                    parts = line.split()
                    if len(parts) == 3:
                        labels.append(parts[0])
                        starts.append(float(parts[1]))
                        ends.append(float(parts[2]))
                dur = len(audio) / sr
                if labels:
                    ends[-1] = max(ends[-1], dur)
                phones, s, e = normalise(labels, starts, ends, "festival")
                out.append(Synthesis(audio.reshape(-1), sr, phones, s, e))
            return out


ENGINES = {"espeak": EspeakEngine, "flite": FliteEngine, "festival": FestivalEngine}

# flite's voices and festival's voices in the Debian packages facecast.sh installs
FLITE_VOICES = ("slt", "rms", "awb", "kal", "kal16")
FESTIVAL_VOICES = ("cmu_us_slt_arctic_hts", "kal_diphone")


def festival_voices() -> list[str]:
    """Festival voices installed here (directories under /usr/share/festival/voices)."""
    root = Path(os.environ.get("FESTIVAL_VOICES", "/usr/share/festival/voices"))
    found = {p.name for p in root.glob("*/*") if p.is_dir()}
    return [v for v in FESTIVAL_VOICES if v in found]


def flite_voices() -> list[str]:
    if not FliteEngine.available():
        return []
    res = subprocess.run(["flite", "-lv"], capture_output=True, text=True)
    have = set(res.stdout.replace("Voices available:", "").split())
    return [v for v in FLITE_VOICES if v in have]
