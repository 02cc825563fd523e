"""The import graph of src/quasieq follows the pipeline (docs/architecture.md).

Read from the code's own imports (``ast``; imports inside functions count, they are dependencies too):
no module imports a module of a later stage, there is no import cycle, and nothing imports the CLI.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "quasieq"

#: The pipeline stages, earliest first; a module may import modules of its own stage or earlier ones.
#: Keep in step with the table in docs/architecture.md. A module is placed by its longest prefix here
#: (``quasieq`` itself, the package face, only exactly: a new top-level module must be placed).
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("foundation", ("quasieq.errors", "quasieq.tolerances", "quasieq.lazy", "quasieq.interrupts",
                    "quasieq.cluster", "quasieq.io.limits", "quasieq.budget")),
    ("ir", ("quasieq.net", "quasieq.weights", "quasieq.box", "quasieq.forward_range", "quasieq.slices",
            "quasieq.sparsity")),
    ("frontend", ("quasieq.frontend",)),
    ("io", ("quasieq.io",)),
    ("analysis", ("quasieq.regions", "quasieq.geometry", "quasieq.unit_box")),
    ("synthesis", ("quasieq.construct", "quasieq.quadratic")),
    ("check", ("quasieq.verify",)),
    ("library", ("quasieq.pipeline", "quasieq.viz", "quasieq.report", "quasieq.experiments")),
    ("face", ("quasieq",)),
    ("application", ("quasieq.console", "quasieq.demo", "quasieq.experiments_cli", "quasieq.quadratic_cli")),
    ("cli", ("quasieq.cli",)),
    ("entry", ("quasieq.__main__",)),  # the ``quasieq`` script: signal handling first, then the CLI
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def stage_of(module: str) -> int:
    """Index in :data:`STAGES` of the longest listed prefix of ``module``."""
    best, index = -1, None
    for i, (_, prefixes) in enumerate(STAGES):
        for prefix in prefixes:
            below = prefix != "quasieq" and module.startswith(prefix + ".")
            if (module == prefix or below) and len(prefix) > best:
                best, index = len(prefix), i
    assert index is not None, f"{module} is in no stage of STAGES: place it"
    return index


def known(name: str) -> str:
    """The module ``name`` resolves to: itself, or the package holding the attribute it names."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def imports_of(module: str) -> set[str]:
    """The quasieq modules ``module`` imports (``from pkg import sub`` names the submodule)."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {known(a.name) for a in node.names if a.name.split(".")[0] == "quasieq"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").split(".")[0] == "quasieq":
            base = node.module
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else known(base) for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level > 0:
            pytest.fail(f"{module}: relative import; write the absolute quasieq.… path")
    found.discard(module)
    return found


def imports_by_name() -> dict[str, set[str]]:
    """The modules loaded by name (``importlib``) instead of an import statement: the registry's
    construction modules, the package face's lazy attributes and the CLI's lazy command groups. They are
    dependencies all the same, so they are arrows of the graph."""
    from quasieq import _LAZY
    from quasieq.cli import LAZY_GROUPS
    from quasieq.construct.registry import CONSTRUCTIONS

    return {
        "quasieq.construct.registry": {c.module for c in CONSTRUCTIONS.values()},
        "quasieq": set(_LAZY.values()),
        "quasieq.cli": {module for module, _ in LAZY_GROUPS.values()},
    }


BY_NAME = imports_by_name()
GRAPH = {module: imports_of(module) | BY_NAME.get(module, set()) for module in MODULES}


def test_every_module_loaded_by_name_exists():
    assert {target for targets in BY_NAME.values() for target in targets} <= MODULES.keys()


def backward_arrows(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a module of a later stage, as text."""
    return [
        f"{module} ({STAGES[stage_of(module)][0]}) imports {target} ({STAGES[stage_of(target)][0]})"
        for module, targets in graph.items() for target in targets if stage_of(target) > stage_of(module)
    ]


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """An import cycle (module by module, the first repeated at the end), or None: depth-first search
    for an edge back onto the current path."""
    state: dict[str, int] = {}  # 1 on the current path, 2 finished
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(graph):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_every_module_has_a_stage():
    for module in MODULES:
        stage_of(module)


def test_no_arrow_from_an_earlier_stage_to_a_later_one():
    assert backward_arrows(GRAPH) == []


def test_no_import_cycle():
    cycle = find_cycle(GRAPH)
    assert cycle is None, " -> ".join(cycle)


def test_nothing_imports_the_cli_and_construct_does_not_import_verify():
    """Only the entry point runs the CLI."""
    assert [m for m, targets in GRAPH.items() if "quasieq.cli" in targets] == ["quasieq.__main__"]
    assert [(m, t) for m, targets in GRAPH.items() if m.startswith("quasieq.construct")
            for t in targets if t.startswith("quasieq.verify")] == []


def test_the_checks_see_a_planted_backward_arrow_and_cycle():
    """The checks can fail: an IR → synthesis import planted in the graph is a backward arrow and,
    since the constructions import the IR, closes a cycle."""
    planted = {module: set(targets) for module, targets in GRAPH.items()}
    planted["quasieq.net"].add("quasieq.construct.transform")
    assert backward_arrows(planted) == ["quasieq.net (ir) imports quasieq.construct.transform (synthesis)"]
    cycle = find_cycle(planted)
    assert cycle is not None and cycle[0] == cycle[-1] and "quasieq.net" in cycle


def loaded_after(code: str) -> set[str]:
    """The top-level names of the modules loaded after running ``code`` in a fresh interpreter, plus
    every quasieq module."""
    script = f"{code}\nimport sys\nprint(' '.join(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(PACKAGE.parent)}
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr
    names = out.stdout.split()
    return {n.split(".")[0] for n in names} | {n for n in names if n.startswith("quasieq")}


def test_the_package_face_loads_no_torch_matplotlib_or_construction():
    loaded = loaded_after("import quasieq")
    assert {"torch", "matplotlib", "sklearn", "onnxruntime"}.isdisjoint(loaded)
    assert not {m for m in loaded if m.startswith(("quasieq.construct.", "quasieq.verify", "quasieq.quadratic"))}


def test_info_loads_no_torch_matplotlib_or_construction(tmp_path):
    path = tmp_path / "net.npz"
    np.savez(path, W0=np.eye(2), b0=np.zeros(2), W1=np.ones((1, 2)), b1=np.zeros(1))
    loaded = loaded_after(f"from quasieq.cli import app\napp(['info', {str(path)!r}], standalone_mode=False)")
    # pydantic: typer 0.29 loads it for every parameter (pyproject.toml pins typer below it)
    assert {"torch", "matplotlib", "sklearn", "onnxruntime", "pydantic"}.isdisjoint(loaded)
    assert "quasieq.construct.transform" not in loaded and "quasieq.verify.compare" not in loaded


def test_lazy_names_are_the_library_objects():
    import quasieq as qe
    from quasieq.construct.transform import to_deep, to_wide
    from quasieq.frontend.torch_source import from_torch
    from quasieq.verify.compare import compare

    assert (qe.to_wide, qe.to_deep, qe.compare, qe.from_torch) == (to_wide, to_deep, compare, from_torch)
    assert qe.quadratic.__name__ == "quasieq.quadratic" and callable(qe.regions)
    assert set(qe.__all__) <= set(dir(qe))
    with pytest.raises(AttributeError):
        qe.no_such_name  # noqa: B018
