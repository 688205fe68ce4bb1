import importlib.util
import subprocess
import sys

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
