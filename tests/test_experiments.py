"""Experiment suites end to end with a tiny model saved as a local folder (loaded by path)."""

import json

import pytest
import yaml

from llmrec.data.prepare import PrepareConfig, prepare
from llmrec.errors import ConfigError
from llmrec.experiments import SuiteConfig, load_suite, run_suite


def test_suite_runs_rows_and_tabulates_mean_and_std(tmp_path, tiny_ml1m, tiny_model_folder):
    data = prepare(PrepareConfig(dataset="ml-1m", protocol="tallrec", path=str(tiny_ml1m), out=str(tmp_path / "d"),
                                 tallrec={"history_len": 5, "max_samples": 300}), log=lambda m: None)[1]
    model = {"name": str(tiny_model_folder), "device": "cpu"}
    (tmp_path / "zs.yaml").write_text(yaml.safe_dump({"data": str(data), "limit": 30, "model": model}))
    (tmp_path / "tr.yaml").write_text(yaml.safe_dump({
        "data": str(data), "train_samples": 8, "model": model, "optim": {"max_steps": 1, "batch_size": 8},
        "selection": {"enabled": False}, "test": {"limit": 30}}))
    (tmp_path / "suite.yaml").write_text(yaml.safe_dump({
        "name": "toy", "metrics": ["auc"],
        "paper": {"label": "paper", "scale": 100, "values": {"shots": 60.0}},
        "rows": [{"name": "zero", "evaluate": "zs.yaml"},
                 {"name": "shots", "train": "tr.yaml", "seeds": [0, 1]},
                 {"name": "transfer", "evaluate": "zs.yaml", "adapters_from": "shots"}],
        "curves": [{"name": "auc-vs-n", "xlabel": "N", "series": {"tiny": {"zero": 0, "shots": 8}}}]}))
    out = tmp_path / "out"
    logs = []
    table = run_suite(tmp_path / "suite.yaml", out, log=logs.append, progress=False)
    aucs = [json.loads((out / "shots" / f"seed-{s}" / "metrics.json").read_text())["metrics"]["auc"] for s in (0, 1)]
    row = table["rows"]["shots"]
    assert row["runs"] == 2 and row["auc"]["values"] == aucs and row["paper"] == 0.6
    assert table["rows"]["zero"]["runs"] == 1 and table["rows"]["transfer"]["runs"] == 2
    md = (out / "table.md").read_text()
    assert "| shots | 2 |" in md and "0.6000" in md
    assert table["curves"] == ["auc-vs-n.png"] and (out / "auc-vs-n.png").stat().st_size > 0
    assert "![auc-vs-n.png](auc-vs-n.png)" in md
    # finished runs are not run again
    logs.clear()
    run_suite(tmp_path / "suite.yaml", out, log=logs.append, progress=False)
    assert any("is finished" in m for m in logs)


def test_suite_configs_are_validated(tmp_path):
    with pytest.raises(ValueError, match="exactly one of"):
        SuiteConfig.model_validate({"name": "x", "rows": [{"name": "a"}]})
    with pytest.raises(ValueError, match="not an earlier train row"):
        SuiteConfig.model_validate({"name": "x", "rows": [{"name": "a", "evaluate": "e.yaml", "adapters_from": "b"}]})
    with pytest.raises(ValueError, match="no row named b"):
        SuiteConfig.model_validate({"name": "x", "rows": [{"name": "a", "evaluate": "e.yaml"}],
                                    "curves": [{"name": "c", "series": {"s": {"a": 1, "b": 2}}}]})
    (tmp_path / "s.yaml").write_text("name: x\nrows: [{name: a, train: missing.yaml}]\n")
    with pytest.raises(ConfigError, match="missing.yaml"):
        run_suite(tmp_path / "s.yaml", tmp_path / "out", log=lambda m: None)


def test_shipped_tallrec_table_suite_is_valid():
    suite = load_suite("configs/tallrec/table.yaml")
    assert {r.name for r in suite.rows} >= {"movie-16", "movie-64", "movie-256", "book-256", "movie-256-on-book"}
    assert suite.paper.values["movie-256"] == 71.98
