"""``llmrec data audit``: check a prepared folder against its protocol's promises (leakage audit).

Checks, each reported with counts (vectorized: no Python loop per sample):

* ``history_matches_chronology``: every history list is the stretch of the user's full
  chronology (``sequences.parquet``) that ends right before the target; for a retrieved
  folder (``llmrec retrieve``: ``history_positions``), every history item sits at its
  position of the chronology, before the target, positions ascending;
* ``history_before_target``: every history item is not later than its target (equal
  timestamps are reported as ties, not failures: MovieLens rates many items in one second);
* ``split_periods`` (protocols split by time): no sample of a split uses an interaction from a
  later split's period (its target, and so its history, is not later than the first target of
  any later split; ties at the boundary are reported);
* ``users_disjoint`` (protocols split by user, TRSR): no user in two splits;
* ``fewshot_from_train``: every few-shot subset is a subset of the training split (same rows).

A check that does not apply (no timestamps, no full chronology) is reported as skipped.

>>> import tempfile, pandas as pd, pyarrow as pa
>>> from llmrec.data.prepared import PreparedData
>>> seq = pa.table({"user": ["u"], "items": [["a", "b", "c"]], "ratings": [[4.0, 2.0, 5.0]], "timestamps": [[1, 2, 3]]})
>>> rows = {"sample_id": [0], "user": ["u"], "item": ["c"], "rating": [5.0], "label": [1], "timestamp": [3],
...         "history_items": [["a", "b"]], "history_ratings": [[4.0, 2.0]], "history_end": [2]}
>>> p = PreparedData("toy", "rella", {"train": pa.table(rows)}, pd.DataFrame({"item": ["a"], "title": ["A"]}),
...                  pd.DataFrame({"user": ["u"]}), seq, {"order": "time"})
>>> d = p.save(tempfile.mkdtemp() + "/toy")
>>> audit_prepared(d)["ok"]
True
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from llmrec.data.kinds import detect
from llmrec.data.prepared import PreparedData
from llmrec.data.protocols import get_protocol
from llmrec.data.protocols.base import SPLIT_ORDER, concat_ranges

FEWSHOT = re.compile(r"fewshot_\d+")


def _check(name: str, ok: bool | None, detail: str, **counts: Any) -> dict[str, Any]:
    return {"check": name, "status": "skipped" if ok is None else ("ok" if ok else "FAILED"), "detail": detail, **counts}


def _time_ordered(prepared: PreparedData) -> bool:
    order = prepared.config.get("order")
    if order is not None:
        return order == "time"
    return get_protocol(prepared.protocol).time_ordered


def _codes(values, vocab: pa.Array) -> np.ndarray:
    """Integer codes of string ids in ``vocab`` (-1 for unknown ids)."""
    return pc.fill_null(pc.index_in(values, value_set=vocab), -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _chronology(sequences: pa.Table):
    """Flat item codes/timestamps and per-user offsets of the full chronology, and the item vocabulary."""
    flat = pc.list_flatten(sequences["items"])
    vocab = pc.unique(flat)
    items = _codes(flat, vocab)
    stamps = pc.list_flatten(sequences["timestamps"]).to_numpy(zero_copy_only=False).astype(np.int64)
    lengths = pc.list_value_length(sequences["items"]).to_numpy(zero_copy_only=False).astype(np.int64)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    index = {u: i for i, u in enumerate(sequences["user"].to_pylist())}
    return items, stamps, starts, lengths, index, vocab


def _history_checks(prepared: PreparedData) -> list[dict[str, Any]]:
    names = [s for s in prepared.splits if not FEWSHOT.fullmatch(s)]
    has_end = all("history_end" in prepared.splits[s].column_names for s in names)
    if prepared.sequences is None or not has_end:
        why = "no full chronology (sequences.parquet / history_end) in this folder"
        return [_check("history_matches_chronology", None, why), _check("history_before_target", None, why)]
    items, stamps, starts, lengths, index, vocab = _chronology(prepared.sequences)
    mismatched = later = ties = total = unknown = targets_off = 0
    for name in names:
        t = prepared.splits[name]
        users = t["user"].to_pylist()
        code = np.array([index.get(u, -1) for u in users], dtype=np.int64)
        unknown += int((code < 0).sum())
        ok = code >= 0
        end = t["history_end"].to_numpy(zero_copy_only=False).astype(np.int64)[ok]
        code = code[ok]
        hist = t["history_items"].filter(pa.array(ok))
        hist_len = pc.list_value_length(hist).to_numpy(zero_copy_only=False).astype(np.int64)
        target_ts = t["timestamp"].to_numpy(zero_copy_only=False).astype(np.int64)[ok]
        target_col = detect(t.schema).target_column
        target = _codes(t[target_col].filter(pa.array(ok)), vocab)
        # the target sits at position history_end of the user's chronology
        inside = end < lengths[code]
        targets_off += int((~inside).sum()) + int((items[(starts[code] + end)[inside]] != target[inside]).sum())
        per_row = np.repeat(np.arange(len(code)), hist_len)
        got = _codes(pc.list_flatten(hist), vocab)
        if "history_positions" in t.column_names:  # retrieved: any earlier items, in chronological order
            pos = pc.list_flatten(t["history_positions"].filter(pa.array(ok))).to_numpy(zero_copy_only=False)
            pos = pos.astype(np.int64)
            flat = np.clip(starts[code][per_row] + pos, 0, max(len(items) - 1, 0))
            ascending = np.ones(len(pos), dtype=bool)
            same_row = per_row[1:] == per_row[:-1]
            ascending[1:][same_row] = pos[1:][same_row] > pos[:-1][same_row]
            wrong = (pos >= end[per_row]) | (pos < 0) | ~ascending
            wrong |= got != items[flat]
        else:
            flat, _ = concat_ranges(starts[code] + end - hist_len, hist_len)
            wrong = got != items[flat]
        mismatched += int(np.unique(per_row[wrong]).size)
        hts = stamps[flat]
        tts = target_ts[per_row]
        later += int((hts > tts).sum())
        ties += int((hts == tts).sum())
        total += len(flat)
    checks = [
        _check("history_matches_chronology", mismatched == 0 and unknown == 0 and targets_off == 0,
               f"{mismatched} samples whose history does not match the chronology before the target; "
               f"{targets_off} targets not at history_end; {unknown} users missing from sequences.parquet",
               samples_mismatched=mismatched, targets_misplaced=targets_off, unknown_users=unknown),
    ]
    if prepared.config.get("order") == "random":
        checks.append(_check("history_before_target", None, "no timestamps (random order): time cannot be checked"))
    else:
        checks.append(_check("history_before_target", later == 0,
                             f"{later} of {total:,} history items are later than their target; {ties:,} share its "
                             "timestamp (ties)", history_items=total, later=later, ties=ties))
    return checks


def _split_period_check(prepared: PreparedData) -> dict[str, Any]:
    proto = get_protocol(prepared.protocol)
    names = [s for s in SPLIT_ORDER if s in prepared.splits]
    if proto.disjoint_users:
        return _check("split_periods", None, "splits are by user, not by time (see users_disjoint)")
    if not _time_ordered(prepared) or any("timestamp" not in prepared.splits[s].column_names for s in names):
        return _check("split_periods", None, "not split by time")
    leaks = ties = 0
    bounds = {}
    for i, early in enumerate(names):
        ts = prepared.splits[early]["timestamp"].to_numpy(zero_copy_only=False).astype(np.int64)
        if len(ts):
            bounds[early] = [int(ts.min()), int(ts.max())]
        for late in names[i + 1:]:
            lts = prepared.splits[late]["timestamp"].to_numpy(zero_copy_only=False).astype(np.int64)
            if not len(ts) or not len(lts):
                continue
            start = lts.min()
            leaks += int((ts > start).sum())
            ties += int((ts == start).sum())
    return _check("split_periods", leaks == 0,
                  f"{leaks} samples use an interaction from a later split's period; {ties} share the boundary "
                  "timestamp (ties)", leaking_samples=leaks, boundary_ties=ties, periods=bounds)


def _users_disjoint_check(prepared: PreparedData) -> dict[str, Any]:
    if not get_protocol(prepared.protocol).disjoint_users:
        return _check("users_disjoint", None, "this protocol does not promise disjoint users")
    names = [s for s in SPLIT_ORDER if s in prepared.splits]
    users = {s: set(prepared.splits[s]["user"].to_pylist()) for s in names}
    shared = {f"{a}&{b}": len(users[a] & users[b]) for i, a in enumerate(names) for b in names[i + 1:]}
    return _check("users_disjoint", not any(shared.values()), f"users in two splits: {shared}", shared_users=shared)


def _fewshot_check(prepared: PreparedData) -> dict[str, Any]:
    subsets = [s for s in prepared.splits if FEWSHOT.fullmatch(s)]
    if not subsets:
        return _check("fewshot_from_train", None, "no few-shot subsets")
    if "train" not in prepared.splits:
        return _check("fewshot_from_train", False, "few-shot subsets but no train split")
    train = prepared.splits["train"]
    keys = [c for c in ("sample_id", "user", "item", "label") if c in train.column_names]
    pool = set(zip(*[train[c].to_pylist() for c in keys]))
    outside = {s: sum(row not in pool for row in zip(*[prepared.splits[s][c].to_pylist() for c in keys]))
               for s in subsets}
    return _check("fewshot_from_train", not any(outside.values()),
                  f"few-shot rows not found in train: {outside}", rows_outside_train=outside)


def audit_prepared(directory: str | Path) -> dict[str, Any]:
    """Run every check on a prepared folder; ``ok`` is False when any applicable check fails."""
    prepared = PreparedData.load(directory)
    checks = [*_history_checks(prepared), _split_period_check(prepared), _users_disjoint_check(prepared),
              _fewshot_check(prepared)]
    return {"directory": str(directory), "dataset": prepared.dataset, "protocol": prepared.protocol,
            "ok": all(c["status"] != "FAILED" for c in checks), "checks": checks}


def format_audit(report: dict[str, Any]) -> str:
    """A plain-text report: one line per check."""
    lines = [f"audit of {report['directory']} ({report['dataset']} / {report['protocol']})"]
    width = max(len(c["check"]) for c in report["checks"])
    for c in report["checks"]:
        lines.append(f"  {c['status']:<7} {c['check']:<{width}}  {c['detail']}")
    lines.append("result: " + ("every applicable promise holds" if report["ok"] else "LEAKAGE OR INCONSISTENCY FOUND"))
    return "\n".join(lines)
