"""``llmrec retrieve``: a prepared CTR folder in, the same folder with SUBR histories out.

Every split keeps its rows, order, labels and columns; only the history changes:

* ``history_items`` / ``history_ratings``: the K earlier items most similar to the target
  (from the user's *whole* chronology in ``sequences.parquet``, not only the items the sample
  kept), in chronological order;
* ``history_positions``: where each one sits in the user's chronology;
* ``history_similarity``: its cosine similarity to the target (the prompt budget drops the
  least similar first).

``meta.json``'s config gains a ``retrieval`` entry and ``retrieval.json`` records the
encoder, template, K, the projection and the content hashes of the inputs, so ``llmrec
evaluate`` / ``llmrec train`` read the folder like any other and runs on it are told apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from llmrec.data.kinds import detect
from llmrec.data.prepared import LazyTables, PreparedData, check_prepared_target, release_read_buffers
from llmrec.data.protocols.base import concat_ranges
from llmrec.errors import DataError
from llmrec.parallel import map_tasks
from llmrec.retrieval.config import RetrievalConfig
from llmrec.retrieval.encode import ItemVectors, encode_items, project
from llmrec.retrieval.subr import Retrieved, concat_retrieved, subr_fast

HISTORY_COLUMNS = ("history_items", "history_ratings", "history_positions", "history_similarity")
SAMPLE_COLUMNS = ["user", "item", "history_end"]  # what SUBR reads of a split
CHRONOLOGY_COLUMNS = ["user", "items", "ratings"]  # what it reads of sequences.parquet


def check_retrievable(prepared: PreparedData, where: str) -> None:
    """Refuse folders SUBR cannot work on, naming what is missing."""
    if "retrieval" in prepared.config:
        raise DataError("this folder already holds retrieved histories; retrieve from the original prepared folder",
                        path=where)
    if not prepared.has_sequences:
        raise DataError("no sequences.parquet (the full chronology SUBR searches); prepare the data again with "
                        "llmrec data prepare", path=where)
    for name in prepared.splits:  # column names only: no data is read
        columns = prepared.column_names(name)
        missing = [c for c in SAMPLE_COLUMNS if c not in columns]
        if missing:
            raise DataError(f"split {name}: SUBR needs CTR samples with a target item and history_end; "
                            f"{detect(columns).name} samples lack {', '.join(missing)}", path=where)


def _vector_rows(items: pa.Array, ids: list[str]) -> np.ndarray:
    """Row of each of ``items`` among the vector ``ids`` (-1 where it has none), without a Python string per item.

    >>> _vector_rows(pa.array(["b", "x", "a", "b"]), ["a", "b"]).tolist()
    [1, -1, 0, 1]
    """
    rows = pc.index_in(items.cast(pa.string()), value_set=pa.array(ids, type=pa.string()))
    return pc.fill_null(rows, -1).to_numpy(zero_copy_only=False).astype(np.int32)  # rows of a vector table: < 2^31


class Chronologies:
    """The flattened full chronology of ``sequences.parquet`` with each interaction's vector row.

    ``sequences`` needs the columns :data:`CHRONOLOGY_COLUMNS` (others are ignored).
    """

    def __init__(self, sequences: pa.Table, vectors: ItemVectors) -> None:
        self.user_ids = sequences["user"].combine_chunks().cast(pa.string())
        self.items = pc.list_flatten(sequences["items"].combine_chunks())
        self.ratings = pc.list_flatten(sequences["ratings"]).to_numpy(zero_copy_only=False).astype(np.float32)
        self.lengths = pc.list_value_length(sequences["items"]).to_numpy(zero_copy_only=False).astype(np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.rows = _vector_rows(self.items, vectors.ids)

    @classmethod
    def read(cls, prepared: PreparedData, vectors: ItemVectors) -> Chronologies:
        """The chronologies of a prepared folder, reading only the columns SUBR needs."""
        return cls(prepared.table("sequences", columns=CHRONOLOGY_COLUMNS), vectors)

    def user_codes(self, users: pa.ChunkedArray | pa.Array) -> np.ndarray:
        """Each user's row in the chronologies, -1 for a user without one (no Python objects per sample)."""
        codes = pc.index_in(users.cast(pa.string()), value_set=self.user_ids)
        return pc.fill_null(codes, -1).to_numpy(zero_copy_only=False).astype(np.int32)  # user rows: < 2^31


