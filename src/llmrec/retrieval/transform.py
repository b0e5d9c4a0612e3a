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
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from llmrec.data.kinds import detect
from llmrec.data.prepared import PreparedData, check_prepared_target
from llmrec.data.protocols.base import concat_ranges
from llmrec.errors import DataError
from llmrec.parallel import map_tasks
from llmrec.retrieval.config import RetrievalConfig
from llmrec.retrieval.encode import ItemVectors, encode_items, project
from llmrec.retrieval.subr import Retrieved, concat_retrieved, subr_fast

HISTORY_COLUMNS = ("history_items", "history_ratings", "history_positions", "history_similarity")


def check_retrievable(prepared: PreparedData, where: str) -> None:
    """Refuse folders SUBR cannot work on, naming what is missing."""
    if "retrieval" in prepared.config:
        raise DataError("this folder already holds retrieved histories; retrieve from the original prepared folder",
                        path=where)
    if prepared.sequences is None:
        raise DataError("no sequences.parquet (the full chronology SUBR searches); prepare the data again with "
                        "llmrec data prepare", path=where)
    for name, table in prepared.splits.items():
        missing = [c for c in ("user", "item", "history_end") if c not in table.column_names]
        if missing:
            raise DataError(f"split {name}: SUBR needs CTR samples with a target item and history_end; "
                            f"{detect(table.schema).name} samples lack {', '.join(missing)}", path=where)


class Chronologies:
    """The flattened full chronology of ``sequences.parquet`` with each interaction's vector row."""

    def __init__(self, sequences: pa.Table, vectors: ItemVectors) -> None:
        self.users = pd.Index(sequences["user"].to_pylist())
        self.items = pc.list_flatten(sequences["items"].combine_chunks())
        self.ratings = pc.list_flatten(sequences["ratings"]).to_numpy(zero_copy_only=False).astype(np.float32)
        self.lengths = pc.list_value_length(sequences["items"]).to_numpy(zero_copy_only=False).astype(np.int64)
        self.starts = np.concatenate([[0], np.cumsum(self.lengths)[:-1]]).astype(np.int64)
        self.rows = vectors.rows_of(self.items.to_numpy(zero_copy_only=False))


def _sample_arrays(prepared: PreparedData, chrono: Chronologies, where: str) -> tuple[dict[str, slice], np.ndarray, np.ndarray]:
    """Per split its slice of the concatenated samples, and every sample's user index and history end."""
    spans, users, ends, lo = {}, [], [], 0
    for name, table in prepared.splits.items():
        code = chrono.users.get_indexer(pd.Index(table["user"].to_pylist())).astype(np.int64)
        if (code < 0).any():
            bad = table["user"][int(np.flatnonzero(code < 0)[0])].as_py()
            raise DataError(f"split {name}: user {bad!r} is not in sequences.parquet", path=where)
        end = table["history_end"].to_numpy(zero_copy_only=False).astype(np.int64)
        off = end >= chrono.lengths[code]
        if off.any():
            raise DataError(f"split {name}: sample {table['sample_id'][int(np.flatnonzero(off)[0])].as_py()} has "
                            "history_end beyond its user's chronology", path=where)
        targets = chrono.items.take(pa.array(chrono.starts[code] + end))
        wrong = np.flatnonzero(~pc.equal(targets, table["item"].cast(pa.string())).to_numpy(zero_copy_only=False))
        if len(wrong):
            raise DataError(f"split {name}: sample {table['sample_id'][int(wrong[0])].as_py()}: its target is not at "
                            "history_end of the user's chronology", path=where)
        spans[name] = slice(lo, lo + len(table))
        lo += len(table)
        users.append(code)
        ends.append(end)
    return spans, np.concatenate(users), np.concatenate(ends)


def _check_vectors(chrono: Chronologies, users: np.ndarray, ends: np.ndarray, vectors: ItemVectors) -> None:
    """Every item of every searched history and every target must have a vector."""
    reach = np.zeros(len(chrono.lengths), dtype=np.int64)
    np.maximum.at(reach, users, ends + 1)
    flat, _ = concat_ranges(chrono.starts, reach)
    missing = flat[chrono.rows[flat] < 0]
    if len(missing):
        ids = pd.unique(chrono.items.take(pa.array(missing[:1000])).to_numpy(zero_copy_only=False))
        raise DataError(f"{len(missing):,} interactions refer to items without a vector (e.g. "
                        f"{', '.join(repr(i) for i in ids[:3])}) in {vectors.info.get('kind', 'the encoder')} "
                        "vectors; encode every item of items.parquet")


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


