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

from llmrec.runs import COST_FIELDS, numeric_metrics, prompts_tested, row_metrics, run_records, summarize_values

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


def compare_table(paths: list[str | Path] | tuple[str | Path, ...], *, segments: bool = False,
                  cost: bool = False) -> str:
    """A plain-text table of the metrics of several run folders: value [95% bootstrap interval] for
    one run, mean ± std over seeds for a ``--seeds`` folder or an experiment row's folder of ``seed-N`` runs.
    ``segments``: also the headline metric (AUC, Recall@3) by target-item popularity and by history length;
    ``cost``: also each folder's training time and scoring throughput (``llmrec compare --segments --cost``).

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
    if segments or cost:
        records = [(Path(p).name, run_records(p)) for p in paths]
        if segments:
            lines += segment_lines([(name, [r["metrics"] for r in recs]) for name, recs in records], headline(keys))
        if cost:
            lines += ["", "cost (" + COST_NOTE + "):", *plain_table([COST_HEAD, *(cost_row(name, [r.get("cost") or {} for r in recs])
                                                                    for name, recs in records)])]
    return "\n".join(lines)


def plain_table(rows: list[list[str]]) -> list[str]:
    """Lines of a plain-text table, columns padded to their widest cell.

    >>> plain_table([["row", "auc"], ["din", "0.7"]])
    ['row  auc', 'din  0.7']
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]


def segment_lines(rows: list[tuple[str, list[dict[str, Any]]]], metric: str | None) -> list[str]:
    """The plain-text segment tables of ``metric`` (one per segmentation the runs have), with their rules."""
    lines: list[str] = []
    for segmentation, title in SEGMENT_TITLES.items():
        made = segment_table(rows, segmentation, metric) if metric else None
        if made is None:
            continue
        lines += ["", f"{metric} {title}:", *plain_table([made[0], *made[1]])]
        lines.append(f"  buckets: {segment_rule([m for _, runs in rows for m in runs], segmentation)}")
    return lines


# ------------------------------------------------------------------------------------------------ segments and cost

SEGMENT_TITLES = {"item_popularity": "by target-item popularity", "history_length": "by history length"}
HEADLINE_METRICS = ("auc", "recall@3")  # what a segment table shows: a CTR table's AUC, a ranking table's Recall@3


def headline(metrics: Iterable[str]) -> str | None:
    """The metric a table's segment tables and cost plot show: AUC or Recall@3 when the table has it, else its
    first metric.

    >>> headline(["logloss", "auc"]), headline(["mrr@3", "recall@3"]), headline(["ndcg@10"]), headline([])
    ('auc', 'recall@3', 'ndcg@10', None)
    """
    metrics = list(metrics)
    return next((m for m in HEADLINE_METRICS if m in metrics), metrics[0] if metrics else None)


def _buckets(metrics: dict[str, Any], segmentation: str) -> dict[str, Any]:
    seg = metrics.get("segments") if isinstance(metrics, dict) else None
    seg = seg.get(segmentation) if isinstance(seg, dict) else None
    buckets = seg.get("buckets") if isinstance(seg, dict) else None
    return buckets if isinstance(buckets, dict) else {}


def segment_rule(runs: Iterable[dict[str, Any]], segmentation: str) -> str | None:
    """How a segmentation's buckets were made (the first run's ``rule``), for the line under its table."""
    for m in runs:
        seg = (m.get("segments") or {}).get(segmentation) if isinstance(m, dict) else None
        if isinstance(seg, dict) and isinstance(seg.get("rule"), str):
            return seg["rule"]
    return None


def segment_cell(runs: list[dict[str, Any]], segmentation: str, bucket: str, metric: str, count: bool = True) -> str:
    """One row's cell of a segment table: the bucket's ``metric`` over the row's runs (one run: value [95% CI],
    ``†`` by user; seeds: mean ± std), with the bucket's size (``count``); a bucket without a metric shows why.

    >>> b = {"n": 40, "auc": 0.7, "ci95": {"auc": [0.6, 0.8]}}
    >>> m = {"segments": {"item_popularity": {"buckets": {"cold": b, "head": {"n": 3, "note": "fewer than 10 samples: no metrics"}}}}}
    >>> segment_cell([m], "item_popularity", "cold", "auc"), segment_cell([m], "item_popularity", "head", "auc")
    ('0.7000 [0.600, 0.800] (n=40)', '- (n=3: fewer than 10 samples)')
    >>> segment_cell([m], "item_popularity", "warm", "auc"), segment_cell([m, m], "item_popularity", "cold", "auc", count=False)
    ('-', '0.7000 ± 0.0000')
    """
    found = [b for b in (_buckets(m, segmentation).get(bucket) for m in runs) if isinstance(b, dict)]
    if not found:
        return "-"
    sizes = {b.get("n") for b in found}
    size = f"n={found[0].get('n')}" if len(sizes) == 1 else "n=" + "/".join(str(b.get("n")) for b in found)
    with_metric = [b for b in found if isinstance(b.get(metric), (int, float))]
    if not with_metric and all(b.get("n") == 0 for b in found):
        return "-"
    if not with_metric:
        why = str(found[0].get("note", "no metric")).split(":")[0]
        return f"- ({size}: {why})"
    return row_cell(with_metric, metric) + (f" ({size})" if count else "")


