"""What a row of a prepared split is: one record per sample kind, and one rule to tell them apart.

Three kinds of sample table exist, and everything that differs between them is on their
:class:`SampleKind` record, so code asks the record instead of comparing kind names:

* ``ctr``: one target item and a 0/1 label per row (TALLRec, ReLLa): one prompt per row;
* ``ranking``: a list of candidates with 0/1 labels per row (LLM-TRSR): one prompt per
  candidate; trained on as CTR rows (its positive and some negatives);
* ``instruction``: ready-made prompts (``instruction``, ``input``, ``output``; TALLRec's
  released splits): one prompt per row, no catalogue items.

:func:`detect` is the one rule that tells them apart, from the column names alone (a Parquet
schema is enough): the first kind whose ``marker`` column is present, else ``ctr``.

>>> detect(["sample_id", "user", "candidates", "labels"]).name, detect(["instruction", "input"]).name
('ranking', 'instruction')
>>> KINDS["ranking"].default_metric, KINDS["ctr"].default_metric
('ndcg@10', 'auc')
>>> KINDS["ranking"].keys({"sample_id": 7, "candidates": ["a", "b"]}), KINDS["ctr"].keys({"sample_id": 7})
(['7:0', '7:1'], ['7'])
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from llmrec.data.views import ranking_to_ctr
from llmrec.errors import DataError
from llmrec.metrics import (
    accuracy,
    auc,
    bootstrap_ci,
    check_ctr_metric,
    check_ranking_metric,
    ctr_report,
    log_loss,
    ranking_per_list,
    ranking_report,
)
from llmrec.registry import Registry

__all__ = ["KINDS", "SampleKind", "detect", "kind_of", "check_columns", "Scored", "TABLE_COLUMNS"]


@dataclass(frozen=True)
class Scored:
    """The scored samples of one kind, ready to write: predictions, metrics and their 95% intervals."""

    predictions: pd.DataFrame
    metrics: dict[str, float]
    intervals: dict[str, tuple[float, float]]  # per-sample (per-list) bootstrap
    by_user: dict[str, tuple[float, float]]  # resampling whole users ({} when that is the same thing)
    users: int | None
    ranks: np.ndarray | None = None  # ranking kinds: the rank of each list's positive (for the plot)


@dataclass(frozen=True)
class SampleKind:
    """One kind of sample table and everything that depends on it."""

    name: str
    summary: str
    columns: tuple[str, ...]  # every reader relies on these (extra columns are fine)
    marker: str  # the column whose presence identifies the kind (see :func:`detect`)
    prompt_columns: tuple[str, ...]  # what prompts of this kind read, where present
    default_metric: str  # model selection / early stopping when the config names none
    check_metric: Callable[[str, str], None]  # (metric, field) -> raises a ConfigError naming the field
    lists: bool = False  # a row is a list of candidates, each scored as one prompt
    names_items: bool = True  # rows name catalogue items (items.parquet / users.parquet apply)
    train_as: str | None = None  # the kind of the rows it trains on (None: itself)
    item_column: str | None = None  # the catalogue items a row scores (a list column when ``lists``)
    target_column: str | None = None  # the item at ``history_end`` of the user's chronology (the audit checks it)

    def keys(self, row: Mapping[str, Any]) -> list[str]:
        """The prediction key of each prompt of ``row``: ``sample_id`` or ``sample_id:j`` for candidate ``j``."""
        if self.lists:
            return [f"{row['sample_id']}:{j}" for j in range(len(row["candidates"]))]
        return [str(row["sample_id"])]

    def prompts_in(self, row: Mapping[str, Any]) -> int:
        """How many prompts ``row`` is scored as."""
        return len(row["candidates"]) if self.lists else 1

    def training_rows(self, rows: list[dict[str, Any]], negatives: int | None = 1) -> list[dict[str, Any]]:
        """The rows training reads (a list's positive and ``negatives`` negatives as CTR rows)."""
        return ranking_to_ctr(rows, negatives) if self.lists else rows

    def labels(self, rows: list[dict[str, Any]]) -> np.ndarray:
        """0/1 labels of ``rows``: one per row, or one row of labels per list."""
        if self.lists:
            return np.array([[int(y) for y in r["labels"]] for r in rows])
        return np.array([int(r["label"]) for r in rows])

    def target_items(self, rows: list[Mapping[str, Any]]) -> list[str | None]:
        """The catalogue item each row is about: its target, or the positive candidate of a list (the first, if
        several); None without one (a kind whose rows name no items).

        >>> KINDS["ranking"].target_items([{"candidates": ["a", "b"], "labels": [0, 1]}])
        ['b']
        >>> KINDS["ctr"].target_items([{"item": "a"}]), KINDS["instruction"].target_items([{"input": "x"}])
        (['a'], [None])
        """
        if not self.names_items or self.item_column is None:
            return [None] * len(rows)
        if self.lists:
            return [next((str(c) for c, y in zip(r[self.item_column], r["labels"]) if int(y) == 1), None)
                    for r in rows]
        return [None if r.get(self.item_column) is None else str(r[self.item_column]) for r in rows]

    def score(self, rows: list[dict[str, Any]], scores: Mapping[str, float]) -> Scored:
        """Predictions (one record per prompt), metrics and intervals of ``rows`` scored as ``scores`` (key -> score)."""
        return (_score_lists if self.lists else _score_targets)(rows, scores)


def _score_targets(rows: list[dict[str, Any]], scores: Mapping[str, float]) -> Scored:
    preds = pd.DataFrame({"sample_id": [r["sample_id"] for r in rows], "user": [r.get("user") for r in rows],
                          "item": [r.get("item") for r in rows], "label": [int(r["label"]) for r in rows],
                          "score": [scores[str(r["sample_id"])] for r in rows]})
    y, x = preds["label"].to_numpy(), preds["score"].to_numpy()
    metrics = ctr_report(y, x)
    fns = (("auc", auc), ("logloss", log_loss), ("acc", accuracy))
    intervals = {name: bootstrap_ci(fn, y, x) for name, fn in fns}
    users = bootstrap_users(preds["user"].to_numpy())
    by_user = {name: bootstrap_ci(fn, y, x, groups=users) for name, fn in fns} if users is not None else {}
    metrics["positive_rate"] = float(preds["label"].mean())
    metrics["mean_score"] = float(preds["score"].mean())
    return Scored(preds, metrics, intervals, by_user, None if users is None else len(set(users)))


def _score_lists(rows: list[dict[str, Any]], scores: Mapping[str, float]) -> Scored:
    recs = [{"sample_id": r["sample_id"], "user": r["user"], "candidate": cand, "label": int(lab),
             "score": scores[f"{r['sample_id']}:{j}"]}
            for r in rows for j, (cand, lab) in enumerate(zip(r["candidates"], r["labels"]))]
    preds = pd.DataFrame(recs)
    width = len(rows[0]["candidates"])
    score = preds["score"].to_numpy().reshape(len(rows), width)
    label = preds["label"].to_numpy().reshape(len(rows), width)
    metrics = ranking_report(score, label, ks=(1, 3, 5, 10))
    per_list = ranking_per_list(score, label, ks=(3, 5, 10), metrics=("recall", "mrr", "ndcg"))
    intervals = {key: bootstrap_ci(np.mean, values) for key, values in per_list.items()}
    users = bootstrap_users(np.array([r["user"] for r in rows], dtype=object))  # one per list, in list order
    by_user = ({key: bootstrap_ci(np.mean, values, groups=users) for key, values in per_list.items()}
               if users is not None else {})
    ranks = 1 + (score > score[label == 1][:, None]).sum(axis=1)
    return Scored(preds, metrics, intervals, by_user, None if users is None else len(set(users)), ranks)


def bootstrap_users(users: np.ndarray) -> np.ndarray | None:
    """The user of each sample (or list) when resampling users differs from resampling samples: every sample has a
    user, there are at least two, and some user has several samples; else None.

    >>> bootstrap_users(np.array(["a", "a", "b"])).tolist(), bootstrap_users(np.array(["a", "b"]))
    (['a', 'a', 'b'], None)
    """
    if pd.isna(users).any():
        return None
    users = np.asarray([str(u) for u in users])
    distinct = len(set(users.tolist()))
    return users if 2 <= distinct < len(users) else None


KINDS: Registry[SampleKind] = Registry("sample kind", key="kind", describe=lambda k: k.summary)

CTR = KINDS.register(SampleKind(
    "ctr", "one target item and a 0/1 label per row (TALLRec, ReLLa)",
    columns=("sample_id", "user", "item", "label", "history_items", "history_ratings"), marker="item",
    prompt_columns=("sample_id", "user", "item", "label", "history_items", "history_ratings", "history_similarity",
                    "summary"),
    default_metric="auc", check_metric=check_ctr_metric, item_column="item", target_column="item"))
RANKING = KINDS.register(SampleKind(
    "ranking", "a list of candidates with 0/1 labels per row (LLM-TRSR); one prompt per candidate",
    columns=("sample_id", "user", "candidates", "labels", "history_items", "history_ratings"), marker="candidates",
    prompt_columns=("sample_id", "user", "history_items", "history_ratings", "candidates", "labels", "summary"),
    default_metric="ndcg@10", check_metric=check_ranking_metric, lists=True, train_as="ctr",
    item_column="candidates", target_column="target"))
INSTRUCTION = KINDS.register(SampleKind(
    "instruction", "ready-made prompts with their answers (TALLRec's released splits); no catalogue items",
    columns=("sample_id", "instruction", "input", "output", "label"), marker="instruction",
    prompt_columns=("sample_id", "instruction", "input", "label"),
    default_metric="auc", check_metric=check_ctr_metric, names_items=False))

# the side tables of a prepared folder, checked like sample tables
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {"items": ("item", "title"), "users": ("user",)}

_DETECT_ORDER = (INSTRUCTION, RANKING)  # a table with none of their markers holds CTR samples


def _names(table: pa.Table | pd.DataFrame | pa.Schema | Iterable[str]) -> list[str]:
    if isinstance(table, pa.Table | pa.Schema):
        return list(table.names) if isinstance(table, pa.Schema) else table.column_names
    if isinstance(table, pd.DataFrame):
        return list(table.columns)
    return list(table)


def detect(table: pa.Table | pd.DataFrame | pa.Schema | Iterable[str]) -> SampleKind:
    """The kind of a sample table (or schema, or list of column names): the one rule every reader uses."""
    names = set(_names(table))
    return next((k for k in _DETECT_ORDER if k.marker in names), CTR)


def kind_of(name: str | SampleKind) -> SampleKind:
    """A kind record from its name (records pass through)."""
    return name if isinstance(name, SampleKind) else KINDS[name]


def check_columns(table: pa.Table | pd.DataFrame | pa.Schema | Iterable[str], kind: str | SampleKind,
                  path: str | Path) -> None:
    """A DataError naming the file and the missing columns when ``table`` lacks what ``kind`` needs
    (a sample kind, or ``items`` / ``users``).

    >>> check_columns(pa.table({"item": [1]}), "items", Path("items.parquet"))
    Traceback (most recent call last):
    ...
    llmrec.errors.DataError: items.parquet: field 'title': missing column (items need item, title) (prepare the data again)
    """
    if isinstance(kind, str) and kind in TABLE_COLUMNS:
        needed, what = TABLE_COLUMNS[kind], kind
    else:
        record = kind_of(kind)
        needed, what = record.columns, f"{record.name} samples"
    columns = set(_names(table))
    missing = [c for c in needed if c not in columns]
    if missing:
        raise DataError(f"missing column{'s' if len(missing) > 1 else ''} ({what} need {', '.join(needed)})",
                        path=path, field=", ".join(missing), hint="prepare the data again")
