"""Audio ingest: validation, exact streaming resampling, voice activity."""
from math import gcd

import numpy as np
import pytest
from scipy.signal import resample_poly

from engine.audio.pcm import AudioFormatError, s16le_to_float, to_mono_float
from engine.audio.resample import StreamingResampler, resample
from engine.audio.vad import VoiceActivityDetector


@pytest.mark.parametrize("src,dst", [(16000, 48000), (48000, 16000), (24000, 16000), (24000, 48000),
                                     (22050, 16000), (44100, 48000), (16000, 16000)])
@pytest.mark.parametrize("max_chunk", [700, 20000])   # small pushes: one gather; large: per-phase products
def test_streaming_resampler_equals_resample_poly_for_any_chunking(src, dst, max_chunk):
    rng = np.random.default_rng(src + dst)
    x = (0.3 * rng.standard_normal(max(9001, 3 * max_chunk))).astype(np.float32)
    g = gcd(src, dst)
    ref = resample_poly(x.astype(np.float64), dst // g, src // g)
    r = StreamingResampler(src, dst)
    parts, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, max_chunk))
        parts.append(r.push(x[i:i + n]))
        i += n
    parts.append(r.flush())
    y = np.concatenate(parts)
    assert len(y) == len(ref) == -(-len(x) * dst // src)
    np.testing.assert_allclose(y, ref, atol=1e-6)


def test_resampled_tone_keeps_its_frequency_and_timing():
    t = np.arange(16000) / 16000
    x = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    y = resample(x, 16000, 48000)
    t48 = np.arange(len(y)) / 48000
    ref = np.sin(2 * np.pi * 440 * t48)
    # away from the edges the resampled tone matches the ideal one sample for sample (no delay)
    assert np.abs(y[2000:-2000] - ref[2000:-2000]).max() < 1e-2


def test_bad_pcm_gets_clear_errors():
    with pytest.raises(AudioFormatError, match="unsupported sample rate 11025"):
        to_mono_float(np.zeros(10, np.float32), 11025)
    with pytest.raises(AudioFormatError, match="NaN or inf"):
        to_mono_float(np.array([0.0, np.nan], np.float32), 16000)
    with pytest.raises(AudioFormatError, match="NaN or inf"):
        to_mono_float(np.array([0.0, np.inf], np.float32), 16000)
    with pytest.raises(AudioFormatError, match="shape"):
        to_mono_float(np.zeros((2, 2, 2), np.float32), 16000)
    with pytest.raises(AudioFormatError, match="dtype"):
        to_mono_float(np.zeros(4, np.int32), 16000)
    with pytest.raises(AudioFormatError, match="even number of bytes"):
        s16le_to_float(b"\x00\x01\x02")
    with pytest.raises(AudioFormatError, match="unsupported sample rate"):
        StreamingResampler(12345, 16000)


def test_pcm_conversion():
    x = to_mono_float(np.array([0, 16384, -32768], np.int16), 16000)
    np.testing.assert_allclose(x, [0.0, 0.5, -1.0])
    stereo = np.stack([np.ones(4), -np.ones(4)], axis=1).astype(np.float32)
    np.testing.assert_allclose(to_mono_float(stereo, 48000), np.zeros(4))


def test_vad_finds_voice_onset_and_end_with_hangover():
    sr = 16000
    t = np.arange(sr * 2) / sr
    x = np.where((t >= 0.5) & (t < 1.0), 0.2 * np.sin(2 * np.pi * 200 * t), 0.0).astype(np.float32)
    x += (1e-4 * np.random.default_rng(0).standard_normal(len(x))).astype(np.float32)
    vad = VoiceActivityDetector(sr, threshold_db=-45, hangover_ms=200, min_speech_ms=40)
    changes, pos = [], 0
    for i in range(0, len(x), 480):   # 30 ms chunks
        changes += [(pos + off, on) for off, on in vad.push(x[i:i + 480])]
        pos += len(x[i:i + 480])
    assert [on for _, on in changes] == [True, False]
    onset, end = changes[0][0] / sr, changes[1][0] / sr
    assert abs(onset - 0.5) <= 0.021
    assert 1.15 <= end <= 1.25


def test_vad_ignores_a_click():
    x = np.zeros(16000, np.float32)
    x[8000:8100] = 0.5     # 6 ms click, shorter than min_speech_ms
    vad = VoiceActivityDetector(16000, -45, 200, min_speech_ms=40)
    assert vad.push(x) == []
