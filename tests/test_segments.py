"""Metrics by segment (target-item popularity from the training split, history length) and the cost of a run
(training wall time, scoring throughput), from the scoring through metrics.json to tables, paired differences and
the report.

The hand-made folder: 40 users, each with the chronology ``H, G, X, p<i>, new, T`` (X is W for 25 users and C for
15; T cycles H, W, C, G). Training samples are the targets at positions 1-3, so the training interactions are each
user's first four: H 40, G 40, W 25, C 15, p<i> 1 (160 in all). Sorted by count, H and G hold 80 = 50% of them:
head from 40 interactions; W (25) is warm; C (15), the p<i> and ``new`` (in 40 test samples, absent from
training) are cold. Test samples are the targets at positions 4 (``new``) and 5 (T).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from llmrec.data.kinds import KINDS
from llmrec.data.prepared import PreparedData
from llmrec.data.segments import Segmenter, training_counts
from llmrec.metrics import auc, recall_at_k
from llmrec.results import segment_metrics, write_results
from llmrec.runs import RunDir

USERS = [f"u{i:02d}" for i in range(40)]
CYCLE = ["H", "W", "C", "G"]


def _chronology(i: int) -> list[str]:
    return ["H", "G", "W" if i < 25 else "C", f"p{i}", "new", CYCLE[i % 4]]


def _rows(positions: list[int], labels, start: int = 0, history_end: bool = True) -> pa.Table:
    rows = []
    for i, user in enumerate(USERS):
        seq = _chronology(i)
        for pos in positions:
            rows.append({"sample_id": start + len(rows), "user": user, "item": seq[pos], "label": labels(i, pos),
                         "history_items": seq[:pos], "history_ratings": [4.0] * pos,
                         **({"history_end": pos} if history_end else {})})
    return pa.Table.from_pylist(rows)


def _test_label(i: int, pos: int) -> int:
    if pos == 5 and CYCLE[i % 4] == "W":
        return 1  # every warm test sample is a positive: a one-class segment
    return int((i * 7 + pos) % 3 == 0)


def _folder(path: Path, chronology: bool = True, test_label=_test_label) -> Path:
    seqs = pa.table({"user": USERS, "items": [_chronology(i) for i in range(40)],
                     "ratings": [[4.0] * 6] * 40, "timestamps": [list(range(6))] * 40})
    items = sorted({x for i in range(40) for x in _chronology(i)})
    made = PreparedData("toy", "rella", {"train": _rows([1, 2, 3], lambda i, p: (i + p) % 2, 0, chronology),
                                         "test": _rows([4, 5], test_label, 1000, chronology)},
                        pd.DataFrame({"item": items, "title": items}), pd.DataFrame({"user": USERS}),
                        seqs if chronology else None, {})
    return made.save(path)


def _scores(rows: list[dict]) -> dict[str, float]:
    rng = np.random.default_rng(3)
    return {str(r["sample_id"]): float(s) for r, s in zip(rows, rng.random(len(rows)))}


@pytest.mark.parametrize("chronology", [True, False])
def test_training_counts_and_buckets_by_hand(tmp_path, chronology):
    """Both ways of counting (the chronology up to each training user's last training target; the targets and
    history items the training samples show, once per user and item) give the hand-counted interactions."""
    prepared = PreparedData.load(_folder(tmp_path / "f", chronology))
    counts, basis = training_counts(prepared)
    assert basis == ("chronology" if chronology else "samples")
    assert {k: counts[k] for k in ("H", "G", "W", "C", "p7")} == {"H": 40, "G": 40, "W": 25, "C": 15, "p7": 1}
    assert "new" not in counts.index and counts.sum() == 160  # test targets and later items are not training data
    seg = prepared.segmenter()
    assert seg is prepared.segmenter()  # made once per opened folder
    assert seg.head_from == 40 and seg.history_edges == (1, 2, 3)
    assert seg.popularity(["H", "G", "W", "C", "p3", "new", "never-seen"]).tolist() == [
        "head", "head", "warm", "cold", "cold", "cold", "cold"]
    assert seg.buckets("history_length") == ["0-1", "2", "3", "4+"]
    assert seg.describe("item_popularity")["head_from"] == 40


def test_segment_metrics_by_hand_with_a_one_class_segment(tmp_path):
    prepared = PreparedData.load(_folder(tmp_path / "f"))
    rows = prepared.split("test").to_pylist()
    scores = _scores(rows)
    run = RunDir(tmp_path / "run")
    run.path.mkdir()
    metrics, _ = write_results(run, rows, scores, KINDS["ctr"], "toy", segmenter=prepared.segmenter())
    buckets = metrics["segments"]["item_popularity"]["buckets"]
    popularity = {"H": "head", "G": "head", "W": "warm"}  # by hand, from the counts in the module doc
    for name in ("cold", "head"):
        members = [r for r in rows if popularity.get(r["item"], "cold") == name]
        y = [r["label"] for r in members]
        assert buckets[name]["n"] == len(members) == {"cold": 50, "head": 20}[name]
        assert buckets[name]["auc"] == pytest.approx(auc(y, [scores[str(r["sample_id"])] for r in members]))
        lo, hi = buckets[name]["ci95"]["auc"]
        assert lo <= buckets[name]["auc"] <= hi
    # the interval resampling users where a user holds several of the bucket's samples, as overall: the ten users
    # with a C target hold two cold samples; every head sample has its own user
    assert buckets["cold"]["users"] == 40 and "ci95_by_user" in buckets["cold"] and "users" not in buckets["head"]
    assert buckets["warm"] == {"n": 10, "positive_rate": 1.0, "note": "one class: no metrics"}  # count, no metric
    history = metrics["segments"]["history_length"]
    assert history["edges"] == [1, 2, 3] and history["buckets"]["4+"]["n"] == 80
    assert history["buckets"]["0-1"] == {"n": 0, "note": "no samples"}
    preds = pd.read_parquet(run.path / "predictions.parquet")
    assert preds.set_index("item")["segment_item_popularity"].to_dict() == {
        "new": "cold", "H": "head", "W": "warm", "C": "cold", "G": "head"}
    assert set(preds["segment_history_length"]) == {"4+"}


def test_segments_never_read_test_labels(tmp_path):
    """The test split's labels (and which test rows exist) change nothing in the segments: they come from the
    training split only. Mutation: count the test split's targets too, and ``new`` (40 test samples) is head."""
    first = PreparedData.load(_folder(tmp_path / "a"))
    flipped = PreparedData.load(_folder(tmp_path / "b", test_label=lambda i, p: 1 - _test_label(i, p)))
    a, b = first.segmenter(), flipped.segmenter()
    assert a.counts.sort_index().equals(b.counts.sort_index()) and a.head_from == b.head_from
    rows_a, rows_b = first.split("test").to_pylist(), flipped.split("test").to_pylist()
    for name in ("item_popularity", "history_length"):
        assert a.assign(rows_a, KINDS["ctr"])[name].tolist() == b.assign(rows_b, KINDS["ctr"])[name].tolist()
    assert a.popularity(["new"]).tolist() == ["cold"]


