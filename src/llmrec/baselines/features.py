"""From a prepared CTR folder to the integer arrays classic models read (no re-split, no new rows).

Every model trains on exactly the samples of our split files. Ids become integers through
vocabularies built from the folder's own tables: items from ``items.parquet`` (index 0 is
padding, the last index stands for an item the table lacks), users from the splits and
``users.parquet``, one category per item (the first genre; for books the author), the user
profile fields (gender, age, occupation, ...) and the rating levels of history items.

A sample's history is the last ``history_len`` items before its target, oldest first and
left-padded with 0. They come from the sample's own ``history_items`` when it keeps enough
of them, otherwise from the user's whole chronology in ``sequences.parquet`` (the ReLLa
protocol keeps 60 items per sample but points into the chronology with ``history_end``), so
SIM's long history is the same one SUBR searches. The target's own rating is never an input
(its slot in the rating feature is always 0).

Where a model asks for them (``history_stats``: the ``logreg_history`` floor), each sample also gets
:data:`HISTORY_STATS`, computed from its own earlier ratings only (the whole chronology before the
target where the folder has one, else the history the sample keeps), and the folder's other
categorical attributes of users and items (``attributes``: every column of ``users.parquet`` /
``items.parquet`` besides the id, the profile fields and the category, whose distinct values are at
most half its rows: BookCrossing's location, year and publisher; not a title or a zip code).

>>> import pyarrow as pa
>>> vocab = Vocab.build(["b", "a", "b"])
>>> vocab.size, vocab.encode(["a", "b", "zz"]).tolist()
(4, [1, 2, 3])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from llmrec.data.prepared import PreparedData
from llmrec.errors import DataError
from llmrec.io import read_json, write_json

__all__ = ["Vocab", "CtrFeatures", "CtrSplit", "CtrBatch", "CATEGORY_FIELDS", "PROFILE_FIELDS", "HISTORY_STATS",
           "history_features"]

# the item column that gives an item its category, in order of preference
CATEGORY_FIELDS = ("genres", "genre", "category", "categories", "author", "publisher")
# user profile columns used as categorical features where the data has them
PROFILE_FIELDS = ("gender", "age", "occupation")
# the history features of a sample (:func:`history_features`), in column order
HISTORY_STATS = ("log_history_length", "mean_rating", "positive_rate", "mean_last10_rating", "mean_same_category_rating",
                 "no_same_category")
# an attribute column is categorical when its distinct values are at most this share of its table's rows
ATTRIBUTE_MAX_SHARE = 0.5


@dataclass
class Vocab:
    """Values -> 1..n (0: padding, n + 1: unknown)."""

    values: list[str]
    index: dict[str, int] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.index = {v: i + 1 for i, v in enumerate(self.values)}

    @classmethod
    def build(cls, values) -> Vocab:
        return cls(sorted({str(v) for v in values if v is not None}))

    @property
    def unknown(self) -> int:
        return len(self.values) + 1

    @property
    def size(self) -> int:
        """Embedding rows needed: padding + values + unknown."""
        return len(self.values) + 2

    def encode(self, values) -> np.ndarray:
        """Indices of ``values`` (a list, or a pyarrow array: encoded without a Python loop)."""
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            return self.encode_arrow(values)
        get, unk = self.index.get, self.unknown
        return np.fromiter((get(str(v), unk) if v is not None else 0 for v in values), dtype=np.int64,
                           count=len(values))

    def encode_arrow(self, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
        if not pa.types.is_string(values.type) and not pa.types.is_large_string(values.type):
            values = pc.cast(values, pa.string())
        pos = pc.index_in(values, value_set=pa.array(self.values, pa.string()))
        out = pc.fill_null(pc.add(pos, 1), self.unknown).to_numpy(zero_copy_only=False).astype(np.int64)
        if values.null_count:
            out[pc.is_null(values).to_numpy(zero_copy_only=False)] = 0
        return out


def _all_categories(text: Any) -> list[str]:
    """The categories of a ``|``- or ``,``-separated field, in order."""
    if text is None or text != text:
        return []
    return [p.strip() for p in str(text).replace("|", ",").split(",") if p.strip()]


@dataclass
class CtrBatch:
    """One batch: per-sample ids, the history (B, L) left-padded, labels."""

    user: np.ndarray
    item: np.ndarray
    category: np.ndarray
    profile: dict[str, np.ndarray]
    history: np.ndarray
    history_category: np.ndarray
    history_rating: np.ndarray
    label: np.ndarray
    genres: np.ndarray | None = None  # (B, G) every category of the target item, 0-padded
    history_stats: np.ndarray | None = None  # (B, len(HISTORY_STATS)) where the features compute them
    attributes: dict[str, np.ndarray] | None = None  # the target's and the user's other attributes (ids), by name

    def __len__(self) -> int:
        return len(self.label)


@dataclass
class CtrSplit:
    """A split as arrays; row ``i``'s history is ``flat[start[i]:end[i]]`` (the last ``history_len`` taken)."""

    sample_id: np.ndarray
    user: np.ndarray
    item: np.ndarray
    label: np.ndarray
    start: np.ndarray
    end: np.ndarray
    flat_items: np.ndarray
    flat_ratings: np.ndarray
    source: str = "samples"  # where histories come from: "samples" or "chronology"
    stats: np.ndarray | None = None  # (n, len(HISTORY_STATS)) raw history features, where the features compute them

    def __len__(self) -> int:
        return len(self.label)

    def take(self, rows: np.ndarray) -> CtrSplit:
        rows = np.asarray(rows)
        return CtrSplit(self.sample_id[rows], self.user[rows], self.item[rows], self.label[rows], self.start[rows], self.end[rows],
                        self.flat_items, self.flat_ratings, self.source,
                        None if self.stats is None else self.stats[rows])


