"""``facecast bench splat --json``: one JSON object on the last stdout line, with the CPU entries,
a GPU entry that says why it was skipped (no CUDA here) or its numbers, and the quality entries."""
import json

from engine.cli import main


def test_bench_splat_prints_one_json_object(capsys):
    assert main(["bench", "splat", "--json", "--frames", "2", "--warmup", "1", "--gaussians", "1500"]) == 0
    out = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert out["benchmark"] == "splat" and out["threads"] == 1
    cpu = out["results"]["cpu"]
    assert set(cpu) == {"256", "512", "512x256_stereo"}
    assert all(v["median_ms"] > 0 and v["cpu_median_ms"] > 0 and v["gaussians"] > 1000 for v in cpu.values())
    gpu = out["results"]["gpu"]
    assert "skipped" in gpu or "1024_mono" in gpu
    q = out["results"]["quality"]
    assert 15 < q["frontal_vs_photo"]["splat"]["psnr_db"] < q["frontal_vs_photo"]["warp"]["psnr_db"]
