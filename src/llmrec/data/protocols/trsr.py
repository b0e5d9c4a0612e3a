"""LLM-TRSR sequential protocol (text-rich sequential recommendation, 2024).

* users with ``min_interactions`` to ``max_interactions`` (10-25) interactions;
* one sample per user: the last interaction is the target, all earlier ones the history;
* users are split at random (``seed``): ``n_test`` (1,000) test users, ``n_valid`` (1,000)
  valid users, up to ``n_train`` (10,000) train users, as in the paper's table; when fewer
  users are eligible, train gets the rest, and when there are not even enough for the two
  evaluation sets, all three sizes are scaled down in proportion;
* candidates: train = target + ``train_negatives`` (1) negative; valid/test = target +
  ``eval_negatives`` (20) negatives. Negatives are drawn uniformly from the items seen in
  the data, never from the user's own interactions, without repeats; the target is put at a
  random position so that no scorer profits from candidate order.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, model_validator

from llmrec.data.prepared import PreparedData
from llmrec.data.protocols.base import Chronology, gather_lists
from llmrec.data.schema import RecData
from llmrec.errors import DataError


class TrsrConfig(BaseModel):
    """Parameters of the LLM-TRSR protocol."""

    model_config = ConfigDict(extra="forbid")

    min_interactions: int = Field(10, ge=2)
    max_interactions: int = Field(25, ge=2)
    n_train: int = Field(10_000, ge=1)
    n_valid: int = Field(1_000, ge=1)
    n_test: int = Field(1_000, ge=1)
    train_negatives: int = Field(1, ge=1)
    eval_negatives: int = Field(20, ge=1)
    seed: int = 42

    @model_validator(mode="after")
    def _check_range(self) -> TrsrConfig:
        if self.min_interactions > self.max_interactions:
            raise ValueError("min_interactions must not exceed max_interactions")
        return self


def sample_negatives(
    rng: np.random.Generator, forbidden: np.ndarray, n_neg: int, n_items: int, owner: np.ndarray
) -> np.ndarray:
    """Draw ``n_neg`` distinct item codes per row, none in that row's forbidden set.

    ``forbidden`` is a sorted, unique int64 array of keys ``row * n_items + item``; ``owner`` is the
    row index of each output row. Vectorized rejection sampling: only bad draws are redrawn.

    >>> rng = np.random.default_rng(0)
    >>> out = sample_negatives(rng, np.array([0, 1], dtype=np.int64), 3, 5, np.array([0]))
    >>> sorted(out[0].tolist())[0] >= 2, len(set(out[0].tolist()))
    (True, 3)
    """
    rows = len(owner)
    out = rng.integers(0, n_items, size=(rows, n_neg))
    for _ in range(1000):
        keys = owner[:, None] * n_items + out
        at = np.searchsorted(forbidden, keys).clip(max=len(forbidden) - 1)
        bad = forbidden[at] == keys  # binary search: forbidden is sorted and unique
        srt = np.sort(out, axis=1)
        dup_rows = (srt[:, 1:] == srt[:, :-1]).any(axis=1) if n_neg > 1 else np.zeros(rows, bool)
        if dup_rows.any():
            # mark the later copies of a repeated value as bad
            for j in range(1, n_neg):
                bad[:, j] |= (out[:, :j] == out[:, j : j + 1]).any(axis=1)
        if not bad.any():
            return out
        out[bad] = rng.integers(0, n_items, size=int(bad.sum()))
    raise DataError("could not draw enough distinct negatives: the catalog is too small for the requested count")


def build_trsr(data: RecData, config: TrsrConfig) -> PreparedData:
    """Build TRSR candidate lists from ``data``."""
    chrono = Chronology.from_data(data)
    eligible = np.flatnonzero(
        (chrono.user_length >= config.min_interactions) & (chrono.user_length <= config.max_interactions)
    )
    if len(eligible) < 3:
        raise DataError(
            f"only {len(eligible)} users of {data.name} have {config.min_interactions}-"
            f"{config.max_interactions} interactions",
            path=data.sources.get("interactions"),
            hint="widen trsr.min_interactions / trsr.max_interactions",
        )
    rng = np.random.default_rng(config.seed)
    users = rng.permutation(eligible)
    wanted = np.array([config.n_test, config.n_valid, config.n_train], dtype=np.int64)
    notes = []
    if len(users) > wanted[0] + wanted[1]:
        # full-size evaluation sets (comparable to the paper's 1,000 / 1,000); train gets the rest
        sizes = wanted.copy()
        sizes[2] = min(wanted[2], len(users) - wanted[0] - wanted[1])
        if sizes[2] < wanted[2]:
            notes.append(f"only {len(users)} eligible users: {sizes[2]} train users instead of {wanted[2]}")
    else:
        sizes = np.maximum(np.floor(wanted / wanted.sum() * len(users)).astype(np.int64), 1)
        sizes[2] = len(users) - sizes[0] - sizes[1]
        notes.append(f"only {len(users)} eligible users: test/valid/train scaled to {sizes.tolist()}")
    bounds = np.cumsum(sizes)
    groups = {"test": users[: bounds[0]], "valid": users[bounds[0] : bounds[1]], "train": users[bounds[1] : bounds[2]]}

    item_codes, item_vocab = _codes(chrono.item)
    forbidden = np.unique(chrono.user_code * len(item_vocab) + item_codes)
    n_items = len(item_vocab)
    splits = {}
    for name in ("train", "valid", "test"):
        u = np.sort(groups[name])
        n_neg = config.train_negatives if name == "train" else config.eval_negatives
        if n_neg + config.max_interactions > n_items:
            raise DataError(f"{n_items} items are too few for {n_neg} negatives per user")
        target = chrono.user_start[u] + chrono.user_length[u] - 1
        negatives = sample_negatives(rng, forbidden, n_neg, n_items, u)
        cands = np.concatenate([item_codes[target][:, None], negatives], axis=1)
        pos = rng.integers(0, n_neg + 1, size=len(u))
        labels = np.zeros_like(cands, dtype=np.int8)
        # move the target (column 0) to a random position
        idx = np.arange(len(u))
        cands[idx, 0], cands[idx, pos] = cands[idx, pos], item_codes[target]
        labels[idx, pos] = 1
        width = n_neg + 1
        offsets = pa.array(np.arange(len(u) + 1, dtype=np.int32) * width)
        hist_len = chrono.user_length[u] - 1
        splits[name] = pa.table(
            {
                "sample_id": pa.array(np.arange(len(u), dtype=np.int64)),
                "user": pa.array(chrono.users[u], type=pa.string()),
                "target": chrono.item.take(pa.array(target)),
                "timestamp": pa.array(chrono.timestamp[target]),
                "history_items": gather_lists(chrono.item, chrono.user_start[u], hist_len),
                "history_ratings": gather_lists(chrono.rating, chrono.user_start[u], hist_len),
                "history_end": pa.array(hist_len.astype(np.int32)),
                "candidates": pa.ListArray.from_arrays(offsets, pa.array(item_vocab[cands.ravel()], type=pa.string())),
                "labels": pa.ListArray.from_arrays(offsets, pa.array(labels.ravel())),
            }
        )
    return PreparedData(
        dataset=data.name,
        protocol="trsr",
        splits=splits,
        items=data.items,
        users=data.users,
        sequences=chrono.sequences(),
        config={**config.model_dump(mode="json"), "order": "user"},
        notes=notes,
    )


def _codes(items: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    encoded = items.dictionary_encode()
    return encoded.indices.to_numpy().astype(np.int64), np.asarray(encoded.dictionary.to_pylist(), dtype=object)