def test_ranking_segments_follow_the_positive_candidate():
    seg = Segmenter(pd.Series({"hot": 500, "mid": 30}), head_from=500, history_edges=(5,), basis="samples")
    rows = [{"sample_id": i, "user": f"u{i}", "candidates": ["hot", "mid", "zz"], "labels": [int(i % 3 == j) for j in
             range(3)], "history_end": i} for i in range(36)]
    scores = {f"{i}:{j}": float((i * 5 + j * 3) % 7) for i in range(36) for j in range(3)}
    out = segment_metrics(rows, scores, KINDS["ranking"], seg)["item_popularity"]["buckets"]
    for name, j in (("head", 0), ("warm", 1), ("cold", 2)):
        lists = [i for i in range(36) if i % 3 == j]
        want = recall_at_k([[scores[f"{i}:{c}"] for c in range(3)] for i in lists],
                           [rows[i]["labels"] for i in lists], k=1)
        assert out[name]["n"] == 12 and out[name]["recall@1"] == pytest.approx(want)


def _llm_run(data: Path, folder: Path):
    from llmrec.evaluate import EvaluateConfig, evaluate
    from tests.tiny_models import tiny_loaded

    return evaluate(EvaluateConfig(data=str(data), run_dir=str(folder)), loaded=tiny_loaded("gemma3"),
                    progress=False, log=lambda m: None)


def _baseline_run(data: Path, folder: Path):
    from llmrec.baselines.run import run_baseline
    from tests.baseline_helpers import QUIET, baseline_config

    return run_baseline(baseline_config("logreg", str(data), folder, {}, {"epochs": 1, "batch_size": 32}), **QUIET)


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """A zero-shot tiny-LLM run and a logistic-regression baseline on the same TALLRec test split."""
    from llmrec.data.prepare import PrepareConfig, prepare
    from tests.conftest import random_ratings, write_ml1m_zip

    tmp = tmp_path_factory.mktemp("scored")
    archive = write_ml1m_zip(tmp / "ml-1m.zip", random_ratings(30, 60, (8, 40)))
    data = prepare(PrepareConfig(dataset="ml-1m", protocol="tallrec", path=str(archive), out=str(tmp / "tallrec"),
                                 tallrec={"history_len": 5, "max_samples": 300}), log=lambda m: None)[1]
    llm, llm_result = _llm_run(data, tmp / "zeroshot")
    base, base_result = _baseline_run(data, tmp / "logreg")
    return tmp, llm, llm_result, base, base_result


