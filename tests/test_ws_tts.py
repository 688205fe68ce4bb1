"""Server-side TTS (engine/audio/tts.py: Speaker) with the real espeak-ng."""
import shutil

import numpy as np
import pytest

from engine.config import TTSConfig
from engine.audio.tts import Speaker, TTSError, _parse_wav

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")


def test_speech_is_16k_float_with_plausible_duration():
    audio = Speaker().synthesize("The quick brown fox jumps over the lazy dog.")
    assert audio.dtype == np.float32 and audio.ndim == 1
    duration = len(audio) / 16000
    assert 1.5 < duration < 5.0
    assert np.abs(audio).max() <= 1.0
    # speech, not silence: the loudest 100 ms window is well above the noise floor
    frames = audio[: len(audio) // 1600 * 1600].reshape(-1, 1600)
    rms = np.sqrt((frames ** 2).mean(axis=1))
    assert rms.max() > 0.05 and rms.min() < 0.01


def test_rate_from_config_and_per_call():
    text = "Speaking faster makes shorter audio."
    slow = Speaker(TTSConfig(rate_wpm=120)).synthesize(text)
    fast = Speaker(TTSConfig(rate_wpm=120)).synthesize(text, rate_wpm=300)
    assert len(fast) < 0.7 * len(slow)


@pytest.mark.parametrize("text", ["", "   ", "x" * 6000])
def test_bad_text_is_refused(text):
    with pytest.raises(TTSError):
        Speaker().synthesize(text)


def test_unknown_voice_is_a_clear_error():
    with pytest.raises(TTSError, match="espeak-ng"):
        Speaker().synthesize("hello", voice="zz-nonexistent")
    with pytest.raises(TTSError, match="not valid"):
        Speaker().synthesize("hello", voice="en; rm -rf /")


def test_text_starting_with_dash_is_spoken_not_parsed():
    assert len(Speaker().synthesize("-v nonsense --help")) > 8000


def test_wav_parser_rejects_garbage():
    with pytest.raises(TTSError):
        _parse_wav(b"not a wav file at all")
