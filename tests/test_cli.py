import ast
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import COMMANDS, build_parser


def test_every_cli_command_has_a_module_with_the_contract():
    missing = []
    for path, module, _ in COMMANDS:
        if importlib.util.find_spec(module) is None:
            missing.append((path, module))
            continue
        mod = importlib.import_module(module)
        assert callable(getattr(mod, "add_arguments", None)), module
        assert callable(getattr(mod, "run", None)), module
    assert not missing, f"commands without a module: {missing}"


def test_help_lists_commands():
    out = subprocess.run([sys.executable, "-m", "engine.cli", "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for name in ("serve", "render", "avatar", "bench"):
        assert name in out.stdout
    assert build_parser().parse_args(["bench", "render"])._module == "engine.commands.bench_render"


def _module_defs(tree: ast.Module) -> set[str]:
    return {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}


def _imports_argparse(tree: ast.Module) -> bool:
    for n in ast.walk(tree):
        if isinstance(n, ast.Import) and any(a.name.split(".")[0] == "argparse" for a in n.names):
            return True
        if isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] == "argparse":
            return True
    return False


def test_commands_live_in_engine_commands_and_libraries_have_no_front_ends():
    assert all(module.startswith("engine.commands.") for _, module, _ in COMMANDS), \
        [m for _, m, _ in COMMANDS if not m.startswith("engine.commands.")]
    engine = Path(__file__).resolve().parents[1] / "engine"
    offenders = []
    for path in sorted(engine.rglob("*.py")):
        rel = path.relative_to(engine).as_posix()
        if rel.startswith("commands/") or rel == "cli.py":
            continue
        tree = ast.parse(path.read_text(), str(path))
        front_end = _module_defs(tree) & {"add_arguments", "run"}
        if front_end or _imports_argparse(tree):
            offenders.append((rel, sorted(front_end), _imports_argparse(tree)))
    assert not offenders, f"CLI front-ends outside engine/commands/: {offenders}"


def test_the_front_end_check_catches_a_library_with_a_run():
    tree = ast.parse("import argparse.foo\ndef run(args):\n    return 0\nclass X:\n    def run(self): pass\n")
    assert _module_defs(tree) == {"run"} and _imports_argparse(tree)
    assert not _imports_argparse(ast.parse("import argparsex\n"))


def test_bench_gpu_skips_cleanly_without_cuda():
    import json

    import kernels
    if kernels.triton_available():
        pytest.skip("a CUDA device is present")
    out = subprocess.run([sys.executable, "-m", "engine.cli", "bench", "gpu", "--json"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "no CUDA device" in json.loads(out.stdout.strip().splitlines()[-1])["skipped"]
