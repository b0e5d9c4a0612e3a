"""The release artefacts: ``python -m build`` makes an sdist and a wheel that ``twine check`` accepts; the sdist
holds the package's source and nothing of the repository's data or records; the wheel, installed into a fresh
virtual environment without its dependencies, runs ``llmrec --version`` and loads a shipped prompt template from
the installed files (not from this checkout). Marked ``wheel`` (``pytest -m wheel``); about 20 s, no network
(``--no-isolation``: the build uses this environment's setuptools; ``pip install --no-index --no-deps``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parents[1]
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]

pytestmark = pytest.mark.wheel


def _run(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 120) -> str:
    done = subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    """sdist and wheel built from a copy of the checkout's package files (the build writes egg-info beside them)."""
    pytest.importorskip("build")
    setuptools = pytest.importorskip("setuptools")
    if int(setuptools.__version__.split(".")[0]) < 77:  # the build-system requirement (--no-isolation: this one)
        pytest.skip(f"setuptools {setuptools.__version__} < 77: pip install -e '.[test]'")
    tmp = tmp_path_factory.mktemp("wheel")
    tree = tmp / "tree"
    shutil.copytree(REPO / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "*.pyc"))
    for path in [REPO / "pyproject.toml", REPO / "MANIFEST.in", *REPO.glob("*.md")]:
        shutil.copy2(path, tree / path.name)
    out = tmp / "dist"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(tree), env=env, timeout=300)
    return out


def test_build_makes_an_sdist_and_a_wheel_twine_accepts(dist):
    assert sorted(p.name for p in dist.iterdir()) == [f"llmrec-{VERSION}-py3-none-any.whl", f"llmrec-{VERSION}.tar.gz"]
    pytest.importorskip("twine")
    _run(sys.executable, "-m", "twine", "check", "--strict", *map(str, sorted(dist.iterdir())))


def test_the_sdist_is_the_package_source_and_nothing_else(dist):
    with tarfile.open(dist / f"llmrec-{VERSION}.tar.gz") as sdist:
        files = [m.name.split("/", 1)[1] for m in sdist.getmembers() if m.isfile()]
    allowed_top = {"PKG-INFO", "pyproject.toml", "setup.cfg", "MANIFEST.in"}
    stray = [n for n in files if not (n in allowed_top or (n.endswith(".md") and "/" not in n)
                                      or n.startswith("src/llmrec.egg-info/")
                                      or (n.startswith("src/llmrec/") and n.endswith((".py", ".yaml", "py.typed"))))]
    assert not stray, f"files outside the package source in the sdist: {stray[:20]}"
    assert "README.md" in files and "src/llmrec/cli/__init__.py" in files
    shipped = {str(p.relative_to(REPO)) for p in (REPO / "src" / "llmrec").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert shipped <= set(files), sorted(shipped - set(files))[:10]


def test_the_wheel_holds_every_package_file(dist):
    with zipfile.ZipFile(dist / f"llmrec-{VERSION}-py3-none-any.whl") as wheel:
        names = set(wheel.namelist())
    package = {str(p.relative_to(REPO / "src")) for p in (REPO / "src" / "llmrec").rglob("*")
               if p.is_file() and "__pycache__" not in p.parts}
    assert package <= names, sorted(package - names)[:10]  # prompt and summary templates, py.typed
    assert "llmrec/prompts/templates/tallrec_movie.yaml" in names
    entry = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    with zipfile.ZipFile(dist / f"llmrec-{VERSION}-py3-none-any.whl") as wheel:
        assert "llmrec = llmrec.cli:main" in wheel.read(entry[0]).decode()


def test_the_installed_wheel_runs_from_a_fresh_venv(dist, tmp_path):
    """``pip install --no-deps`` of the wheel into a new venv; the dependencies come from this environment through a
    .pth line (appended after the venv's own site-packages, so llmrec itself is the wheel's)."""
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    _run(sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "--quiet",
         str(dist / f"llmrec-{VERSION}-py3-none-any.whl"), env=env)
    site = Path(_run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", env=env).strip())
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (site / "zz_llmrec_test_deps.pth").write_text("\n".join(sorted(ours)) + "\n")

    script = venv / ("Scripts/llmrec.exe" if os.name == "nt" else "bin/llmrec")
    out = _run(str(script), "--version", env=env)
    assert VERSION in out, out
    probe = ("import llmrec, importlib.metadata as m; from llmrec.prompts import load_template; "
             "from llmrec.prompts.template import shipped_templates; t = load_template('tallrec_movie'); "
             "print(llmrec.__file__); print(shipped_templates('llmrec.prompts')['tallrec_movie']); "
             "print(m.version('llmrec')); print(type(t).__name__)")
    module, template, version, kind = _run(str(python), "-c", probe, env=env, cwd=tmp_path).split()
    assert Path(module).resolve().is_relative_to(venv.resolve()), module
    assert Path(template).resolve().is_relative_to(venv.resolve()), template
    assert (version, kind) == (VERSION, "PromptTemplate")
