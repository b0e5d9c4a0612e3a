"""The README's result tables show the numbers of the records committed in results/ (no stale copies)."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TABLES = sorted((ROOT / "results").glob("*/table.json"))


@pytest.mark.parametrize("table", TABLES, ids=lambda p: p.parent.name)
def test_every_recorded_row_is_in_the_readme_as_recorded(table):
    readme = (ROOT / "README.md").read_text()
    data = json.loads(table.read_text())
    metric = data["metrics"][0]  # the headline metric of the table (AUC, Recall@3)
    missing = []
    for name, row in data["rows"].items():
        if not row["runs"]:
            continue
        mean = row[metric]["mean"]
        shown = [f"{mean:.4f}", f"{mean:.3f}"] if row["runs"] == 1 else [f"{mean:.4f} ± {row[metric]['std']:.4f}"]
        if not any(s in readme for s in shown):
            missing.append(f"{name}: {metric} {shown[0]}")
    assert not missing, f"README.md does not show these rows of {table.parent.name} as recorded: {missing}"
