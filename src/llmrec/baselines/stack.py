"""Stacking: a logistic regression over other runs' scores, fitted on validation, tested on test.

The simplest hybrid, and the bar any hybrid must pass: the features of a sample are the scores other
finished runs gave it (an LLM's evaluate run, a classic baseline, the history-rate floor), each
logit-transformed; the weights are fitted on the *validation* predictions of those runs only, and the
stack scores the same runs' *test* predictions. It is a run like the others: a ``stack`` step of an
experiment (``"@step"`` names the runs) or :func:`stack` from Python, writing the run folder of
``llmrec evaluate`` through :func:`llmrec.results.write_results` (predictions.parquet, metrics.json
with per-sample and per-user intervals, plots), so tables, ``paired:`` differences and the report
read it as any row. ``stack.json`` holds the fitted weights and each input's validation and test AUC.

Each input is either

* ``run``: a finished ``llmrec baseline`` run (a CTR model): its test predictions are read from its
  folder, its validation predictions are scored with its selected model (cheap for a classic model);
* ``valid`` and ``test``: two finished runs that scored the validation and the test selection
  (``llmrec evaluate`` on each split, or a train run's test scoring), read from their folders.

Every input must have scored exactly the selected samples (``valid`` / ``test``: split, limit,
sample_seed of the stack's prepared folder) with the folder's labels; anything else is refused with
one line (a run of another split, limit, sample_seed or data).

>>> cfg = StackConfig(data="prepared/ml-1m-rella", inputs=[{"name": "llm", "valid": "runs/v", "test": "runs/t"},
...                                                         {"name": "din", "run": "runs/din"}])
>>> [i.name for i in cfg.inputs], cfg.valid.split, cfg.test.split, cfg.C
(['llm', 'din'], 'valid', 'test', 1.0)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmrec.data.kinds import KINDS, SampleKind, detect
from llmrec.data.prepared import PreparedData, open_prepared
from llmrec.data.sampling import subset_rows
from llmrec.errors import ConfigError, DataError
from llmrec.io import file_sha256, write_json
from llmrec.paired import predictions_file, run_predictions
from llmrec.results import RESULT_COLUMNS, rows_columns, write_results
from llmrec.runs import RunDir, load_metrics, run_cost

__all__ = ["StackConfig", "StackInput", "StackSelection", "StackPlan", "check_stack", "stack", "fit_logistic",
           "logit"]

EPS = 1e-6  # scores are clipped to [EPS, 1 - EPS] before the logit


class StackInput(BaseModel):
    """One input of the stack: a baseline ``run``, or a ``valid`` and a ``test`` run."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="the input's name (its weight in stack.json)")
    run: str | None = Field(None, description="a finished llmrec baseline run (CTR): test predictions from its "
                            "folder, validation predictions scored with its selected model")
    valid: str | None = Field(None, description="a finished run that scored the validation selection")
    test: str | None = Field(None, description="a finished run that scored the test selection")

    @model_validator(mode="after")
    def _one_source(self) -> StackInput:
        if self.run is not None and (self.valid is not None or self.test is not None):
            raise ValueError(f"input {self.name!r}: give run (a baseline run), or valid and test (two runs), not both")
        if self.run is None and (self.valid is None or self.test is None):
            raise ValueError(f"input {self.name!r}: give run (a baseline run), or both valid and test (two runs)")
        return self


class StackSelection(BaseModel):
    """The samples of one side: a split of the stack's folder and the seeded subset its inputs scored."""

    model_config = ConfigDict(extra="forbid")

    split: str
    limit: int | None = Field(None, ge=1, description="the seeded subset of this many samples the inputs scored")
    sample_seed: int = 0


