"""From a prepared ranking folder (TRSR candidate lists) to the integer arrays the sequential
baselines read (no re-split, no new rows).

Each sample of a ranking split is a user, the history before the target (oldest first) and a
list of candidates with 0/1 labels (valid/test: the target among 20 negatives). The
sequential models read the history and score every candidate; they learn next-item
prediction from the training samples' sequences: for a training sample with history
``h1 .. hn`` and target ``t`` the sequence ``h1 .. hn t`` gives the instances
``(h1 -> h2), (h1 h2 -> h3), .., (h1 .. hn -> t)``. The training split's own negatives
(there for the LLM's Yes/No training) are not used.

NCF has no history input but a user embedding. TRSR's users are disjoint across the splits,
so NCF learns from every interaction that is an *input*: the training samples' histories and
targets, and the histories of the valid and test users (only their targets are held out;
:meth:`SeqFeatures.interactions`).

Ids become integers through the item table's vocabulary (0 is padding, the last index an
item the table lacks) and a user vocabulary from the splits.

>>> SeqFeatures.expand(np.array([0, 3]), np.array([3, 5])).tolist()
[[0, 1], [0, 2], [3, 4]]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from llmrec.baselines.features import Vocab
from llmrec.data.kinds import detect
from llmrec.data.prepared import PreparedData
from llmrec.errors import DataError
from llmrec.io import read_json, write_json

__all__ = ["SeqFeatures", "SeqSplit", "SeqBatch"]


def _ragged(start: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The indices ``start[i] + j`` for ``j < lengths[i]``, segment after segment (no Python loop).

    >>> _ragged(np.array([10, 20]), np.array([2, 3])).tolist()
    [10, 11, 20, 21, 22]
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    return np.repeat(start, lengths) + (np.arange(int(lengths.sum())) - offsets)


def _targets(split: SeqSplit) -> np.ndarray:
    """Each list's positive candidate (the first one labelled 1)."""
    return split.candidates[np.arange(len(split)), np.argmax(split.labels, axis=1)]


@dataclass
class SeqBatch:
    """One batch: users, histories (B, L) left-padded, and either training targets (B,) or
    candidate lists (B, C) with their labels."""

    user: np.ndarray
    history: np.ndarray
    target: np.ndarray | None = None
    candidates: np.ndarray | None = None
    labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.user)


@dataclass
class SeqSplit:
    """A ranking split as arrays; row ``i``'s history is ``flat_items[start[i]:end[i]]``."""

    sample_id: np.ndarray
    user: np.ndarray
    start: np.ndarray
    end: np.ndarray
    flat_items: np.ndarray
    candidates: np.ndarray  # (n, C) item indices
    labels: np.ndarray  # (n, C) 0/1

    def __len__(self) -> int:
        return len(self.user)

    def take(self, rows: np.ndarray) -> SeqSplit:
        rows = np.asarray(rows)
        return SeqSplit(self.sample_id[rows], self.user[rows], self.start[rows], self.end[rows], self.flat_items,
                        self.candidates[rows], self.labels[rows])


@dataclass
class Instances:
    """Training instances ``(user, history = flat_items[start:end], target)``."""

    user: np.ndarray
    start: np.ndarray
    end: np.ndarray
    target: np.ndarray
    flat_items: np.ndarray

    def __len__(self) -> int:
        return len(self.target)


