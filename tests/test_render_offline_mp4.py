"""facecast render: the session pipeline on a virtual clock into an H.264 + AAC mp4."""
from fractions import Fraction

import av
import numpy as np
import pytest

from engine.cli import main
from engine.commands.render import load_audio
from engine.motion.space import MotionFrame
from engine.pipeline.render import create_renderer

from media_probe import best_lag, envelope, mouth_pixel_change, mouth_roi, speech_bursts


def _write_audio(path, samples, rate=48000, codec=None):
    with av.open(str(path), "w") as c:
        s = c.add_stream(codec or {"wav": "pcm_s16le", "flac": "flac", "ogg": "libopus",
                                   "mp3": "libmp3lame"}[path.suffix[1:]], rate=rate, layout="mono")
        fmt = s.codec_context.format.name
        frame = av.AudioFrame.from_ndarray(samples[None].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
        for p in s.encode(frame if fmt == "flt" else _convert(frame, fmt, rate)):
            c.mux(p)
        for p in s.encode(None):
            c.mux(p)


def _convert(frame, fmt, rate):
    return av.AudioResampler(format=fmt, layout="mono", rate=rate).resample(frame)[0]


def _read(path):
    with av.open(str(path)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
        v_dur, a_dur = float(v.duration * v.time_base), float(a.duration * a.time_base)
        images, times = [], []
        for f in c.decode(video=0):
            images.append(f.to_ndarray(format="rgb24"))
            times.append(float(f.pts * f.time_base))
    with av.open(str(path)) as c:
        resampler = av.AudioResampler(format="flt", layout="mono", rate=48000)
        pcm = np.concatenate([g.to_ndarray().reshape(-1) for f in c.decode(audio=0) for g in resampler.resample(f)])
    return v_dur, a_dur, images, np.array(times), pcm


def test_render_duration_and_lip_sync(tmp_path, config):
    audio, spans = speech_bursts(config, texts=("Hello there.", "How are you today?"), gap_s=0.8)
    wav = tmp_path / "speech.wav"
    _write_audio(wav, audio)
    out = tmp_path / "out.mp4"
    assert main(["render", "--audio", str(wav), "--out", str(out), "--quiet"]) == 0
    v_dur, a_dur, images, times, pcm = _read(out)
    duration = len(audio) / 48000
    assert abs(v_dur - duration) < 0.002 and abs(a_dur - duration) < 0.002
    assert len(images) == -(-len(audio) // 1920)
    assert np.allclose(np.diff(times), 1 / 25)
    # A/V sync: the mouth region's change follows the decoded audio's envelope
    renderer = create_renderer(config)
    activity = mouth_pixel_change(images, mouth_roi(renderer), renderer.render(MotionFrame.neutral()))
    env = envelope(pcm, 48000)
    lag, corr = best_lag(np.arange(len(env)) * 0.01 + 0.005, env, times + 0.02, activity)
    assert corr > 0.5 and abs(lag) <= 0.040, (lag, corr)
    lead_in = times < spans[0][0] - 0.2
    voiced = np.zeros(len(times), bool)
    for start, end in spans:
        voiced |= (times > start) & (times < end)
    # (head sway and the model's resting mouth keep the silent level above zero)
    assert activity[lead_in].mean() < 0.7 * activity[voiced].mean()


@pytest.mark.parametrize("ext", ["flac", "ogg", "mp3"])
def test_compressed_inputs_decode_to_48k_mono(tmp_path, ext):
    t = np.arange(48000) / 48000
    x = (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
    path = tmp_path / f"tone.{ext}"
    _write_audio(path, x, rate=44100 if ext == "mp3" else 48000)
    y = load_audio(path)
    # mp3 keeps its encoder's delay and padding (~0.1 s), as every mp3 decoder without gapless info does
    assert y.dtype == np.float32 and abs(len(y) / 48000 - 1.0) < (0.12 if ext == "mp3" else 0.03)
    assert 0.15 < np.sqrt(np.mean(y[4800:-4800] ** 2)) < 0.25


def test_text_only_render(tmp_path):
    out = tmp_path / "hi.mp4"
    assert main(["render", "--text", "Hi there.", "--out", str(out), "--quiet"]) == 0
    with av.open(str(out)) as c:
        v, a = c.streams.video[0], c.streams.audio[0]
        assert abs(float(v.duration * v.time_base) - float(a.duration * a.time_base)) < 0.002
        assert float(a.duration * a.time_base) > 0.4


def test_bad_inputs_fail_with_a_message(tmp_path, capsys):
    assert main(["render", "--audio", str(tmp_path / "none.wav"), "--out", str(tmp_path / "o.mp4")]) == 1
    assert "does not exist" in capsys.readouterr().out
    junk = tmp_path / "junk.wav"
    junk.write_text("this is not audio")
    assert main(["render", "--audio", str(junk), "--out", str(tmp_path / "o.mp4")]) == 1
    assert "not a readable audio file" in capsys.readouterr().out
    assert main(["render", "--out", str(tmp_path / "o.mp4")]) == 2
