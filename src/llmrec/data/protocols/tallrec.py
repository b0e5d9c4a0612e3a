"""TALLRec protocol (Bao et al., RecSys 2023): 10-item history windows, Yes/No labels.

Movie domain (data with timestamps, e.g. MovieLens-100K):

* every rating preceded by at least ``history_len`` (10) ratings of the same user is a
  sample; its history is the 10 ratings just before it (oldest first);
* label = rating > ``label_threshold`` (3);
* the ``max_samples`` (10,000) most recent samples are kept and split 8:1:1 by time
  (train = oldest 80%); ties in time are broken by user id, then chronology.

Book domain (data without timestamps, e.g. BookCrossing): following the TALLRec paper, for
every user with at least 11 ratings one rated book is drawn at random as the target and 10
of the others as its history (kept in file order); label = rating > 5; at most
``max_samples`` samples, split 8:1:1 at random. Both draws use ``seed``. The DESIGN brief's
"same recipe" cannot apply literally because there is no time order; ``meta.json`` notes it.

Few-shot training sets (``fewshot_16``, ``fewshot_64``, ``fewshot_256``) are drawn from
train with ``seed``, nested (the 16 are among the 64, the 64 among the 256).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, PositiveInt

from llmrec.data.prepared import PreparedData
from llmrec.data.protocols.base import (
    Chronology,
    SplitRatios,
    label_threshold,
    require_ratings,
    resolve_order,
    split_by_rank,
)
from llmrec.data.schema import RecData
from llmrec.errors import DataError


class TallrecConfig(BaseModel):
    """Parameters of the TALLRec protocol."""

    model_config = ConfigDict(extra="forbid")

    history_len: int = Field(10, ge=1, description="history items per sample")
    label_threshold: float | None = Field(None, description="label = rating > threshold; None: 3 (1-5) or 5 (1-10)")
    max_samples: int = Field(10_000, ge=1, description="keep the most recent samples (time order) or a random subset")
    split: SplitRatios = Field(
        (0.8, 0.1, 0.1), description="train : valid : test ratios (divided by their sum: [8, 1, 1] = [0.8, 0.1, 0.1])")
    few_shot: list[PositiveInt] = Field(default_factory=lambda: [16, 64, 256], description="few-shot train subset sizes")
    order: Literal["auto", "time", "random"] = Field("auto", description="auto: time if the data has timestamps")
    seed: int = 42


def few_shot_sample(train: pa.Table, n: int, seed: int) -> pa.Table:
    """``n`` rows of ``train`` drawn without replacement; nested across ``n`` for one seed.

    >>> t = pa.table({"x": list(range(100))})
    >>> small, big = few_shot_sample(t, 4, 0), few_shot_sample(t, 16, 0)
    >>> set(small["x"].to_pylist()) <= set(big["x"].to_pylist())
    True
    """
    if n > train.num_rows:
        raise DataError(f"cannot draw {n} few-shot samples from {train.num_rows} training samples")
    perm = np.random.default_rng(seed).permutation(train.num_rows)
    return train.take(pa.array(np.sort(perm[:n])))


def build_tallrec(data: RecData, config: TallrecConfig) -> PreparedData:
    """Build TALLRec samples from ``data``."""
    require_ratings(data, "tallrec")
    threshold = label_threshold(data, config.label_threshold)
    order = resolve_order(data, config.order)
    chrono = Chronology.from_data(data)
    if order == "time":
        target, hist_index = _time_windows(chrono, config)
    else:
        target, hist_index = _random_windows(chrono, config)
    if len(target) == 0:
        raise DataError(
            f"no samples: no user of {data.name} has more than {config.history_len} ratings",
            path=data.sources.get("interactions"),
            hint="lower tallrec.history_len",
        )
    rng = np.random.default_rng(config.seed)
    if order == "time":
        ranked = np.lexsort((chrono.position[target], chrono.user_code[target], chrono.timestamp[target]))
        ranked = ranked[-config.max_samples :]
    else:
        ranked = rng.permutation(len(target))[: config.max_samples]
    target, hist_index = target[ranked], hist_index[ranked]
    history_items = chrono.item.take(pa.array(hist_index.ravel()))
    history_ratings = pa.array(chrono.rating[hist_index.ravel()])
    offsets = pa.array(np.arange(len(target) + 1, dtype=np.int32) * config.history_len)
    table = pa.table(
        {
            "sample_id": pa.array(np.arange(len(target), dtype=np.int64)),
            "user": pa.array(chrono.user[target], type=pa.string()),
            "item": chrono.item.take(pa.array(target)),
            "rating": pa.array(chrono.rating[target]),
            "label": pa.array((chrono.rating[target] > threshold).astype(np.int8)),
            "timestamp": pa.array(chrono.timestamp[target]),
            "history_items": pa.ListArray.from_arrays(offsets, history_items),
            "history_ratings": pa.ListArray.from_arrays(offsets, history_ratings),
            "history_end": pa.array(chrono.position[target].astype(np.int32)),
        }
    )
    if order == "random":  # no chronology: "earlier interactions" has no meaning
        table = table.drop_columns(["history_end"])
    split_of = split_by_rank(table.num_rows, config.split)
    splits = {name: table.filter(pa.array(split_of == name)) for name in ("train", "valid", "test")}
    notes = [f"label = rating > {threshold:g}"]
    for n in config.few_shot:
        if n <= splits["train"].num_rows:
            splits[f"fewshot_{n}"] = few_shot_sample(splits["train"], n, config.seed)
        else:
            notes.append(f"few-shot size {n} skipped: only {splits['train'].num_rows} training samples")
    if order == "random":
        notes.append(
            "no timestamps: one random target and 10 random other ratings per user (TALLRec's book recipe); "
            "random 8:1:1 split"
        )
    return PreparedData(
        dataset=data.name,
        protocol="tallrec",
        splits=splits,
        items=data.items,
        users=data.users,
        sequences=chrono.sequences() if order == "time" else None,
        config={**config.model_dump(mode="json"), "label_threshold": threshold, "order": order},
        notes=notes,
    )


def _time_windows(chrono: Chronology, config: TallrecConfig) -> tuple[np.ndarray, np.ndarray]:
    """Targets with a full window of ``history_len`` earlier rated interactions."""
    k = config.history_len
    rated = ~np.isnan(chrono.rating)
    # a window is valid when the k earlier interactions of the same user are all rated
    rated_before = np.concatenate([[0], np.cumsum(rated)])
    target = np.flatnonzero((chrono.position >= k) & rated)
    ok = (rated_before[target] - rated_before[target - k]) == k
    target = target[ok]
    hist_index = target[:, None] - k + np.arange(k)[None, :]
    return target, hist_index


def _random_windows(chrono: Chronology, config: TallrecConfig) -> tuple[np.ndarray, np.ndarray]:
    """One random target and ``history_len`` random other rated items per eligible user."""
    k = config.history_len
    rng = np.random.default_rng(config.seed)
    rated_idx = np.flatnonzero(~np.isnan(chrono.rating))
    codes = chrono.user_code[rated_idx]
    counts = np.bincount(codes, minlength=len(chrono.users))
    keep = counts[codes] >= k + 1
    rated_idx, codes = rated_idx[keep], codes[keep]
    if len(rated_idx) == 0:
        return np.zeros(0, np.int64), np.zeros((0, k), np.int64)
    shuffled = np.lexsort((rng.random(len(rated_idx)), codes))  # random order within each user
    rows, row_codes = rated_idx[shuffled], codes[shuffled]
    first = np.concatenate([[True], row_codes[1:] != row_codes[:-1]])
    group_start = np.maximum.accumulate(np.where(first, np.arange(len(rows)), 0))
    rank = np.arange(len(rows)) - group_start
    target = rows[rank == 0]
    hist = rows[(rank >= 1) & (rank <= k)]
    hist_codes = row_codes[(rank >= 1) & (rank <= k)]
    hist = hist[np.lexsort((hist, hist_codes))].reshape(-1, k)  # file order within each user
    return target, hist
