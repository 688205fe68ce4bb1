"""The engine's layering: what the live path imports, and which packages may import which.

1. Importing the server, the session and the learned model's streaming path must not import
   torch (the server runs ONNX), the training code or webcam tracking (only webcam mode needs
   it; ``engine.pipeline.webcam`` imports it when a webcam session starts). Checked in a fresh
   interpreter, for real.
2. The import graph of ``engine/`` (every import statement, also those inside functions, read
   with ``ast``), projected onto the top-level subpackages (engine.avatar, engine.motion, ...),
   has no cycles, and a few edges that would invert the layers do not exist. (Top-level
   modules such as engine.config or engine.session are not nodes of that graph.)
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "engine"
LIVE_MODULES = ("engine.server", "engine.session", "engine.motion.model.stream", "engine.motion.model.runtime")
NOT_ON_LIVE_PATH = ("torch", "engine.training", "engine.tracking")


def test_live_path_imports_neither_torch_nor_training_nor_tracking():
    code = (f"import json, sys\nimport {', '.join(LIVE_MODULES)}\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'torch' "
            f"or m.startswith(('engine.training', 'engine.tracking')))))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout.strip().splitlines()[-1])
    assert loaded == [], f"the live path imported {sorted({m.split('.')[0] if m.startswith('torch') else '.'.join(m.split('.')[:2]) for m in loaded})}"


def test_a_session_renders_and_speaks_without_torch_on_a_cpu_machine():
    """Not only the imports: creating the renderer (backend "auto") and the configured generator
    (ONNX Runtime) and rendering a frame leave torch unloaded where there is no CUDA device."""
    import kernels
    if kernels.triton_available():
        pytest.skip("a CUDA device is present: the Triton path rightly uses torch")
    code = ("import sys\nfrom engine.config import load_config\n"
            "from engine.motion.generators import create_generator\n"
            "from engine.motion.space import MotionFrame\nfrom engine.pipeline.render import create_renderer\n"
            "import numpy as np\ncfg = load_config()\ncreate_renderer(cfg).render(MotionFrame.neutral())\n"
            "g = create_generator(cfg)\ng.push(np.zeros(16000, np.float32))\n"
            "print(type(g).__name__, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["StreamingA2M", "False"], out.stdout + out.stderr


def test_the_live_path_check_can_fail():
    """The same probe sees torch when a module that needs it is imported (so an empty list means something)."""
    code = ("import json, sys\nimport engine.motion.model.net\n"
            "print(json.dumps('torch' in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) is True


# --- the package graph ------------------------------------------------------------------

def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path) -> set[str]:
    """Absolute names of everything ``path`` imports, anywhere in the file."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)   # `from engine import render`
    return out


def unit(module: str) -> str | None:
    """The top-level subpackage of an engine module (``engine.motion.model.stream`` -> ``engine.motion``)."""
    parts = module.split(".")
    if parts[0] != "engine" or len(parts) < 2 or not (ENGINE / parts[1]).is_dir():
        return None
    return f"engine.{parts[1]}"


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in sorted(ENGINE.rglob("*.py")):
        src = unit(module_name(path))
        if src is None:
            continue
        graph.setdefault(src, set())
        graph[src].update(u for u in map(unit, imported_modules(path)) if u and u != src)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one node (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def importers(graph: dict[str, set[str]], src: str, dst: str) -> list[str]:
    """The files of ``src`` that import ``dst`` (for the failure message)."""
    return [str(p.relative_to(ROOT)) for p in sorted((ENGINE / src.split(".")[1]).rglob("*.py"))
            if any(unit(m) == dst for m in imported_modules(p))]


def test_graph_helpers_find_a_cycle_and_an_edge():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    g = package_graph()
    assert "engine.motion" in g["engine.pipeline"] and "engine.motion" in g["engine.training"]


def test_no_cycles_between_top_level_packages():
    assert cycles(package_graph()) == []


FORBIDDEN = [("engine.motion", "engine.training"), ("engine.motion", "engine.tracking"),
             ("engine.motion", "engine.render"), ("engine.avatar", "engine.render")]


@pytest.mark.parametrize("src,dst", [pytest.param(s, d, id=f"{s}-{d}") for s, d in FORBIDDEN])
def test_forbidden_imports(src, dst):
    g = package_graph()
    assert dst not in g[src], f"{src} imports {dst}: {importers(g, src, dst)}"


# --- Ray stays out of the one-box server ---------------------------------------------------

def _ray_loaded_after(code: str) -> bool:
    probe = f"import sys\n{code}\nprint('ray' in sys.modules or any(m.startswith('ray.') for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.strip().splitlines()[-1] == "True"


def test_serve_without_cluster_never_imports_ray():
    """`facecast serve` without --cluster: the command, its parser and the app it builds."""
    code = ("from engine.cli import build_parser\nimport engine.commands.serve as serve\nimport argparse\n"
            "p = argparse.ArgumentParser(); serve.add_arguments(p)\n"
            "from engine.config import load_config\nfrom engine.server import create_app\ncreate_app(load_config())")
    assert not _ray_loaded_after(code)


def test_the_cluster_package_imports_ray_only_when_used():
    """engine.cluster's modules import ray inside the functions that talk to the cluster; and the
    probe does see ray when it is imported (so False above means something)."""
    assert not _ray_loaded_after("import engine.cluster.app, engine.cluster.frontdoor, engine.cluster.worker, "
                                 "engine.cluster.placement, engine.cluster.relay")
    pytest.importorskip("ray")
    assert _ray_loaded_after("import ray")
# --- the framework integrations (engine/integrations: optional extras) -------------------

FRAMEWORKS = ("pipecat", "livekit")


def test_only_the_integrations_import_the_frameworks():
    """Pipecat and LiveKit are optional extras: no engine module outside engine/integrations
    imports them, nor imports engine.integrations (the core never depends on its adapters).
    The CLI front-ends in engine/commands may: each is imported only when its command runs."""
    offenders = []
    for path in sorted(ENGINE.rglob("*.py")):
        if {ENGINE / "integrations", ENGINE / "commands"} & set(path.parents):
            continue
        for m in imported_modules(path):
            if m.split(".")[0] in FRAMEWORKS or m == "engine.integrations" or m.startswith("engine.integrations."):
                offenders.append(f"{path.relative_to(ROOT)}: {m}")
    assert offenders == []


def test_the_integration_check_can_fail():
    names = imported_modules(ENGINE / "integrations" / "pipecat.py")
    assert any(m.split(".")[0] == "pipecat" for m in names)
    assert "engine.integrations.avatar" in names


def test_the_live_path_loads_no_framework():
    code = (f"import json, sys\nimport {', '.join(LIVE_MODULES)}, engine.integrations.avatar\n"
            f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {FRAMEWORKS!r})))")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
