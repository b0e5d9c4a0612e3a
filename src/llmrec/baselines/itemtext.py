"""LLM item knowledge in classic models: the retrieval encoder's item vectors as a frozen item feature.

:func:`load_item_text` encodes every item of a prepared folder's ``items.parquet`` with
:func:`llmrec.retrieval.encode.encode_items`, the encoding (and the cache) ``llmrec retrieve``
uses: the same encoder settings over the same item table read the same cached vectors, so an item
catalogue is encoded once for SUBR and for every baseline. The vectors are projected as SUBR
projects them (:func:`~llmrec.retrieval.encode.project`: centre, PCA to ``pca_dim``, L2-normalise)
and laid out by the model's item vocabulary (:func:`lay_out`): row ``i`` is the vector of item
index ``i``; padding (0) and the unknown item (the last index) get zeros.

Every item of ``items.parquet`` must have a vector: with ``encoder.kind: file`` the file may lack
some, which is one error naming how many and one of them (no silent fallback: a zero vector would
be a text feature that says nothing, and the comparison with the id-only model would be off).

:func:`vectors_fingerprint` is what a run's identity holds of the vectors, computed without
encoding: the encoding's cache key (encoder kind, the model weights' fingerprint, the template,
the token budget, every item's id and text) and ``pca_dim``, or the vector file's content hash.
:func:`step_inputs` gives an experiment step's key the part its config names only indirectly
(the encoder's weights, the vector file's content).

>>> from llmrec.baselines.features import Vocab
>>> table, missing = lay_out(Vocab(["a", "b", "c"]), ["b", "a", "x"], np.array([[1, 0], [0, 1], [5, 5]]))
>>> table.tolist(), missing
([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0], [0.0, 0.0]], ['c'])
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmrec.baselines.config import ItemTextSettings
from llmrec.baselines.features import Vocab
from llmrec.data.prepared import PreparedData
from llmrec.errors import ConfigError, DataError, LlmrecError
from llmrec.io import file_sha256, read_json, write_json
from llmrec.retrieval.config import EncoderSettings
from llmrec.retrieval.encode import ItemVectors, cache_key, encode_items, item_texts, project

__all__ = ["ItemText", "lay_out", "load_item_text", "check_item_text", "vectors_fingerprint", "step_inputs",
           "ITEM_TEXT_FILE"]

# the run folder's record of the vectors a model was trained with (checked when the run is loaded again)
ITEM_TEXT_FILE = "item_text.json"


@dataclass
class ItemText:
    """Frozen item vectors laid out by an item vocabulary, and how a model uses them."""

    vectors: np.ndarray  # (items.size, dim) float32; row i: item index i (0 padding and the unknown item: zeros)
    with_id: bool
    fingerprint: str  # vectors_fingerprint: what the run's identity holds
    info: dict[str, Any] = field(default_factory=dict)  # the encoder key, the projection, whether it was cached

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    @property
    def content(self) -> str:
        """SHA-256 (16 hex digits) of the laid-out vectors themselves."""
        return hashlib.sha256(np.ascontiguousarray(self.vectors, dtype=np.float32).tobytes()).hexdigest()[:16]

    def describe(self) -> dict[str, Any]:
        return {"dim": self.dim, "with_id": self.with_id, "fingerprint": self.fingerprint, "content": self.content,
                **{k: v for k, v in self.info.items() if k in ("encoder", "model", "pca_dim", "cached", "projection")}}

    def save(self, path: str | Path) -> None:
        write_json(path, self.describe())

    def check_saved(self, path: str | Path, run: str | Path) -> None:
        """A DataError when the vectors differ from the ones the run in ``run`` was trained with (``path``: its
        :data:`ITEM_TEXT_FILE`)."""
        if not Path(path).is_file():
            raise DataError(f"{run}: the run was trained without item_text vectors, its config asks for them "
                            f"({ITEM_TEXT_FILE} missing)")
        saved = read_json(path)
        if saved.get("dim") != self.dim:
            raise DataError(f"{run}: the item vectors have {self.dim} dimensions, the run's model was trained on "
                            f"{saved.get('dim')} (the encoding cache or the vector file changed)",
                            hint="encode with the run's item_text settings, or train again")
        if saved.get("content") != self.content:
            raise DataError(f"{run}: the item vectors differ from the ones the run was trained on (content "
                            f"{self.content}, trained on {saved.get('content')}): the encoding cache or the vector "
                            "file changed", hint="encode with the run's item_text settings, or train again")


def lay_out(items: Vocab, ids: list[str], vectors: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """``vectors`` (row ``j``: the vector of ``ids[j]``) laid out by the vocabulary ``items``: row ``i`` is the
    vector of item index ``i``, zeros for padding and the unknown item. Also the vocabulary's items that have no
    vector, in vocabulary order."""
    rows = ItemVectors(list(ids), vectors).rows_of(items.values) if items.values else np.zeros(0, np.int64)
    table = np.zeros((items.size, vectors.shape[1] if vectors.ndim == 2 else 0), dtype=np.float32)
    found = rows >= 0
    table[1:1 + len(rows)][found] = np.asarray(vectors, dtype=np.float32)[rows[found]]
    missing = [items.values[i] for i in np.flatnonzero(~found)]
    return table, missing


def vectors_fingerprint(prepared: PreparedData, settings: ItemTextSettings) -> str:
    """20 hex digits that change when the vectors would: another encoder model (its weights), template, token
    budget, item text or ``pca_dim``; for a vector file, its content. Nothing is encoded."""
    encoder = settings.encoder
    if encoder.kind == "file":
        _check_file_setting(encoder)
        source: dict[str, Any] = {"file": file_sha256(encoder.path)}
    else:
        items = prepared.items
        ids = items["item"].astype(str).tolist()
        key = cache_key(encoder, ids, item_texts(items, encoder.item_template))
        source = {"encoding": {k: v for k, v in key.items() if k != "model_name"}}  # the weights, not a path
    source["pca_dim"] = encoder.pca_dim
    return hashlib.sha256(json.dumps(source, sort_keys=True).encode()).hexdigest()[:20]


def _check_file_setting(encoder: EncoderSettings) -> None:
    if not encoder.path:
        raise ConfigError("item_text.encoder.kind=file needs item_text.encoder.path (a parquet file with columns "
                          "item, vector)")
    if not Path(encoder.path).is_file():
        raise DataError("item vector file not found", path=encoder.path,
                        hint="give item_text.encoder.path a parquet file with columns item, vector")


def _missing_error(missing: list[str], total: int, where: str, hint: str) -> DataError:
    return DataError(f"item_text: {len(missing):,} of the {total:,} items of items.parquet have no vector "
                     f"(e.g. item {missing[0]!r})", path=where, hint=hint)


def check_item_text(prepared: PreparedData, settings: ItemTextSettings) -> str:
    """The cheap checks of ``item_text`` (a vector file: there, readable, covering every item: only its ``item``
    column is read); returns :func:`vectors_fingerprint`."""
    encoder = settings.encoder
    if encoder.kind == "file":
        _check_file_setting(encoder)
        try:
            import pyarrow.parquet as pq

            names = pq.read_schema(encoder.path).names
            if "item" not in names or "vector" not in names:
                lacking = "item" if "item" not in names else "vector"
                raise DataError(f"item vector file lacks column {lacking!r} (needs item, vector)", path=encoder.path)
            ids = pq.read_table(encoder.path, columns=["item"]).column("item").cast("string").to_pylist()
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read item vectors: {' '.join(str(exc).split())}", path=encoder.path) from None
        wanted = prepared.items["item"].astype(str)
        missing = wanted[~wanted.isin(set(ids))].tolist()
        if missing:
            raise _missing_error(missing, len(wanted), encoder.path, "add their vectors to the file")
    return vectors_fingerprint(prepared, settings)


def load_item_text(prepared: PreparedData, items: Vocab, settings: ItemTextSettings, *, fingerprint: str | None = None,
                   log: Callable[[str], None] = print, progress: bool = True) -> ItemText:
    """The frozen vectors of every item of ``items`` (the vocabulary of ``prepared``'s items table): encoded with
    ``settings.encoder`` (from the cache when it has them), projected, laid out."""
    encoder = settings.encoder
    raw = encode_items(prepared.items, encoder, log=log, progress=progress)
    where = encoder.path if encoder.kind == "file" else str(raw.info.get("cache", "the encoding cache"))
    matrix = np.asarray(raw.vectors)
    if matrix.ndim != 2 or matrix.shape[0] != len(raw.ids) or matrix.shape[1] == 0:
        raise DataError(f"item_text: the item vectors have shape {matrix.shape} for {len(raw.ids):,} items (one "
                        "non-empty row per item needed)", path=where, hint="delete the cache folder to encode again")
    if not np.isfinite(matrix).all():
        raise DataError("item_text: the item vectors hold NaN or infinite values", path=where,
                        hint="delete the cache folder to encode again")
    vectors, projection = project(matrix, encoder.pca_dim)
    table, missing = lay_out(items, raw.ids, vectors)
    if missing:
        hint = "add their vectors to the file" if encoder.kind == "file" else "prepare the data again"
        raise _missing_error(missing, len(items.values), where, hint)
    info = {"encoder": encoder.kind, "model": encoder.model.name if encoder.kind != "file" else None,
            "pca_dim": encoder.pca_dim, "cached": bool(raw.info.get("cached")),
            "projection": {k: v for k, v in projection.items() if k != "pca_dim"}}
    log(f"item_text: {len(items.values):,} item vectors of {table.shape[1]} dimensions ({encoder.kind} encoder"
        f"{', cached' if info['cached'] else ''}), frozen, {'beside' if settings.with_id else 'instead of'} the ids")
    return ItemText(table, settings.with_id, fingerprint or vectors_fingerprint(prepared, settings), info)


def step_inputs(config: dict[str, Any]) -> dict[str, str]:
    """What an experiment step's key holds of a baseline config's ``item_text`` beyond the config itself: the
    encoder model's fingerprint (its weights), or the vector file's content hash (``not found yet`` before the
    file exists). The item texts come from the prepared folder, which the key holds already."""
    section = config.get("item_text") if isinstance(config, dict) else None
    if not isinstance(section, dict):
        return {}
    try:
        encoder = EncoderSettings.model_validate(section.get("encoder") or {})
    except ValueError:
        return {}  # the config check names the problem
    if encoder.kind == "file":
        found = bool(encoder.path) and Path(encoder.path).is_file()
        return {"item_text.file": file_sha256(encoder.path)[:20] if found else "not found yet"}
    from llmrec.llm.fingerprint import model_fingerprint

    try:
        return {"item_text.model": model_fingerprint(encoder.model)}
    except (LlmrecError, OSError):
        return {"item_text.model": "not found yet"}
