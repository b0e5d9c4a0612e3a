"""A new protocol and a new step kind are one file and one registration each (tests/toy_plugin.py): the CLI,
``PrepareConfig``, the audit and the experiment engine take them with no library file changed."""

from __future__ import annotations

import json

import pytest
import yaml
from click.testing import CliRunner

from llmrec.cli import main
from llmrec.data.prepare import PrepareConfig
from llmrec.data.prepared import PreparedData
from tests import toy_plugin


@pytest.fixture
def plugin():
    toy_plugin.register()
    yield toy_plugin
    toy_plugin.unregister()


def test_a_registered_protocol_is_prepared_listed_and_audited_from_the_cli(plugin, tmp_path, tiny_ml1m):
    listed = CliRunner().invoke(main, ["data", "list"])
    assert listed.exit_code == 0 and "last_items" in listed.output
    out = tmp_path / "toy"
    res = CliRunner().invoke(main, ["data", "prepare", "ml-1m", "--protocol", "last_items", "--path", str(tiny_ml1m),
                                    "--out", str(out), "--set", "last_items.history_len=3"])
    assert res.exit_code == 0, res.output
    prepared = PreparedData.load(out)
    assert prepared.protocol == "last_items" and prepared.config["history_len"] == 3
    assert {len(h) for h in prepared.split("test")["history_items"].to_pylist()} == {3}
    audit = CliRunner().invoke(main, ["data", "audit", str(out)])
    assert audit.exit_code == 0, audit.output
    # its settings section is validated by its own config class, errors located under its name
    bad = CliRunner().invoke(main, ["data", "prepare", "ml-1m", "--protocol", "last_items", "--path", str(tiny_ml1m),
                                    "--out", str(tmp_path / "bad"), "--set", "last_items.history_len=0"])
    assert bad.exit_code == 1 and "last_items.history_len" in bad.output and not (tmp_path / "bad").exists()


def test_a_registered_step_kind_runs_in_an_experiment_with_a_registered_protocol(plugin, tmp_path, tiny_ml1m,
                                                                                tiny_model_folder):
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({"name": "plugin", "metrics": ["auc", "positives"], "steps": [
        {"name": "data", "prepare": {"dataset": "ml-1m", "protocol": "last_items", "path": str(tiny_ml1m),
                                     "last_items": {"history_len": 3}}},
        {"name": "positives", "count": {"data": "@data"}},
        {"name": "zeroshot", "evaluate": {"data": "@data", "limit": 20,
                                          "model": {"name": str(tiny_model_folder), "device": "cpu"}}}]}))
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["run", str(exp), "--out", str(out)])
    assert res.exit_code == 0, res.output
    counted = json.loads((out / "positives" / "metrics.json").read_text())
    assert counted["counts"]["test"] == sum(PreparedData.load(out / "data").split("test")["label"].to_pylist())
    table = json.loads((out / "table.json").read_text())
    assert set(table["rows"]) == {"positives", "zeroshot"}
    assert table["rows"]["positives"]["positives"]["values"] == [counted["metrics"]["positives"]]
    again = CliRunner().invoke(main, ["run", str(exp), "--out", str(out), "--dry-run"])
    assert again.exit_code == 0 and again.output.count("done") >= 3


def test_prepare_configs_hold_a_section_per_registered_protocol(plugin):
    cfg = PrepareConfig(dataset="ml-1m", protocol="last_items")
    assert cfg.last_items.history_len == 4 and cfg.protocol_config() is cfg.last_items
    assert {"tallrec", "rella", "trsr", "last_items"} <= set(cfg.model_dump(mode="json"))
