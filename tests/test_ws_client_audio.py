"""The Python client's audio helpers: any wav becomes s16le mono at a rate the server takes."""
import numpy as np
import pytest
import soundfile

from ws_support import CLIENT_DIR  # noqa: F401 (puts clients/python on sys.path)

from facecast_client import load_wav_pcm16
from facecast_client.client import float_to_pcm16


def _peak_hz(pcm: bytes, rate: int) -> float:
    x = np.frombuffer(pcm, "<i2").astype(np.float32)
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[spectrum.argmax()])


@pytest.mark.parametrize("rate,keeps", [(48000, True), (24000, True), (44100, False), (22050, False)])
def test_wav_rates_are_kept_or_resampled_to_16k(tmp_path, rate, keeps):
    t = np.arange(int(1.5 * rate)) / rate
    stereo = np.stack([0.5 * np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 440 * t)], axis=1)
    path = tmp_path / "tone.wav"
    soundfile.write(path, stereo, rate, subtype="FLOAT")
    pcm, out_rate = load_wav_pcm16(path)
    assert out_rate == (rate if keeps else 16000)
    assert len(pcm) == 2 * round(1.5 * out_rate)
    assert _peak_hz(pcm, out_rate) == pytest.approx(440, abs=2)


def test_float_to_pcm16_clips_and_cleans():
    pcm = np.frombuffer(float_to_pcm16(np.array([0.0, 2.0, -2.0, np.nan, np.inf, -np.inf, 0.5])), "<i2")
    # the server's rule (engine/audio/pcm.py): clip, scale by 32768, round to nearest
    assert pcm.tolist() == [0, 32767, -32768, 0, 32767, -32768, 16384]


def test_unreadable_files_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such audio file"):
        load_wav_pcm16(tmp_path / "missing.wav")
    (tmp_path / "junk.wav").write_bytes(b"this is not audio")
    with pytest.raises(ValueError, match="cannot read"):
        load_wav_pcm16(tmp_path / "junk.wav")
