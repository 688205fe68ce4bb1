"""The lip-opening teacher fitted to real faces (engine/training/teacher_opening.py): the regression
recovers per-phone openings it was not told, beats the hand table on mouths that move that way,
relabels teacher targets only, and bad tables or corpora fail with a clear error. The real-face
corpus here is generated (no dev media): a known per-phone opening, blended with the fitted
model's own timing, plus tracking noise."""
import json
import subprocess
import sys

import numpy as np
import pytest

from engine.motion.model.spec import ModelSpec
from engine.motion.space import INDEX, VECTOR_DIM
from engine.training.dataset import load_corpus
from engine.training.metrics import mouth_opening
from engine.training.teacher_opening import (PHONES, OpeningTable, TeacherOpeningError, apply_opening, best_r,
                                             compare_on, fit_opening, opening_curve)

SPEECH = ["aa", "iy", "uw", "m", "b", "s", "t", "ae", "ow", "n", "l", "f", "ih", "eh"]
# the "real" speakers open their mouths in a way the hand table does not: wide on iy, shut on s/t,
# half open in pauses
TRUE = {p: 0.5 for p in PHONES} | {"aa": 3.0, "iy": 3.2, "uw": 0.4, "m": -0.5, "b": -0.5, "s": 0.0, "t": 0.0,
                                   "ae": 2.5, "ow": 1.0, "n": 2.0, "l": 2.2, "f": 0.1, "ih": 2.8, "eh": 1.5,
                                   "sil": 1.2, "sil_short": 1.5, "inhale": 1.8}


def phones(rng, seconds):
    out, t = [("sil", 0.0, 0.4)], 0.4
    while t < seconds - 0.6:
        if rng.random() < 0.12:
            d = rng.uniform(0.1, 0.8)
            out.append(("sil", t, t + d))
        else:
            d = rng.uniform(0.05, 0.18)
            out.append((str(rng.choice(SPEECH)), t, t + d))
        t += d
    out.append(("sil", t, seconds))
    return out


