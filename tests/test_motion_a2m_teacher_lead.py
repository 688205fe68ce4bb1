"""Training option --teacher-lead-ms: teacher targets show the mouth ahead of the sound (real
mouths lead it), real-video targets keep their own timing, head motion is left alone."""
import argparse
import json

import numpy as np
import pytest

from engine.commands.train_audio2motion import add_arguments, options
from engine.motion.model.spec import ModelSpec
from engine.motion.space import INDEX, VECTOR_DIM
from engine.training.dataset import lead_articulation, load_corpus
from engine.training.train import TrainOptions

JAW, YAW = INDEX["jawOpen"], 52


def step_motion(n=30, at=10):
    m = np.zeros((n, VECTOR_DIM), np.float32)
    m[at:, JAW] = 1.0
    m[at:, YAW] = 0.2       # head turns at the same instant
    return m


def test_the_mouth_moves_earlier_and_the_head_does_not():
    m = step_motion()
    half = lead_articulation(m, 20.0)                 # half a 25 fps frame
    assert half[9, JAW] == pytest.approx(0.5) and half[8, JAW] == 0 and half[10, JAW] == 1
    one = lead_articulation(m, 40.0)                  # one frame
    assert np.array_equal(one[:-1, JAW], m[1:, JAW]) and one[-1, JAW] == m[-1, JAW]
    assert np.array_equal(half[:, YAW], m[:, YAW])
    assert np.array_equal(lead_articulation(m, 0.0), m)


def write_utt(root, uid, motion, real_video: bool):
    n = len(motion)
    z = dict(audio=np.random.default_rng(0).normal(0, 0.1, n * 640).astype(np.float32), sample_rate=16000,
             fps=25, motion=motion, phones=np.array(["sil", "aa", "sil"]),
             phone_starts=np.array([0.0, 0.3, 0.9]), phone_ends=np.array([0.3, 0.9, n / 25]))
    if real_video:
        z["mouth_valid"] = np.ones(n, np.float32)
    (root / "utts").mkdir(exist_ok=True)
    np.savez(root / "utts" / f"{uid}.npz", **z)
    return {"id": uid, "voice": "espeak:en", "split": "train", "path": f"utts/{uid}.npz", "duration_s": n / 25}


def test_only_teacher_targets_are_led(tmp_path):
    rows = [write_utt(tmp_path, "teacher", step_motion(), False), write_utt(tmp_path, "real", step_motion(), True)]
    (tmp_path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    utts = {u.id: u for u in load_corpus(tmp_path, ("train",), ModelSpec(), teacher_lead_ms=20.0)}
    assert utts["teacher"].motion[9, JAW] == pytest.approx(0.5)
    assert utts["real"].motion[9, JAW] == 0.0 and utts["real"].motion[10, JAW] == 1.0


def test_the_option_is_checked_and_reaches_training():
    with pytest.raises(ValueError, match="teacher_lead_ms"):
        TrainOptions(corpus="c", teacher_lead_ms=100)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--corpus", "c", "--teacher-lead-ms", "20"])
    assert options(args).teacher_lead_ms == 20.0
