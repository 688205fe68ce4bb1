"""The cold-start bench's import probes (the server runs are measured by hand: BENCHMARKS.md)."""
from engine.commands.bench_coldstart import import_time, torch_on_import
from engine.config import REPO_ROOT


def test_import_time_reads_the_modules_importtime_line():
    t = import_time("engine.motion.space", REPO_ROOT)
    assert t["cumulative_s"] is not None and 0 < t["cumulative_s"] <= t["wall_s"] + 1e-3
    assert t["imports_torch"] is False


def test_torch_probe_tells_torch_users_apart():
    assert torch_on_import(["engine.motion.model.stream"], REPO_ROOT) is False
    assert torch_on_import(["engine.motion.model.net"], REPO_ROOT) is True