class StackConfig(BaseModel):
    """Everything a stack run needs (an experiment's ``stack:`` step)."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(description="the prepared folder every input scored")
    inputs: list[StackInput] = Field(min_length=1, description="the runs whose scores are the features")
    valid: StackSelection = Field(default_factory=lambda: StackSelection(split="valid"),
                                  description="the samples the weights are fitted on")
    test: StackSelection = Field(default_factory=lambda: StackSelection(split="test"),
                                 description="the samples the stack is tested on")
    C: float = Field(1.0, gt=0, description="inverse L2 strength on the weights (scikit-learn's C; the intercept "
                     "is not penalized)")
    run_dir: str | None = Field(None, description="run folder (default: runs/<time>-stack-<dataset>)")
    resume: bool = Field(True, description="a finished run folder with the same config and inputs is kept")

    @model_validator(mode="after")
    def _names(self) -> StackConfig:
        names = [i.name for i in self.inputs]
        if len(set(names)) != len(names):
            raise ValueError("inputs: names must be unique")
        return self

    def identity(self, data_fingerprint: str | None = None, inputs: dict[str, str] | None = None) -> dict[str, Any]:
        """The fields that determine the result, the data's content hash and the hashes of the inputs' predictions."""
        keep = self.model_dump(mode="json", exclude={"run_dir", "resume"})
        if data_fingerprint:
            keep["data_fingerprint"] = data_fingerprint
        if inputs:
            keep["input_predictions"] = inputs
        return keep


def logit(p: np.ndarray) -> np.ndarray:
    """log(p / (1 - p)) of scores clipped to [1e-6, 1 - 1e-6].

    >>> logit(np.array([0.5, 0.0, 1.0])).round(3).tolist()
    [0.0, -13.816, 13.816]
    """
    p = np.clip(np.asarray(p, dtype=np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def fit_logistic(x: np.ndarray, y: np.ndarray, C: float = 1.0, iterations: int = 100,
                 tol: float = 1e-10) -> tuple[np.ndarray, float]:
    """Weights and intercept minimizing ``sum(logloss) + ||w||^2 / (2 C)`` (scikit-learn's L2 objective; the
    intercept is free) by Newton's method: deterministic, exact to ``tol`` for a handful of features.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 2))
    >>> y = (rng.random(2000) < 1 / (1 + np.exp(-(1.5 * x[:, 0] - 0.5)))).astype(float)
    >>> w, b = fit_logistic(x, y)
    >>> [round(float(v), 1) for v in w], round(b, 1)
    ([1.5, 0.0], -0.5)
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    n, k = x.shape
    design = np.hstack([x, np.ones((n, 1))])
    penalty = np.full(k + 1, 1.0 / C)
    penalty[-1] = 0.0
    theta = np.zeros(k + 1)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-(design @ theta)))
        grad = design.T @ (p - y) + penalty * theta
        hess = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty) + 1e-12 * np.eye(k + 1)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.max(np.abs(step)) < tol:
            break
    return theta[:k], float(theta[-1])


@dataclass(frozen=True)
class StackPlan:
    """What :func:`check_stack` settled: the folder, the selected samples of each side, the inputs' test (and, for
    two-run inputs, validation) scores aligned to them; :func:`stack` runs from it."""

    config: StackConfig
    prepared: PreparedData
    kind: SampleKind
    rows: dict[str, np.ndarray]  # side ("valid" / "test") -> the selected row indices of its split
    sample_ids: dict[str, np.ndarray]  # side -> the sample ids of those rows, in order
    labels: dict[str, np.ndarray]  # side -> their labels
    scores: dict[tuple[str, str], np.ndarray]  # (input name, side) -> scores aligned to sample_ids[side]
    hashes: dict[str, str]  # the content hash of each predictions file read (the run's identity)


def _selection(config: StackConfig, side: str) -> StackSelection:
    return config.valid if side == "valid" else config.test


def _describe(config: StackConfig, side: str) -> str:
    sel = _selection(config, side)
    subset = f"{sel.limit:,} samples drawn with sample_seed {sel.sample_seed}" if sel.limit else "every sample"
    return f"split {sel.split!r} of {config.data} ({subset})"


def _recorded_cost(path: str | Path) -> dict[str, Any]:
    """The ``cost`` record of a finished run's metrics.json ({} when it has none)."""
    try:
        cost = load_metrics(path).get("cost")
    except Exception:  # noqa: BLE001 - an input run was checked when the plan was made
        return {}
    return cost if isinstance(cost, dict) else {}


def inputs_cost(config: StackConfig) -> tuple[float, float, list[str]]:
    """What the stack's inputs cost, from their runs' records: (training seconds, including the validation scoring a
    stack of ``valid`` / ``test`` runs fits on; test scoring seconds; the inputs whose records lack a figure).
    A baseline ``run`` input's validation scoring is part of the stack's own fit time."""
    train_s = scoring_s = 0.0
    missing: list[str] = []
    for item in config.inputs:
        test = _recorded_cost(item.run if item.run is not None else item.test)
        valid = {} if item.run is not None else _recorded_cost(item.valid)
        if "scoring_s" not in test or (item.run is None and "scoring_s" not in valid):
            missing.append(item.name)
        train_s += float(test.get("train_s") or 0.0) + float(valid.get("scoring_s") or 0.0)
        scoring_s += float(test.get("scoring_s") or 0.0)
    return train_s, scoring_s, missing


def _recorded_split(path: Path) -> str | None:
    """The split a finished run says it scored (``split`` of its metrics.json; a train run's ``test.split``)."""
    try:
        record = load_metrics(path)
    except Exception:  # noqa: BLE001 - the missing-run error comes from reading its predictions
        return None
    test = record.get("test")
    if isinstance(test, dict) and isinstance(test.get("split"), str) and not (path / "predictions.parquet").is_file():
        return test["split"]
    split = record.get("split")
    return split if isinstance(split, str) else None


