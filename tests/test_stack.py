"""Stacking (``llmrec.baselines.stack``): a logistic regression over finished runs' scores, fitted on validation.

The runs here are tiny synthetic ones written through the same ``write_results`` every run uses: on a planted task
two scorers each see half the signal, and the stack of both beats each alone. The stack never reads test labels
to fit; bad inputs are refused with one line; a finished stack run is kept; a stack step in an experiment reads
other steps' runs through ``"@step"`` and is a row of the table and of ``paired:``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from llmrec.baselines.stack import StackConfig, check_stack, fit_logistic, stack
from llmrec.data.kinds import KINDS
from llmrec.data.prepare import PrepareConfig, prepare
from llmrec.data.prepared import PreparedData
from llmrec.errors import ConfigError, DataError
from llmrec.results import write_results
from llmrec.runs import RunDir
from tests.baseline_helpers import QUIET, baseline_config
from tests.conftest import random_ratings, write_ml1m_zip

QUIET_LOG = {"log": lambda m: None}


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """A ReLLa folder of 60 users x 20-60 random ratings (labels: rating > 3)."""
    root = tmp_path_factory.mktemp("stack")
    zip_path = write_ml1m_zip(root / "ml-1m.zip", random_ratings(60, 80, (20, 60), seed=3))
    out = root / "rella"
    prepare(PrepareConfig(dataset="ml-1m", protocol="rella", path=str(zip_path), out=str(out)), log=lambda m: None)
    return out


def planted_scores(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Two scorers of the labels: each sees the label through its own independent noise (as informative alone)."""
    rng = np.random.default_rng(seed)
    signal = 2.0 * labels - 1.0
    a = 1 / (1 + np.exp(-(signal + rng.normal(0, 1.6, len(labels)))))
    b = 1 / (1 + np.exp(-(0.8 * signal + 0.3 + rng.normal(0, 1.4, len(labels)))))
    return a, b


def write_run(path: Path, folder: Path, split: str, scores: np.ndarray, rows: np.ndarray | None = None) -> Path:
    """A finished run that scored ``rows`` of ``split`` (all by default) with ``scores``."""
    prepared = PreparedData.load(folder)
    table = prepared.split(split, columns=["sample_id", "user", "item", "label"])
    data = table.to_pylist() if rows is None else table.take(list(rows)).to_pylist()
    run = RunDir(path)
    run.start({"split": split}, {"split": split, "name": path.name})
    metrics, plots = write_results(run, data, {str(r["sample_id"]): float(s) for r, s in zip(data, scores)},
                                   KINDS["ctr"], path.name)
    run.finish({"split": split, "metrics": metrics})
    return path


@pytest.fixture(scope="module")
def runs(folder, tmp_path_factory) -> dict[str, Path]:
    """Scorers a and b, each a valid run and a test run of the planted scores."""
    root = tmp_path_factory.mktemp("runs")
    prepared = PreparedData.load(folder)
    out = {}
    for split, seed in (("valid", 1), ("test", 2)):
        labels = prepared.split(split, columns=["label"]).column("label").to_numpy()
        a, b = planted_scores(labels, seed)
        out[f"a_{split}"] = write_run(root / f"a_{split}", folder, split, a)
        out[f"b_{split}"] = write_run(root / f"b_{split}", folder, split, b)
    return out


def stack_config(folder, runs, run_dir, **extra) -> StackConfig:
    return StackConfig.model_validate({"data": str(folder), "run_dir": str(run_dir), "inputs": [
        {"name": "a", "valid": str(runs["a_valid"]), "test": str(runs["a_test"])},
        {"name": "b", "valid": str(runs["b_valid"]), "test": str(runs["b_test"])}], **extra})


