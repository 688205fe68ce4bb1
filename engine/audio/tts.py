"""Text-to-speech: the live ``Speaker`` and the corpus engines with phone timings.

* :class:`Speaker` (live, ``speak`` text over the WebSocket API, ``facecast render --text``): the
  ``espeak-ng`` binary writes a WAV to stdout (22050 Hz s16le mono, with the RIFF sizes left at
  0x7fffffff because it streams), so the header is parsed by hand and the samples are resampled
  to the model rate. Settings come from the ``[tts]`` section of the config.
* Corpus engines (``facecast data synth``, ``data align``): espeak-ng (libespeak-ng through
  ctypes), flite, festival. Each returns a :class:`Synthesis` (float32 audio at the engine's own
  rate plus ARPAbet phones with start/end seconds, see :mod:`engine.audio.phones`). Engines are
  used in batches per voice (festival's start-up costs ~0.5 s, so one festival process
  synthesizes many sentences).

Every failure is a :class:`TTSError`.
"""
from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import re
import shutil
import struct
import subprocess
import tempfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf

from engine.audio import MODEL_RATE
from engine.audio.pcm import s16_to_float
from engine.audio.phones import normalise
from engine.config import TTSConfig

MAX_TEXT_CHARS = 5000
OUTPUT_SAMPLE_RATE = MODEL_RATE   # the rate of the Speaker's samples
_TIMEOUT_S = 60.0


class TTSError(RuntimeError):
    """Text that cannot be spoken, or a TTS engine (espeak-ng, flite, festival) missing or failed."""


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


# --------------------------------------------------------------------------- live: espeak-ng binary
def _parse_wav(data: bytes) -> tuple[np.ndarray, int]:
    """(int16 samples, sample rate) of a streamed PCM WAV (sizes in the header may be bogus)."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise TTSError("espeak-ng did not write a WAV file")
    pos, rate, channels, bits = 12, None, 1, 16
    while pos + 8 <= len(data):
        tag, size = data[pos:pos + 4], struct.unpack("<I", data[pos + 4:pos + 8])[0]
        body = pos + 8
        if tag == b"fmt ":
            fmt, channels, rate, _, _, bits = struct.unpack("<HHIIHH", data[body:body + 16])
            if fmt != 1 or bits != 16:
                raise TTSError(f"espeak-ng wrote an unexpected WAV format ({fmt=}, {bits=})")
        elif tag == b"data":
            if rate is None:
                raise TTSError("WAV data chunk before its fmt chunk")
            payload = data[body:]  # streamed: the size field is not to be trusted
            payload = payload[: len(payload) - len(payload) % (2 * channels)]
            pcm = np.frombuffer(payload, "<i2").reshape(-1, channels)[:, 0]
            return pcm, rate
        pos = body + size + (size & 1)
    raise TTSError("espeak-ng wrote a WAV without a data chunk")


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_CLAUSE_END = re.compile(r"(?<=[,;:\u2014)])\s+")
FIRST_PIECE_CHARS = 80     # the first piece is kept short: it alone delays playback.started
MAX_PIECE_CHARS = 240


def split_for_speech(text: str, first_max: int = FIRST_PIECE_CHARS, max_chars: int = MAX_PIECE_CHARS) -> list[str]:
    """``text`` as pieces to synthesize one after the other: sentences; a sentence longer than
    ``max_chars`` (``first_max`` for the first piece) is cut at clause marks (, ; : —), then at
    word boundaries. Pieces with nothing to pronounce are merged into a neighbour. Joined with
    spaces they give back the text's words in order."""
    sentences = [p.strip() for p in _SENTENCE_END.split(text) if p and p.strip()]
    pieces: list[str] = []
    for sentence in sentences:
        pieces.extend(_cut(sentence, first_max if not pieces else max_chars, max_chars))
    merged: list[str] = []
    for piece in pieces:
        if merged and not any(c.isalnum() for c in piece):
            merged[-1] += " " + piece
        elif merged and not any(c.isalnum() for c in merged[-1]):
            merged[-1] += " " + piece
        else:
            merged.append(piece)
    return merged


def _cut(sentence: str, first_max: int, max_chars: int) -> list[str]:
    out: list[str] = []
    rest = sentence
    while len(rest) > (first_max if not out else max_chars):
        limit = first_max if not out else max_chars
        cut = None
        for m in _CLAUSE_END.finditer(rest, 0, limit + 1):
            if m.start() >= 12:          # not a one-word clause
                cut = m
        if cut is not None:
            head, rest = rest[:cut.start()], rest[cut.end():]
        else:
            space = rest.rfind(" ", 12, limit + 1)
            if space < 0:
                break                    # one long word: leave it whole
            head, rest = rest[:space], rest[space + 1:]
        out.append(head.strip())
    if rest.strip():
        out.append(rest.strip())
    return out


class Speaker:
    """espeak-ng with one voice and rate; ``synthesize`` is blocking, ``speak`` is its async form."""

    def __init__(self, config: TTSConfig | None = None, binary: str = "espeak-ng"):
        self.config = config or TTSConfig()
        self.binary = shutil.which(binary)
        import scipy.signal  # noqa: F401  (now, not in the first `speak`: the import takes ~1 s)

    def synthesize(self, text: str, voice: str | None = None, rate_wpm: int | None = None) -> np.ndarray:
        """Speak ``text``; return float32 mono samples in [-1, 1] at ``OUTPUT_SAMPLE_RATE``."""
        if not isinstance(text, str) or not text.strip():
            raise TTSError("nothing to speak: the text is empty")
        if len(text) > MAX_TEXT_CHARS:
            raise TTSError(f"text of {len(text)} characters is longer than the limit of {MAX_TEXT_CHARS}")
        if self.binary is None:
            raise TTSError("espeak-ng is not installed (apt-get install espeak-ng)")
        voice = voice or self.config.voice
        rate = int(rate_wpm or self.config.rate_wpm)
        if not 60 <= rate <= 450:
            raise TTSError(f"rate_wpm {rate} is outside 60..450")
        if not voice.replace("-", "").replace("+", "").replace("_", "").isalnum():
            raise TTSError(f"voice name {voice!r} is not valid")
        # "--" ends the options, so text that starts with "-" is spoken, not parsed.
        cmd = [self.binary, "--stdout", "-v", voice, "-s", str(rate), "--", text]
        try:
            proc = subprocess.run(cmd, capture_output=True, timeout=_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as e:
            raise TTSError(f"espeak-ng took longer than {_TIMEOUT_S:.0f} s") from e
        if proc.returncode != 0 or not proc.stdout:
            msg = proc.stderr.decode(errors="replace").strip() or f"exit status {proc.returncode}"
            raise TTSError(f"espeak-ng failed: {msg}")
        pcm, rate_in = _parse_wav(proc.stdout)
        audio = s16_to_float(pcm)
        if rate_in != OUTPUT_SAMPLE_RATE:
            ratio = Fraction(OUTPUT_SAMPLE_RATE, rate_in)
            from scipy.signal import resample_poly
            audio = resample_poly(audio, ratio.numerator, ratio.denominator).astype(np.float32)
        return np.clip(audio, -1.0, 1.0)

    async def speak(self, text: str, voice: str | None = None, rate_wpm: int | None = None) -> np.ndarray:
        """``synthesize`` in a worker thread, so the event loop keeps serving."""
        return await asyncio.to_thread(self.synthesize, text, voice, rate_wpm)


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
            self._chunks.append(s16_to_float(np.ctypeslib.as_array(wav, (n,))))
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