def _aligned(config: StackConfig, name: str, path: str, side: str, ids: np.ndarray, labels: np.ndarray,
             hashes: dict[str, str]) -> np.ndarray:
    """The scores of the run at ``path`` in the order of ``ids``; one-line errors for anything else."""
    where = f"stack input {name!r} ({side}: {path})"
    folder = Path(path)
    if not folder.is_dir():
        raise DataError(f"{where}: no such run folder")
    if not (folder / "metrics.json").is_file():
        raise DataError(f"{where}: not a finished run (no metrics.json)")
    expected = _selection(config, side).split
    recorded = _recorded_split(folder)
    if recorded is not None and recorded != expected:
        raise DataError(f"{where}: it scored split {recorded!r}; the stack's {side} side is split {expected!r}")
    try:
        preds = run_predictions(folder)
    except (ConfigError, DataError) as exc:
        raise DataError(f"{where}: {exc}") from None
    if "candidate" in preds.columns or not {"sample_id", "label", "score"} <= set(preds.columns):
        raise DataError(f"{where}: not CTR predictions (sample_id, label, score); stacking is for CTR samples")
    hashes[f"{name}/{side}"] = file_sha256(predictions_file(folder))[:20]
    preds = preds.drop_duplicates("sample_id")
    by_id = pd.Series(np.arange(len(preds)), index=preds["sample_id"].to_numpy())
    found = by_id.reindex(ids)
    if found.isna().any() or len(preds) != len(ids):
        common = int(found.notna().sum())
        raise DataError(f"{where}: it scored {len(preds):,} samples, {common:,} of them among the {len(ids):,} of "
                        f"{_describe(config, side)}; give a run of the same split, limit and sample_seed")
    order = found.to_numpy().astype(np.int64)
    if not np.array_equal(preds["label"].to_numpy()[order].astype(np.int64), labels.astype(np.int64)):
        raise DataError(f"{where}: its labels differ from those of {_describe(config, side)}: not the same data")
    scores = preds["score"].to_numpy()[order].astype(np.float64)
    if not np.isfinite(scores).all():
        raise DataError(f"{where}: some scores are not finite")
    return scores


def check_stack(config: StackConfig, *, opened: dict[str, PreparedData] | None = None) -> StackPlan:
    """Every check before anything is written (the data, the selections, each input run and its samples); returns
    the plan :func:`stack` runs."""
    prepared = open_prepared(config.data, opened)
    rows, ids, labels = {}, {}, {}
    kind = KINDS["ctr"]
    for side in ("valid", "test"):
        sel = _selection(config, side)
        n = prepared.num_rows(sel.split)
        if n == 0:
            raise DataError(f"{config.data}/{sel.split}.parquet: the split is empty")
        found = detect(prepared.column_names(sel.split))
        if found is not kind:
            raise DataError(f"{config.data}/{sel.split}.parquet: a stack reads CTR samples (one target and a label per "
                            f"row); this is a {found.name} folder")
        rows[side] = np.asarray(subset_rows(n, sel.limit, sel.sample_seed), dtype=np.int64)
        table = prepared.split(sel.split, columns=["sample_id", "label"]).take(rows[side].tolist())
        ids[side] = table.column("sample_id").to_numpy(zero_copy_only=False)
        labels[side] = table.column("label").to_numpy(zero_copy_only=False).astype(np.int64)
    scores: dict[tuple[str, str], np.ndarray] = {}
    hashes: dict[str, str] = {}
    for item in config.inputs:
        if item.run is not None:
            run = Path(item.run)
            if not (run / "model" / "best.pt").is_file() or not (run / "model" / "features.json").is_file():
                raise DataError(f"stack input {item.name!r} (run: {item.run}): not a finished llmrec baseline run "
                                "(model/best.pt missing); for another run give its valid and test runs")
            scores[(item.name, "test")] = _aligned(config, item.name, item.run, "test", ids["test"], labels["test"],
                                                   hashes)
        else:
            for side in ("valid", "test"):
                scores[(item.name, side)] = _aligned(config, item.name, getattr(item, side), side, ids[side],
                                                     labels[side], hashes)
    return StackPlan(config, prepared, kind, rows, ids, labels, scores, hashes)


def _baseline_valid_scores(plan: StackPlan, item: StackInput) -> np.ndarray:
    """A baseline run's scores of the validation selection, from its selected model."""
    from llmrec.baselines.run import BaselineScorer, load_baseline

    _, _, run_config = load_baseline(item.run)
    if Path(run_config.data).resolve() != Path(plan.config.data).resolve():
        raise DataError(f"stack input {item.name!r} (run: {item.run}): trained on {run_config.data}, not on the "
                        f"stack's data {plan.config.data}")
    scorer = BaselineScorer.from_run(item.run)
    split = plan.config.valid.split
    cols = rows_columns(scorer, plan.prepared.column_names(split))
    rows = plan.prepared.split(split, columns=cols).take(plan.rows["valid"].tolist()).to_pylist()
    done = {r["key"]: r["score"] for r in scorer.score_rows(rows, plan.kind)}
    return np.array([done[str(s)] for s in plan.sample_ids["valid"]], dtype=np.float64)