def _sample_id(prepared: PreparedData, split: str, row: int) -> Any:
    """The ``sample_id`` of one row (read only to name a bad sample)."""
    return prepared.split(split, columns=["sample_id"])["sample_id"][row].as_py()


def _split_arrays(prepared: PreparedData, name: str, chrono: Chronologies, where: str) -> tuple[np.ndarray, np.ndarray]:
    """Every sample's user index and history end in split ``name``, checked against the chronologies.

    Reads only :data:`SAMPLE_COLUMNS` of the split.
    """
    table = prepared.split(name, columns=SAMPLE_COLUMNS)
    code = chrono.user_codes(table["user"])
    if (code < 0).any():
        bad = table["user"][int(np.flatnonzero(code < 0)[0])].as_py()
        raise DataError(f"split {name}: user {bad!r} is not in sequences.parquet", path=where)
    # int32 like the user rows (positions in a chronology: SUBR allows below 2^22): ML-1M's 970k samples, 3.7 MiB less
    end = table["history_end"].to_numpy(zero_copy_only=False).astype(np.int32)
    off = end >= chrono.lengths[code]
    if off.any():
        raise DataError(f"split {name}: sample {_sample_id(prepared, name, int(np.flatnonzero(off)[0]))} has "
                        "history_end beyond its user's chronology", path=where)
    targets = chrono.items.take(pa.array(chrono.starts[code] + end))
    wrong = np.flatnonzero(~pc.equal(targets, table["item"].cast(pa.string())).to_numpy(zero_copy_only=False))
    if len(wrong):
        raise DataError(f"split {name}: sample {_sample_id(prepared, name, int(wrong[0]))}: its target is not at "
                        "history_end of the user's chronology", path=where)
    return code, end


def _sample_arrays(prepared: PreparedData, chrono: Chronologies, where: str) -> tuple[dict[str, slice], np.ndarray, np.ndarray]:
    """Per split its slice of the concatenated samples, and every sample's user index and history end."""
    spans, users, ends, lo = {}, [], [], 0
    for name in prepared.splits:
        code, end = _split_arrays(prepared, name, chrono, where)
        spans[name] = slice(lo, lo + len(end))
        lo += len(end)
        users.append(code)
        ends.append(end)
    release_read_buffers()  # what decoding the splits and sequences left in Arrow's pool: SUBR runs on numpy
    return spans, np.concatenate(users), np.concatenate(ends)


def _check_vectors(chrono: Chronologies, users: np.ndarray, ends: np.ndarray, vectors: ItemVectors,
                   where: str | Path, fix: str) -> None:
    """Every item of every searched history and every target must have a vector (checked on the ids, before any
    item is encoded: ``vectors`` may hold the ids only)."""
    reach = np.zeros(len(chrono.lengths), dtype=np.int64)
    np.maximum.at(reach, users, ends + 1)
    flat, _ = concat_ranges(chrono.starts, reach)
    missing = flat[chrono.rows[flat] < 0]
    if len(missing):
        ids = pd.unique(chrono.items.take(pa.array(missing[:1000])).to_numpy(zero_copy_only=False))
        raise DataError(f"{len(missing):,} interactions of the histories and targets SUBR searches name items "
                        f"without a vector (e.g. {', '.join(repr(i) for i in ids[:3])})", path=where, hint=fix)


def _history_columns(chrono: Chronologies, users: np.ndarray, got: Retrieved) -> dict[str, pa.Array]:
    counts = np.diff(got.offsets)
    owner_start = np.repeat(chrono.starts[users], counts)
    flat = owner_start + got.positions
    offsets = pa.array(got.offsets.astype(np.int32 if got.offsets[-1] < 2**31 else np.int64))
    return {
        "history_items": pa.ListArray.from_arrays(offsets, chrono.items.take(pa.array(flat))),
        "history_ratings": pa.ListArray.from_arrays(offsets, pa.array(chrono.ratings[flat], type=pa.float32())),
        "history_positions": pa.ListArray.from_arrays(offsets, pa.array(got.positions.astype(np.int32))),
        "history_similarity": pa.ListArray.from_arrays(offsets, pa.array(got.similarity, type=pa.float32())),
    }


