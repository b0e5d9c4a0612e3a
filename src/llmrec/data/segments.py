"""Segments of scored samples, from what a model may see: the target item's popularity in the training data and
the length of the user's history.

Every scoring (``llmrec evaluate``, the test pass of ``llmrec train``, ``llmrec baseline``) reports its metrics by
segment beside the overall ones (:func:`llmrec.results.write_results`). A sample's segment depends on the
prepared folder's *training split* and on the sample's own inputs, never on a test label: for a candidate list
the target item is its positive candidate, the item the list is about.

**Item popularity** counts each item's training interactions:

* ``chronology`` (a folder with ``sequences.parquet`` and ``history_end``): every interaction of a training
  user up to and including their last training target (the part of their chronology the training split covers;
  under a time split, the training period);
* ``samples`` (a folder without a chronology): the targets and the history items the training samples show,
  once per (user, item).

A target with fewer than :data:`COLD_BELOW` (20) training interactions is ``cold`` (an item absent from training
has 0); ``head`` are the most popular items that together hold :data:`HEAD_SHARE` (50%) of the training
interactions: every item with at least as many interactions as the item at which the share, items in
decreasing count, reaches 50% (and at least 20); ``warm`` is everything between.

**History length** is the number of the user's interactions before the target (``history_end``; the length of
``history_items`` where a folder has no ``history_end``), bucketed at the quartiles of the training samples'
history lengths (edges rounded down to whole interactions; equal edges merge).

>>> seg = Segmenter(pd.Series({"a": 30, "b": 25, "c": 5}), head_from=30, history_edges=(2, 5), basis="samples")
>>> seg.popularity(["a", "b", "c", "zzz", None]).tolist()
['head', 'warm', 'cold', 'cold', None]
>>> seg.history([0, 2, 3, 5, 6]).tolist(), seg.buckets("history_length")
(['0-2', '0-2', '3-5', '3-5', '6+'], ['0-2', '3-5', '6+'])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from llmrec.data.kinds import SampleKind, detect

__all__ = ["COLD_BELOW", "HEAD_SHARE", "MIN_SAMPLES", "SEGMENTATIONS", "Segmenter", "head_threshold",
           "history_lengths", "ordered_buckets", "training_counts"]

COLD_BELOW = 20  # fewer training interactions than this: a cold item
HEAD_SHARE = 0.5  # the most popular items holding this share of the training interactions: the head
HISTORY_QUANTILES = (0.25, 0.5, 0.75)  # history-length bucket edges, over the training samples
MIN_SAMPLES = 10  # a segment with fewer samples (lists) gets its count and no metric
SEGMENTATIONS = ("item_popularity", "history_length")
POPULARITY = ("cold", "warm", "head")


def ordered_buckets(names: Sequence[str]) -> list[str]:
    """Bucket names in their order: cold, warm, head; history lengths by their first length.

    >>> ordered_buckets(["head", "cold"]), ordered_buckets(["13-40", "41+", "0-12"])
    (['cold', 'head'], ['0-12', '13-40', '41+'])
    """
    def key(name: str) -> tuple[int, int, str]:
        if name in POPULARITY:
            return (0, POPULARITY.index(name), name)
        digits = name.split("-")[0].rstrip("+")
        return (1, int(digits) if digits.isdigit() else 0, name)

    return sorted({str(n) for n in names}, key=key)


def head_threshold(counts: Sequence[int] | np.ndarray, share: float = HEAD_SHARE, cold_below: int = COLD_BELOW) -> int:
    """The fewest training interactions of a head item: the count of the item at which the cumulative share of
    interactions, items in decreasing count, reaches ``share``; never below ``cold_below``.

    >>> head_threshold([100, 60, 30, 5, 5])   # 100 is 50% of 200 already
    100
    >>> head_threshold([40, 30, 30, 20]), head_threshold([3, 2]), head_threshold([])
    (30, 20, 20)
    """
    c = np.sort(np.asarray(counts, dtype=np.int64))[::-1]
    if c.size == 0 or c.sum() == 0:
        return cold_below
    cum = np.cumsum(c)
    at = int(np.searchsorted(cum, share * cum[-1], side="left"))
    return max(int(c[min(at, c.size - 1)]), cold_below)


def training_counts(prepared: Any, split: str = "train") -> tuple[pd.Series, str] | None:
    """Training interactions per item of a prepared folder (see the module doc) and the basis they were counted
    on (``chronology`` or ``samples``); None when the split names no catalogue items."""
    names = prepared.column_names(split)
    kind = detect(names)
    if not kind.names_items:
        return None
    if "history_end" in names and prepared.has_sequences:
        train = prepared.split(split, columns=["user", "history_end"])
        last = pd.Series(train.column("history_end").to_numpy()).groupby(
            train.column("user").to_numpy(zero_copy_only=False)).max()
        seq = prepared.table("sequences", columns=["user", "items"])
        items = seq.column("items").combine_chunks()
        offsets = items.offsets.to_numpy().astype(np.int64)
        starts, sizes = offsets[:-1] - offsets[0], np.diff(offsets)
        want = pd.Series(seq.column("user").to_numpy(zero_copy_only=False)).map(last + 1).fillna(0).to_numpy()
        lengths = np.minimum(want.astype(np.int64), sizes)
        # the flat positions of each user's first ``lengths`` items
        positions = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        values = pc.list_flatten(items).take(pa.array(positions, type=pa.int64()))
        return _value_counts(values), "chronology"
    target = kind.target_column
    if target is None or target not in names or "history_items" not in names:
        return None
    table = prepared.split(split, columns=["user", target, "history_items"])
    hist = table.column("history_items").combine_chunks()
    users = table.column("user").to_numpy(zero_copy_only=False)
    pairs = pd.DataFrame({
        "user": np.concatenate([users, users[pc.list_parent_indices(hist).to_numpy()]]),
        "item": np.concatenate([table.column(target).to_numpy(zero_copy_only=False),
                                pc.list_flatten(hist).to_numpy(zero_copy_only=False)])})
    pairs = pairs.dropna().drop_duplicates()
    return pairs["item"].astype(str).value_counts(), "samples"


def _value_counts(values: pa.Array) -> pd.Series:
    counted = pc.value_counts(values.drop_null() if values.null_count else values)
    return pd.Series(counted.field("counts").to_numpy(), index=counted.field("values").to_pylist(), dtype=np.int64)


def history_lengths(rows_or_table: list[Mapping[str, Any]] | pa.Table) -> np.ndarray:
    """The number of the user's interactions before each sample's target: ``history_end``, else the length of
    ``history_items`` (-1 where a row has neither).

    >>> history_lengths([{"history_end": 7, "history_items": ["a"]}, {"history_items": ["a", "b"]}]).tolist()
    [7, 2]
    """
    if isinstance(rows_or_table, pa.Table):
        if "history_end" in rows_or_table.column_names:
            return rows_or_table.column("history_end").to_numpy().astype(np.int64)
        return pc.list_value_length(rows_or_table.column("history_items")).to_numpy().astype(np.int64)
    out = np.empty(len(rows_or_table), dtype=np.int64)
    for i, r in enumerate(rows_or_table):
        end = r.get("history_end")
        out[i] = int(end) if end is not None else (len(r["history_items"]) if r.get("history_items") is not None else -1)
    return out


def quartile_edges(lengths: np.ndarray, quantiles: Sequence[float] = HISTORY_QUANTILES) -> tuple[int, ...]:
    """The history-length bucket edges: the ``quantiles`` of ``lengths``, rounded down, without repeats.

    >>> quartile_edges(np.arange(1, 101)), quartile_edges(np.full(8, 10)), quartile_edges(np.array([]))
    ((25, 50, 75), (10,), ())
    """
    lengths = np.asarray(lengths)
    lengths = lengths[lengths >= 0]
    if lengths.size == 0:
        return ()
    return tuple(sorted({int(np.floor(q)) for q in np.quantile(lengths, quantiles)}))


@dataclass(frozen=True, eq=False)  # compared by identity: it holds a Series
class Segmenter:
    """The segments of a prepared folder, fixed by its training split: an item's training interactions
    (``counts``; absent: 0), the fewest of a head item (``head_from``) and the history-length edges (each bucket's
    last length but the open last bucket's). Made once per run (:meth:`from_prepared`), applied to the rows a run
    scores (:meth:`assign`)."""

    counts: pd.Series | None  # item -> training interactions (None: the folder's samples name no items)
    head_from: int
    history_edges: tuple[int, ...]
    basis: str | None
    split: str = "train"

    @classmethod
    def from_prepared(cls, prepared: Any, split: str = "train") -> Segmenter | None:
        """The segments of ``prepared`` (a :class:`~llmrec.data.prepared.PreparedData`) from its split ``split``;
        None when it has no such split or its samples have neither items nor histories."""
        if split not in prepared.splits:
            return None
        names = prepared.column_names(split)
        counted = training_counts(prepared, split)
        counts, basis = counted if counted is not None else (None, None)
        edges: tuple[int, ...] = ()
        if "history_end" in names or "history_items" in names:
            column = "history_end" if "history_end" in names else "history_items"
            edges = quartile_edges(history_lengths(prepared.split(split, columns=[column])))
        if counts is None and not edges:
            return None
        head = head_threshold(counts.to_numpy()) if counts is not None else COLD_BELOW
        return cls(counts, head, edges, basis, split)

    def buckets(self, segmentation: str) -> list[str]:
        """The bucket names of a segmentation, in order."""
        if segmentation == "item_popularity":
            return list(POPULARITY) if self.counts is not None else []
        if not self.history_edges:
            return []
        e = self.history_edges
        spans = [(0, e[0]), *((lo + 1, hi) for lo, hi in zip(e, e[1:]))]
        return [*(f"{lo}-{hi}" if lo < hi else str(hi) for lo, hi in spans), f"{e[-1] + 1}+"]

    def popularity(self, items: Sequence[str | None]) -> np.ndarray:
        """``cold`` / ``warm`` / ``head`` for each item (None for a missing one)."""
        if self.counts is None:
            return np.full(len(items), None, dtype=object)
        found = pd.Series(list(items), dtype=object)
        n = found.map(self.counts).fillna(0).to_numpy()
        out = np.where(n < COLD_BELOW, "cold", np.where(n >= self.head_from, "head", "warm")).astype(object)
        out[found.isna().to_numpy()] = None
        return out

    def history(self, lengths: Sequence[int] | np.ndarray) -> np.ndarray:
        """The history-length bucket of each length (None for a row without a history)."""
        lengths = np.asarray(lengths, dtype=np.int64)
        names = self.buckets("history_length")
        if not names:
            return np.full(len(lengths), None, dtype=object)
        out = np.asarray(names, dtype=object)[np.searchsorted(np.asarray(self.history_edges), lengths, side="left")]
        out[lengths < 0] = None
        return out

    def assign(self, rows: list[Mapping[str, Any]], kind: SampleKind) -> dict[str, np.ndarray]:
        """Each row's bucket of each segmentation (a list of rows of ``kind``; a row without one: None)."""
        return {"item_popularity": self.popularity(kind.target_items(rows)),
                "history_length": self.history(history_lengths(rows))}

    def describe(self, segmentation: str) -> dict[str, Any]:
        """What a segmentation's buckets mean, for metrics.json."""
        if segmentation == "item_popularity":
            return {"rule": f"training interactions of the target item ({self.basis}, split {self.split}): cold < "
                            f"{COLD_BELOW}; head >= {self.head_from} (the most popular items holding "
                            f"{HEAD_SHARE:.0%} of them); warm between",
                    "basis": self.basis, "cold_below": COLD_BELOW, "head_from": self.head_from,
                    "head_share": HEAD_SHARE, "items_in_training": 0 if self.counts is None else int(len(self.counts))}
        return {"rule": f"the user's interactions before the target, at the quartiles of the {self.split} samples",
                "edges": list(self.history_edges)}
