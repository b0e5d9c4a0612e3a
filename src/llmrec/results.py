"""The results of a finished scoring, written the same way for every model (an LLM or a classic one).

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

from collections.abc import Mapping
from typing import Any

from llmrec.data.kinds import SampleKind, kind_of
from llmrec.io import write_parquet
from llmrec.runs import RunDir

__all__ = ["write_results"]


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
