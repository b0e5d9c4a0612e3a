"""The README's result tables show the numbers of the records committed in results/ (no stale copies)."""

import json
from pathlib import Path

import pytest
import yaml

from llmrec.experiments import load_suite

ROOT = Path(__file__).resolve().parents[1]
TABLES = sorted((ROOT / "results").glob("*/table.json"))


def experiment_file(suite_name: str) -> Path:
    """The shipped experiment file whose ``name`` is ``suite_name``."""
    for path in sorted((ROOT / "configs").rglob("*.yaml")):
        try:
            if (yaml.safe_load(path.read_text()) or {}).get("name") == suite_name:
                return path
        except (yaml.YAMLError, AttributeError):
            continue
    raise AssertionError(f"no experiment file in configs/ is named {suite_name!r}")


def planned_runs(suite, name: str) -> int:
    """How many runs a finished row has: its seeds, those of the row it takes adapters from, or one."""
    row = next(r for r in suite.rows if r.name == name)
    if row.seeds:
        return len(row.seeds)
    return planned_runs(suite, row.adapters_from) if row.adapters_from else 1


@pytest.mark.parametrize("table", TABLES, ids=lambda p: p.parent.name)
def test_every_finished_row_is_in_the_readme_as_recorded(table):
    """A row whose runs are all recorded is shown with its value (one run) or mean ± std (several);
    a row still growing seed by seed is left out of the README until it is complete."""
    readme = (ROOT / "README.md").read_text()
    data = json.loads(table.read_text())
    suite = load_suite(experiment_file(data["suite"]))
    metric = data["metrics"][0]  # the headline metric of the table (AUC, Recall@3)
    missing = []
    for name, row in data["rows"].items():
        if not row["runs"] or row["runs"] < planned_runs(suite, name):
            continue
        mean = row[metric]["mean"]
        shown = [f"{mean:.4f}", f"{mean:.3f}"] if row["runs"] == 1 else [f"{mean:.4f} ± {row[metric]['std']:.4f}"]
        if not any(s in readme for s in shown):
            missing.append(f"{name}: {metric} {shown[0]}")
    assert not missing, f"README.md does not show these rows of {table.parent.name} as recorded: {missing}"
