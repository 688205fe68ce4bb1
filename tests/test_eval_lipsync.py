"""facecast eval lipsync on a talking video the test makes itself (espeak-ng speech rendered by facecast).

The "real" video here is the default avatar speaking, so the render of the same audio must
track it closely at lag 0: a check of the whole chain (tracking, container timeline, render).
"""
import asyncio
import json
from fractions import Fraction

import av
import numpy as np
import pytest

from engine.cli import main
from engine.offline_render import render_to_mp4
from engine.config import load_config
from engine.training.lipsync_eval import (NATURAL_LEAD_MS, STAGES, LipsyncEvalError, clip_sync, eval_clip,
                                          lag_sweep, pause_mask, shifted)

TEXT = "Hello there. My name is Facecast, and I am talking about the weather today."


@pytest.fixture(scope="module")
def talking_video(tmp_path_factory):
    from engine.audio.tts import Speaker

    config = load_config(None)
    audio = Speaker(config.tts).synthesize(TEXT)
    out = tmp_path_factory.mktemp("lipsync") / "avatar_talking.mp4"
    asyncio.run(render_to_mp4(config, audio, 16000, out, progress=False))
    return out


def _write_video(path, frames: int = 25, audio: bool = True):
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=25)
        v.width, v.height, v.pix_fmt = 160, 160, "yuv420p"
        a = c.add_stream("aac", rate=48000, layout="mono") if audio else None
        t = np.arange(48000 * frames // 25) / 48000
        for k in range(frames):
            img = np.full((160, 160, 3), 90 + k, np.uint8)
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)
        if a is not None:
            f = av.AudioFrame.from_ndarray((0.3 * np.sin(2 * np.pi * 220 * t))[None].astype(np.float32),
                                           format="flt", layout="mono")
            f.sample_rate, f.pts, f.time_base = 48000, 0, Fraction(1, 48000)
            for p in list(a.encode(f)) + list(a.encode(None)):
                c.mux(p)


def test_eval_on_the_avatars_own_render(talking_video, capsys):
    rc = main(["eval", "lipsync", str(talking_video), "--avatar", "assets/default.avatar", "--json"])
    assert rc == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["errors"] == [] and len(out["clips"]) == 1
    clip = out["clips"][0]
    assert set(clip["stages"]) == set(STAGES)
    for name, st in clip["stages"].items():
        assert st["r"] is not None and -1 <= st["r"] <= 1, name
        assert abs(st["lag_ms"]) <= 40 and abs(st["sweep_best_lag_ms"]) <= 120, name
        assert len(st["sweep"]) == 25 and st["sweep"][str(st["lag_ms"])] == st["r"], name
        assert (st["pause_closure"] is None) == (name not in ("rig", "render")), name
    render = clip["stages"]["render"]
    # same avatar, same audio, same pipeline: the render must follow "real" at (nearly) zero lag
    assert render["r"] > 0.9 and abs(render["lag_ms"]) <= 10, render
    assert 0.7 < render["range_ratio"] < 1.4
    mean = out["mean"]["all"]
    assert mean["clips"] == 1 and mean["render_beats_loudness_share"] in (0.0, 1.0)
    assert mean["render"]["r"] == render["r"]


def test_no_face_no_audio_unreadable(tmp_path, capsys):
    cfg = load_config(None)
    blank = tmp_path / "blank.mp4"
    _write_video(blank)
    with pytest.raises(LipsyncEvalError, match="no face"):
        eval_clip(blank, cfg, "assets/default.avatar")
    silent = tmp_path / "silent.mp4"
    _write_video(silent, audio=False)
    with pytest.raises(LipsyncEvalError, match="no audio track"):
        eval_clip(silent, cfg, "assets/default.avatar")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video at all" * 10)
    with pytest.raises(LipsyncEvalError, match="not a readable video"):
        eval_clip(junk, cfg, "assets/default.avatar")
    assert main(["eval", "lipsync", str(blank), "--json"]) == 1
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["clips"] == [] and "no face" in out["errors"][0]["error"]


def test_lag_sweep_finds_a_known_shift_and_pauses():
    rng = np.random.default_rng(0)
    x = np.convolve(rng.standard_normal(1000), np.ones(8) / 8, "same")
    real = np.roll(x, 5)                 # the real curve 50 ms later than x
    sweep = lag_sweep(real, x)
    assert max(sweep, key=sweep.get) == 50 and len(sweep) == 25
    db = np.full(300, -20.0)
    db[100:160] = -80.0                  # a 600 ms pause, trimmed 50 ms each side
    db[200:210] = -80.0                  # 100 ms: too short to be a pause
    m = pause_mask(db)
    assert m.sum() == 50 and m[105:155].all() and not m[200:210].any()


def _smooth_noise(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.convolve(rng.standard_normal(n), np.ones(8) / 8, "same")


@pytest.mark.parametrize("offset_ms", [-250, -120, 90])
def test_clip_sync_re_times_an_offset_clip_to_the_natural_lead(offset_ms):
    teacher = _smooth_noise(3000, 1)
    # an in-sync real mouth leads the teacher by 30 ms; this clip's video is offset on top of it
    real = np.roll(teacher, (NATURAL_LEAD_MS + offset_ms) // 10) + 0.3 * _smooth_noise(3000, 2)
    shift = clip_sync(real, teacher)
    assert shift == offset_ms
    fixed = lag_sweep(shifted(real, shift), teacher, 60)
    assert max(fixed, key=fixed.get) == NATURAL_LEAD_MS


def test_clip_sync_leaves_in_sync_and_unclear_clips_alone():
    teacher = _smooth_noise(3000, 1)
    in_sync = np.roll(teacher, NATURAL_LEAD_MS // 10 - 2)          # 20 ms more lead: inside the window
    assert clip_sync(in_sync, teacher) == 0
    unrelated = _smooth_noise(3000, 3)                            # no peak worth trusting
    assert clip_sync(unrelated, teacher) == 0
    x = np.arange(10, dtype=float)
    np.testing.assert_array_equal(shifted(x, 20)[:8], x[2:])
    assert np.isnan(shifted(x, 20)[8:]).all() and np.isnan(shifted(x, -20)[:2]).all()
