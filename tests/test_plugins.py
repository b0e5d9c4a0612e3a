"""A new protocol and a new step kind are one file and one registration each (tests/toy_plugin.py): the CLI,
``PrepareConfig``, the audit and the experiment engine take them with no library file changed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from llmrec.cli import main
from llmrec.data.prepare import PrepareConfig
from llmrec.data.prepared import PreparedData
from tests import toy_plugin

ROOT = Path(__file__).resolve().parents[1]


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


def _cli(args: list[str], plugins: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "LLMREC_PLUGINS": plugins,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "llmrec.cli", *args], env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_cli_loads_plugins_named_in_the_environment(tiny_ml1m, tmp_path):
    """``LLMREC_PLUGINS=tests.toy_plugin llmrec ...``: the plugin's protocol is listed and is a --protocol choice."""
    listed = _cli(["data", "list"], "tests.toy_plugin")
    assert listed.returncode == 0 and "last_items" in listed.stdout, listed.stderr
    out = tmp_path / "toy"
    prepared = _cli(["data", "prepare", "ml-1m", "--protocol", "last_items", "--path", str(tiny_ml1m),
                     "--out", str(out)], "tests.toy_plugin")
    assert prepared.returncode == 0, prepared.stderr
    assert PreparedData.load(out).protocol == "last_items"
    without = _cli(["data", "list"], "")
    assert without.returncode == 0 and "last_items" not in without.stdout


@pytest.mark.parametrize("plugins,spec,message", [
    ("no_such_plugin_module", "no_such_plugin_module:register", "No module named 'no_such_plugin_module'"),
    ("tests.toy_plugin:nope", "tests.toy_plugin:nope", "has no attribute 'nope'")])
def test_a_broken_plugin_is_one_line(plugins, spec, message):
    res = _cli(["data", "list"], plugins)
    lines = res.stderr.strip().splitlines()
    assert res.returncode == 1 and len(lines) == 1, res.stderr
    assert lines[0].startswith(f"Error: LLMREC_PLUGINS: {spec}: the plugin failed to load") and message in lines[0]
