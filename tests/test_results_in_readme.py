"""The README's result tables show the numbers of the records committed in results/ (no stale copies)."""

import json
import re
from pathlib import Path

import pytest
import yaml

from llmrec.experiments import load_experiment

ROOT = Path(__file__).resolve().parents[1]
TABLES = sorted((ROOT / "results").glob("*/table.json"))


def experiment_file(name: str) -> Path:
    """The shipped experiment file whose ``name`` is ``name``."""
    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        try:
            if (yaml.safe_load(path.read_text()) or {}).get("name") == name:
                return path
        except (yaml.YAMLError, AttributeError):
            continue
    raise AssertionError(f"no experiment file in configs/ is named {name!r}")


def planned_runs(experiment, name: str) -> int:
    """How many runs a finished row has: its seeds, those of the row it takes adapters from, or one."""
    row = next(r for r in experiment.steps if r.name == name)
    if row.seeds:
        return len(row.seeds)
    return planned_runs(experiment, row.adapters_from) if row.adapters_from else 1


@pytest.mark.parametrize("table", TABLES, ids=lambda p: p.parent.name)
def test_every_finished_row_is_in_the_readme_as_recorded(table):
    """A row whose runs are all recorded is shown with its value (one run) or mean ± std (several);
    a row still growing seed by seed is left out of the README until it is complete."""
    readme = (ROOT / "README.md").read_text()
    data = json.loads(table.read_text())
    experiment = load_experiment(experiment_file(data["suite"]))
    metric = data["metrics"][0]  # the headline metric of the table (AUC, Recall@3)
    missing = []
    for name, row in data["rows"].items():
        if not row["runs"] or row["runs"] < planned_runs(experiment, name):
            continue
        mean = row[metric]["mean"]
        shown = [f"{mean:.4f}", f"{mean:.3f}"] if row["runs"] == 1 else [f"{mean:.4f} ± {row[metric]['std']:.4f}"]
        if not any(s in readme for s in shown):
            missing.append(f"{name}: {metric} {shown[0]}")
    assert not missing, f"README.md does not show these rows of {table.parent.name} as recorded: {missing}"


# "+.0075 [-.0126, +.0268]": a signed difference with its interval, as the docs quote paired results
QUOTED_DIFFERENCE = re.compile(r"([+-]0?\.\d{3,4})\s+\[([+-]?0?\.\d{3,4}),\s+([+-]?0?\.\d{3,4})\]")
QUOTING_DOCS = ["README.md", "docs/rella.md", "docs/trsr.md", "docs/tallrec-recipe.md", "results/README.md"]


def recorded_differences() -> list[tuple[float, float, float]]:
    """Every paired difference recorded in results/*/table.json: (difference, low, high) per metric."""
    found = []
    for table in TABLES:
        for entry in json.loads(table.read_text()).get("paired", []):
            for value in entry.values():
                if isinstance(value, dict) and value.get("diff") is not None and value.get("ci95"):
                    found.append((value["diff"], *value["ci95"]))
    return found


def test_every_quoted_paired_difference_is_a_recorded_one():
    """A difference quoted with its interval in the README or the docs (lora - zero-shot +.238 [+.132, +.341])
    rounds from one recorded in results/ (a table's ``paired:`` section), so a re-run that moves it
    shows up here instead of leaving a stale number in the prose."""
    recorded = recorded_differences()
    assert recorded, "results/*/table.json record no paired differences"

    def matches(quoted: tuple[str, str, str]) -> bool:
        digits = len(quoted[0].split(".")[1])
        tolerance = 0.5 * 10**-digits + 1e-9
        numbers = [float(q) for q in quoted]
        return any(all(abs(n - r) <= tolerance for n, r in zip(numbers, rec)) for rec in recorded)

    stale = []
    for name in QUOTING_DOCS:
        path = ROOT / name
        if not path.exists():
            continue
        text = path.read_text()
        for found in QUOTED_DIFFERENCE.finditer(text):  # across line breaks too
            if not matches(found.groups()):
                line = text.count("\n", 0, found.start()) + 1
                stale.append(f"{name}:{line}: {' '.join(found.group(0).split())}")
    assert not stale, f"these quoted paired differences match no record in results/*/table.json: {stale}"