def write_corpus(root, n_clips=6, seconds=20.0, seed=0, real_video=True):
    truth = OpeningTable(theta=TRUE, anticipation_s=0.08, carryover_s=0.04, units_per_std=0.15)
    rng = np.random.default_rng(seed)
    (root / "utts").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n_clips):
        ph = phones(rng, seconds)
        p, s, e = [x[0] for x in ph], np.array([x[1] for x in ph]), np.array([x[2] for x in ph])
        n = int(seconds * 25)
        motion = np.zeros((n, VECTOR_DIM), np.float32)
        amp = rng.uniform(0.6, 1.5)                     # per-speaker amplitude
        motion[:, INDEX["jawOpen"]] = np.clip(amp * opening_curve(p, s, e, n, truth) + rng.normal(0, 0.02, n), 0, 1)
        z = dict(audio=np.zeros(n * 640, np.float32), sample_rate=16000, fps=25, motion=motion,
                 phones=np.array(p), phone_starts=s, phone_ends=e)
        if real_video:
            z["mouth_valid"] = (rng.random(n) > 0.05).astype(np.float32)
        np.savez(root / "utts" / f"clip{i}.npz", **z)
        rows.append({"id": f"clip{i}", "voice": f"real:spk{i}", "split": "train", "path": f"utts/clip{i}.npz",
                     "duration_s": seconds, "state": "speaking"})
    (root / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return root


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    train = write_corpus(tmp_path_factory.mktemp("real_train"), seed=0)
    return fit_opening(train), train


def test_the_fit_recovers_the_per_phone_openings(fitted):
    table, _ = fitted
    used = [p for p in TRUE if p in SPEECH or p.startswith("sil") or p == "inhale"]
    got = np.array([table.theta[p] for p in used])
    want = np.array([TRUE[p] for p in used])
    assert np.corrcoef(got, want)[0, 1] > 0.95
    # iy opens wider than uw, s and t stay shut: the hand table says the opposite about iy vs s
    assert table.theta["iy"] > table.theta["uw"] + 1.5 and table.theta["s"] < 0.6
    assert table.fitted["mean_r_train"] > 0.9 and table.fitted["clips"] == 6


def test_held_out_speakers_follow_the_fitted_teacher_better_than_the_hand_table(fitted, tmp_path):
    table, _ = fitted
    res = compare_on(write_corpus(tmp_path / "test", n_clips=3, seed=7), table)
    assert res["mean_fitted"] > 0.9
    assert res["mean_fitted"] > res["mean_hand"] + 0.2


def test_relabelling_sets_the_opening_and_keeps_the_lip_shapes(fitted):
    table, _ = fitted
    p, s, e = ["sil", "aa", "uw", "m", "iy", "sil"], [0, .3, .5, .7, .8, 1.0], [.3, .5, .7, .8, 1.0, 1.4]
    motion = np.zeros((35, VECTOR_DIM), np.float32)
    motion[:, INDEX["mouthFunnel"]] = 0.3
    motion[:, INDEX["mouthPucker"]] = 0.2
    motion[:, 52] = 0.1                                # head yaw
    out = apply_opening(motion, p, s, e, table, jaw_scale=0.9)
    target = 0.9 * opening_curve(p, s, e, 35, table)
    np.testing.assert_allclose(mouth_opening(out), np.maximum(target, mouth_opening(motion) - motion[:, INDEX["jawOpen"]]),
                               atol=1e-5)
    for name in ("mouthFunnel", "mouthPucker"):
        assert np.array_equal(out[:, INDEX[name]], motion[:, INDEX[name]])
    assert np.array_equal(out[:, 52], motion[:, 52])
    assert target[10] > 2 * target[int(0.75 * 25)]          # aa opens, the m closure shuts


def test_only_teacher_targets_are_relabelled(fitted, tmp_path):
    table, _ = fitted
    real = write_corpus(tmp_path / "real", n_clips=1, seconds=6.0, seed=3, real_video=True)
    synth = write_corpus(tmp_path / "synth", n_clips=1, seconds=6.0, seed=3, real_video=False)
    (r0,), (r1,) = load_corpus(real, ("train",), ModelSpec()), load_corpus(real, ("train",), ModelSpec(), teacher_opening=table)
    assert np.array_equal(r0.motion, r1.motion)
    (s0,), (s1,) = load_corpus(synth, ("train",), ModelSpec()), load_corpus(synth, ("train",), ModelSpec(), teacher_opening=table)
    assert not np.allclose(s0.motion[:, INDEX["jawOpen"]], s1.motion[:, INDEX["jawOpen"]])
    assert best_r(mouth_opening(s1.motion), opening_curve(*_phones(synth), len(s1.motion), table)) > 0.99


def _phones(root):
    z = np.load(root / "utts" / "clip0.npz")
    return [str(p) for p in z["phones"]], z["phone_starts"], z["phone_ends"]


def test_a_table_round_trips_and_bad_tables_are_refused(fitted, tmp_path):
    table, _ = fitted
    table.save(tmp_path / "t.json")
    assert OpeningTable.load(tmp_path / "t.json") == table
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(TeacherOpeningError, match="not a teacher opening table"):
        OpeningTable.load(tmp_path / "bad.json")
    d = json.loads((tmp_path / "t.json").read_text())
    del d["theta"]["aa"]
    (tmp_path / "short.json").write_text(json.dumps(d))
    with pytest.raises(TeacherOpeningError, match="lacks phones"):
        OpeningTable.load(tmp_path / "short.json")
    d = json.loads((tmp_path / "t.json").read_text())
    d["units_per_std"] = float("nan")
    (tmp_path / "nan.json").write_text(json.dumps(d))
    with pytest.raises(TeacherOpeningError, match="non-finite"):
        OpeningTable.load(tmp_path / "nan.json")


def test_the_command_writes_a_table_and_refuses_a_corpus_without_real_faces(fitted, tmp_path):
    _, train = fitted
    out = tmp_path / "opening.json"
    run = subprocess.run([sys.executable, "-m", "engine.cli", "train", "teacher", "--corpus", str(train),
                          "--out", str(out), "--compare", str(train), "--json"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    summary = json.loads(run.stdout.strip().splitlines()[-1])
    assert summary["compare"][str(train)]["mean_fitted"] > summary["compare"][str(train)]["mean_hand"]
    assert OpeningTable.load(out).fitted["clips"] == 6
    synth = write_corpus(tmp_path / "synth", n_clips=2, seconds=4.0, real_video=False)
    bad = subprocess.run([sys.executable, "-m", "engine.cli", "train", "teacher", "--corpus", str(synth),
                          "--out", str(tmp_path / "x.json")], capture_output=True, text=True)
    assert bad.returncode == 2 and "needs at least 2 real-video clips" in bad.stderr
    assert not (tmp_path / "x.json").exists()


def test_real_clips_can_be_scaled_to_one_opening_amplitude(tmp_path):
    """--real-opening-std: each real clip's opening gets one std (the speakers' amplitudes 0.6-1.5x
    differ), its shape and its closures stay; teacher targets are left alone."""
    from engine.training.train import TrainOptions

    real = write_corpus(tmp_path / "real", n_clips=3, seconds=8.0, seed=5, real_video=True)
    synth = write_corpus(tmp_path / "synth", n_clips=1, seconds=8.0, seed=5, real_video=False)
    raw = load_corpus(real, ("train",), ModelSpec())
    scaled = load_corpus(real, ("train",), ModelSpec(), real_opening_std=0.15)
    raw_stds = []
    for r, s in zip(raw, scaled):
        valid = r.mouth_valid > 0
        op_r, op_s = mouth_opening(r.motion), mouth_opening(s.motion)
        raw_stds.append(op_r[valid].std())
        assert abs(op_s[valid].std() - 0.15) < 1e-3
        assert np.corrcoef(op_r, op_s)[0, 1] > 0.999
        assert np.array_equal(op_r < 1e-6, op_s < 1e-6)          # closed stays closed
    assert max(raw_stds) / min(raw_stds) > 1.2                  # the corpus did differ
    (t0,), (t1,) = load_corpus(synth, ("train",), ModelSpec()), load_corpus(synth, ("train",), ModelSpec(), real_opening_std=0.15)
    assert np.array_equal(t0.motion, t1.motion)
    with pytest.raises(ValueError, match="real_opening_std"):
        TrainOptions(corpus=real, real_opening_std=0.0)
