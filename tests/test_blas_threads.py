"""Commands that run live sessions (`facecast serve`, `facecast bench sessions`) get one BLAS
thread per process (engine.cli.limit_blas_threads, before numpy is imported). With OpenBLAS's
default (a thread per core) the splat renderer's matrix products leave a BLAS thread that
busy-waits between frames. Measured for real in fresh interpreters: the CPU of every thread that
is not a Python thread while a splat render thread runs at 25 fps, with and without the limit."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import json, os, sys
from engine.cli import limit_blas_threads
if sys.argv[1] == "limited":
    limit_blas_threads()                      # before numpy is imported, as engine.cli.main does
import threading, time
from concurrent.futures import ThreadPoolExecutor
from engine.config import load_config, replace
from engine.motion.space import MotionFrame
from engine.pipeline.render import create_renderer, set_worker_threads
cfg = replace(load_config(), render={"renderer": "splat"}, video={"width": 128, "height": 128})
pool = ThreadPoolExecutor(1, "render", set_worker_threads, (cfg.pipeline.render_threads,))
renderer = pool.submit(create_renderer, cfg).result()
pool.submit(renderer.render, MotionFrame.neutral()).result()
def cpu():
    python = {t.native_id for t in threading.enumerate()}
    out = {}
    for tid in os.listdir("/proc/self/task"):
        f = open(f"/proc/self/task/{tid}/stat").read().rsplit(")", 1)[1].split()
        out[(int(tid), int(tid) in python)] = (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    return out
a, t0 = cpu(), time.monotonic()
for _ in range(60):
    pool.submit(renderer.render, MotionFrame.neutral()).result()
    time.sleep(0.03)
b, wall = cpu(), time.monotonic() - t0
native = [(v - a.get(k, 0.0)) / wall for k, v in b.items() if not k[1]]
print(json.dumps({"blas": os.environ.get("OPENBLAS_NUM_THREADS"), "native_max_cores": max(native, default=0.0)}))
"""


def _probe(variant: str) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", PROBE, variant], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_one_blas_thread_leaves_no_thread_spinning():
    r = _probe("limited")
    assert r["blas"] == "1" and r["native_max_cores"] < 0.03, r


@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="OpenBLAS uses one thread on one core anyway")
def test_without_the_limit_a_blas_thread_spins():
    """The probe sees the waste when the limit is not set (so the check above means something)."""
    r = _probe("default")
    assert r["blas"] is None and r["native_max_cores"] > 0.05, r


def test_the_cli_limits_blas_for_live_session_commands_only():
    """`facecast serve` sets the limit before numpy is first imported (OpenBLAS reads it only then)."""
    code = ("import os, sys\nimport engine.cli as cli\nlimit = cli.limit_blas_threads\n"
            "def spy():\n    print('numpy loaded at the limit:', 'numpy' in sys.modules)\n    limit()\n"
            "cli.limit_blas_threads = spy\n"
            "cli.main(['serve', '--port', '70000'])\n"     # refused (bad port) after the limit
            "print('OPENBLAS_NUM_THREADS', os.environ.get('OPENBLAS_NUM_THREADS'))")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "numpy loaded at the limit: False" in out.stdout and "OPENBLAS_NUM_THREADS 1" in out.stdout, \
        out.stdout + out.stderr
    assert cli_commands_with_limit() == {("serve",), ("bench", "sessions")}


def cli_commands_with_limit() -> set:
    from engine.cli import COMMANDS, LIVE_SESSION_COMMANDS
    assert LIVE_SESSION_COMMANDS <= {path for path, _, _ in COMMANDS}
    return LIVE_SESSION_COMMANDS


def test_the_cluster_worker_module_limits_blas_before_numpy_loads():
    """A Ray worker actor's process imports engine.cluster.worker first: it sets the limit before
    numpy is loaded (Ray's OMP_NUM_THREADS = floor(CPUs) would give an actor holding 2 CPUs two)."""
    code = ("import os, sys\nimport engine.cluster.worker\n"
            "print(os.environ.get('OPENBLAS_NUM_THREADS'), 'numpy' in sys.modules)")
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert out.stdout.split()[-2:] == ["1", "True"], out.stdout + out.stderr
    src = (ROOT / "engine" / "cluster" / "worker.py").read_text()
    assert src.index('setdefault("OPENBLAS_NUM_THREADS"') < src.index("import numpy")
