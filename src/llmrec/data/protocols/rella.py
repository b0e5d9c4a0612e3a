"""ReLLa CTR protocol (Lin et al., 2024): every rating with enough prior history is a sample.

* label = rating > ``label_threshold`` (3 on MovieLens' 1-5 scale, 5 on BookCrossing's 1-10);
* a rating is a sample when its user has at least ``min_history`` (5) earlier ratings;
* samples are ordered globally by time and split 8:1:1 (train = the oldest 80%); ties in
  time are broken by user id and then by position in the user's chronology;
* ``history_items`` / ``history_ratings`` hold the ``max_history`` (60) most recent earlier
  ratings, oldest first; ``history_end`` points into ``sequences.parquet`` so semantic
  retrieval (SUBR) can choose among *all* earlier ratings.

Data without timestamps (the cleaned BookCrossing copy) has no time order: the user's
file order stands in for the chronology and the split is a seeded random permutation;
``meta.json`` notes this.

On MovieLens-1M this gives 1,000,209 - 5 x 6,040 = 970,009 samples, as in the paper's table.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field

from llmrec.data.prepared import PreparedData
from llmrec.data.protocols.base import (
    Chronology,
    SplitRatios,
    concat_ranges,
    label_threshold,
    list_column,
    require_ratings,
    resolve_order,
    split_by_rank,
)
from llmrec.data.schema import RecData
from llmrec.errors import DataError


class RellaConfig(BaseModel):
    """Parameters of the ReLLa CTR protocol."""

    model_config = ConfigDict(extra="forbid")

    label_threshold: float | None = Field(None, description="label = rating > threshold; None: 3 (1-5 scale) or 5 (1-10)")
    min_history: int = Field(5, ge=1, description="earlier ratings a sample needs")
    max_history: int = Field(60, ge=1, description="most recent earlier ratings kept in history_items (K up to this)")
    split: SplitRatios = Field(
        (0.8, 0.1, 0.1), description="train : valid : test ratios (divided by their sum: [8, 1, 1] = [0.8, 0.1, 0.1])")
    order: Literal["auto", "time", "random"] = Field("auto", description="auto: time if the data has timestamps")
    seed: int = 42


def build_rella(data: RecData, config: RellaConfig) -> PreparedData:
    """Build ReLLa CTR samples from ``data`` (vectorized; ML-1M takes a few seconds)."""
    require_ratings(data, "rella")
    threshold = label_threshold(data, config.label_threshold)
    order = resolve_order(data, config.order)

    chrono = Chronology.from_data(data)
    rated = ~np.isnan(chrono.rating)
    sample_idx = np.flatnonzero((chrono.position >= config.min_history) & rated)
    if len(sample_idx) == 0:
        raise DataError(
            f"no samples: no user of {data.name} has more than {config.min_history} ratings",
            path=data.sources.get("interactions"),
            hint="lower rella.min_history",
        )
    position = chrono.position[sample_idx]
    hist_len = np.minimum(position, config.max_history)
    hist_start = sample_idx - hist_len

    if order == "time":
        # global chronological order; ties by user code, then position within the user
        ranked = np.lexsort((position, chrono.user_code[sample_idx], chrono.timestamp[sample_idx]))
    else:
        ranked = np.random.default_rng(config.seed).permutation(len(sample_idx))
    split_of_rank = split_by_rank(len(sample_idx), config.split)
    splits = {}
    for name in ("train", "valid", "test"):
        rows = ranked[split_of_rank == name]  # in split order (time order for order=time)
        idx = sample_idx[rows]
        flat, offsets = concat_ranges(hist_start[rows], hist_len[rows])
        splits[name] = pa.table(
            {
                "sample_id": pa.array(rows.astype(np.int64)),
                "user": pa.array(chrono.user[idx], type=pa.string()),
                "item": chrono.item.take(pa.array(idx)),
                "rating": pa.array(chrono.rating[idx]),
                "label": pa.array((chrono.rating[idx] > threshold).astype(np.int8)),
                "timestamp": pa.array(chrono.timestamp[idx]),
                "history_items": list_column(chrono.item, flat, offsets),
                "history_ratings": list_column(chrono.rating, flat, offsets),
                "history_end": pa.array(position[rows].astype(np.int32)),
            }
        )
    notes = [f"label = rating > {threshold:g}"]
    if order == "random":
        notes.append("no timestamps: file order is the chronology and the 8:1:1 split is a seeded random one")
    return PreparedData(
        dataset=data.name,
        protocol="rella",
        splits=splits,
        items=data.items,
        users=data.users,
        sequences=chrono.sequences(),
        config={**config.model_dump(mode="json"), "label_threshold": threshold, "order": order},
        notes=notes,
    )