def _with_history(table: pa.Table, columns: dict[str, pa.Array], names: list[str]) -> pa.Table:
    """``table`` (a split read without the history it replaces) with the new ``columns``.

    The columns keep the split's order ``names``; new ones come last.

    >>> t = _with_history(pa.table({"a": [1]}), {"history_items": pa.array([["x"]])}, ["history_items", "a"])
    >>> t.column_names, t["history_items"].to_pylist()
    (['history_items', 'a'], [['x']])
    """
    order = [*names, *(c for c in columns if c not in names)]
    fields = [pa.field(c, columns[c].type) if c in columns else table.schema.field(c) for c in order]
    return pa.Table.from_arrays([columns[c] if c in columns else table[c] for c in order],
                                schema=pa.schema(fields, metadata=table.schema.metadata))


def _split_with_history(source: PreparedData, name: str, columns: dict[str, pa.Array]) -> pa.Table:
    """Split ``name`` of ``source`` with its new history; the old history columns are not even read."""
    names = source.column_names(name)
    kept = source.split(name, columns=[c for c in names if c not in columns])
    return _with_history(kept, columns, names)


def _subr(config: RetrievalConfig, chrono: Chronologies, users: np.ndarray, ends: np.ndarray, vectors: np.ndarray,
          advance: Callable[[int], None]) -> Retrieved:
    """SUBR of every sample, here (threads) or on Ray workers (consecutive blocks of samples, merged in order).

    Each sample's retrieval depends only on its own user's chronology, so blocks are independent
    and the merged result is the one-process result, bit for bit.
    """
    settings = dict(dense_max_items=config.dense_max_items, dense_pass_mib=config.dense_pass_mib,
                    block_entries=config.block_entries)
    if config.engine.kind == "local":
        return subr_fast(chrono.rows, chrono.starts, users, ends, vectors, config.k, progress=advance, **settings)
    cuts = np.linspace(0, len(ends), 4 * config.engine.workers + 1).astype(np.int64)
    tasks = [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]
    rows, starts, k = chrono.rows, chrono.starts, config.k
    threads = max(1, int(config.engine.cpus_per_worker))

    def make():
        return lambda span: subr_fast(rows, starts, users[span[0] : span[1]], ends[span[0] : span[1]], vectors, k,
                                      threads=threads, **settings)

    parts: dict[int, Retrieved] = {}
    for i, got in map_tasks(tasks, make, config.engine):
        parts[i] = got
        advance(tasks[i][1] - tasks[i][0])
    return concat_retrieved([parts[i] for i in range(len(tasks))])


def _retrieve_splits(config: RetrievalConfig, chrono: Chronologies, spans: dict[str, slice], users: np.ndarray,
                     ends: np.ndarray, vectors: np.ndarray, progress: bool) -> tuple[dict[str, dict[str, pa.Array]], float]:
    """SUBR split by split: each split's new history columns, and the seconds SUBR took.

    A sample's retrieval depends only on its own user's chronology, so split by split gives the
    one-pass result, bit for bit, with only one split's :class:`Retrieved` in memory.
    """
    history, seconds = {}, 0.0
    with tqdm(total=len(ends), desc=f"SUBR K={config.k}", unit="sample", disable=not progress) as bar:
        for name, span in spans.items():
            t0 = time.perf_counter()
            got = _subr(config, chrono, users[span], ends[span], vectors, bar.update)
            seconds += time.perf_counter() - t0
            history[name] = _history_columns(chrono, users[span], got)
    return history, seconds


def _flat_similarity(columns: dict[str, pa.Array]) -> np.ndarray:
    """The similarities of one split's retrieved items, flat (float32)."""
    return columns["history_similarity"].flatten().to_numpy(zero_copy_only=False)


@dataclass(frozen=True)
class RetrievePlan:
    """What :func:`check_retrieve` settled; :func:`retrieve` runs from it."""

    config: RetrievalConfig
    source: PreparedData


def check_retrieve(config: RetrievalConfig) -> RetrievePlan:
    """Every cheap check of a retrieve config (the folder can be retrieved from: a full chronology, CTR samples with
    a target and ``history_end``), reading footers only; returns the plan :func:`retrieve` runs. The output folder
    is checked when it is written."""
    source = PreparedData.load(config.data)
    check_retrievable(source, config.data)
    return RetrievePlan(config, source)