def test_every_run_records_segments_and_its_cost(scored):
    _, llm, llm_result, base, base_result = scored
    for folder, result in ((llm, llm_result), (base, base_result)):
        on_disk = json.loads((folder / "metrics.json").read_text())
        assert on_disk["cost"] == result["cost"]
        segments = on_disk["metrics"]["segments"]
        for name in ("item_popularity", "history_length"):
            assert sum(b["n"] for b in segments[name]["buckets"].values()) == result["run"]["samples"]
        cost = result["cost"]
        assert cost["scoring_s"] > 0 and cost["samples_per_s"] > 0 and cost["machine"]["cores"] >= 1
    assert llm_result["cost"]["train_s"] == 0  # zero-shot: no training
    assert base_result["cost"]["train_s"] > 0 and base_result["cost"]["train_s"] == pytest.approx(
        base_result["training"]["train_s"], abs=0.01)
    assert "scoring_s_this_session" not in llm_result["run"]  # the timing facts live in cost, once
    # the same test rows, so the same segments
    a, b = pd.read_parquet(llm / "predictions.parquet"), pd.read_parquet(base / "predictions.parquet")
    assert a["segment_item_popularity"].tolist() == b["segment_item_popularity"].tolist()


def test_paired_differences_by_segment(scored):
    from llmrec.paired import format_paired, paired_difference

    _, llm, _, base, _ = scored
    result = paired_difference(llm, base, n_boot=200, by="user")
    history = result["segments"]["history_length"]
    assert history["metric"] == "auc" and sum(b["n"] for b in history["buckets"].values()) == result["samples"]
    preds_a, preds_b = pd.read_parquet(llm / "predictions.parquet"), pd.read_parquet(base / "predictions.parquet")
    for bucket, entry in history["buckets"].items():
        if "diff" in entry:
            pick = preds_a["segment_history_length"] == bucket
            want = auc(preds_a["label"][pick], preds_a["score"][pick]) - auc(preds_b["label"][pick], preds_b["score"][pick])
            assert entry["diff"] == pytest.approx(want, abs=1e-6)
    assert "by history length:" in format_paired(result, segments=True)


def test_tables_and_the_report_show_segments_and_cost(scored, tmp_path):
    from click.testing import CliRunner

    from llmrec.cli import main
    from llmrec.experiments import write_table
    from llmrec.experiments.config import ExperimentConfig
    from llmrec.report import build_report

    tmp, llm, _, base, _ = scored
    out = tmp_path / "exp"
    shutil.copytree(llm, out / "zeroshot")
    shutil.copytree(base, out / "logreg")
    experiment = ExperimentConfig.model_validate({
        "name": "t", "metrics": ["auc", "logloss"],
        "rows": [{"name": "zeroshot", "evaluate": {}}, {"name": "logreg", "baseline": {}}],
        "paired": [{"a": "zeroshot", "b": "logreg"}]})
    table = write_table(experiment, out)
    row = table["rows"]["logreg"]
    assert row["cost"]["train_s"]["mean"] > 0 and row["cost"]["samples_per_s"]["mean"] > 0
    assert set(row["segments"]) == {"item_popularity", "history_length"}
    assert "auc" in next(iter(b for b in row["segments"]["history_length"].values() if "auc" in b))
    assert table["rows"]["zeroshot"]["cost"]["train_s"]["mean"] == 0
    assert "history_length" in table["paired"][0]["segments"]
    md = (out / "table.md").read_text()
    assert "auc by target-item popularity:" in md and "Buckets: training interactions of the target item" in md
    assert "auc by history length" in md and "| row | train s | scoring s | samples/s | device | machine |" in md
    assert "Paired differences by history length:" in md

    res = CliRunner().invoke(main, ["compare", str(llm), str(base), "--segments", "--cost"])
    assert res.exit_code == 0, res.output
    assert "auc by target-item popularity" in res.output and "samples/s" in res.output

    report = build_report([out], tmp_path / "report")
    text = (tmp_path / "report" / "report.md").read_text()
    assert "auc by history length" in text and "Cost (" in text
    assert "00-t-quality-vs-cost.png" in report["plots"]
    assert (tmp_path / "report" / "report_files" / "00-t-quality-vs-cost.png").stat().st_size > 1000