@dataclass
class CtrFeatures:
    """Vocabularies and lookup tables of one prepared folder (see the module docstring)."""

    items: Vocab
    users: Vocab
    categories: Vocab
    ratings: Vocab
    item_category: np.ndarray
    profile_vocabs: dict[str, Vocab]
    user_profile: dict[str, np.ndarray]
    category_field: str | None
    history_len: int
    # every category of each item (items.size, G), 0-padded; column 0 is item_category
    item_genres: np.ndarray | None = field(default=None, repr=False)
    # flat item and rating-level arrays of every user's chronology, and each user's offset in them
    # (indexed by user id; -1: no chronology)
    chronology: tuple[np.ndarray, np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    label_threshold: float | None = None  # the folder's "liked" cut (label = rating > threshold), if it has one
    # batches carry HISTORY_STATS over each sample's whole earlier history (the chronology where the folder has one)
    history_stats: bool = False
    # other categorical attributes: name ("user:location", "item:year") -> (vocabulary, id per user / item index)
    attributes: dict[str, tuple[Vocab, np.ndarray]] = field(default_factory=dict, repr=False)
    # frozen pretrained item vectors by item index (config ``item_text``; :mod:`llmrec.baselines.itemtext`)
    item_text: Any = field(default=None, repr=False)  # an ItemText, or None

    @classmethod
    def build(cls, prepared: PreparedData, history_len: int, history_stats: bool = False) -> CtrFeatures:
        """Vocabularies from the folder's item, user and split tables (``history_stats``: see the class field)."""
        items_t = prepared.items
        items = Vocab([str(v) for v in items_t["item"]])
        category_field = next((f for f in CATEGORY_FIELDS if f in items_t.columns), None)
        lists = [_all_categories(v) for v in items_t[category_field]] if category_field else [[]] * len(items_t)
        categories = Vocab.build(c for cs in lists for c in cs)
        width = max((len(cs) for cs in lists), default=0) or 1
        item_genres = np.zeros((items.size, width), dtype=np.int64)
        for i, cs in enumerate(lists):
            if cs:
                item_genres[1 + i, : len(cs)] = categories.encode(cs)
        item_category = item_genres[:, 0].copy()
        user_ids: set[str] = set()
        ratings: set[float] = set()
        for name in ("train", "valid", "test"):
            t = prepared.split(name)
            user_ids.update(str(u) for u in pc.unique(t.column("user")).to_pylist())
            if "history_ratings" in t.column_names:
                ratings.update(pc.unique(pc.list_flatten(t.column("history_ratings"))).to_pylist())
        users_t = prepared.users
        has_users = users_t is not None and "user" in users_t.columns
        if has_users:
            user_ids.update(str(u) for u in users_t["user"])
        users = Vocab(sorted(user_ids))
        profile_vocabs, user_profile = {}, {}
        if has_users:
            uidx = users.encode(list(users_t["user"]))
            for name in PROFILE_FIELDS:
                if name in users_t.columns:
                    values = [None if v is None or v != v else str(v) for v in users_t[name]]
                    vocab = Vocab.build(values)
                    table = np.zeros(users.size, dtype=np.int64)
                    table[uidx] = vocab.encode(values)
                    profile_vocabs[name], user_profile[name] = vocab, table
        rating_vocab = Vocab([repr(float(r)) for r in sorted(r for r in ratings if r is not None and r == r)])
        feats = cls(items, users, categories, rating_vocab, item_category, profile_vocabs, user_profile,
                    category_field, history_len, item_genres,
                    label_threshold=prepared.config.get("label_threshold"), history_stats=history_stats)
        skip = {"user": {"user", *PROFILE_FIELDS}, "item": {"item", category_field}}
        for side, table, vocab in (("user", users_t if has_users else None, users), ("item", items_t, items)):
            if table is None or not history_stats:
                continue
            index = vocab.encode(list(table[side]))
            for name in table.columns:
                values = [None if v is None or v != v or str(v).strip() == "" else str(v) for v in table[name]]
                distinct = len({v for v in values if v is not None})
                if name in skip[side] or not 2 <= distinct <= ATTRIBUTE_MAX_SHARE * len(table):
                    continue
                attr_vocab = Vocab.build(values)
                ids = np.zeros(vocab.size, dtype=np.int64)
                ids[index] = attr_vocab.encode(values)
                feats.attributes[f"{side}:{name}"] = (attr_vocab, ids)
        if prepared.sequences is not None and not prepared.config.get("retrieval"):
            feats.chronology = feats._flatten_chronology(prepared.sequences)
        return feats

    def _flatten_chronology(self, seq: pa.Table) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        items = self.items.encode(pc.list_flatten(seq.column("items")))
        ratings = self._ratings(pc.list_flatten(seq.column("ratings")))
        lengths = pc.list_value_length(seq.column("items")).to_numpy(zero_copy_only=False)
        offsets = np.full(self.users.size, -1, dtype=np.int64)
        offsets[self.users.encode(seq.column("user"))] = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        offsets[self.users.unknown] = -1
        return items, ratings, offsets

    def _ratings(self, values) -> np.ndarray:
        """Rating levels (1..R; 0 for a missing rating)."""
        if isinstance(values, (pa.Array, pa.ChunkedArray)):
            levels = np.array([float(v) for v in self.ratings.values], dtype=np.float64)
            x = pc.fill_null(pc.cast(values, pa.float64()), np.nan).to_numpy(zero_copy_only=False)
            idx = np.searchsorted(levels, x)
            ok = (idx < len(levels)) & (levels[np.minimum(idx, len(levels) - 1)] == x) if len(levels) else x != x
            return np.where(ok, idx + 1, np.where(np.isnan(x), 0, self.ratings.unknown)).astype(np.int64)
        return self.ratings.encode([repr(float(r)) if r is not None and r == r else None for r in values])

    def split(self, prepared: PreparedData, name: str, rows: np.ndarray | None = None) -> CtrSplit:
        """Arrays of one split (or of ``rows`` of it); the history source is chosen per folder."""
        table = prepared.split(name)
        if rows is not None:
            table = table.take(pa.array(rows))
        return self.from_table(table, f"{prepared.path}/{name}.parquet")

    # the sample columns :meth:`from_table` reads (``history_end`` where the folder has it)
    COLUMNS = ("sample_id", "user", "item", "label", "history_items", "history_ratings", "history_end")

    def history_source(self, table: pa.Table) -> str:
        """Where the histories of ``table``'s rows come from: the user's ``chronology`` when the folder has one, the
        rows point into it (``history_end``) and the model reads more items than any row keeps (or its history
        features, which read the whole history), else the ``samples``."""
        kept = pc.list_value_length(table.column("history_items")).to_numpy(zero_copy_only=False)
        longer = self.history_len > (int(kept.max()) if len(kept) else 0) or self.history_stats
        chronology = self.chronology is not None and "history_end" in table.column_names and longer
        return "chronology" if chronology else "samples"

    def from_table(self, table: pa.Table, where: str, source: str | None = None) -> CtrSplit:
        """Arrays of the sample rows in ``table`` (``where`` names them in errors); ``source`` fixes where the
        histories come from (default: :meth:`history_source` of these rows).

        >>> feats = CtrFeatures(Vocab(["i1", "i2"]), Vocab(["u1"]), Vocab([]), Vocab(["4.0"]), np.zeros(4, np.int64),
        ...                     {}, {}, None, history_len=2)
        >>> rows = pa.table({"sample_id": [0], "user": ["u1"], "item": ["i2"], "label": [1],
        ...                  "history_items": [["i1"]], "history_ratings": [[4.0]]})
        >>> split = feats.from_table(rows, "rows")
        >>> split.item.tolist(), split.flat_items.tolist(), split.flat_ratings.tolist(), split.source
        ([2], [1], [1], 'samples')
        """
        if "label" not in table.column_names:
            raise DataError(f"{where}: CTR baselines need a 'label' column (ranking lists are read by the sequential "
                            "baselines)")
        if source not in (None, "samples", "chronology"):
            raise ValueError(f"source: {source!r} is not 'samples' or 'chronology'")
        user_ids, item_ids = self.users.encode(table.column("user")), self.items.encode(table.column("item"))
        kept = pc.list_value_length(table.column("history_items")).to_numpy(zero_copy_only=False)
        source = source or self.history_source(table)
        if source == "chronology":
            if self.chronology is None or "history_end" not in table.column_names:
                raise DataError(f"{where}: histories from the chronology need sequences.parquet and a 'history_end' "
                                "column")
            flat_items, flat_ratings, offsets = self.chronology
            base = offsets[user_ids]
            if (base < 0).any():
                missing = table.column("user")[int(np.argmax(base < 0))].as_py()
                raise DataError(f"{where}: user {missing!r} has no chronology in sequences.parquet")
            end = base + table.column("history_end").to_numpy(zero_copy_only=False).astype(np.int64)
            start = base
        else:
            flat_items = self.items.encode(pc.list_flatten(table.column("history_items")))
            flat_ratings = self._ratings(pc.list_flatten(table.column("history_ratings")))
            end = np.cumsum(kept).astype(np.int64)
            start = end - kept
        split = CtrSplit(table.column("sample_id").to_numpy(zero_copy_only=False), user_ids, item_ids,
                         table.column("label").to_numpy(zero_copy_only=False).astype(np.float32),
                         start, end, flat_items, flat_ratings, source)
        if self.history_stats:
            split.stats = history_features(self, split)
        return split

    def batch(self, split: CtrSplit, rows: np.ndarray) -> CtrBatch:
        """The rows' ids and their last ``history_len`` history items, oldest first, left-padded."""
        L = self.history_len
        end = split.end[rows]
        pos = end[:, None] - L + np.arange(L)[None, :]
        valid = pos >= split.start[rows][:, None]
        pos = np.where(valid, pos, 0)
        hist = np.where(valid, split.flat_items[pos] if len(split.flat_items) else 0, 0)
        rating = np.where(valid, split.flat_ratings[pos] if len(split.flat_ratings) else 0, 0)
        user = split.user[rows]
        item = split.item[rows]
        return CtrBatch(user=user, item=item, category=self.item_category[item],
                        profile={k: v[user] for k, v in self.user_profile.items()},
                        history=hist, history_category=self.item_category[hist], history_rating=rating,
                        label=split.label[rows],
                        genres=self.item_genres[item] if self.item_genres is not None else None,
                        history_stats=None if split.stats is None else split.stats[rows],
                        attributes={name: ids[user if name.startswith("user:") else item]
                                    for name, (_, ids) in self.attributes.items()} if self.history_stats else None)

    @staticmethod
    def kept_history(prepared: PreparedData, split: str = "train") -> int:
        """The most history items a sample of ``split`` keeps (the default ``history_len``)."""
        kept = pc.list_value_length(prepared.split(split).column("history_items"))
        return int(pc.max(kept).as_py() or 0)

    def describe(self) -> dict[str, Any]:
        out = {"items": len(self.items.values), "users": len(self.users.values),
               "categories": len(self.categories.values), "category_field": self.category_field,
               "rating_levels": len(self.ratings.values), "profile_fields": list(self.profile_vocabs),
               "history_len": self.history_len, "chronology": self.chronology is not None,
               **({"history_stats": list(HISTORY_STATS), "attributes": sorted(self.attributes)}
                  if self.history_stats else {})}
        if self.item_text is not None:
            out["item_text"] = self.item_text.describe()
        return out

    def save(self, path: str | Path) -> None:
        """The vocabularies as JSON (a saved model scores new rows with the same ids)."""
        write_json(path, {"items": self.items.values, "users": self.users.values,
                          "categories": self.categories.values, "ratings": self.ratings.values,
                          "category_field": self.category_field, "history_len": self.history_len,
                          "profile": {k: v.values for k, v in self.profile_vocabs.items()}})

    def same_vocabularies(self, path: str | Path) -> bool:
        saved = read_json(path)
        return (saved["items"] == self.items.values and saved["users"] == self.users.values
                and saved["categories"] == self.categories.values and saved["ratings"] == self.ratings.values)


def rating_values(features: CtrFeatures) -> np.ndarray:
    """The rating of each rating level (index 0, no rating, and the unknown level: NaN)."""
    values = np.full(features.ratings.size, np.nan)
    values[1 : 1 + len(features.ratings.values)] = [float(v) for v in features.ratings.values]
    return values


def _category_masks(features: CtrFeatures) -> np.ndarray | None:
    """Each item's categories as a bit mask (None when there are more than 63 categories)."""
    genres = features.item_genres if features.item_genres is not None else features.item_category[:, None]
    if features.categories.size > 64:
        return None
    bits = np.where(genres > 0, np.left_shift(np.uint64(1), genres.astype(np.uint64)), np.uint64(0))
    return np.bitwise_or.reduce(bits, axis=1)


def history_features(features: CtrFeatures, split: CtrSplit, chunk: int = 4_000_000) -> np.ndarray:
    """:data:`HISTORY_STATS` of every row of ``split``, from the ratings at ``flat[start:end]`` only: the sample's
    own earlier interactions, never its target or anything later (raw values; a model standardizes them).

    * ``log_history_length``: log(1 + earlier items);
    * ``mean_rating``, ``positive_rate`` (rating above the folder's ``label_threshold``), ``mean_last10_rating``:
      over the rated earlier items (NaN when there are none);
    * ``mean_same_category_rating``: over the earlier rated items sharing a category (a genre) with the target;
      the mean rating where there is none, and then ``no_same_category`` is 1.

    >>> feats = CtrFeatures(Vocab(["a", "b", "c"]), Vocab(["u"]), Vocab(["x", "y"]), Vocab(["2.0", "5.0"]),
    ...                     np.array([0, 1, 2, 1, 0]), {}, {}, "genres", history_len=0, label_threshold=3.0)
    >>> split = CtrSplit(np.array([0, 1]), np.array([1, 1]), np.array([3, 2]), np.zeros(2), np.array([0, 0]),
    ...                  np.array([2, 1]), flat_items=np.array([1, 2]), flat_ratings=np.array([2, 1]))
    >>> history_features(feats, split).round(3).tolist()  # item c (category x) after a (x, 5 stars), b (y, 2 stars)
    [[1.099, 3.5, 0.5, 3.5, 5.0, 0.0], [0.693, 5.0, 1.0, 5.0, 5.0, 1.0]]
    """
    if features.label_threshold is None:
        from llmrec.errors import ConfigError

        raise ConfigError("history features need the prepared folder's label_threshold (the 'liked' cut of its "
                          "protocol); this folder has none")
    n = len(split)
    out = np.zeros((n, len(HISTORY_STATS)))
    values = rating_values(features)
    flat_r = values[split.flat_ratings] if len(split.flat_ratings) else np.zeros(0)
    rated = ~np.isnan(flat_r)
    r0 = np.where(rated, flat_r, 0.0)
    liked = rated & (r0 > features.label_threshold)

    def prefix(x: np.ndarray) -> np.ndarray:
        return np.concatenate([[0.0], np.cumsum(x, dtype=np.float64)])

    p_sum, p_cnt, p_liked = prefix(r0), prefix(rated), prefix(liked)
    start, end = split.start.astype(np.int64), split.end.astype(np.int64)
    cnt = p_cnt[end] - p_cnt[start]
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = (p_sum[end] - p_sum[start]) / cnt
        out[:, 0] = np.log1p(end - start)
        out[:, 1] = mean
        out[:, 2] = (p_liked[end] - p_liked[start]) / cnt
        last = np.maximum(start, end - 10)
        out[:, 3] = (p_sum[end] - p_sum[last]) / (p_cnt[end] - p_cnt[last])
    same_sum, same_cnt = np.zeros(n), np.zeros(n)
    masks = _category_masks(features)
    genres = features.item_genres if features.item_genres is not None else features.item_category[:, None]
    lengths = end - start
    row = 0
    while row < n:  # chunks of rows holding about ``chunk`` history positions
        stop = row + max(1, int(np.searchsorted(np.cumsum(lengths[row:]), chunk)))
        stop = min(stop, n)
        rows = np.arange(row, stop)
        lens = lengths[rows]
        owner = np.repeat(rows, lens)
        pos = np.repeat(start[rows] - np.concatenate([[0], np.cumsum(lens)[:-1]]), lens) + np.arange(int(lens.sum()))
        hist = split.flat_items[pos]
        target = split.item[owner]
        if masks is not None:
            shares = (masks[hist] & masks[target]) != 0
        else:
            g_h, g_t = genres[hist], genres[target]
            shares = ((g_h[:, :, None] == g_t[:, None, :]) & (g_h[:, :, None] > 0)).any(axis=(1, 2))
        shares &= rated[pos]
        same_sum[rows] = np.bincount(owner - row, weights=np.where(shares, r0[pos], 0.0), minlength=len(rows))
        same_cnt[rows] = np.bincount(owner - row, weights=shares.astype(np.float64), minlength=len(rows))
        row = stop
    with np.errstate(invalid="ignore", divide="ignore"):
        out[:, 4] = np.where(same_cnt > 0, same_sum / np.maximum(same_cnt, 1), out[:, 1])
    out[:, 5] = (same_cnt == 0).astype(np.float64)
    return out
