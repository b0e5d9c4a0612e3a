"""Paired comparison of two runs scored on the same samples: the metric difference and its interval.

Two runs of the same test samples (e.g. zero-shot SUBR prompts vs most-recent-K prompts,
same seeded subset) are compared sample by sample: the bootstrap resamples the *samples*
once for both runs, so the interval of the difference is much tighter than the two separate
intervals suggest.

>>> import tempfile, pathlib, pandas as pd
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> for name, s in (("a", [0.9, 0.8, 0.3, 0.2]), ("b", [0.6, 0.4, 0.5, 0.3])):
...     (d / name).mkdir()
...     pd.DataFrame({"sample_id": [1, 2, 3, 4], "label": [1, 1, 0, 0], "score": s}).to_parquet(d / name / "predictions.parquet")
>>> round(paired_difference(d / "a", d / "b", n_boot=200)["auc"]["diff"], 4)
0.25
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from llmrec.errors import ConfigError
from llmrec.metrics import accuracy, auc, bootstrap_ci, log_loss

CTR_METRICS = {"auc": auc, "logloss": log_loss, "acc": accuracy}
PAIRED_NOTE = "Paired differences (a - b on the same samples, 95% bootstrap interval of the difference)"


def run_predictions(path: str | Path) -> pd.DataFrame:
    """``predictions.parquet`` of an evaluate run, or of a train run's test scoring (``test/``)."""
    path = Path(path)
    for candidate in (path / "predictions.parquet", path / "test" / "predictions.parquet"):
        if candidate.is_file():
            preds = pd.read_parquet(candidate)
            if "candidate" in preds.columns:
                raise ConfigError(f"{path}: a ranking run; paired differences cover CTR runs (AUC/LogLoss/ACC)")
            return preds
    raise ConfigError(f"{path}: no predictions.parquet (an unfinished run, or a --seeds folder: pair its seed-N runs)")


def paired_difference(a: str | Path, b: str | Path, n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Metric of ``a`` minus metric of ``b`` on their common samples, with 95% bootstrap intervals."""
    pa, pb = run_predictions(a), run_predictions(b)
    merged = pa.merge(pb, on="sample_id", suffixes=("_a", "_b"))
    if len(merged) != len(pa) or len(merged) != len(pb):
        raise ConfigError(f"{a} and {b} scored different samples ({len(merged)} in common of {len(pa)} and {len(pb)}); "
                          "pair runs of the same split, limit and sample_seed")
    if not np.array_equal(merged["label_a"].to_numpy(), merged["label_b"].to_numpy()):
        raise ConfigError(f"{a} and {b} disagree on the labels of the same samples: not the same data")
    y = merged["label_a"].to_numpy()
    sa, sb = merged["score_a"].to_numpy(), merged["score_b"].to_numpy()
    out: dict[str, Any] = {"a": str(a), "b": str(b), "samples": int(len(merged))}
    for name, fn in CTR_METRICS.items():
        lo, hi = bootstrap_ci(lambda yy, xa, xb, fn=fn: fn(yy, xa) - fn(yy, xb), y, sa, sb, n_boot=n_boot, seed=seed)
        va, vb = float(fn(y, sa)), float(fn(y, sb))
        out[name] = {"a": round(va, 6), "b": round(vb, 6), "diff": round(va - vb, 6), "ci95": [round(lo, 6), round(hi, 6)]}
    return out


def format_paired(result: dict[str, Any]) -> str:
    """One line per metric: ``a - b`` with its interval."""
    lines = [f"{Path(result['a']).name} - {Path(result['b']).name} on {result['samples']:,} paired samples:"]
    for name in CTR_METRICS:
        r = result[name]
        lines.append(f"  {name:8s} {r['a']:.4f} - {r['b']:.4f} = {r['diff']:+.4f}  95% CI [{r['ci95'][0]:+.4f}, "
                     f"{r['ci95'][1]:+.4f}]")
    return "\n".join(lines)


def paired_table(entries: list[dict[str, Any]], metrics: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and cells of recorded paired differences (an experiment's ``table.json`` ``paired`` list): one line per
    pair of runs, each metric as ``diff [low, high]``; a pair that could not be computed shows why.

    >>> head, body = paired_table([{"a": "subr", "b": "recent", "run": None, "samples": 2000,
    ...                             "auc": {"a": 0.47, "b": 0.46, "diff": 0.0075, "ci95": [-0.0126, 0.0268]}}], ["auc"])
    >>> head, body
    (['a - b', 'run', 'samples', 'auc'], [['subr - recent', '-', '2,000', '+0.0075 [-0.0126, +0.0268]']])
    """
    metrics = [m for m in (metrics or CTR_METRICS) if m in CTR_METRICS] or list(CTR_METRICS)
    body = []
    for e in entries:
        cells = [f"{e['a']} - {e['b']}", e.get("run") or "-", f"{e['samples']:,}" if "samples" in e else "-"]
        if "skipped" in e:
            cells += [f"not computed: {e['skipped']}"] + ["-"] * (len(metrics) - 1)
        else:
            cells += [f"{e[m]['diff']:+.4f} [{e[m]['ci95'][0]:+.4f}, {e[m]['ci95'][1]:+.4f}]" for m in metrics]
        body.append(cells)
    return ["a - b", "run", "samples", *metrics], body