def segment_table(rows: list[tuple[str, list[dict[str, Any]]]], segmentation: str,
                  metric: str) -> tuple[list[str], list[list[str]]] | None:
    """Header and cells of ``metric`` by segment: one line per row (``(name, each run's metrics)``), one column per
    bucket; a bucket's size goes in its header when every run has the same, else in each cell. None when no run
    has the segmentation.

    >>> cold = {"n": 40, "auc": 0.7, "ci95": {"auc": [0.6, 0.8]}}
    >>> run = {"segments": {"item_popularity": {"buckets": {"cold": cold, "head": {"n": 60, "auc": 0.8}}}}}
    >>> segment_table([("din", [run])], "item_popularity", "auc")
    (['row', 'cold (n=40)', 'head (n=60)'], [['din', '0.7000 [0.600, 0.800]', '0.8000']])
    >>> segment_table([("din", [{}])], "history_length", "auc") is None
    True
    """
    names: list[str] = []
    for _, runs in rows:
        for m in runs:
            names += [b for b in _buckets(m, segmentation) if b not in names]
    if not names:
        return None
    head, shared = ["row"], {}
    for b in names:
        sizes = {d.get("n") for _, runs in rows for m in runs if isinstance(d := _buckets(m, segmentation).get(b), dict)}
        shared[b] = len(sizes) == 1
        head.append(f"{b} (n={sizes.pop()})" if shared[b] else b)
    body = [[name, *(segment_cell(runs, segmentation, b, metric, count=not shared[b]) for b in names)]
            for name, runs in rows]
    return head, body


def segment_summary(runs: list[dict[str, Any]], metrics: Iterable[str]) -> dict[str, Any]:
    """table.json's ``segments`` of a row: for each segmentation and bucket, its size and each of ``metrics`` as
    mean / std / values over the row's runs (undefined values counted).

    >>> b = {"n": 40, "auc": 0.7}
    >>> segment_summary([{"segments": {"item_popularity": {"buckets": {"cold": b}}}}], ["auc", "acc"])
    {'item_popularity': {'cold': {'n': 40, 'auc': {'mean': 0.7, 'std': 0.0, 'values': [0.7]}}}}
    """
    out: dict[str, Any] = {}
    for segmentation in SEGMENT_TITLES:
        names: list[str] = []
        for m in runs:
            names += [b for b in _buckets(m, segmentation) if b not in names]
        if not names:
            continue
        out[segmentation] = {}
        for b in names:
            found = [d for d in (_buckets(m, segmentation).get(b) for m in runs) if isinstance(d, dict)]
            entry: dict[str, Any] = {"n": found[0].get("n")}
            for metric in metrics:
                values = [float(d[metric]) for d in found if isinstance(d.get(metric), (int, float))]
                if values:
                    entry[metric] = summarize_values(values, digits=None)
            out[segmentation][b] = entry
    return out


COST_HEAD = ["row", "train s", "scoring s", "samples/s", "device", "machine"]
COST_NOTE = ("train s: training wall time (0: none, zero-shot; -: trained in another run); scoring s and "
             "samples/s: the test scoring pass; mean over seeds; on the machine named")


def cost_summary(costs: list[dict[str, Any]]) -> dict[str, Any]:
    """table.json's ``cost`` of a row: each of :data:`~llmrec.runs.COST_FIELDS` as mean / std / values over the
    runs that recorded it, and the device and machine of the first.

    >>> cost_summary([{"train_s": 10.0, "samples_per_s": 5.0, "machine": {"cpu": "x", "cores": 2}}, {"train_s": 12.0}])
    {'train_s': {'mean': 11.0, 'std': 1.414214, 'values': [10.0, 12.0]}, 'samples_per_s': {'mean': 5.0, 'std': 0.0, 'values': [5.0]}, 'machine': 'x, 2 cores'}
    """
    out: dict[str, Any] = {}
    for field in COST_FIELDS:
        values = [float(c[field]) for c in costs if isinstance(c.get(field), (int, float)) and not isinstance(
            c.get(field), bool)]
        if values:
            out[field] = summarize_values(values)
    first = next((c for c in costs if c), {})
    if first.get("device"):
        out["device"] = first["device"]
    machine = first.get("machine")
    if isinstance(machine, dict) and machine.get("cpu"):
        out["machine"] = f"{machine['cpu']}, {machine.get('cores', '?')} cores"
    return out


def _amount(value: float) -> str:
    """A time or a rate, to three significant figures (whole numbers from 100 on)."""
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


def cost_row(name: str, costs: list[dict[str, Any]]) -> list[str]:
    """One line of a cost table (:data:`COST_HEAD`) from a row's runs' ``cost`` records.

    >>> cost_row("din", [{"train_s": 712.4, "scoring_s": 3.2, "samples_per_s": 31000.0, "device": "cpu",
    ...                   "machine": {"cpu": "EPYC", "cores": 2}}])
    ['din', '712', '3.2', '31,000', 'cpu', 'EPYC, 2 cores']
    >>> cost_row("zs", [{}])
    ['zs', '-', '-', '-', '-', '-']
    """
    summary = cost_summary(costs)
    cells = [name]
    for field in COST_FIELDS:
        cells.append(_amount(summary[field]["mean"]) if field in summary else "-")
    return cells + [str(summary.get("device", "-")), str(summary.get("machine", "-"))]
