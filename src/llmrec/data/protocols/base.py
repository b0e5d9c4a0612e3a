"""Shared pieces of the protocol builders: chronology arrays, list columns, splits, output.

Every protocol turns a :class:`~llmrec.data.schema.RecData` into named splits of samples.
CTR samples (TALLRec, ReLLa) have the columns::

    sample_id, user, item, rating, label, timestamp,
    history_items (list<str>), history_ratings (list<float32>), history_end

where ``history_end`` is the number of the user's interactions before the target, i.e. an
index into the user's row of ``sequences.parquet`` (the full chronology), so retrieval can
search the whole prior history while the list columns hold the most recent ones.
Ranking samples (TRSR) hold ``candidates`` (list<str>) and ``labels`` (list<int8>) instead
of ``item``/``label``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import numpy as np
import pandas as pd
import pyarrow as pa
from pydantic import AfterValidator, NonNegativeFloat

from llmrec.data.schema import RecData
from llmrec.errors import ConfigError, DataError

SPLIT_ORDER = ("train", "valid", "test")


@dataclass
class Chronology:
    """Interactions sorted by (user, timestamp, source order) as flat numpy arrays."""

    user: np.ndarray  # object/str user ids, one per interaction
    user_code: np.ndarray  # int64 code per interaction (codes follow the sorted users)
    item: pa.Array  # string item ids
    rating: np.ndarray  # float32
    timestamp: np.ndarray  # int64
    position: np.ndarray  # int64 index of the interaction within its user's sequence
    user_start: np.ndarray  # int64 flat index of each user's first interaction
    user_length: np.ndarray  # int64 number of interactions per user
    users: np.ndarray  # unique user ids in code order

    @classmethod
    def from_data(cls, data: RecData) -> Chronology:
        inter = data.chronological()
        codes, users = pd.factorize(inter["user"], sort=False)
        codes = codes.astype(np.int64)
        length = np.bincount(codes, minlength=len(users)).astype(np.int64)
        start = np.concatenate([[0], np.cumsum(length)[:-1]]).astype(np.int64)
        position = np.arange(len(inter), dtype=np.int64) - start[codes]
        return cls(
            user=inter["user"].to_numpy(dtype=object),
            user_code=codes,
            item=pa.array(inter["item"].to_numpy(dtype=object), type=pa.string()),
            rating=inter["rating"].to_numpy(dtype=np.float32),
            timestamp=inter["timestamp"].to_numpy(dtype=np.int64),
            position=position,
            user_start=start,
            user_length=length,
            users=np.asarray(users, dtype=object),
        )

    def sequences(self) -> pa.Table:
        """One row per user: full chronological ``items``, ``ratings`` and ``timestamps``."""
        offsets = pa.array(np.concatenate([self.user_start, [len(self.user_code)]]).astype(np.int32))
        return pa.table(
            {
                "user": pa.array(self.users, type=pa.string()),
                "items": pa.ListArray.from_arrays(offsets, self.item),
                "ratings": pa.ListArray.from_arrays(offsets, pa.array(self.rating, type=pa.float32())),
                "timestamps": pa.ListArray.from_arrays(offsets, pa.array(self.timestamp, type=pa.int64())),
            }
        )


def concat_ranges(index: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat positions of the ranges ``[index[r], index[r] + lengths[r])`` and list offsets.

    One cumulative sum, no Python loop and no large temporaries besides the output.

    >>> flat, offsets = concat_ranges(np.array([5, 0, 2]), np.array([2, 0, 3]))
    >>> flat.tolist(), offsets.tolist()
    ([5, 6, 2, 3, 4], [0, 2, 2, 5])
    """
    index = np.asarray(index, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    nz = lengths > 0
    starts, lens, pos = index[nz], lengths[nz], offsets[:-1][nz]
    steps = np.ones(int(offsets[-1]), dtype=np.int64)
    if len(starts):
        steps[0] = starts[0]
        steps[pos[1:]] = starts[1:] - (starts[:-1] + lens[:-1] - 1)
    return np.cumsum(steps), offsets


def list_column(values: pa.Array | np.ndarray, flat: np.ndarray, offsets: np.ndarray) -> pa.ListArray:
    """A list column from flat positions into ``values`` and list offsets."""
    taken = values.take(pa.array(flat)) if isinstance(values, pa.Array) else pa.array(np.asarray(values)[flat])
    off_type = np.int32 if offsets[-1] < 2**31 else np.int64
    return pa.ListArray.from_arrays(pa.array(offsets.astype(off_type)), taken)


def gather_lists(values: pa.Array | np.ndarray, index: np.ndarray, lengths: np.ndarray) -> pa.ListArray:
    """Build a list column whose row ``r`` is ``values[index[r] : index[r] + lengths[r]]``.

    >>> gather_lists(np.array([1, 2, 3, 4]), np.array([0, 2]), np.array([2, 1])).to_pylist()
    [[1, 2], [3]]
    """
    return list_column(values, *concat_ranges(index, lengths))


def _some_share(ratios: tuple[float, float, float]) -> tuple[float, float, float]:
    if sum(ratios) <= 0:
        raise ValueError("train : valid : test ratios need a positive sum, e.g. [0.8, 0.1, 0.1]")
    return ratios


# train : valid : test ratios, divided by their sum ([8, 1, 1] = [0.8, 0.1, 0.1])
SplitRatios = Annotated[tuple[NonNegativeFloat, NonNegativeFloat, NonNegativeFloat], AfterValidator(_some_share)]


def split_by_rank(n: int, ratios: tuple[float, float, float]) -> np.ndarray:
    """Split labels for ``n`` ordered samples: the first ``ratios[0]`` share is train, etc.

    Boundaries are ``floor(n * cumulative ratio)``.

    >>> split_by_rank(10, (0.8, 0.1, 0.1)).tolist()
    ['train', 'train', 'train', 'train', 'train', 'train', 'train', 'train', 'valid', 'test']
    """
    total = sum(ratios)
    cuts = np.floor(np.cumsum(ratios) / total * n + 1e-9).astype(np.int64)
    cuts[-1] = n
    labels = np.empty(n, dtype=object)
    lo = 0
    for name, hi in zip(SPLIT_ORDER, cuts):
        labels[lo:hi] = name
        lo = hi
    return labels


def require_ratings(data: RecData, protocol: str) -> None:
    if data.interactions["rating"].isna().all():
        raise DataError(
            f"the {protocol} protocol needs explicit ratings, but {data.name} has implicit feedback only",
            path=data.sources.get("interactions"),
            field="rating",
            hint="use the trsr protocol for click/purchase sequences",
        )


def resolve_order(data: RecData, order: str) -> str:
    """``auto`` -> ``time`` when the data has timestamps, else ``random``; refuse ``time`` without them."""
    if order == "auto":
        return "random" if data.timestamp_kind == "none" else "time"
    if order == "time" and data.timestamp_kind == "none":
        raise DataError(f"{data.name} has no timestamps, so it cannot be split by time", hint="use order=random")
    return order


def label_threshold(data: RecData, configured: float | None) -> float:
    """The configured threshold, or :func:`default_threshold`; a ConfigError when every rating falls on
    one side of a configured threshold (every label would be the same)."""
    if configured is None:
        return default_threshold(data)
    ratings = data.interactions["rating"].to_numpy(dtype=float)
    low, high = float(np.nanmin(ratings)), float(np.nanmax(ratings))
    if not low <= configured < high:
        side = "above" if configured >= high else "below"
        raise ConfigError(f"label_threshold: {configured:g} is {side} every rating of {data.name} "
                          f"({low:g}-{high:g}); every label would be {0 if side == 'above' else 1}")
    return configured


def default_threshold(data: RecData) -> float:
    """Label threshold (label = rating > threshold): 5 on 1-10 scales (BookCrossing), else 3.

    The scale is the one the loader states (``extra["rating_scale"]``; a stray rating outside it fails when it is
    read), else the largest rating; a scale above 10 has no default (a ConfigError asks for ``label_threshold``).
    """
    scale = data.extra.get("rating_scale")
    top = float(scale[1]) if scale else float(np.nanmax(data.interactions["rating"].to_numpy()))
    if scale and top > 10:
        raise ConfigError(f"label_threshold: no default for {data.name}'s rating scale {scale[0]:g}-{top:g} "
                          "(3 on scales up to 5, 5 up to 10); set label_threshold in the protocol's section")
    return 5.0 if top > 5 else 3.0
