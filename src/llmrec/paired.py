"""Paired comparison of two runs scored on the same samples: the metric difference and its interval.

Two runs of the same test samples (e.g. zero-shot SUBR prompts vs most-recent-K prompts,
same seeded subset) are compared sample by sample: the bootstrap resamples the *samples*
once for both runs, so the interval of the difference is much tighter than the two separate
intervals suggest. CTR runs are compared on AUC / LogLoss / ACC; ranking runs (candidate lists)
on Recall / MRR / NDCG at 3, 5 and 10, resampling whole lists.

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

from llmrec.data.segments import MIN_SAMPLES, ordered_buckets
from llmrec.errors import ConfigError, DataError
from llmrec.metrics import accuracy, auc, bootstrap_ci, log_loss, ranking_per_list
from llmrec.runs import seed_folders

CTR_METRICS = {"auc": auc, "logloss": log_loss, "acc": accuracy}
PAIRED_NOTE = "Paired differences (a - b on the same samples, 95% bootstrap interval of the difference)"
RANKING_KS = (3, 5, 10)
RANKING_METRICS = ("recall", "mrr", "ndcg")
BOOTSTRAP_UNITS = ("sample", "user")  # what the paired bootstrap resamples: samples (lists), or whole users


def predictions_file(path: str | Path) -> Path | None:
    """``predictions.parquet`` of an evaluate or baseline run, or of a train run's test scoring (``test/``)."""
    path = Path(path)
    return next((c for c in (path / "predictions.parquet", path / "test" / "predictions.parquet") if c.is_file()), None)


def run_predictions(path: str | Path) -> pd.DataFrame:
    """The predictions of a run (see :func:`predictions_file`); a one-line error when missing or unreadable."""
    found = predictions_file(path)
    if found is None:
        raise ConfigError(f"{path}: no predictions.parquet (an unfinished run, or a --seeds folder: pair its seed-N runs)")
    try:
        return pd.read_parquet(found)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"cannot read predictions ({type(exc).__name__})", path=found) from None


def seed_runs(folder: str | Path) -> list[Path]:
    """The runs a folder stands for: itself (a run folder), or the finished ``seed-N`` runs of a ``--seeds`` folder
    or of an experiment row, in seed order."""
    folder = Path(folder)
    if (folder / "metrics.json").exists():
        return [folder]
    return [p for _, p in seed_folders(folder, finished=True)]


def _seed(run: Path) -> str | None:
    return run.name if run.name.startswith("seed-") else None


def matched_runs(runs_a: list[Path], runs_b: list[Path], single_a: bool | None = None,
                 single_b: bool | None = None) -> list[tuple[Path, Path | None, str | None]]:
    """The runs of two rows to pair, with the seed they stand for (None: a run without seeds), and each run of
    ``runs_a`` left without a partner (paired with None): the runs of the seeds both rows have; a row of a single run
    (``single_*``; by default a run outside a ``seed-N`` folder) pairs it with every run of the other.

    >>> [(a.name, b.name, s) for a, b, s in matched_runs([Path("x/seed-0"), Path("x/seed-1")], [Path("zs")])]
    [('seed-0', 'zs', 'seed-0'), ('seed-1', 'zs', 'seed-1')]
    >>> [(a.name, b and b.name, s) for a, b, s in matched_runs([Path("x/seed-0"), Path("x/seed-2")], [Path("y/seed-2")])]
    [('seed-0', None, 'seed-0'), ('seed-2', 'seed-2', 'seed-2')]
    >>> [s for _, _, s in matched_runs([Path("x/seed-0"), Path("x/seed-1")], [Path("y/seed-0")], single_b=True)]
    ['seed-0', 'seed-1']
    """
    single_a = len(runs_a) == 1 and (_seed(runs_a[0]) is None if single_a is None else single_a)
    single_b = len(runs_b) == 1 and (_seed(runs_b[0]) is None if single_b is None else single_b)
    if single_b:
        return [(r, runs_b[0], _seed(r) or _seed(runs_b[0])) for r in runs_a]
    if single_a:
        return [(runs_a[0], r, _seed(r) or _seed(runs_a[0])) for r in runs_b]
    by_seed = {r.name: r for r in runs_b}
    return [(r, by_seed.get(r.name), r.name) for r in runs_a]


