"""No test can hang CI: pytest-timeout ends a test that runs past the per-test limit of pyproject.toml."""

import subprocess
import sys
import time
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def test_the_test_extra_and_the_pytest_config_set_a_per_test_limit():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert any(dep.startswith("pytest-timeout") for dep in config["project"]["optional-dependencies"]["test"])
    options = config["tool"]["pytest"]["ini_options"]
    assert 600 <= options["timeout"] <= 1800 and options["timeout_method"] == "thread"


def test_a_hanging_test_fails_instead_of_stalling(tmp_path):
    """A test that sleeps past the limit (2 s here, the project's config otherwise) fails the run within seconds."""
    (tmp_path / "test_hang.py").write_text("import time\n\ndef test_hang():\n    time.sleep(120)\n")
    start = time.monotonic()
    res = subprocess.run([sys.executable, "-m", "pytest", str(tmp_path / "test_hang.py"), "-c", str(ROOT / "pyproject.toml"),
                          "--rootdir", str(tmp_path), "-p", "no:cacheprovider", "-o", "timeout=2"],
                         capture_output=True, text=True, timeout=100)
    assert res.returncode != 0, res.stdout[-2000:]
    assert "Timeout" in res.stdout + res.stderr
    assert time.monotonic() - start < 60
