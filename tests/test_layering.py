"""The house is layered one way: a module may import its own package and lower layers only.

Imports are read from the source (every ``import`` / ``from ... import``, also the lazy ones
inside functions), so a violation fails here before it ever runs. Adding a package means
adding it to ``LAYERS``; the next methods (retrieval, summarize, baselines, serve) already
have their place.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "llmrec"

# higher number = higher layer; a module may import modules of the same or a lower number,
# and never a package of the same number other than its own
LAYERS: dict[str, int] = {
    "errors": 0,
    "paths": 1, "io": 1, "configfile": 1, "distributed": 1, "parallel": 1, "registry": 1,
    "runs": 2, "metrics": 2, "tracking": 2,
    "data": 3, "plots": 3, "tables": 3,
    "prompts": 4, "results": 4,
    "llm": 5,
    "retrieval": 6, "summarize": 6,
    "planning": 6.5,  # reads summaries' plans; train and evaluate read it (a launch-time guard)
    "evaluate": 7, "paired": 7, "attention": 7,
    "train": 8, "baselines": 8, "serve": 8,
    "experiments": 9, "bench": 9, "report": 9,
    "cli": 10,
    "__init__": 11, "__main__": 11,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        out[".".join(["llmrec", *parts])] = path
    return out


MODULES = _modules()


def _imports(path: Path, module: str) -> set[str]:
    """Every llmrec module that ``path`` imports (resolved to a module of the tree)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[: len(parent) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            # `from pkg import submodule` imports the submodule; `from pkg import name`, the package
            names = [f"{base}.{a.name}" if f"{base}.{a.name}" in MODULES else base for a in node.names]
        for name in names:
            if not name.startswith("llmrec"):
                continue
            while name and name not in MODULES:  # `from pkg import function` -> pkg
                name = name.rsplit(".", 1)[0] if "." in name else ""
            if name and name != module:
                found.add(name)
    return found


GRAPH = {m: _imports(p, m) for m, p in MODULES.items()}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_package_has_a_layer():
    missing = sorted({_top(m) for m in MODULES} - set(LAYERS))
    assert not missing, f"add these packages to LAYERS in {__file__}: {missing}"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_down(module):
    top = _top(module)
    bad = [dep for dep in GRAPH[module]
           if _top(dep) != top and LAYERS[_top(dep)] >= LAYERS[top]]
    assert not bad, f"{module} (layer {LAYERS[top]}) imports {bad}: only lower layers may be imported"


def test_no_import_cycles():
    """No module reaches itself through imports (package __init__ re-exports included)."""
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for dep in sorted(GRAPH[m]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[m] = 2

    for m in sorted(GRAPH):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles:\n" + "\n".join(" -> ".join(c) for c in cycles)


def test_the_checker_sees_lazy_and_relative_imports(tmp_path):
    src = "def f():\n    from llmrec.train.run import train\n    from . import metrics\n"
    (tmp_path / "m.py").write_text(src)
    assert {"llmrec.train.run", "llmrec.metrics"} <= _imports(tmp_path / "m.py", "llmrec.evaluate")