def paired_difference(a: str | Path, b: str | Path, n_boot: int = 1000, seed: int = 0,
                      by: str = "sample") -> dict[str, Any]:
    """Metric of ``a`` minus metric of ``b`` on their common samples, with 95% bootstrap intervals.

    ``by="user"`` resamples whole users (all samples, or candidate lists, of a drawn user together)
    instead of single samples: samples of one user are not independent, so this interval is the
    more honest one, and wider. The result then holds ``"by": "user"`` and the number of users.
    """
    if by not in BOOTSTRAP_UNITS:
        raise ConfigError(f"paired bootstrap by {by!r}: expected one of {', '.join(BOOTSTRAP_UNITS)}")
    pa, pb = run_predictions(a), run_predictions(b)
    if ("candidate" in pa.columns) != ("candidate" in pb.columns):
        raise ConfigError(f"{a} and {b}: a CTR run and a ranking run cannot be paired")
    if by == "user":
        for path, preds in ((a, pa), (b, pb)):
            if "user" not in preds.columns:
                raise ConfigError(f"{path}: its predictions have no user column, so users cannot be resampled "
                                  "(pair it by sample)")
    if "candidate" in pa.columns:
        return _paired_ranking(a, b, pa, pb, n_boot, seed, by)
    merged = pa.merge(pb, on="sample_id", suffixes=("_a", "_b"))
    if len(merged) != len(pa) or len(merged) != len(pb):
        raise ConfigError(f"{a} and {b} scored different samples ({len(merged)} in common of {len(pa)} and {len(pb)}); "
                          "pair runs of the same split, limit and sample_seed")
    if not np.array_equal(merged["label_a"].to_numpy(), merged["label_b"].to_numpy()):
        raise ConfigError(f"{a} and {b} disagree on the labels of the same samples: not the same data")
    y = merged["label_a"].to_numpy()
    sa, sb = merged["score_a"].to_numpy(), merged["score_b"].to_numpy()
    out: dict[str, Any] = {"a": str(a), "b": str(b), "samples": int(len(merged))}
    users = _users(a, b, merged, by, out)
    for name, fn in CTR_METRICS.items():
        out[name] = _ctr_difference(fn, y, sa, sb, n_boot, seed, users)

    def auc_of(idx: np.ndarray) -> dict[str, Any]:
        if len(np.unique(y[idx])) < 2:
            return {"note": "one class: no difference"}
        return _ctr_difference(auc, y[idx], sa[idx], sb[idx], n_boot, seed, None if users is None else users[idx])

    segments = _paired_segments(merged, "auc", auc_of)
    if segments:
        out["segments"] = segments
    return out


def _ctr_difference(fn, y: np.ndarray, sa: np.ndarray, sb: np.ndarray, n_boot: int, seed: int,
                    users: np.ndarray | None) -> dict[str, Any]:
    lo, hi = bootstrap_ci(lambda yy, xa, xb: fn(yy, xa) - fn(yy, xb), y, sa, sb, n_boot=n_boot, seed=seed, groups=users)
    va, vb = float(fn(y, sa)), float(fn(y, sb))
    return {"a": round(va, 6), "b": round(vb, 6), "diff": round(va - vb, 6), "ci95": [round(lo, 6), round(hi, 6)]}


def _paired_segments(merged: pd.DataFrame, metric: str, difference) -> dict[str, Any]:
    """The paired difference of ``metric`` in each segment both runs' predictions name alike (``segment_*``
    columns; one row per sample or list of ``merged``): ``{segmentation: {"metric": ..., "buckets": {bucket:
    {"n": ..., "a", "b", "diff", "ci95"}}}}``; a bucket of fewer than MIN_SAMPLES samples gets its count only."""
    out: dict[str, Any] = {}
    for column in (c[: -len("_a")] for c in merged.columns if c.startswith("segment_") and c.endswith("_a")):
        if f"{column}_b" not in merged.columns:
            continue
        la, lb = merged[f"{column}_a"].astype(str).to_numpy(), merged[f"{column}_b"].astype(str).to_numpy()
        if not np.array_equal(la, lb):  # segments of other training data: not comparable bucket by bucket
            continue
        buckets: dict[str, Any] = {}
        for bucket in ordered_buckets([b for b in np.unique(la) if b not in ("None", "nan")]):
            idx = np.flatnonzero(la == bucket)
            buckets[bucket] = ({"n": int(len(idx)), **difference(idx)} if len(idx) >= MIN_SAMPLES
                               else {"n": int(len(idx)), "note": f"fewer than {MIN_SAMPLES} samples: no difference"})
        out[column.removeprefix("segment_")] = {"metric": metric, "buckets": buckets}
    return out