def test_stack_of_two_informative_scorers_beats_each(folder, runs, tmp_path):
    """On the planted task the stack's test AUC is above both inputs' (each computed in stack.json from their own
    test predictions), and it writes the run folder every run has (predictions, metrics with intervals by sample
    and by user, plots).

    Mutation: fit on the first input only (``x_valid[:, :1]``) or drop the logit transform: the AUC falls to the
    first scorer's, or the weights change.
    """
    path, result = stack(stack_config(folder, runs, tmp_path / "stack"), **QUIET_LOG)
    record = json.loads((path / "stack.json").read_text())
    inputs = {i["name"]: i for i in record["inputs"]}
    auc = result["metrics"]["auc"]
    assert auc > max(inputs["a"]["test_auc"], inputs["b"]["test_auc"]) + 0.01, (auc, inputs)
    assert record["weights"]["a"] > 0 and record["weights"]["b"] > 0
    for name in ("predictions.parquet", "metrics.json", "config.yaml"):
        assert (path / name).is_file()
    metrics = json.loads((path / "metrics.json").read_text())["metrics"]
    assert "auc" in metrics["ci95"] and "auc" in metrics["ci95_by_user"]
    preds = pd.read_parquet(path / "predictions.parquet")
    test_ids = pd.read_parquet(runs["a_test"] / "predictions.parquet")["sample_id"]
    assert sorted(preds["sample_id"]) == sorted(test_ids)
    cost = json.loads((path / "metrics.json").read_text())["cost"]  # its inputs' records have no cost
    assert cost["inputs_without_cost"] == ["a", "b"] and cost["train_s"] == cost["stack_fit_s"]
    # the metrics by segment every scored run has: the buckets hold every test sample, as the inputs' do
    buckets = metrics["segments"]["item_popularity"]["buckets"]
    assert sum(b["n"] for b in buckets.values()) == len(preds)
    prepared = PreparedData.load(folder)
    rows = prepared.split("test", columns=["sample_id", "item"]).to_pylist()
    expected = dict(zip([r["sample_id"] for r in rows],
                        prepared.segmenter().popularity(np.array([r["item"] for r in rows], dtype=object))))
    assert preds.set_index("sample_id")["segment_item_popularity"].to_dict() == expected


def test_fit_logistic_equals_sklearn():
    """The Newton fit minimizes scikit-learn's L2 objective: the same weights as ``LogisticRegression(C=...)``.

    Mutation: penalize the intercept too (``penalty[-1] = 1 / C``): the intercept moves.
    """
    sk = pytest.importorskip("sklearn.linear_model")
    rng = np.random.default_rng(5)
    x = rng.normal(size=(400, 3)) * [1.0, 3.0, 0.2]
    y = (rng.random(400) < 1 / (1 + np.exp(-(x @ [1.0, -0.4, 2.0] + 0.7)))).astype(int)
    for C in (0.05, 1.0):
        w, b = fit_logistic(x, y, C)
        ref = sk.LogisticRegression(C=C, tol=1e-12, max_iter=10_000).fit(x, y)
        np.testing.assert_allclose(w, ref.coef_[0], atol=1e-5)
        assert b == pytest.approx(ref.intercept_[0], abs=1e-5)


def test_permuting_test_labels_leaves_the_weights_unchanged(folder, runs, tmp_path):
    """The stack sees no test label when it fits: permuting the test labels everywhere (the prepared test split and
    both inputs' test predictions, consistently) leaves the weights exactly as they were; only the test metrics move.

    Mutation: fit on the test side (``x_test``, ``y_test``): the weights change.
    """
    _, first = stack(stack_config(folder, runs, tmp_path / "first"), **QUIET_LOG)
    data = tmp_path / "data"
    shutil.copytree(folder, data)
    moved = {k: shutil.copytree(v, tmp_path / k) for k, v in runs.items()}
    table = pq.read_table(data / "test.parquet").to_pandas()
    permuted = dict(zip(table["sample_id"], np.random.default_rng(0).permutation(table["label"].to_numpy())))
    table["label"] = table["sample_id"].map(permuted)
    table.to_parquet(data / "test.parquet", index=False)
    for name in ("a_test", "b_test"):
        preds = pd.read_parquet(moved[name] / "predictions.parquet")
        preds["label"] = preds["sample_id"].map(permuted)
        preds.to_parquet(moved[name] / "predictions.parquet", index=False)
    _, second = stack(stack_config(data, moved, tmp_path / "second"), **QUIET_LOG)
    assert second["stack"]["weights"] == first["stack"]["weights"]
    assert second["stack"]["intercept"] == first["stack"]["intercept"]
    assert second["metrics"]["auc"] != first["metrics"]["auc"]


