"""`facecast bench soak`: a short real-time soak prints per-interval rows and a summary."""
import json
import subprocess
import sys

from engine.config import REPO_ROOT


def test_short_soak_reports_rows_and_no_drift():
    out = subprocess.run([sys.executable, "-m", "engine.cli", "bench", "soak", "--minutes", "0.2",
                          "--interval-s", "4", "--json"], cwd=REPO_ROOT, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    rows, s = result["rows"], result["summary"]
    assert len(rows) >= 4                             # t=0, 4, 8 and the end (12 s)
    assert rows[-1]["t_s"] >= 11.9
    for r in rows:
        assert r["rss_mb"] > 50 and r["threads"] >= 1 and r["fds"] >= 3
    assert s["drift_mismatches"] == 0 and s["max_drift_samples"] == 0
    # a live viewer of 12 s at 25 fps sees about 300 frames
    assert abs(s["frames"] - s["expected_frames"]) <= 0.1 * s["expected_frames"]
    assert s["segments_pushed"] >= 1
    if s["segments_finished"]:
        assert s["position_error_total_s"] < 0.05
    assert s["rss_mb_min"] <= s["rss_mb_max"]
    assert s["threads_first_last"][1] <= s["threads_first_last"][0] + 2