def stack(config: StackConfig | StackPlan, *, log: Callable[[str], None] = print,
          progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """Fit the stack on the inputs' validation scores, score their test scores, write the run folder; return
    (folder, result). A finished folder with the same config and inputs is returned as it is.

    Example (an LLM evaluate run of each split and a DIN baseline run)::

        import llmrec
        from llmrec.baselines.stack import StackConfig, stack

        config = StackConfig(data="prepared/ml-1m-rella", inputs=[
            {"name": "llm", "valid": "runs/llm-valid", "test": "runs/llm-test"}, {"name": "din", "run": "runs/din"}])
        folder, result = stack(config)
        result["metrics"]["auc"], result["stack"]["weights"]
    """
    from llmrec.metrics import auc

    plan = config if isinstance(config, StackPlan) else check_stack(config)
    config = plan.config
    prepared = plan.prepared
    dataset, protocol = prepared.dataset, prepared.protocol
    default = Path("runs") / RunDir.default_name("stack", dataset, protocol)
    run, finished = RunDir.open(config.run_dir or default, config.model_dump(mode="json"),
                                config.identity(prepared.fingerprint(), plan.hashes), resume=config.resume, log=log)
    if finished is not None:
        return run.path, finished
    t0 = time.perf_counter()
    scores = dict(plan.scores)
    for item in config.inputs:
        if item.run is not None:
            log(f"stack: scoring {len(plan.rows['valid']):,} validation samples with {item.run}")
            scores[(item.name, "valid")] = _baseline_valid_scores(plan, item)
    names = [i.name for i in config.inputs]
    x_valid = np.column_stack([logit(scores[(n, "valid")]) for n in names])
    x_test = np.column_stack([logit(scores[(n, "test")]) for n in names])
    y_valid = plan.labels["valid"]
    if len(np.unique(y_valid)) < 2:
        raise DataError(f"{_describe(config, 'valid')}: one class only; the stack cannot be fitted")
    weights, intercept = fit_logistic(x_valid, y_valid, config.C)
    fitted = 1.0 / (1.0 + np.exp(-(x_valid @ weights + intercept)))
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    test_scores = 1.0 / (1.0 + np.exp(-(x_test @ weights + intercept)))
    combine_s = time.perf_counter() - t1
    y_test = plan.labels["test"]
    two = len(np.unique(y_test)) == 2
    record = {"inputs": [{"name": n, "weight": round(float(w), 6),
                          "valid_auc": round(float(auc(y_valid, scores[(n, "valid")])), 6),
                          "test_auc": round(float(auc(y_test, scores[(n, "test")])), 6) if two else None}
                         for n, w in zip(names, weights)],
              "weights": {n: round(float(w), 6) for n, w in zip(names, weights)},
              "intercept": round(intercept, 6), "C": config.C, "features": "logit of each input's score",
              "valid_samples": int(len(y_valid)), "valid_auc": round(float(auc(y_valid, fitted)), 6),
              "test_samples": int(len(y_test)), "seconds": round(fit_s, 3)}  # validation scoring + fit
    write_json(run.path / "stack.json", record)
    split = config.test.split
    cols = [c for c in RESULT_COLUMNS if c in prepared.column_names(split)]
    rows = prepared.split(split, columns=cols).take(plan.rows["test"].tolist()).to_pylist()
    done = {str(s): float(v) for s, v in zip(plan.sample_ids["test"], test_scores)}
    metrics, plots = write_results(run, rows, done, plan.kind, f"stack of {', '.join(names)} {dataset}/{protocol}/{split}",
                                   segmenter=prepared.segmenter())
    # what a stack costs end to end: its inputs' training and scoring (their records) plus its own fit and combination
    in_train, in_scoring, unrecorded = inputs_cost(config)
    cost = run_cost(train_s=in_train + fit_s, scoring_s=in_scoring + combine_s, samples=len(rows), prompts=len(done))
    cost.update(stack_fit_s=round(fit_s, 3), stack_combine_s=round(combine_s, 6),
                **({"inputs_without_cost": unrecorded} if unrecorded else {}))
    result = {"dataset": dataset, "protocol": protocol, "split": split, "stack": record, "metrics": metrics,
              "plots": plots, "run": {"samples": len(rows), "prompts": len(done)}, "cost": cost}
    run.finish(result)
    log(f"stack: weights {record['weights']}, test AUC {metrics['auc']:.4f}")
    return run.path, result
