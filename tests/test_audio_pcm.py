"""engine/audio/pcm.py: the one int16 rule, validation, and audio-file loading."""
from fractions import Fraction

import av
import numpy as np
import pytest
import soundfile as sf

from engine.audio import MODEL_RATE, OUTPUT_RATE
from engine.audio.pcm import (AudioFormatError, float_to_s16, float_to_s16le, load_audio, s16_to_float,
                              s16le_to_float, to_mono_float)
from engine.config import load_config


def test_every_int16_survives_the_round_trip():
    s = np.arange(-32768, 32768, dtype=np.int16)
    x = s16_to_float(s)
    assert x.dtype == np.float32 and x.min() == -1.0 and x.max() < 1.0
    np.testing.assert_array_equal(float_to_s16(x), s)


def test_float_round_trip_is_within_half_a_step():
    x = np.random.default_rng(0).uniform(-1, 32767 / 32768, 10_000).astype(np.float32)   # 1.0 itself clips
    assert np.abs(s16_to_float(float_to_s16(x)) - x).max() <= 0.5 / 32768 + 1e-9


def test_rounds_to_nearest_not_toward_zero():
    step = 1 / 32768
    x = np.array([0.4 * step, 0.6 * step, -0.6 * step, 2.7 * step, -2.7 * step, 0.5], np.float32)
    assert float_to_s16(x).tolist() == [0, 1, -1, 3, -3, 16384]


def test_clips_before_converting():
    x = np.array([1.0, 1.5, 1e9, -1.0, -1.5, -1e9], np.float64)
    assert float_to_s16(x).tolist() == [32767, 32767, 32767, -32768, -32768, -32768]


def test_s16le_bytes_both_ways():
    x = np.array([0.0, 0.25, -0.25, 1.0], np.float32)
    data = float_to_s16le(x)
    assert data == np.array([0, 8192, -8192, 32767], "<i2").tobytes()
    np.testing.assert_array_equal(s16le_to_float(data), [0.0, 0.25, -0.25, 32767 / 32768])
    with pytest.raises(AudioFormatError, match="even number of bytes"):
        s16le_to_float(b"\x00\x01\x02")


def test_bad_input_is_a_clear_error():
    with pytest.raises(AudioFormatError, match="NaN or inf"):
        float_to_s16(np.array([0.0, np.nan], np.float32))
    with pytest.raises(AudioFormatError, match="expected float PCM"):
        float_to_s16(np.array([1, 2], np.int16))
    with pytest.raises(AudioFormatError, match="expected int16 PCM"):
        s16_to_float(np.array([0.5], np.float32))
    with pytest.raises(AudioFormatError, match="NaN or inf"):
        to_mono_float(np.array([0.0, np.inf], np.float32), MODEL_RATE)


def test_to_mono_float_scales_int16_like_s16_to_float():
    s = np.array([[0, 16384], [-32768, 32767]], np.int16)
    np.testing.assert_array_equal(to_mono_float(s[:, 0], MODEL_RATE), s16_to_float(s[:, 0]))
    # channels are averaged after scaling, so nothing is truncated on the way
    np.testing.assert_allclose(to_mono_float(s, MODEL_RATE), [0.25, -1 / 65536], rtol=1e-6)


def test_config_rates_are_the_constants():
    a = load_config().audio
    assert (a.model_sample_rate, a.output_sample_rate) == (MODEL_RATE, OUTPUT_RATE) == (16000, 48000)


def _tone(rate, seconds=1.0, hz=440.0):
    t = np.arange(int(rate * seconds)) / rate
    return (0.4 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("ext,subtype", [("wav", "PCM_16"), ("wav", "FLOAT"), ("flac", "PCM_24")])
def test_load_soundfile_formats_at_their_own_rate(tmp_path, ext, subtype):
    x = _tone(22050)
    path = tmp_path / f"tone.{ext}"
    sf.write(path, np.stack([x, x], 1), 22050, subtype=subtype)          # stereo: averaged
    y, rate = load_audio(path)
    assert rate == 22050 and y.dtype == np.float32 and y.ndim == 1 and len(y) == len(x)
    np.testing.assert_allclose(y, x, atol=1.5 / 32768)


def test_load_resamples_to_the_asked_rate(tmp_path):
    path = tmp_path / "tone.flac"
    sf.write(path, _tone(44100, hz=300.0), 44100)
    y, rate = load_audio(path, MODEL_RATE)
    assert rate == MODEL_RATE and len(y) == MODEL_RATE
    spectrum = np.abs(np.fft.rfft(y))
    assert np.fft.rfftfreq(len(y), 1 / rate)[spectrum.argmax()] == pytest.approx(300, abs=2)


def test_load_reads_a_video_container_through_ffmpeg(tmp_path):
    path = tmp_path / "speech.m4a"                  # not a libsndfile format
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=48000, layout="mono")
        frame = av.AudioFrame.from_ndarray(_tone(48000)[None], format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 48000, 0, Fraction(1, 48000)
        for conv in av.AudioResampler(format=s.codec_context.format.name, layout="mono", rate=48000).resample(frame):
            for p in s.encode(conv):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    y, rate = load_audio(path, MODEL_RATE)
    assert rate == MODEL_RATE and abs(len(y) / rate - 1.0) < 0.1
    assert 0.2 < np.sqrt(np.mean(y[1600:-1600] ** 2)) < 0.35


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_audio(tmp_path / "missing.wav")
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"this is not audio at all")
    with pytest.raises(AudioFormatError, match="junk.wav"):
        load_audio(junk)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, np.float32), 16000)
    with pytest.raises(AudioFormatError, match="no audio samples"):
        load_audio(empty)
    with pytest.raises(AudioFormatError, match="positive integer"):
        load_audio(empty, 0)