@dataclass
class SeqFeatures:
    """Item and user vocabularies of one ranking folder, and the history length models read."""

    items: Vocab
    users: Vocab
    history_len: int
    # frozen pretrained item vectors by item index (config ``item_text``; :mod:`llmrec.baselines.itemtext`)
    item_text: Any = field(default=None, repr=False)  # an ItemText, or None

    @classmethod
    def build(cls, prepared: PreparedData, history_len: int) -> SeqFeatures:
        items = Vocab([str(v) for v in prepared.items["item"]])
        user_ids: set[str] = set()
        for name in prepared.splits:
            user_ids.update(str(u) for u in pc.unique(prepared.split(name).column("user")).to_pylist())
        return cls(items, Vocab(sorted(user_ids)), history_len)

    def split(self, prepared: PreparedData, name: str, rows: np.ndarray | None = None) -> SeqSplit:
        """Arrays of one ranking split (or of ``rows`` of it)."""
        table = prepared.split(name)
        if rows is not None:
            table = table.take(pa.array(rows))
        return self.from_table(table, f"{prepared.path}/{name}.parquet")

    # the sample columns :meth:`from_table` reads
    COLUMNS = ("sample_id", "user", "candidates", "labels", "history_items")

    def from_table(self, table: pa.Table, where: str, source: str | None = None) -> SeqSplit:
        """Arrays of the candidate lists in ``table`` (``where`` names them in errors); histories always come from
        the samples (``source`` None or ``"samples"``).

        >>> feats = SeqFeatures(Vocab(["a", "b", "c"]), Vocab(["u1"]), history_len=2)
        >>> rows = pa.table({"sample_id": [5], "user": ["u1"], "candidates": [["c", "a"]], "labels": [[1, 0]],
        ...                  "history_items": [["a", "b"]]})
        >>> split = feats.from_table(rows, "rows")
        >>> split.candidates.tolist(), split.labels.tolist(), split.flat_items.tolist()
        ([[3, 1]], [[1, 0]], [1, 2])
        """
        kind = detect(table.schema)
        if not kind.lists:
            raise DataError(f"{where}: sequential baselines need candidate lists ('candidates', 'labels'); this is a "
                            f"{kind.name} folder")
        if source not in (None, "samples"):
            raise ValueError(f"source: sequential baselines read the samples' histories, not {source!r}")
        width = pc.list_value_length(table.column("candidates")).to_numpy(zero_copy_only=False)
        if len(width) and (width != width[0]).any():
            bad = int(np.argmax(width != width[0]))
            raise DataError(f"{where}: sample {table.column('sample_id')[bad].as_py()} has {width[bad]} candidates, "
                            f"others {width[0]}; lists must have one length")
        n, C = table.num_rows, int(width[0]) if len(width) else 0
        cands = self.items.encode(pc.list_flatten(table.column("candidates"))).reshape(n, C)
        labels = pc.list_flatten(table.column("labels")).to_numpy(zero_copy_only=False).astype(np.int8).reshape(n, C)
        kept = pc.list_value_length(table.column("history_items")).to_numpy(zero_copy_only=False).astype(np.int64)
        flat = self.items.encode(pc.list_flatten(table.column("history_items")))
        end = np.cumsum(kept)
        return SeqSplit(table.column("sample_id").to_numpy(zero_copy_only=False),
                        self.users.encode(table.column("user")), end - kept, end, flat, cands, labels)

    @staticmethod
    def expand(start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """``[sequence start, target position]`` of every next-item instance of the sequences
        ``flat[start:end]`` (one per item after the first)."""
        n = np.maximum(end - start - 1, 0)
        return np.stack([np.repeat(start, n), _ragged(start + 1, n)], axis=1)

    def instances(self, split: SeqSplit) -> Instances:
        """Next-item instances from each sample's history followed by its target (the positive candidate)."""
        if len(split) and (split.labels.sum(axis=1) != 1).any():
            bad = int(np.argmax(split.labels.sum(axis=1) != 1))
            raise DataError(f"training sample {split.sample_id[bad]}: needs exactly one positive candidate")
        flat, start, end = self._sequences(split, _targets(split))
        pairs = self.expand(start, end)
        owner = np.repeat(np.arange(len(split)), np.maximum(end - start - 1, 0))
        return Instances(split.user[owner], pairs[:, 0], pairs[:, 1], flat[pairs[:, 1]], flat)

    def interactions(self, train: SeqSplit, others: list[SeqSplit]) -> tuple[np.ndarray, np.ndarray]:
        """(user, item) of every input interaction: training histories and targets, the others' histories."""
        flat, start, end = self._sequences(train, _targets(train))
        users = [np.repeat(train.user, end - start)]
        items = [flat]
        for s in others:
            users.append(np.repeat(s.user, s.end - s.start))
            items.append(s.flat_items[_ragged(s.start, s.end - s.start)])
        return np.concatenate(users), np.concatenate(items)

    @staticmethod
    def _sequences(split: SeqSplit, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Flat array of each sample's history followed by ``target``; (flat, start, end)."""
        lengths = split.end - split.start + 1
        end = np.cumsum(lengths)
        start = end - lengths
        flat = np.zeros(int(end[-1]) if len(end) else 0, dtype=np.int64)
        flat[_ragged(start, lengths - 1)] = split.flat_items[_ragged(split.start, lengths - 1)]
        flat[end - 1] = target
        return flat, start, end

    def window(self, flat: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """The last ``history_len`` items of each ``flat[start:end]``, oldest first, left-padded with 0."""
        L = self.history_len
        pos = end[:, None] - L + np.arange(L)[None, :]
        ok = pos >= start[:, None]
        return np.where(ok, flat[np.where(ok, pos, 0)] if len(flat) else 0, 0).astype(np.int64)

    def train_batch(self, inst: Instances, rows: np.ndarray) -> SeqBatch:
        return SeqBatch(user=inst.user[rows], history=self.window(inst.flat_items, inst.start[rows], inst.end[rows]),
                        target=inst.target[rows])

    def batch(self, split: SeqSplit, rows: np.ndarray) -> SeqBatch:
        return SeqBatch(user=split.user[rows], history=self.window(split.flat_items, split.start[rows],
                                                                   split.end[rows]),
                        candidates=split.candidates[rows], labels=split.labels[rows])

    def describe(self) -> dict[str, Any]:
        out = {"items": len(self.items.values), "users": len(self.users.values), "history_len": self.history_len}
        if self.item_text is not None:
            out["item_text"] = self.item_text.describe()
        return out

    def save(self, path: str | Path) -> None:
        write_json(path, {"items": self.items.values, "users": self.users.values, "history_len": self.history_len})

    def same_vocabularies(self, path: str | Path) -> bool:
        saved = read_json(path)
        return saved["items"] == self.items.values and saved["users"] == self.users.values