def retrieve(config: RetrievalConfig | RetrievePlan, *, loaded=None, log: Callable[[str], None] = print,
             progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """Write the SUBR version of ``config.data`` to ``config.out``; returns the folder and the summary.

    ``loaded`` is an already loaded encoder model (:class:`~llmrec.llm.LoadedModel`), e.g. in tests.
    Example (ReLLa's SUBR with K = 10 on a folder of ``llmrec data prepare ml-1m --protocol rella``)::

        import llmrec

        config = llmrec.RetrievalConfig(data="prepared/ml-1m-rella", out="prepared/ml-1m-rella-subr10", k=10)
        folder, summary = llmrec.retrieve(config)

    Memory: SUBR reads only :data:`SAMPLE_COLUMNS` of the splits and runs split by split,
    keeping just the new history columns; then each split's other columns are read (not the
    old history lists, the bulk of a split), joined to its new history and written, one split
    at a time.
    """
    plan = config if isinstance(config, RetrievePlan) else check_retrieve(config)
    config, source = plan.config, plan.source
    check_prepared_target(config.out, source.dataset, source.protocol, config.overwrite, sources=[config.data])

    t0 = time.perf_counter()
    if config.encoder.kind == "file":  # the file's ids are checked before anything else
        raw = encode_items(source.items, config.encoder, loaded=loaded, log=log, progress=progress,
                           engine=config.engine)
        ids, where, fix = raw, config.encoder.path, "add their vectors to the file"
    else:  # every item of items.parquet will be encoded: the ids are checked before the (long) encoding
        ids = ItemVectors(source.items["item"].astype(str).tolist(), np.zeros((0, 0), np.float32))
        where, fix = Path(config.data) / "items.parquet", "the prepared folder is inconsistent: prepare it again"
    chrono = Chronologies(source.sequences, ids)  # all columns: the folder written holds them again
    spans, users, ends = _sample_arrays(source, chrono, config.data)
    _check_vectors(chrono, users, ends, ids, where, fix)
    if config.encoder.kind != "file":
        raw = encode_items(source.items, config.encoder, loaded=loaded, log=log, progress=progress,
                           engine=config.engine)
        if raw.ids != ids.ids:
            chrono.rows = _vector_rows(chrono.items, raw.ids)
    encode_s = time.perf_counter() - t0
    vectors, projection = project(raw.vectors, config.encoder.pca_dim)

    history, subr_s = _retrieve_splits(config, chrono, spans, users, ends, vectors, progress)
    similarity = np.concatenate([_flat_similarity(columns) for columns in history.values()])
    settings = {"k": config.k, "encoder": config.encoder.kind, "model": config.encoder.model.name,
                "item_template": config.encoder.item_template, "pca_dim": config.encoder.pca_dim}
    summary = {
        **settings,
        "source": {"folder": str(config.data), "fingerprint": source.fingerprint()},
        "encoder_key": {k: v for k, v in raw.info.items() if k not in ("cache", "cached")},
        "projection": projection,
        "samples": int(len(ends)),
        "samples_with_fewer_than_k": int((ends < config.k).sum()),
        "mean_prior_history": round(float(ends.mean()), 1) if len(ends) else 0.0,
        "mean_similarity": round(float(similarity.mean()), 4) if len(similarity) else None,
    }
    # made when save asks for it, once per split: the split's other columns read, the history added, written, dropped
    splits = LazyTables(list(spans), lambda name: _split_with_history(source, name, history[name]))
    out = PreparedData(
        dataset=source.dataset, protocol=source.protocol, splits=splits, items=source.items, users=source.users,
        sequences=source.sequences, config={**source.config, "retrieval": settings},
        notes=[*source.notes, f"history = the {config.k} earlier items most similar to the target (SUBR), oldest first"],
        provenance={"retrieval.json": summary},
        recipe={"made_by": "retrieve", "source": summary["source"]["fingerprint"], "k": config.k,
                "encoder": {k: v for k, v in summary["encoder_key"].items() if k != "model_name"},  # weights, not a path
                "pca_dim": config.encoder.pca_dim},
    )
    path = out.save(config.out, overwrite=config.overwrite, sources=[config.data])  # the same inputs: the same files
    summary["seconds"] = {"encode": round(encode_s, 2), "subr": round(subr_s, 2), "cached": bool(raw.info.get("cached"))}
    log(f"SUBR K={config.k}: {len(ends):,} samples, {summary['mean_prior_history']} earlier items on average, "
        f"encode {encode_s:.1f} s{' (cached)' if raw.info.get('cached') else ''}, SUBR {subr_s:.1f} s -> {path}")
    return path, summary