def test_a_finished_stack_is_kept_and_changed_inputs_are_refused(folder, runs, tmp_path):
    """Run again with the same config and inputs: the finished folder is returned as it is (no refit); inputs whose
    predictions changed make another run, refused in the same folder with one line."""
    config = stack_config(folder, runs, tmp_path / "s")
    _, first = stack(config, **QUIET_LOG)
    logs: list[str] = []
    _, again = stack(config, log=logs.append)
    assert again == json.loads((tmp_path / "s" / "metrics.json").read_text()) and any("is finished" in m for m in logs)
    moved = {k: shutil.copytree(v, tmp_path / k) for k, v in runs.items()}
    preds = pd.read_parquet(moved["a_valid"] / "predictions.parquet")
    preds["score"] = 1 - preds["score"]
    preds.to_parquet(moved["a_valid"] / "predictions.parquet", index=False)
    with pytest.raises(ConfigError, match="different config"):
        stack(stack_config(folder, moved, tmp_path / "s"), **QUIET_LOG)


def test_bad_inputs_are_refused_with_one_line(folder, runs, tmp_path):
    """A missing run, an unfinished one, a run of other samples, a run of the wrong split, a run with other labels:
    each a one-line DataError before anything is written."""
    prepared = PreparedData.load(folder)
    n_test = prepared.num_rows("test")
    labels = prepared.split("test", columns=["label"]).column("label").to_numpy()
    fewer = write_run(tmp_path / "fewer", folder, "test", np.full(n_test - 3, 0.5), rows=range(n_test - 3))
    on_valid = runs["a_valid"]
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    (unfinished / "config.yaml").write_text("split: test\n")
    flipped = shutil.copytree(runs["a_test"], tmp_path / "flipped")
    preds = pd.read_parquet(flipped / "predictions.parquet")
    preds["label"] = 1 - preds["label"]
    preds.to_parquet(flipped / "predictions.parquet", index=False)
    cases = {str(tmp_path / "missing"): "no such run folder", str(unfinished): "not a finished run",
             str(fewer): f"{n_test - 3:,} samples", str(on_valid): "it scored split 'valid'",
             str(flipped): "labels differ"}
    assert len(labels) == n_test
    for test_run, message in cases.items():
        config = StackConfig.model_validate({"data": str(folder), "run_dir": str(tmp_path / "out"), "inputs": [
            {"name": "a", "valid": str(runs["a_valid"]), "test": test_run}]})
        with pytest.raises(DataError, match=message) as info:
            check_stack(config)
        assert "\n" not in str(info.value)
        assert "stack input 'a'" in str(info.value)
    assert not (tmp_path / "out").exists()
    not_baseline = StackConfig.model_validate({"data": str(folder), "inputs": [{"name": "a", "run": str(runs["a_test"])}]})
    with pytest.raises(DataError, match="not a finished llmrec baseline run"):
        check_stack(not_baseline)
    with pytest.raises(ValueError, match="give run"):
        StackConfig.model_validate({"data": str(folder), "inputs": [{"name": "a", "valid": "x"}]})


def test_stack_step_reads_baseline_and_evaluate_runs_in_an_experiment(folder, runs, tmp_path):
    """An experiment with two baseline steps (one referenced as ``run: "@step"``: its validation scores come from its
    model) and a stack step over them and a pair of runs: the stack is a row of the table and of ``paired:``; run
    again, every step is done."""
    from llmrec.experiments import run_experiment
    from llmrec.experiments.config import ExperimentConfig

    experiment = ExperimentConfig.model_validate({"name": "stacked", "steps": [
        {"name": "hr", "baseline": {"model": "history_rate", "data": str(folder)}},
        {"name": "pop", "baseline": {"model": "popularity", "data": str(folder)}},
        {"name": "st", "stack": {"data": str(folder), "inputs": [
            {"name": "history_rate", "run": "@hr"}, {"name": "popularity", "run": "@pop"},
            {"name": "a", "valid": str(runs["a_valid"]), "test": str(runs["a_test"])}]}}],
        "paired": [{"a": "st", "b": "hr"}]})
    logs: list[str] = []
    run_experiment(experiment, tmp_path / "exp", log=logs.append, progress=False)
    table = (tmp_path / "exp" / "table.md").read_text()
    assert "| st |" in table and "st - hr" in table
    record = json.loads((tmp_path / "exp" / "st" / "seed-0" / "stack.json").read_text())
    assert set(record["weights"]) == {"history_rate", "popularity", "a"}
    logs.clear()
    run_experiment(experiment, tmp_path / "exp", log=logs.append, progress=False)
    assert sum(": done" in m for m in logs) == 3, logs


