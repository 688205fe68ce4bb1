"""`facecast bench sessions` as a plain function (what a cluster driver calls) and as a command:
real sessions in motion mode, short levels."""
import json
import subprocess
import sys

import pytest

from engine.commands.bench_sessions import SessionsBenchOptions, bench_sessions


async def test_bench_sessions_motion_levels(config):
    r = await bench_sessions(config, SessionsBenchOptions(mode="motion", levels=(1, 2), seconds=2.0, warmup=0.5,
                                                          stop_at_first_failure=False))
    assert r["benchmark"] == "sessions" and r["mode"] == "motion" and r["transport"] == "ws"
    assert [lv["sessions"] for lv in r["levels"]] == [1, 2]
    for lv in r["levels"]:
        # every frame: a 244-byte motion frame + 1920 s16 samples, 25 times a second
        assert lv["frames_delivered"] > 0.8 * lv["frames_expected"]
        assert lv["bytes_per_s_per_session"] == pytest.approx((244 + 2 * 1920) * 25, rel=0.15)
        assert lv["cpu_cores"] > 0 and set(lv["frame_lateness_ms"]) == {"p50", "p95", "p99"}
    assert r["sessions_held"] in (0, 1, 2)


async def test_bench_sessions_rejects_bad_options(config):
    with pytest.raises(ValueError, match="mode"):
        await bench_sessions(config, SessionsBenchOptions(mode="pixels"))
    with pytest.raises(ValueError, match="levels"):
        await bench_sessions(config, SessionsBenchOptions(levels=(0,)))


def test_bench_sessions_command_prints_one_json_line():
    res = subprocess.run([sys.executable, "-m", "engine.cli", "bench", "sessions", "--mode", "motion", "--levels", "1",
                          "--seconds", "1", "--warmup", "0.5", "--json"], capture_output=True, text=True, timeout=180)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["levels"][0]["sessions"] == 1 and out["options"]["levels"] == [1]


def test_shares_spread_a_level_over_processes():
    from engine.commands.bench_sessions_procs import shares
    assert shares(5, 2) == [3, 2] and shares(1, 3) == [1, 0, 0] and sum(shares(33, 4)) == 33


def test_bench_sessions_over_two_processes_pools_their_frames():
    """The same levels with the sessions in two real processes: one level per process share
    (level 1 leaves the second process idle), frames pooled from both."""
    res = subprocess.run([sys.executable, "-m", "engine.cli", "bench", "sessions", "--mode", "motion", "--levels", "1,3",
                          "--all-levels", "--processes", "2", "--seconds", "1.5", "--warmup", "0.5", "--json"],
                         capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    one, three = out["levels"]
    assert one["sessions_per_process"] == [1] and three["sessions_per_process"] == [2, 1]
    for lv in (one, three):
        assert lv["frames_delivered"] > 0.8 * lv["frames_expected"]
        assert lv["frames_expected"] == pytest.approx(lv["sessions"] * 25 * 1.5, rel=0.1)
    assert out["options"]["processes"] == 2


def test_bench_sessions_splat_video_end_to_end():
    """Splat video sessions (render + VP8 + Opus) through the command, at a small size."""
    res = subprocess.run([sys.executable, "-m", "engine.cli", "bench", "sessions", "--mode", "video",
                          "--renderer", "splat", "--size", "128", "--levels", "1", "--seconds", "1.5",
                          "--warmup", "0.5", "--json"], capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-2000:]
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["renderer"] == "splat" and out["renderer_class"] == "SplatRenderer" and out["size"] == "128x128"
    (level,) = out["levels"]
    assert level["frames_delivered"] > 0.5 * level["frames_expected"]
    # VP8 pictures and Opus audio were really encoded: more than the audio alone (~12 kB/s)
    assert level["bytes_per_s_per_session"] > 15_000 and level["cpu_cores"] > 0


def test_bench_sessions_refuses_a_bad_size():
    res = subprocess.run([sys.executable, "-m", "engine.cli", "bench", "sessions", "--mode", "video", "--size", "10",
                          "--json"], capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "video.width" in res.stderr
