"""Augmented copies of a real-target corpus (engine/training/augment_corpus.py): the audio changes
voice and room, the mouth targets stay in sync with it (time-warped with tempo and formant
shifts), and training reads the copies as real targets. Real sox, real corpus files."""
import json
import subprocess
import sys

import numpy as np
import pytest

from engine.motion.model.spec import ModelSpec
from engine.motion.space import INDEX, VECTOR_DIM
from engine.training.augment import sox_available
from engine.training.augment_corpus import augment_corpus, warp
from engine.training.dataset import load_corpus
from engine.training.lipsync_eval import lag_sweep, log_rms, motion_on_grid

pytestmark = pytest.mark.skipif(not sox_available(), reason="sox not installed")
RATE, FPS = 16000, 25


def test_warp_moves_an_instant_with_the_time_scale():
    x = np.zeros((50, 2), np.float32)
    x[25:] = 1.0                                   # a step at 1.0 s
    np.testing.assert_array_equal(warp(x, 1.0, 50), x)
    slow = warp(x, 2.0, 100)                       # twice as long: the step moves to 2.0 s
    assert slow[48, 0] == 0.0 and slow[49, 0] == 0.5 and slow[50, 0] == 1.0 and slow[99, 1] == 1.0
    fast = warp(x, 0.5, 25)
    assert fast[12, 0] == 0.0 and fast[13, 0] == 1.0


def syllables(seconds: float, seed: int):
    """Audio whose loudness follows a mouth that opens on random syllables, and that mouth."""
    rng = np.random.default_rng(seed)
    n = int(seconds * FPS)
    mouth = np.zeros(n)
    k = 5
    while k < n - 10:
        d = int(rng.integers(4, 9))
        mouth[k:k + d] = np.sin(np.linspace(0, np.pi, d)) * rng.uniform(0.3, 0.8)
        k += d + int(rng.integers(2, 10))
    t = np.arange(n * RATE // FPS) / RATE
    env = np.interp(t, np.arange(n) / FPS, mouth)
    audio = (0.5 * env * np.sign(np.sin(2 * np.pi * 130 * t)) + 1e-3 * rng.standard_normal(len(t))).astype(np.float32)
    return audio, mouth


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    src = tmp_path_factory.mktemp("real")
    (src / "utts").mkdir()
    rows = []
    for i in range(2):
        audio, mouth = syllables(8.0, i)
        motion = np.zeros((len(mouth), VECTOR_DIM), np.float32)
        motion[:, INDEX["jawOpen"]] = mouth
        np.savez(src / "utts" / f"c{i}.npz", audio=audio, sample_rate=RATE, fps=FPS, motion=motion,
                 mouth_valid=np.ones(len(mouth), np.float32), phones=np.array(["sil", "aa", "sil"]),
                 phone_starts=np.array([0.0, 0.2, 7.8]), phone_ends=np.array([0.2, 7.8, 8.0]))
        rows.append({"id": f"c{i}", "voice": f"real:s{i}", "engine": "real", "split": "train",
                     "path": f"utts/c{i}.npz", "duration_s": 8.0, "state": "speaking"})
    (src / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path_factory.mktemp("aug")
    return src, out, augment_corpus(src, out, copies=4, seed=3, progress=False)


def test_every_copy_keeps_its_mouth_in_sync_with_its_audio(corpora):
    src, out, rows = corpora
    assert len(rows) == 10 and sum(r.get("augmented", False) for r in rows) == 8
    warped = [r for r in rows if r.get("augmented") and abs(r["augment"]["time_scale"] - 1) > 0.05]
    assert warped, "seed 3 gives copies with a tempo or formant change"
    for r in [r for r in rows if r.get("augmented")]:
        z = np.load(out / r["path"])
        source = np.load(src / "utts" / f"{r['source']}.npz")
        grid = np.arange(len(z["audio"]) // 160) / 100
        loud = log_rms(z["audio"], grid)
        jaw = motion_on_grid(z["motion"][:, INDEX["jawOpen"]], grid)
        sweep = {k: v for k, v in lag_sweep(jaw, loud, max_ms=300).items() if np.isfinite(v)}
        best = max(sweep, key=sweep.get)            # lag < 0: the sound later; reverb tails delay it a little
        assert -100 <= best <= 20 and sweep[best] > 0.3, (best, sweep[best], r["augment"])
        assert len(z["motion"]) == -(-len(z["audio"]) // 640)
        np.testing.assert_allclose(z["phone_ends"][-1], source["phone_ends"][-1] * r["augment"]["time_scale"], rtol=1e-3)
    for r in warped:                               # the unwarped targets would be out of sync
        z = np.load(out / r["path"])
        grid = np.arange(len(z["audio"]) // 160) / 100
        loud = log_rms(z["audio"], grid)
        naive = np.load(src / "utts" / f"{r['source']}.npz")["motion"][:, INDEX["jawOpen"]]
        naive = motion_on_grid(naive, grid)
        good = motion_on_grid(z["motion"][:, INDEX["jawOpen"]], grid)
        ok = np.isfinite(naive) & np.isfinite(good)
        assert np.corrcoef(loud[ok], good[ok])[0, 1] > np.corrcoef(loud[ok], naive[ok])[0, 1] + 0.1


def test_training_reads_the_copies_as_real_targets(corpora):
    _, out, rows = corpora
    utts = load_corpus(out, ("train",), ModelSpec())
    assert len(utts) == len(rows)
    assert all(u.mouth_valid is not None for u in utts)


def test_the_command_refuses_a_missing_corpus_and_writing_over_its_source(corpora, tmp_path):
    src, _, _ = corpora
    run = lambda *a: subprocess.run([sys.executable, "-m", "engine.cli", "data", "augment", *a],  # noqa: E731
                                    capture_output=True, text=True)
    r = run("--corpus", str(tmp_path / "nothing"), "--out", str(tmp_path / "o"))
    assert r.returncode == 2 and "error:" in r.stderr
    r = run("--corpus", str(src), "--out", str(src))
    assert r.returncode == 2 and "must differ" in r.stderr
    r = run("--corpus", str(src), "--out", str(tmp_path / "o2"), "--copies", "1", "--no-progress")
    assert r.returncode == 0 and "2 source + 2 augmented" in r.stdout
