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

from llmrec.data.kinds import SampleKind, kind_of
from llmrec.io import write_parquet
from llmrec.runs import RunDir

__all__ = ["SampleScorer", "write_results"]


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


# the columns write_results reads from a row (keys, users, items, labels), besides a scorer's own
RESULT_COLUMNS = ("sample_id", "user", "item", "label", "candidates", "labels")


def rows_columns(scorer: SampleScorer, available: list[str]) -> list[str]:
    """The columns to read for the rows ``scorer`` scores and :func:`write_results` writes: its own, then the results',
    in that order, those of ``available`` only.

    >>> from types import SimpleNamespace
    >>> rows_columns(SimpleNamespace(columns=("history_items", "user")), ["user", "label", "history_items", "x"])
    ['history_items', 'user', 'label']
    """
    return [c for c in dict.fromkeys((*scorer.columns, *RESULT_COLUMNS)) if c in available]


def write_results(run: RunDir, rows: list[dict[str, Any]], done: Mapping[str, Mapping[str, Any] | float],
                  kind: SampleKind | str, title: str) -> tuple[dict[str, Any], list[str]]:
    """Write predictions.parquet and the plots of a finished scoring; return (metrics with 95% intervals, plots).

    ``done`` maps each prompt's key (:meth:`SampleKind.keys`: ``sample_id``, or ``sample_id:j`` for candidate
    ``j`` of a list) to its score, or to a record with a ``score``.
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
    write_parquet(run.path / "predictions.parquet", preds)
    metrics: dict[str, Any] = dict(scored.metrics)
    metrics["ci95"] = {k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in scored.intervals.items()}
    if scored.by_user:  # samples of one user are not independent: the interval resampling whole users, often wider
        metrics["ci95_by_user"] = {k: [round(lo, 6), round(hi, 6)] for k, (lo, hi) in scored.by_user.items()}
        metrics["users"] = int(scored.users)
    return metrics, plots
