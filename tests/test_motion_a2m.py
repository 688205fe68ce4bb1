"""The learned audio-to-motion path end to end on a tiny synthetic corpus:
train -> checkpoint -> ONNX (+INT8) export -> streaming generator via the factory."""
import argparse
import logging

import numpy as np
import pytest

from engine.config import load_config, replace
from engine.commands import export_audio2motion as export_cmd
from engine.commands import train_audio2motion as train_cmd
from engine.motion.model.checkpoint import load_checkpoint
from engine.motion.model.stream import StreamingA2M
from engine.training.synthetic import synth_utterance, write_corpus
from engine.training.train import TrainOptions, train
from engine.motion.baseline import BaselineGenerator
from engine.motion.generators import create_generator
from engine.motion.streaming import MotionControls, SpeechMotionGenerator
from engine.motion.space import VECTOR_DIM


def parse(module, argv):
    p = argparse.ArgumentParser()
    p.add_argument("--config", default=None)
    module.add_arguments(p)
    return p.parse_args(argv)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny corpus, 40 training steps, fp32 + INT8 exports (2 steps) and a 1-step export."""
    root = tmp_path_factory.mktemp("a2m")
    corpus = write_corpus(root / "corpus")
    ckpt = root / "model" / "audio2motion.pt"
    info = train(TrainOptions(corpus=corpus, out=ckpt, steps=40, batch=4, quiet_clips=2, eval_every=20,
                              progress=False))
    assert export_cmd.run(parse(export_cmd, ["--checkpoint", str(ckpt), "--extra-steps", "1", "--int8",
                                             "--corpus", str(corpus), "--calib-utterances", "2"])) == 0
    return {"corpus": corpus, "ckpt": ckpt, "onnx": ckpt.with_suffix(".onnx"), "info": info}


def model_cfg(trained, **motion):
    return replace(load_config(), motion={"source": "model", "model_path": str(trained["onnx"]),
                                          "backends": ["onnxruntime"], **motion})


def run(gen, audio, chunk):
    out = [gen.push(audio[i:i + chunk]) for i in range(0, len(audio), chunk)]
    out.append(gen.flush())
    return np.concatenate(out)


def test_training_writes_a_loadable_checkpoint(trained):
    model, meta = load_checkpoint(trained["ckpt"])
    hist = trained["info"]["history"]
    assert len(hist) == 2 and all(np.isfinite(h["loss"]) for h in hist)
    assert meta.lookahead_samples == 800 and meta.diffusion_steps == 2
    assert "facecast train audio2motion" in meta.train["command"]
    for suffix in (".onnx", ".int8.onnx", ".k1.onnx", ".k1.int8.onnx"):
        assert trained["ckpt"].with_name("audio2motion" + suffix).exists()


def test_factory_builds_the_streaming_model(trained):
    for prec in ("fp32", "int8"):
        g = create_generator(model_cfg(trained, onnx_precision=prec))
        assert isinstance(g, StreamingA2M) and isinstance(g, SpeechMotionGenerator)
        assert g.runtime.name == f"onnxruntime:{prec}"
        assert g.lookahead_samples == 800
    g = create_generator(model_cfg(trained, backends=["torch"]))
    assert g.runtime.name == "torch:cpu:float32"
    g = create_generator(model_cfg(trained, diffusion_steps=1))
    assert g.runtime.steps == 1


def test_streaming_contract_and_chunking_invariance(trained):
    audio, _ = synth_utterance(2.0, np.random.default_rng(5))
    g = create_generator(model_cfg(trained, onnx_precision="fp32"))
    assert len(g.push(audio[: 640 + 800 - 1])) == 0
    assert len(g.push(audio[640 + 800 - 1: 640 + 800])) == 1
    g.reset(0)
    a = run(g, audio, 160)
    g.reset(0)
    b = run(g, audio, 7001)
    assert a.shape == (-(-len(audio) // 640), VECTOR_DIM) and np.isfinite(a).all()
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert a[:, :52].min() >= 0.0 and a[:, :52].max() <= 1.0


def test_seeds_determinism_and_diversity(trained):
    audio, _ = synth_utterance(2.0, np.random.default_rng(6))
    g = create_generator(model_cfg(trained, onnx_precision="fp32"))
    g.reset(1)
    a = run(g, audio, 640)
    g.reset(1)
    b = run(g, audio, 640)
    g.reset(2)
    c = run(g, audio, 640)
    np.testing.assert_array_equal(a, b)
    assert np.abs(a[:, 52:55] - c[:, 52:55]).mean() > 1e-5


def test_controls_and_bad_input(trained):
    g = create_generator(model_cfg(trained))
    g.set_controls(MotionControls(state="listening", emotion="happy", emotion_intensity=0.5))
    assert g.push(np.zeros(3200, np.float32)).shape == ((3200 - 800) // 640, VECTOR_DIM)
    with pytest.raises(ValueError):
        g.set_controls(MotionControls(state="sleeping"))
    with pytest.raises(ValueError):
        g.push(np.array([0.0, np.nan], np.float32))
    with pytest.raises(ValueError):
        g.push(np.zeros(100, np.int16))


def test_int8_export_stays_close_to_fp32(trained):
    audio, _ = synth_utterance(2.0, np.random.default_rng(7))
    f = run(create_generator(model_cfg(trained, onnx_precision="fp32")), audio, 640)
    q = run(create_generator(model_cfg(trained, onnx_precision="int8")), audio, 640)
    assert np.abs(f - q)[:, :52].mean() < 0.05


def test_corrupt_model_files_fall_back_to_baseline(trained, tmp_path, caplog):
    bad = tmp_path / "audio2motion.onnx"
    bad.write_bytes(b"garbage" * 10)
    (tmp_path / "audio2motion.pt").write_bytes(b"not a checkpoint")
    with caplog.at_level(logging.WARNING):
        g = create_generator(replace(load_config(), motion={"source": "model", "model_path": str(bad),
                                                            "backends": ["onnxruntime", "torch"]}))
    assert isinstance(g, BaselineGenerator)
    assert "corrupt" in caplog.text and "audio2motion.pt" in caplog.text


def test_train_and_export_report_bad_input(tmp_path, capsys):
    assert train_cmd.run(parse(train_cmd, ["--corpus", str(tmp_path / "none")])) == 2
    assert "does not exist" in capsys.readouterr().err
    assert export_cmd.run(parse(export_cmd, ["--checkpoint", str(tmp_path / "x.pt")])) == 2
    assert train_cmd.run(parse(train_cmd, ["--corpus", str(tmp_path), "--lookahead-ms", "15"])) == 2
    assert "multiple of 10" in capsys.readouterr().err
    with pytest.raises(ValueError, match="crop >= 8"):
        TrainOptions(corpus=tmp_path, crop=4)


def test_bench_motion_reports_every_variant(trained, capsys):
    import json

    from engine.commands import bench_motion as bench
    rc = bench.run(parse(bench, ["--model", str(trained["onnx"]), "--seconds", "1", "--onsets", "2", "--json"]))
    assert rc == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    v = result["variants"]
    assert {"onnx_fp32", "onnx_int8", "torch_fp32", "baseline"} <= set(v)
    assert v["onnx_int8"]["backend"] == "onnxruntime:int8" and v["onnx_int8"]["mouth_mae_vs_fp32"] >= 0
    # the frame showing the onset cannot come before its audio plus the look-ahead has arrived
    assert v["onnx_fp32"]["first_frame_latency_ms_p50"] >= v["onnx_fp32"]["lookahead_ms"]


def test_eval_reports_the_same_metrics_for_model_and_baseline(trained, tmp_path, capsys):
    import json

    from engine.commands import eval_audio2motion as evaluate
    png = tmp_path / "mouth.png"
    rc = evaluate.run(parse(evaluate, ["--corpus", str(trained["corpus"]), "--model", str(trained["onnx"]),
                                       "--limit", "2", "--seeds", "2", "--steps-sweep", "1", "--plot", str(png),
                                       "--json"]))
    assert rc == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert set(result["model"]) == set(result["baseline"])
    assert {"jawOpen_mae", "mouthFunnel_mae", "mouthPucker_mae", "mouthClose_mae", "av_offset_ms",
            "head_diversity_deg"} <= set(result["model"])
    assert result["utterances"] == 2 and result["model_vs_steps"]["1"]["mouth_mae_mean"] >= 0
    assert png.stat().st_size > 10_000


def test_eval_scores_against_the_fitted_teacher_when_given_its_table(trained, tmp_path, capsys):
    import json

    from engine.commands import eval_audio2motion as evaluate
    from engine.training.teacher_opening import PHONES, OpeningTable
    table = tmp_path / "opening.json"
    OpeningTable(theta={p: 2.0 for p in PHONES}, units_per_std=0.2).save(table)   # a wide-open teacher
    args = ["--corpus", str(trained["corpus"]), "--model", str(trained["onnx"]), "--limit", "2", "--seeds", "1",
            "--steps-sweep", "", "--json"]
    maes = []
    for extra in ([], ["--teacher-opening", str(table)]):
        assert evaluate.run(parse(evaluate, args + extra)) == 0
        maes.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["model"]["jawOpen_mae"])
    assert maes[1] > maes[0] + 0.05            # the tiny model learned the hand table, not this teacher
    table.write_text("{broken")
    assert evaluate.run(parse(evaluate, args + ["--teacher-opening", str(table)])) == 2
    assert "not a teacher opening table" in capsys.readouterr().err


def test_fine_tuning_from_a_checkpoint_with_an_extra_corpus(trained, tmp_path):
    """--init keeps the network's spec and statistics; --extra-corpus rows with a mouth_valid mask
    (real-video targets) are mixed in; the opening loss runs and the run is recorded."""
    import json
    extra = write_corpus(tmp_path / "real", n_train=2, n_val=0, n_test=0, seed=3)
    for row in (json.loads(line) for line in (extra / "manifest.jsonl").read_text().splitlines()):
        z = dict(np.load(extra / row["path"]))
        z["mouth_valid"] = (np.arange(len(z["motion"])) % 2).astype(np.float32)   # half the frames tracked
        np.savez(extra / row["path"], **z)
    out = tmp_path / "ft.pt"
    info = train(TrainOptions(corpus=trained["corpus"], out=out, steps=20, batch=4, quiet_clips=0, eval_every=10,
                              progress=False, init=trained["ckpt"], extra_corpus=extra, extra_weight=5.0,
                              opening_loss=1.0, lr=3e-4))
    _, base = load_checkpoint(trained["ckpt"])
    _, tuned = load_checkpoint(out)
    np.testing.assert_allclose(tuned.mel_mean, base.mel_mean, rtol=1e-6)
    np.testing.assert_allclose(tuned.motion_std, base.motion_std, rtol=1e-6)
    assert info["init"] == str(trained["ckpt"]) and info["extra_weight"] == 5.0
    assert "--init" in info["command"] and "--opening-loss 1.0" in info["command"]
    assert all(np.isfinite(h["loss"]) for h in info["history"])


def test_opening_loss_is_zero_for_a_perfect_prediction_and_grows_with_error():
    import torch
    from engine.training.train import _opening_loss
    from engine.motion.space import INDEX
    rng = np.random.default_rng(0)
    x0 = torch.from_numpy(rng.standard_normal((4, 8, VECTOR_DIM)).astype(np.float32))
    w = torch.ones(4, 8)
    mean_t, std_t = torch.full((VECTOR_DIM,), 0.3), torch.full((VECTOR_DIM,), 0.2)
    assert float(_opening_loss(x0, x0, w, mean_t, std_t)) < 1e-4
    off = x0.clone()
    off[..., INDEX["jawOpen"]] += torch.from_numpy(rng.standard_normal((4, 8)).astype(np.float32))
    assert float(_opening_loss(off, x0, w, mean_t, std_t)) > 0.1


def test_real_targets_set_the_jaw_for_the_measured_opening():
    from engine.training.metrics import mouth_opening, with_opening
    from engine.training.real_av import pause_frames
    from engine.motion.space import INDEX
    m = np.zeros((5, VECTOR_DIM), np.float32)
    m[:, INDEX["mouthClose"]] = 0.1
    m[:, INDEX["mouthFunnel"]] = 0.2
    target = np.array([0.0, 0.2, 0.5, np.nan, 0.9])
    out = with_opening(m, target)
    np.testing.assert_allclose(mouth_opening(out)[[1, 2, 4]], target[[1, 2, 4]], atol=1e-6)
    assert out[3, INDEX["jawOpen"]] == 0.0             # an untracked frame keeps its jaw
    assert mouth_opening(out)[0] < 0.06                # closed: as closed as the other shapes allow
    mask = pause_frames(["sil", "aa", "sil"], [0.0, 0.5, 1.0], [0.5, 1.0, 1.1], 30)
    assert mask[:12].all() and not mask[14:24].any() and not mask[26:].any()   # the 0.1 s pause is too short