def _slice(got: Retrieved, span: slice) -> Retrieved:
    lo, hi = int(got.offsets[span.start]), int(got.offsets[span.stop])
    return Retrieved(got.offsets[span.start : span.stop + 1] - lo, got.positions[lo:hi], got.dots[lo:hi])


def _with_history(table: pa.Table, columns: dict[str, pa.Array]) -> pa.Table:
    for name, column in columns.items():
        if name in table.column_names:
            table = table.set_column(table.column_names.index(name), name, column)
        else:
            table = table.append_column(name, column)
    return table


def _subr(config: RetrievalConfig, chrono: Chronologies, users: np.ndarray, ends: np.ndarray, vectors: np.ndarray,
          advance: Callable[[int], None]) -> Retrieved:
    """SUBR of every sample, here (threads) or on Ray workers (consecutive blocks of samples, merged in order).

    Each sample's retrieval depends only on its own user's chronology, so blocks are independent
    and the merged result is the one-process result, bit for bit.
    """
    settings = dict(dense_max_items=config.dense_max_items, block_entries=config.block_entries)
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


def retrieve(config: RetrievalConfig, *, loaded=None, log: Callable[[str], None] = print,
             progress: bool = True) -> tuple[Path, dict[str, Any]]:
    """Write the SUBR version of ``config.data`` to ``config.out``; returns the folder and the summary.

    ``loaded`` is an already loaded encoder model (:class:`~llmrec.llm.LoadedModel`), e.g. in tests.
    Example (ReLLa's SUBR with K = 10 on a folder of ``llmrec data prepare ml-1m --protocol rella``)::

        import llmrec

        config = llmrec.RetrievalConfig(data="prepared/ml-1m-rella", out="prepared/ml-1m-rella-subr10", k=10)
        folder, summary = llmrec.retrieve(config)
    """
    source = PreparedData.load(config.data)
    check_retrievable(source, config.data)
    check_prepared_target(config.out, source.dataset, source.protocol, config.overwrite, sources=[config.data])

    t0 = time.perf_counter()
    raw = encode_items(source.items, config.encoder, loaded=loaded, log=log, progress=progress, engine=config.engine)
    encode_s = time.perf_counter() - t0
    vectors, projection = project(raw.vectors, config.encoder.pca_dim)
    item_vectors = ItemVectors(raw.ids, vectors, raw.info)
    chrono = Chronologies(source.sequences, item_vectors)
    spans, users, ends = _sample_arrays(source, chrono, config.data)
    _check_vectors(chrono, users, ends, item_vectors)

    t1 = time.perf_counter()
    with tqdm(total=len(ends), desc=f"SUBR K={config.k}", unit="sample", disable=not progress) as bar:
        got = _subr(config, chrono, users, ends, vectors, bar.update)
    subr_s = time.perf_counter() - t1

    splits = {}
    for name, span in spans.items():
        splits[name] = _with_history(source.splits[name], _history_columns(chrono, users[span], _slice(got, span)))
    counts = np.diff(got.offsets)
    settings = {"k": config.k, "encoder": config.encoder.kind, "model": config.encoder.model.name,
                "item_template": config.encoder.item_template, "pca_dim": config.encoder.pca_dim}
    summary = {
        **settings,
        "source": {"folder": str(config.data), "fingerprint": source.fingerprint()},
        "encoder_key": {k: v for k, v in raw.info.items() if k not in ("cache", "cached")},
        "projection": projection,
        "samples": int(len(ends)),
        "samples_with_fewer_than_k": int((counts < config.k).sum()),
        "mean_prior_history": round(float(ends.mean()), 1) if len(ends) else 0.0,
        "mean_similarity": round(float(got.similarity.mean()), 4) if len(got.dots) else None,
    }
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