def _users(a, b, merged: pd.DataFrame, by: str, out: dict[str, Any]) -> np.ndarray | None:
    """The user of each merged row when the bootstrap resamples users (None: it resamples rows); notes the unit
    and the number of users in ``out``."""
    if by != "user":
        return None
    if merged["user_a"].isna().any() or merged["user_b"].isna().any():
        raise ConfigError(f"{a} and {b}: some predictions have no user, so users cannot be resampled (pair them by sample)")
    users = merged["user_a"].astype(str).to_numpy()
    if not np.array_equal(users, merged["user_b"].astype(str).to_numpy()):
        raise ConfigError(f"{a} and {b} disagree on the users of the same samples: not the same data")
    out.update(by="user", users=int(len(np.unique(users))))
    return users


def _lists(preds: pd.DataFrame) -> pd.DataFrame:
    """Ranking predictions with each candidate's position in its list (``pos``), lists in sample order."""
    preds = preds.assign(pos=preds.groupby("sample_id", sort=False).cumcount())
    return preds.sort_values(["sample_id", "pos"], kind="stable").reset_index(drop=True)


def _paired_ranking(a, b, pa: pd.DataFrame, pb: pd.DataFrame, n_boot: int, seed: int,
                    by: str = "sample") -> dict[str, Any]:
    """Ranking metrics of ``a`` minus ``b`` on the same candidate lists; the bootstrap resamples lists (or users)."""
    la, lb = _lists(pa), _lists(pb)
    merged = la.merge(lb, on=["sample_id", "pos"], suffixes=("_a", "_b"))
    lists_a, lists_b = la["sample_id"].nunique(), lb["sample_id"].nunique()
    if len(merged) != len(la) or len(merged) != len(lb):
        raise ConfigError(f"{a} and {b} ranked different lists ({merged['sample_id'].nunique()} in common of "
                          f"{lists_a} and {lists_b}); pair runs of the same split, limit and sample_seed")
    if not (np.array_equal(merged["candidate_a"].astype(str), merged["candidate_b"].astype(str))
            and np.array_equal(merged["label_a"].to_numpy(), merged["label_b"].to_numpy())):
        raise ConfigError(f"{a} and {b} disagree on the candidates (or their order) or labels of the same lists: "
                          "not the same data")
    width = merged.groupby("sample_id").size()
    if width.nunique() != 1:
        raise ConfigError(f"{a} and {b}: candidate lists of different lengths ({width.min()}-{width.max()})")
    shape = (lists_a, int(width.iloc[0]))
    labels = merged["label_a"].to_numpy().reshape(shape)
    rows_a = ranking_per_list(merged["score_a"].to_numpy().reshape(shape), labels, RANKING_KS, RANKING_METRICS)
    rows_b = ranking_per_list(merged["score_b"].to_numpy().reshape(shape), labels, RANKING_KS, RANKING_METRICS)
    out: dict[str, Any] = {"a": str(a), "b": str(b), "samples": lists_a}
    users = _users(a, b, merged[merged["pos"] == 0], by, out)  # one row per list, in list order
    def difference(key: str, idx: np.ndarray | slice = slice(None)) -> dict[str, Any]:
        diff = rows_a[key][idx] - rows_b[key][idx]
        lo, hi = bootstrap_ci(np.mean, diff, n_boot=n_boot, seed=seed, groups=None if users is None else users[idx])
        return {"a": round(float(rows_a[key][idx].mean()), 6), "b": round(float(rows_b[key][idx].mean()), 6),
                "diff": round(float(diff.mean()), 6), "ci95": [round(lo, 6), round(hi, 6)]}

    for key in rows_a:
        out[key] = difference(key)
    firsts = merged[merged["pos"] == 0].reset_index(drop=True)  # one row per list, in list order
    segments = _paired_segments(firsts, "recall@3", lambda idx: difference("recall@3", idx)) if "recall@3" in rows_a else {}
    if segments:
        out["segments"] = segments
    return out


