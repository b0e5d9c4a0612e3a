"""The results of a finished scoring, written the same way for every model (an LLM or a classic one).

Every model is a :class:`SampleScorer`: prepared sample rows in, one record per prompt key out
(:meth:`SampleKind.keys`), so ``llmrec evaluate`` scores a split with an LLM
(``llmrec.evaluate.PromptScorer``) or a trained classic model
(``llmrec.baselines.run.BaselineScorer``) the same way, and both end in :func:`write_results`.

:func:`write_results` writes ``predictions.parquet`` and the plots into a run folder and returns
the metrics with their 95% bootstrap intervals (per sample, and per user where users have
several samples). What the predictions hold and which metrics apply is the sample kind's
(:class:`llmrec.data.kinds.SampleKind`): one record per sample for CTR rows, one per candidate
for candidate lists.

>>> import tempfile
>>> from llmrec.data.kinds import KINDS
>>> from llmrec.runs import RunDir
>>> run = RunDir(tempfile.mkdtemp())
>>> rows = [{"sample_id": i, "user": "u", "item": str(i), "label": i % 2} for i in range(4)]
>>> metrics, plots = write_results(run, rows, {str(i): {"score": i / 4} for i in range(4)}, KINDS["ctr"], "demo")
>>> metrics["auc"], metrics["ci95"]["auc"][1], (run.path / "predictions.parquet").is_file()
(0.75, 1.0, True)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

import numpy as np

from llmrec.data.kinds import SampleKind, Scored, kind_of
from llmrec.data.segments import MIN_SAMPLES, Segmenter
from llmrec.io import write_parquet
from llmrec.runs import RunDir

__all__ = ["SampleScorer", "segment_metrics", "write_results"]


@runtime_checkable
class SampleScorer(Protocol):
    """Prepared sample rows in, one record per prompt out: any model ``llmrec evaluate`` can score a split with.

    ``columns`` are the sample columns the scorer reads (a caller reads those of the split that exist, plus the
    ones the results need). :meth:`score_rows` returns, for each row in order, one record per prompt key of the
    row (``kind.keys(row)``: ``{"key": ..., "score": float, ...}``); an LLM's records also carry ``tokens``,
    ``history_kept`` and ``history_total``. ``progress`` is called with the number of prompts just scored.

    >>> from llmrec.data.kinds import KINDS
    >>> class Newest:  # a trivial scorer: the later the sample, the higher its score
    ...     columns = ("sample_id",)
    ...     def score_rows(self, rows, kind, progress=None):
    ...         return [{"key": key, "score": row["sample_id"] / 10} for row in rows for key in kind.keys(row)]
    >>> isinstance(Newest(), SampleScorer)
    True
    >>> Newest().score_rows([{"sample_id": 3, "candidates": ["a", "b"]}], KINDS["ranking"])
    [{'key': '3:0', 'score': 0.3}, {'key': '3:1', 'score': 0.3}]
    """

    columns: tuple[str, ...]

    def score_rows(self, rows: list[dict[str, Any]], kind: SampleKind,
                   progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
        ...


# the columns write_results reads from a row (keys, users, items, labels, history length), besides a scorer's own
RESULT_COLUMNS = ("sample_id", "user", "item", "label", "candidates", "labels", "history_end")


def rows_columns(scorer: SampleScorer, available: list[str]) -> list[str]:
    """The columns to read for the rows ``scorer`` scores and :func:`write_results` writes: its own, then the results',
    in that order, those of ``available`` only.

    >>> from types import SimpleNamespace
    >>> rows_columns(SimpleNamespace(columns=("history_items", "user")), ["user", "label", "history_items", "x"])
    ['history_items', 'user', 'label']
    """
    return [c for c in dict.fromkeys((*scorer.columns, *RESULT_COLUMNS)) if c in available]


def write_results(run: RunDir, rows: list[dict[str, Any]], done: Mapping[str, Mapping[str, Any] | float],
                  kind: SampleKind | str, title: str, segmenter: Segmenter | None = None) -> tuple[dict[str, Any], list[str]]:
    """Write predictions.parquet and the plots of a finished scoring; return (metrics with 95% intervals, plots).

    ``done`` maps each prompt's key (:meth:`SampleKind.keys`: ``sample_id``, or ``sample_id:j`` for candidate
    ``j`` of a list) to its score, or to a record with a ``score``. ``segmenter`` (the prepared folder's
    :meth:`~llmrec.data.prepared.PreparedData.segmenter`, made once per run) adds the metrics by segment
    (``metrics["segments"]``, see :func:`segment_metrics`) and each prediction's segments
    (``segment_<segmentation>`` columns of predictions.parquet).
    """
    from llmrec.plots import ctr_plots, rank_plot

    kind = kind_of(kind)
    scores = {k: float(v["score"] if isinstance(v, Mapping) else v) for k, v in done.items()}
    scored = kind.score(rows, scores)
    preds = scored.predictions
    if scored.ranks is not None:
        plots = rank_plot(scored.ranks, len(rows[0]["candidates"]), run.path / "plots", title)
    else:
        plots = ctr_plots(preds["label"].to_numpy(), preds["score"].to_numpy(), run.path / "plots", title)
    metrics: dict[str, Any] = _record(scored)
    if segmenter is not None:
        assigned = segmenter.assign(rows, kind)
        per_row = np.array([kind.prompts_in(r) for r in rows])
        for name, labels in assigned.items():
            if segmenter.buckets(name):
                preds[f"segment_{name}"] = np.repeat(labels, per_row)
        metrics["segments"] = segment_metrics(rows, scores, kind, segmenter, assigned)
    write_parquet(run.path / "predictions.parquet", preds)
    return metrics, plots


def _record(scored: Scored) -> dict[str, Any]:
    """Metrics with their 95% intervals as metrics.json holds them (by user too, where users hold several samples)."""
    metrics: dict[str, Any] = dict(scored.metrics)
    metrics["ci95"] = {k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in scored.intervals.items()}
    if scored.by_user:  # samples of one user are not independent: the interval resampling whole users, often wider
        metrics["ci95_by_user"] = {k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in scored.by_user.items()}
        metrics["users"] = int(scored.users)
    return metrics


def segment_metrics(rows: list[dict[str, Any]], scores: Mapping[str, float], kind: SampleKind,
                    segmenter: Segmenter, assigned: Mapping[str, np.ndarray] | None = None) -> dict[str, Any]:
    """The metrics of each segment of the scored ``rows``, as the overall ones (value, 95% intervals by sample and
    by user): ``{segmentation: {"rule": ..., "buckets": {bucket: {"n": ..., "auc": ..., "ci95": {...}}}}}``.

    A bucket with fewer than :data:`~llmrec.data.segments.MIN_SAMPLES` samples (lists), or with one class of CTR
    labels, gets its count, a ``note`` and no metric.

    >>> import pandas as pd
    >>> from llmrec.data.kinds import KINDS
    >>> from llmrec.data.segments import Segmenter
    >>> seg = Segmenter(pd.Series({"hit": 100}), head_from=100, history_edges=(3,), basis="samples")
    >>> rows = [{"sample_id": i, "user": f"u{i % 5}", "item": "hit" if i < 20 else "new", "label": i % 2,
    ...          "history_end": 0 if i < 25 else 9} for i in range(30)]
    >>> out = segment_metrics(rows, {str(i): i / 30 for i in range(30)}, KINDS["ctr"], seg)
    >>> out["item_popularity"]["buckets"]["head"]["n"], out["item_popularity"]["buckets"]["cold"]["auc"]
    (20, 0.6)
    >>> out["item_popularity"]["buckets"]["warm"], out["history_length"]["buckets"]["4+"]
    ({'n': 0, 'note': 'no samples'}, {'n': 5, 'note': 'fewer than 10 samples: no metrics'})
    """
    assigned = segmenter.assign(rows, kind) if assigned is None else assigned
    out: dict[str, Any] = {}
    for name, labels in assigned.items():
        names = segmenter.buckets(name)
        if not names:
            continue
        buckets = {}
        for bucket in names:
            members = [rows[i] for i in np.flatnonzero(labels == bucket)]
            buckets[bucket] = _bucket(members, scores, kind)
        out[name] = {**segmenter.describe(name), "buckets": buckets}
    return out


def _bucket(rows: list[dict[str, Any]], scores: Mapping[str, float], kind: SampleKind) -> dict[str, Any]:
    n = len(rows)
    if n == 0:
        return {"n": 0, "note": "no samples"}
    if n < MIN_SAMPLES:
        return {"n": n, "note": f"fewer than {MIN_SAMPLES} samples: no metrics"}
    if not kind.lists and len(set(kind.labels(rows).tolist())) < 2:
        return {"n": n, "positive_rate": float(kind.labels(rows).mean()), "note": "one class: no metrics"}
    return {"n": n, **_record(kind.score(rows, scores))}
