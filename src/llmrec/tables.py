"""Metric cells and comparison tables of run folders: what ``llmrec compare``, experiment tables and the report show.

A cell is one run's value with its 95% bootstrap interval, or mean ± std over several runs
(seeds); the folders' records are read by :mod:`llmrec.runs`, and only formatted here.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from llmrec.runs import numeric_metrics, prompts_tested, row_metrics

BY_USER_MARK = "†"
INTERVAL_NOTE = ("a single run shows its value and 95% bootstrap interval [low, high]; "
                 f"{BY_USER_MARK}: users resampled (some user holds several samples), otherwise samples")


def metric_cell(values: list[float], ci: tuple[float, float] | list[float] | None = None, by_user: bool = False) -> str:
    """One table cell: mean ± std over several runs, or one run's value with its 95% bootstrap interval
    (marked ``†`` when the interval resampled users rather than samples).

    >>> metric_cell([0.71, 0.73])
    '0.7200 ± 0.0141'
    >>> metric_cell([0.7232], (0.70184, 0.74521))
    '0.7232 [0.702, 0.745]'
    >>> metric_cell([0.7232], (0.64, 0.80), by_user=True)
    '0.7232 [0.640, 0.800]†'
    >>> metric_cell([])
    '-'

    A metric a run could not define (AUC on a one-class test subset is NaN) is left out of the mean and
    counted, so a table of seeds still shows the others:

    >>> metric_cell([0.71, float("nan"), 0.73])
    '0.7200 ± 0.0141 (1 of 3 undefined)'
    >>> metric_cell([float("nan")])
    'undefined'
    """
    if not values:
        return "-"
    finite = [float(v) for v in values if math.isfinite(v)]
    if not finite:
        return "undefined"
    if len(finite) < len(values):
        return f"{metric_cell(finite)} ({len(values) - len(finite)} of {len(values)} undefined)"
    if len(values) > 1:
        return f"{statistics.fmean(values):.4f} ± {statistics.stdev(values):.4f}"
    if not ci or len(ci) != 2:
        return f"{values[0]:.4f}"
    return f"{values[0]:.4f} [{ci[0]:.3f}, {ci[1]:.3f}]" + (BY_USER_MARK if by_user else "")


def run_interval(metrics: dict[str, Any], metric: str) -> tuple[tuple[float, float] | None, bool]:
    """A single run's 95% interval of ``metric`` and whether it resampled users: the by-user interval where
    ``metrics.json`` holds one (some user has several samples, which are not independent), else the per-sample one.

    >>> run_interval({"auc": 0.7, "ci95": {"auc": [0.66, 0.74]}, "ci95_by_user": {"auc": [0.6, 0.8]}}, "auc")
    ((0.6, 0.8), True)
    >>> run_interval({"auc": 0.7, "ci95": {"auc": [0.66, 0.74]}}, "auc")
    ((0.66, 0.74), False)
    >>> run_interval({"auc": 0.7}, "auc")
    (None, False)
    """
    for key, by_user in (("ci95_by_user", True), ("ci95", False)):
        table = metrics.get(key)
        ci = table.get(metric) if isinstance(table, dict) else None
        if isinstance(ci, (list, tuple)) and len(ci) == 2:
            return (float(ci[0]), float(ci[1])), by_user
    return None, False


def row_cell(metrics: list[dict[str, Any]], metric: str) -> str:
    """A table row's cell from its runs' ``metrics``: mean ± std over several runs, or the single run's value with
    its interval (``run_interval``: by user where recorded).

    >>> row_cell([{"auc": 0.71}, {"auc": 0.73}], "auc")
    '0.7200 ± 0.0141'
    >>> row_cell([{"auc": 0.7, "ci95": {"auc": [0.66, 0.74]}, "ci95_by_user": {"auc": [0.6, 0.8]}}], "auc")
    '0.7000 [0.600, 0.800]†'
    """
    values = [float(m[metric]) for m in metrics if isinstance(m.get(metric), (int, float))]
    ci, by_user = run_interval(metrics[0], metric) if len(metrics) == 1 else (None, False)
    return metric_cell(values, ci, by_user)


def paper_columns(metrics: list[str], paper_metrics: Iterable[str]) -> tuple[list[str], list[str]]:
    """The paper's columns of a table: its metrics in the table's own order (any other after, sorted), and their
    headers (``paper <metric>``; the table names the paper once, below it).

    >>> paper_columns(["recall@3", "recall@10", "mrr@3", "mrr@10"], {"mrr@10", "recall@3", "mrr@3", "recall@10"})
    (['recall@3', 'recall@10', 'mrr@3', 'mrr@10'], ['paper recall@3', 'paper recall@10', 'paper mrr@3', 'paper mrr@10'])
    >>> paper_columns(["auc"], ["logloss", "auc", "acc"])[0]
    ['auc', 'acc', 'logloss']
    """
    found = set(paper_metrics)
    order = [m for m in metrics if m in found] + sorted(found - set(metrics))
    return order, [f"paper {m}" for m in order]


def paper_note(label: str | None) -> str:
    """The line under a table that names the paper behind its ``paper`` columns.

    >>> paper_note("TALLRec LLaMA-7B")
    'paper columns: TALLRec LLaMA-7B'
    """
    return f"paper columns: {label or 'the published numbers'}"


def compare_table(paths: list[str | Path] | tuple[str | Path, ...]) -> str:
    """A plain-text table of the metrics of several run folders: value [95% bootstrap interval] for
    one run, mean ± std over seeds for a ``--seeds`` folder or an experiment row's folder of ``seed-N`` runs.

    Every folder is checked first; a folder without results gives one error naming it (``llmrec compare``).
    Example (two run folders of :func:`llmrec.evaluate` / :func:`llmrec.train`)::

        import llmrec

        print(llmrec.compare(["runs/zero-shot", "runs/lora-64"]))
    """
    results = [(p, row_metrics(p)) for p in paths]
    keys: list[str] = []
    for _, res in results:
        keys += [k for k in numeric_metrics(res["metrics"]) if k not in keys]
    header = ["run", "data", "prompts", *keys]
    rows = [header]
    for p, res in results:
        m, sd = res["metrics"], res.get("metrics_std", {})
        ci = m.get("ci95") if isinstance(m.get("ci95"), dict) else {}
        tested = res.get("test") if isinstance(res.get("test"), dict) else {}  # a train run: the split it was tested on
        where = "/".join(str(tested.get(k) or res.get(k, "?")) for k in ("dataset", "protocol", "split"))
        prompts = res["run"].get("prompts", "-") if isinstance(res.get("run"), dict) else "-"
        if tested:  # a train run counts its training prompts; show the test prompts its test/ scoring wrote
            prompts = prompts_tested(p)
        count = len(res["seeds"]) if isinstance(res.get("seeds"), list) else 0
        seeds = f" ({count} seed{'s' if count != 1 else ''})" if count else ""
        cells = []
        for k in keys:
            v = m.get(k)
            if isinstance(v, float):
                interval = f" [{ci[k][0]:.4f}, {ci[k][1]:.4f}]" if k in ci and len(ci[k]) == 2 else ""
                cells.append(f"{v:.4f}" + (f" ± {sd[k]:.4f}" if k in sd else "") + interval)
            else:
                cells.append("-" if v is None else str(v))
        rows.append([Path(p).name + seeds, where, str(prompts), *cells])
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    by_user = [(p, res["metrics"]) for p, res in results if isinstance(res["metrics"].get("ci95_by_user"), dict)]
    if by_user:  # single runs whose samples share users: the intervals resampling whole users
        lines += ["", "95% intervals resampling whole users (samples of one user are not independent):"]
        for p, m in by_user:
            cells = [f"{k} [{lo:.4f}, {hi:.4f}]" for k, (lo, hi) in m["ci95_by_user"].items() if k in keys]
            lines.append(f"  {Path(p).name}: {', '.join(cells)} ({m.get('users', '?')} users)")
    return "\n".join(lines)
