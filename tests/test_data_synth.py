"""``facecast data synth`` writes the ARCHITECTURE.md corpus format (tiny corpus, one process)."""
import json
import math

import numpy as np
import pytest

from engine.cli import main
from engine.training.augment import sox_available
from engine.training.synth import synthesize
from engine.audio.tts import EspeakEngine, FliteEngine
from engine.training.voices import is_test_voice
from engine.motion.space import VECTOR_DIM

pytestmark = pytest.mark.skipif(not (EspeakEngine.available() or FliteEngine.available()),
                                reason="no espeak-ng or flite")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("corpus")
    engines = tuple(e for e, ok in (("espeak", EspeakEngine.available()), ("flite", FliteEngine.available())) if ok)
    stats = synthesize(out, hours=25 / 3600, jobs=1, seed=3, aug_copies=1, engines=engines,
                       n_sentences=40, progress=False)
    return out, stats


def test_manifest_and_npz_follow_the_contract(corpus):
    out, stats = corpus
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    assert len(rows) == stats["utterances"] >= 4
    assert sum(r["duration_s"] for r in rows) >= 0.9 * 25
    for r in rows:
        for key in ("id", "voice", "engine", "split", "path", "duration_s", "augmented"):
            assert key in r
        assert r["split"] in ("train", "val", "test")
        assert r["split"] == "test" or not is_test_voice(r["voice"])
        z = np.load(out / r["path"])
        audio, motion = z["audio"], z["motion"]
        assert audio.dtype == np.float32 and int(z["sample_rate"]) == 16000 and int(z["fps"]) == 25
        dur = len(audio) / 16000
        assert r["duration_s"] == pytest.approx(dur, abs=1e-3)
        assert motion.shape == (math.ceil(dur * 25 - 1e-9), VECTOR_DIM) and motion.dtype == np.float32
        assert np.isfinite(motion).all()
        assert z["phone_starts"].dtype == np.float64
        assert z["phones"][0] == "sil" and z["phones"][-1] == "sil"
        assert z["phone_ends"][-1] == pytest.approx(dur, abs=0.02)
        assert np.all(np.diff(z["phone_starts"]) > 0)


@pytest.mark.skipif(not sox_available(), reason="sox not installed (augmentation needs it)")
def test_augmented_copies_keep_their_source_split_and_timing(corpus):
    out, _ = corpus
    rows = {json.loads(line)["id"]: json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()}
    augs = [r for r in rows.values() if r["augmented"]]
    assert augs and len(augs) == sum(not r["augmented"] for r in rows.values())
    for r in augs:
        src = rows[r["source"]]
        assert src["split"] == r["split"] and src["voice"] == r["voice"]
        a, b = np.load(out / src["path"]), np.load(out / r["path"])
        assert list(a["phones"]) == list(b["phones"])
        scale = b["phone_ends"][-1] / a["phone_ends"][-1]
        assert np.allclose(b["phone_starts"], a["phone_starts"] * scale, atol=0.02)


def test_cli_rejects_bad_arguments(tmp_path, capsys):
    assert main(["data", "synth", "--hours", "0", "--out", str(tmp_path)]) == 2
    assert main(["data", "synth", "--hours", "1", "--out", str(tmp_path), "--engines", "nope"]) == 2
    assert "unknown engine" in capsys.readouterr().err
