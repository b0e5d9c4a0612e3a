"""``llmrec data audit``: the leakage audit passes on every protocol's real output and catches planted leaks."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from llmrec.cli import main
from llmrec.data.audit import audit_prepared
from llmrec.data.prepare import PrepareConfig, prepare


def _status(report: dict) -> dict[str, str]:
    return {c["check"]: c["status"] for c in report["checks"]}


@pytest.fixture
def rella_dir(tmp_path, tiny_ml1m):
    cfg = PrepareConfig(dataset="ml-1m", protocol="rella", path=str(tiny_ml1m), out=str(tmp_path / "rella"))
    prepare(cfg, log=lambda m: None)
    return tmp_path / "rella"


def _rewrite(path, split: str, column: str, values) -> None:
    table = pq.read_table(path / f"{split}.parquet")
    table = table.set_column(table.schema.get_field_index(column), column, pa.array(values, type=table[column].type))
    pq.write_table(table, path / f"{split}.parquet")


def test_clean_rella_passes(rella_dir):
    report = audit_prepared(rella_dir)
    assert report["ok"], report
    assert _status(report) == {"history_matches_chronology": "ok", "history_before_target": "ok", "split_periods": "ok",
                               "users_disjoint": "skipped", "fewshot_from_train": "skipped"}


def test_a_train_sample_from_the_test_period_is_caught(rella_dir):
    test_start = pq.read_table(rella_dir / "test.parquet")["timestamp"].to_numpy().min()
    ts = pq.read_table(rella_dir / "train.parquet")["timestamp"].to_numpy().copy()
    ts[0] = test_start + 1000
    _rewrite(rella_dir, "train", "timestamp", ts)
    report = audit_prepared(rella_dir)
    assert not report["ok"]
    periods = next(c for c in report["checks"] if c["check"] == "split_periods")
    assert periods["status"] == "FAILED" and periods["leaking_samples"] >= 1


def test_a_history_item_after_its_target_is_caught(rella_dir):
    # shift the history window one step to the future: it now holds the target itself
    end = pq.read_table(rella_dir / "valid.parquet")["history_end"].to_numpy().copy()
    end[:5] += 1
    _rewrite(rella_dir, "valid", "history_end", end)
    report = audit_prepared(rella_dir)
    assert _status(report)["history_matches_chronology"] == "FAILED"
    assert not report["ok"]


def test_fewshot_rows_outside_train_and_shared_trsr_users_are_caught(tmp_path, tiny_ml1m):
    prepare(PrepareConfig(dataset="ml-1m", protocol="tallrec", path=str(tiny_ml1m), out=str(tmp_path / "t"),
                          tallrec={"few_shot": [4], "max_samples": 200}), log=lambda m: None)
    valid = pq.read_table(tmp_path / "t" / "valid.parquet")
    pq.write_table(valid.slice(0, 4), tmp_path / "t" / "fewshot_4.parquet")
    assert _status(audit_prepared(tmp_path / "t"))["fewshot_from_train"] == "FAILED"

    prepare(PrepareConfig(dataset="ml-1m", protocol="trsr", path=str(tiny_ml1m), out=str(tmp_path / "r"),
                          trsr={"min_interactions": 5, "max_interactions": 40, "eval_negatives": 5}), log=lambda m: None)
    assert _status(audit_prepared(tmp_path / "r"))["users_disjoint"] == "ok"
    test = pq.read_table(tmp_path / "r" / "test.parquet")
    train = pq.read_table(tmp_path / "r" / "train.parquet")
    users = train["user"].to_pylist()
    users[0] = test["user"][0].as_py()
    _rewrite(tmp_path / "r", "train", "user", users)
    assert _status(audit_prepared(tmp_path / "r"))["users_disjoint"] == "FAILED"


def test_cli_exit_code_and_json(rella_dir):
    runner = CliRunner()
    ok = runner.invoke(main, ["data", "audit", str(rella_dir), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.output)["ok"] is True
    ts = pq.read_table(rella_dir / "train.parquet")["timestamp"].to_numpy().copy()
    ts[:] = ts.max() * 10
    _rewrite(rella_dir, "train", "timestamp", ts)
    bad = runner.invoke(main, ["data", "audit", str(rella_dir)])
    assert bad.exit_code == 1 and "FAILED" in bad.output


@pytest.mark.shared_data
@pytest.mark.parametrize("dataset,protocol,applies", [
    ("ml-100k", "tallrec", {"history_before_target", "split_periods", "fewshot_from_train"}),
    ("bookcrossing", "tallrec", {"fewshot_from_train"}),
    ("ml-1m", "rella", {"history_before_target", "split_periods"}),
    ("amazon-games", "trsr", {"history_before_target", "users_disjoint"}),
])
def test_every_protocol_keeps_its_promises_on_real_data(tmp_path, shared_data, dataset, protocol, applies):
    cfg = PrepareConfig(dataset=dataset, protocol=protocol, data_root=str(shared_data), out=str(tmp_path / "p"))
    prepare(cfg, log=lambda m: None)
    report = audit_prepared(tmp_path / "p")
    assert report["ok"], report
    ran = {c["check"] for c in report["checks"] if c["status"] == "ok"}
    assert applies <= ran, report
    if protocol != "trsr" and "history_before_target" in applies:
        table = pq.read_table(tmp_path / "p" / "train.parquet")
        assert pc.min(pc.list_value_length(table["history_items"])).as_py() >= 1
