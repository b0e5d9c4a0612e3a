"""Check -> Plan -> Run: a command checks once, returns a plan, and runs from it; each prepared folder is
opened once per command and each of its files read at most once for the same columns.

The counts come from ``llmrec.data.prepared.READS`` (every Parquet read) and a count of
``PreparedData.load`` calls.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

import llmrec.data.prepared as prepared_module
from llmrec.data.prepared import READS, PreparedData
from llmrec.evaluate import EvaluateConfig, EvaluatePlan, check_evaluate, evaluate
from llmrec.train import TrainConfig, train, train_seeds
from llmrec.train.run import TrainPlan, check_train
from tests.tiny_models import tiny_loaded

QUIET = dict(progress=False, log=lambda m: None)


@pytest.fixture
def loads(monkeypatch):
    """Every PreparedData.load, by folder name."""
    opened: Counter = Counter()
    original = PreparedData.load.__func__

    def counted(cls, directory):
        opened[Path(directory).name] += 1
        return original(cls, directory)

    monkeypatch.setattr(prepared_module.PreparedData, "load", classmethod(counted))
    return opened


def _reads() -> Counter:
    """How many times each (file, columns) was read since READS.clear()."""
    return Counter((Path(p).name, cols) for p, cols in READS.tables)


def test_evaluate_opens_the_folder_once_and_reads_the_split_once_by_its_columns(tallrec_data, tmp_path, loads):
    """Mutation: make ``evaluate`` call ``check_evaluate`` again, or read ``prepared.split(split)`` whole
    before projecting: the counts below fail."""
    READS.clear()
    config = EvaluateConfig(data=str(tallrec_data), limit=20, run_dir=str(tmp_path / "run"))
    plan = check_evaluate(config, model=False)
    assert isinstance(plan, EvaluatePlan) and len(plan.rows) == 20 and plan.kind.name == "ctr"
    assert READS.tables == []  # the check reads footers only
    evaluate(plan, loaded=tiny_loaded("gemma3"), **QUIET)
    assert loads == {"tallrec": 1}
    reads = _reads()
    test_reads = [cols for (name, cols) in reads if name == "test.parquet"]
    assert len(test_reads) == 1 and test_reads[0] is not None  # once, projected
    # projected: what the prompts and the results read (history_end: the history-length segment), not the rest
    assert "history_end" in test_reads[0] and "timestamp" not in test_reads[0] and "rating" not in test_reads[0]
    assert all(n == 1 for n in reads.values()), reads
    # the segments' training counts: the train split by two columns and the chronology, each read once
    assert reads[("train.parquet", ("user", "history_end"))] == 1 and sum(n for (f, _), n in reads.items()
                                                                       if f == "sequences.parquet") == 1


def test_training_with_selection_and_test_opens_the_folder_once(tallrec_data, tmp_path, loads):
    """Mutation: let the test pass build its own ``EvaluateConfig`` and call ``evaluate(config)`` (which opens
    the folder again), or call ``check_mix`` / ``check_train`` again inside ``train``: ``loads`` counts 2."""
    READS.clear()
    cfg = TrainConfig(data=str(tallrec_data), train_samples=16, run_dir=str(tmp_path / "run"),
                      optim={"max_steps": 2, "batch_size": 8}, selection={"limit": 20}, test={"limit": 15})
    plan = check_train(cfg, model=False)
    assert isinstance(plan, TrainPlan) and len(plan.indices) == 16 and plan.test is plan.prepared
    path, result = train(plan, loaded=tiny_loaded("gemma3"), **QUIET)
    assert loads == {"tallrec": 1} and result["test"]["data"] == str(tallrec_data)
    # the test pass's segments and cost, with the training wall time, in the train run's own record
    assert "segments" in result["metrics"] and result["cost"]["train_s"] > 0 and result["cost"]["samples_per_s"] > 0
    reads = _reads()
    assert all(n == 1 for n in reads.values()), reads  # no file read twice for the same columns
    assert {name for name, _ in reads} >= {"train.parquet", "valid.parquet", "test.parquet"}
    assert all(cols is not None for name, cols in reads if name in ("valid.parquet", "test.parquet"))


def test_seeds_open_each_folder_once(tallrec_data, tmp_path, loads):
    cfg = TrainConfig(data=str(tallrec_data), train_samples=8, run_dir=str(tmp_path / "multi"),
                      optim={"max_steps": 1, "batch_size": 8}, selection={"enabled": False}, test={"limit": 10})
    train_seeds(cfg, [0, 1], loader=lambda: tiny_loaded("llama"), **QUIET)
    assert loads == {"tallrec": 1}


def test_a_plan_carries_the_resolved_config_and_identity(tallrec_data):
    config = EvaluateConfig(data=str(tallrec_data), limit=5, sample_seed=3)
    plan = check_evaluate(config, model=False)
    again = check_evaluate(config, model=False)
    assert plan.rows == again.rows and plan.identity == config.identity(PreparedData.load(tallrec_data).fingerprint())
    with pytest.raises(Exception, match="no split 'nope'"):
        check_evaluate(config.model_copy(update={"split": "nope"}), model=False)
