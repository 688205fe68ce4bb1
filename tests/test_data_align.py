"""Forced alignment (pocketsphinx) recovers TTS phone times; align writes the corpus npz layout."""
import json

import numpy as np
import pytest
import soundfile as sf

from engine.cli import main
from engine.audio.pcm import load_audio
from engine.training.align import align
from engine.training.synth import make_clean
from engine.audio.tts import FliteEngine, Voice

TEXT = "The boy will move the big blue box before noon."


@pytest.fixture(scope="module")
def flite_utt():
    if not FliteEngine.available():
        pytest.skip("flite not installed")
    return make_clean(FliteEngine().synth(TEXT, Voice("flite", "slt")), np.random.default_rng(0))


def test_forced_alignment_matches_tts_labels(flite_utt):
    audio, phones, starts, ends = flite_utt
    al = align(audio, TEXT)
    spoken = [p for p in al.phones if p != "sil"]
    assert spoken == [p for p in phones if p != "sil"]
    ref = {i: s for i, (p, s) in enumerate(zip(phones, starts)) if p != "sil"}
    got = [s for p, s in zip(al.phones, al.starts) if p != "sil"]
    err = np.abs(np.array(got) - np.array(list(ref.values())))
    assert np.median(err) < 0.03                     # ~10 ms typical; 30 ms is a clear failure bar


def test_without_text_recognises_or_decodes_phones(flite_utt):
    audio = flite_utt[0]
    for mode in ("asr", "allphone"):
        al = align(audio, None, mode)
        spoken = [p for p in al.phones if p != "sil"]
        assert len(spoken) > 15
        assert np.all(al.ends > al.starts) and al.ends[-1] == pytest.approx(len(audio) / 16000, abs=0.02)


def test_align_cli_writes_npz(flite_utt, tmp_path):
    wav = tmp_path / "u.wav"
    sf.write(wav, flite_utt[0], 16000)
    out = tmp_path / "u.npz"
    assert main(["data", "align", str(wav), "--text", TEXT, "--out", str(out)]) == 0
    z = np.load(out)
    assert z["motion"].shape[1] == 58 and len(z["motion"]) == int(np.ceil(len(z["audio"]) / 640))
    assert "b" in list(z["phones"])


def test_bad_input_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_audio(tmp_path / "missing.wav")
    assert main(["data", "align", str(tmp_path / "missing.wav")]) == 1
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio")
    assert main(["data", "align", str(bad)]) == 1
    assert "error" in capsys.readouterr().err


def test_long_audio_is_cut_in_its_pauses():
    from engine.training.align import split_points
    t = np.arange(50 * 16000) / 16000
    x = (0.3 * np.sin(2 * np.pi * 200 * t)).astype(np.float32)
    x[int(13.0 * 16000):int(13.6 * 16000)] = 0.0           # a pause at 13.0-13.6 s
    x[int(30.0 * 16000):int(30.5 * 16000)] = 0.0           # and at 30.0-30.5 s
    cuts = np.array(split_points(x)) / 16000
    assert len(cuts) == 2
    assert 13.0 <= cuts[0] <= 13.6 and 30.0 <= cuts[1] <= 30.5


def test_align_builds_a_corpus_from_recordings(flite_utt, tmp_path):
    for name in ("a", "b"):
        sf.write(tmp_path / f"{name}.wav", flite_utt[0], 16000)
    (tmp_path / "a.txt").write_text(TEXT)                  # a transcript next to the file is used
    (tmp_path / "b.txt").write_text(TEXT)
    corpus = tmp_path / "mine"
    assert main(["data", "align", str(tmp_path / "a.wav"), str(tmp_path / "b.wav"), "--corpus", str(corpus)]) == 0
    rows = [json.loads(x) for x in (corpus / "manifest.jsonl").read_text().splitlines()]
    assert [r["id"] for r in rows] == ["a", "b"] and all(r["engine"] == "real" for r in rows)
    z = np.load(corpus / rows[0]["path"])
    assert str(z["text"]) == " ".join(TEXT.lower().rstrip(".").split())
    assert main(["data", "align", str(tmp_path / "a.wav"), str(tmp_path / "b.wav"), "--out", "x.npz"]) == 2