def headline_metric(metrics: dict[str, Any]) -> str | None:
    """The metric that identifies a run in a recorded paired result: AUC (CTR runs) or Recall@3 (ranking runs).

    >>> headline_metric({"auc": 0.7, "logloss": 0.6}), headline_metric({"recall@3": 0.4}), headline_metric({})
    ('auc', 'recall@3', None)
    """
    return next((m for m in ("auc", "recall@3") if isinstance(metrics.get(m), (int, float))), None)


def still_valid(entry: dict[str, Any], metrics_a: dict[str, Any], metrics_b: dict[str, Any]) -> bool:
    """A recorded paired result still describes these two runs: every metric it holds has the runs' recorded
    values (to 1e-6), and it holds the headline metric.

    >>> e = {"auc": {"a": 0.7, "b": 0.6, "diff": 0.1, "ci95": [0.05, 0.15]}}
    >>> still_valid(e, {"auc": 0.7}, {"auc": 0.6}), still_valid(e, {"auc": 0.7}, {"auc": 0.61})
    (True, False)
    """
    try:
        held = compared_metrics(entry)
        if headline_metric(metrics_a) not in held:
            return False
        return all(abs(float(entry[m]["a"]) - float(metrics_a[m])) < 1e-6
                   and abs(float(entry[m]["b"]) - float(metrics_b[m])) < 1e-6
                   for m in held if m in metrics_a and m in metrics_b)
    except (TypeError, ValueError, KeyError):  # a malformed record: recompute it
        return False


def well_formed(entry: Any) -> bool:
    """A recorded paired entry (table.json) the tables can show: rows a and b, and each metric a numeric difference
    with a two-number interval (or a reason it was skipped).

    >>> well_formed({"a": "x", "b": "y", "samples": 10, "auc": {"diff": 0.1, "ci95": [0.0, 0.2]}})
    True
    >>> well_formed({"a": "x", "b": "y", "auc": {"diff": 0.1}}), well_formed({"a": "x", "b": "y", "samples": "many"})
    (False, False)
    """
    if not isinstance(entry, dict) or not {"a", "b"} <= entry.keys():
        return False
    if "samples" in entry and not isinstance(entry["samples"], int):
        return False
    for value in entry.values():
        if isinstance(value, dict) and "diff" in value:
            ci = value.get("ci95")
            if not (isinstance(value["diff"], (int, float)) and isinstance(ci, list) and len(ci) == 2
                    and all(isinstance(c, (int, float)) for c in ci)):
                return False
    return True


def compared_metrics(result: dict[str, Any]) -> list[str]:
    """The metrics a paired result holds (AUC / LogLoss / ACC, or the ranking metrics)."""
    return [k for k, v in result.items() if isinstance(v, dict) and "diff" in v]


def format_paired(result: dict[str, Any], segments: bool = False) -> str:
    """One line per metric: ``a - b`` with its interval; ``segments``: then the headline metric's difference in
    each segment the result holds."""
    def label(path: str) -> str:  # a seed run keeps its row's name: lora/seed-0
        p = Path(path)
        return f"{p.parent.name}/{p.name}" if _seed(p) else p.name

    unit = f" (bootstrap over {result['users']:,} users)" if result.get("by") == "user" else ""
    lines = [f"{label(result['a'])} - {label(result['b'])} on {result['samples']:,} paired samples{unit}:"]
    for name in compared_metrics(result):
        r = result[name]
        lines.append(f"  {name:8s} {r['a']:.4f} - {r['b']:.4f} = {r['diff']:+.4f}  95% CI [{r['ci95'][0]:+.4f}, "
                     f"{r['ci95'][1]:+.4f}]")
    for segmentation, seg in (result.get("segments") or {}).items() if segments else ():
        lines.append(f"  {seg['metric']} by {segmentation.replace('_', ' ')}:")
        for bucket, r in seg["buckets"].items():
            lines.append(f"    {bucket:8s} n={r['n']:<6,} " + (f"{r['a']:.4f} - {r['b']:.4f} = {r['diff']:+.4f}  95% CI "
                         f"[{r['ci95'][0]:+.4f}, {r['ci95'][1]:+.4f}]" if "diff" in r else r.get("note", "-")))
    return "\n".join(lines)


