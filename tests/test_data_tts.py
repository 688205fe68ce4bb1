"""Each TTS engine gives audio plus ARPAbet phones that tile the utterance (skips if missing)."""
import numpy as np
import pytest

from engine.audio.phones import PHONE_SET, UnknownPhoneError, map_phone, normalise
from engine.audio.tts import (EspeakEngine, FestivalEngine, FliteEngine, Voice, festival_voices,
                             flite_voices)

TEXT = "Bob may move the big wet rope."


def _check(syn):
    assert syn.audio.dtype == np.float32 and syn.audio.ndim == 1
    dur = len(syn.audio) / syn.sample_rate
    assert 1.0 < dur < 6.0
    assert set(syn.phones) <= PHONE_SET
    assert np.all(syn.ends > syn.starts)
    assert np.all(np.diff(syn.starts) > 0)
    assert np.allclose(syn.starts[1:], syn.ends[:-1], atol=1e-6)       # phones tile the time
    assert syn.starts[0] == pytest.approx(0.0, abs=1e-6)
    assert syn.ends[-1] == pytest.approx(dur, abs=0.02)
    spoken = [p for p in syn.phones if p != "sil"]
    # "Bob may move ... big ... rope": the bilabials and the rounded vowel are there
    assert spoken.count("b") >= 2 and "m" in spoken and "p" in spoken and "uw" in spoken
    assert np.abs(syn.audio).max() > 0.01


@pytest.mark.skipif(not EspeakEngine.available(), reason="libespeak-ng not installed")
@pytest.mark.parametrize("voice", ["en-us", "en-gb-x-rp+f3"])
def test_espeak_phone_events(voice):
    syn = EspeakEngine().synth(TEXT, Voice("espeak", voice, rate=1.1))
    _check(syn)
    assert syn.sample_rate == 22050


@pytest.mark.skipif(not FliteEngine.available(), reason="flite not installed")
def test_flite_psdur():
    voices = flite_voices()
    assert "slt" in voices
    _check(FliteEngine().synth(TEXT, Voice("flite", "slt")))


@pytest.mark.skipif(not FestivalEngine.available() or not festival_voices(),
                    reason="festival or its voices not installed")
def test_festival_segments_batch():
    voice = festival_voices()[0]
    out = FestivalEngine().synth_batch([TEXT, "Why are you here?"], Voice("festival", voice))
    assert len(out) == 2
    _check(out[0])
    assert [p for p in out[1].phones if p != "sil"][:2] == ["w", "ay"]


@pytest.mark.skipif(not EspeakEngine.available(), reason="libespeak-ng not installed")
def test_espeak_unknown_voice_is_a_clear_error():
    from engine.audio.tts import TTSError
    with pytest.raises(TTSError, match="no voice"):
        EspeakEngine().synth("hello", Voice("espeak", "xx-nonexistent"))


def test_phone_mapping_and_normalise():
    assert map_phone("pau", "flite") == ["sil"]
    assert map_phone("ax", "festival") == ["ah"]
    assert map_phone("AH0", "sphinx") == ["ah"]
    assert map_phone("@L", "espeak") == ["ah", "l"]
    assert map_phone("t[", "espeak") == ["t"]
    assert map_phone("_:", "espeak") == ["sil"]
    with pytest.raises(UnknownPhoneError):
        map_phone("qq", "flite")
    p, s, e = normalise(["_", "_:", "b", "@L", "_"], [0, .1, .2, .3, .5], [.1, .2, .3, .5, .6], "espeak")
    assert p == ["sil", "b", "ah", "l", "sil"]
    assert s[0] == 0 and e[0] == pytest.approx(0.2)            # the two silences merged
    assert s[3] == pytest.approx(0.3 + 0.2 * 0.6)               # "@L" split 60/40
