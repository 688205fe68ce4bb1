"""Server-side text-to-speech with espeak-ng: text in, 16 kHz mono float32 PCM out.

The ``espeak-ng`` binary writes a WAV to stdout (22050 Hz s16le mono, with the
RIFF sizes left at 0x7fffffff because it streams), so the header is parsed by
hand and the samples are resampled to the model rate with a polyphase filter.
Settings come from the ``[tts]`` section of the config.
"""
from __future__ import annotations

import asyncio
import shutil
import struct
import subprocess
from fractions import Fraction

import numpy as np
from scipy.signal import resample_poly

from engine.config import TTSConfig

MAX_TEXT_CHARS = 5000
OUTPUT_SAMPLE_RATE = 16000
_TIMEOUT_S = 60.0


class TTSError(RuntimeError):
    """Text that cannot be spoken, or an espeak-ng that is missing or failed."""


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


class Speaker:
    """espeak-ng with one voice and rate; ``synthesize`` is blocking, ``speak`` is its async form."""

    def __init__(self, config: TTSConfig | None = None, binary: str = "espeak-ng"):
        self.config = config or TTSConfig()
        self.binary = shutil.which(binary)

    def synthesize(self, text: str, voice: str | None = None, rate_wpm: int | None = None) -> np.ndarray:
        """Speak ``text``; return float32 mono samples in [-1, 1] at 16 kHz."""
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
        audio = pcm.astype(np.float32) / 32768.0
        if rate_in != OUTPUT_SAMPLE_RATE:
            ratio = Fraction(OUTPUT_SAMPLE_RATE, rate_in)
            audio = resample_poly(audio, ratio.numerator, ratio.denominator).astype(np.float32)
        return np.clip(audio, -1.0, 1.0)

    async def speak(self, text: str, voice: str | None = None, rate_wpm: int | None = None) -> np.ndarray:
        """``synthesize`` in a worker thread, so the event loop keeps serving."""
        return await asyncio.to_thread(self.synthesize, text, voice, rate_wpm)