def paired_segment_table(entries: list[dict[str, Any]], segmentation: str) -> tuple[list[str], list[list[str]]] | None:
    """Header and cells of recorded paired differences in each bucket of ``segmentation`` (one line per pair of
    runs); None when no entry holds it.

    >>> e = {"a": "din-text", "b": "din", "samples": 900, "segments": {"item_popularity": {"metric": "auc", "buckets": {
    ...     "cold": {"n": 100, "a": 0.7, "b": 0.65, "diff": 0.05, "ci95": [0.01, 0.09]}, "head": {"n": 5, "note": "few"}}}}}
    >>> paired_segment_table([e], "item_popularity")
    (['a - b', 'run', 'metric', 'cold', 'head'], [['din-text - din', '-', 'auc', '+0.0500 [+0.0100, +0.0900] (n=100)', '- (n=5)']])
    """
    held = [e for e in entries if isinstance((e.get("segments") or {}).get(segmentation), dict)]
    if not held:
        return None
    names = ordered_buckets([b for e in held for b in e["segments"][segmentation].get("buckets", {})])
    body = []
    for e in held:
        seg = e["segments"][segmentation]
        cells = [f"{e['a']} - {e['b']}" + (" (by user)" if e.get("by") == "user" else ""), e.get("run") or "-",
                 str(seg.get("metric", "-"))]
        for name in names:
            r = seg["buckets"].get(name)
            if not isinstance(r, dict):
                cells.append("-")
            elif "diff" in r:
                cells.append(f"{r['diff']:+.4f} [{r['ci95'][0]:+.4f}, {r['ci95'][1]:+.4f}] (n={r['n']:,})")
            else:
                cells.append(f"- (n={r.get('n', '?')})")
        body.append(cells)
    return ["a - b", "run", "metric", *names], body


def paired_note(entries: list[dict[str, Any]]) -> str:
    """The heading of a paired table; it explains "(by user)" where an entry resampled users.

    >>> paired_note([{"a": "x", "b": "y", "by": "user"}]).endswith("; (by user): users resampled)")
    True
    """
    by_user = any(e.get("by") == "user" for e in entries)
    return PAIRED_NOTE[:-1] + "; (by user): users resampled)" if by_user else PAIRED_NOTE


def paired_table(entries: list[dict[str, Any]], metrics: list[str] | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and cells of recorded paired differences (an experiment's ``table.json`` ``paired`` list): one line per
    pair of runs, each metric as ``diff [low, high]``; a pair that could not be computed shows why.

    >>> head, body = paired_table([{"a": "subr", "b": "recent", "run": None, "samples": 2000,
    ...                             "auc": {"a": 0.47, "b": 0.46, "diff": 0.0075, "ci95": [-0.0126, 0.0268]}}], ["auc"])
    >>> head, body
    (['a - b', 'run', 'samples', 'auc'], [['subr - recent', '-', '2,000', '+0.0075 [-0.0126, +0.0268]']])
    """
    held = list(dict.fromkeys(m for e in entries for m in compared_metrics(e)))
    metrics = [m for m in (metrics or held) if m in held] or held
    body = []
    for e in entries:
        by_user = " (by user)" if e.get("by") == "user" else ""
        cells = [f"{e['a']} - {e['b']}{by_user}", e.get("run") or "-", f"{e['samples']:,}" if "samples" in e else "-"]
        if "skipped" in e:
            cells += [f"not computed: {e['skipped']}"] + ["-"] * (len(metrics) - 1)
        else:
            cells += [f"{e[m]['diff']:+.4f} [{e[m]['ci95'][0]:+.4f}, {e[m]['ci95'][1]:+.4f}]" if m in e else "-"
                      for m in metrics]
        body.append(cells)
    return ["a - b", "run", "samples", *(metrics or ["difference"])], body