def test_a_baseline_run_input_scores_the_validation_split_with_its_model(folder, tmp_path):
    """``run:`` a baseline run: its test scores are its predictions, its validation scores those of its selected
    model (here the popularity floor: the training positive rate of the item, recomputed with pandas)."""
    from llmrec.baselines.run import run_baseline

    path, _ = run_baseline(baseline_config("popularity", str(folder), tmp_path / "pop", {}, {}), **QUIET)
    config = StackConfig.model_validate({"data": str(folder), "run_dir": str(tmp_path / "s"),
                                         "inputs": [{"name": "pop", "run": str(path)}]})
    plan = check_stack(config)
    from llmrec.baselines.stack import _baseline_valid_scores

    scores = _baseline_valid_scores(plan, config.inputs[0])
    prepared = PreparedData.load(folder)
    train = prepared.split("train", columns=["item", "label"]).to_pandas()
    prior = train["label"].mean()
    stats = train.groupby("item")["label"].agg(["sum", "count"])
    rate = (stats["sum"] + 10 * prior) / (stats["count"] + 10)
    valid = prepared.split("valid", columns=["item"]).to_pandas()
    expected = valid["item"].map(rate).fillna(prior).to_numpy()
    np.testing.assert_allclose(scores, expected, atol=1e-6)
    with pytest.raises(ValueError, match="at least 1"):
        StackConfig.model_validate({"data": str(folder), "inputs": []})


def test_llmrec_run_refuses_a_stack_of_mismatched_runs_with_one_line(folder, runs, tmp_path):
    """From the command line: a stack step whose test input scored the validation split fails before anything runs,
    one line naming the step and the input, no traceback."""
    import yaml
    from click.testing import CliRunner

    from llmrec.cli import main

    experiment = {"name": "bad-stack", "steps": [{"name": "st", "stack": {"data": str(folder), "inputs": [
        {"name": "a", "valid": str(runs["a_valid"]), "test": str(runs["b_valid"])}]}}]}
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(experiment))
    out = CliRunner().invoke(main, ["run", str(path), "--out", str(tmp_path / "out")])
    assert out.exit_code == 1
    lines = [line for line in out.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "step 'st'" in lines[0] and "stack input 'a'" in lines[0], out.output
    assert "Traceback" not in out.output and not (tmp_path / "out" / "st").exists()


def test_a_stack_costs_its_inputs_plus_its_own_fit(folder, runs, tmp_path):
    """A stack's ``cost`` is end to end: the inputs' training seconds and the validation scoring it fits on, plus its
    fit (training); the inputs' test scoring plus its combination (scoring); samples/s over the sum.

    Mutation: leave out the validation runs' scoring, or one input: the sums differ.
    """
    import shutil

    copies = {}
    for key, (train_s, scoring_s) in {"a_valid": (None, 3.0), "a_test": (100.0, 5.0), "b_valid": (None, 7.0),
                                      "b_test": (200.0, 11.0)}.items():
        copies[key] = Path(shutil.copytree(runs[key], tmp_path / key))
        record = json.loads((copies[key] / "metrics.json").read_text())
        record["cost"] = {"scoring_s": scoring_s, **({} if train_s is None else {"train_s": train_s})}
        (copies[key] / "metrics.json").write_text(json.dumps(record))
    path, result = stack(stack_config(folder, copies, tmp_path / "stack"), **QUIET_LOG)
    cost = json.loads((path / "metrics.json").read_text())["cost"]
    assert cost["train_s"] == pytest.approx(100 + 200 + 3 + 7 + cost["stack_fit_s"], abs=2e-3)
    assert cost["scoring_s"] == pytest.approx(5 + 11 + cost["stack_combine_s"], abs=2e-3)
    assert cost["samples_per_s"] == pytest.approx(result["run"]["samples"] / cost["scoring_s"], rel=1e-3)
    assert "inputs_without_cost" not in cost
