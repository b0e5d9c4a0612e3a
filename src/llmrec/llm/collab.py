"""Collaborative tokens (CoLLM-style): a trained collaborative model's user and item embeddings, mapped by a small
MLP into the LLM's input-embedding space, stand at marked positions of a prompt.

How it fits the rest:

* A template places the tokens with ``{{ user_cf }}`` and ``{{ item_cf }}`` (the prompt's user and target item);
  rendering turns each marker into one *virtual token id* past the model's vocabulary: the model's vocabulary size
  plus the row of that user (or item) in :class:`CollabTables`. The token budget counts it as one token.
* :class:`CollabEmbedding` replaces the model's input-embedding module: real ids are looked up as before, a
  virtual id becomes ``mapper(table[id - vocabulary])``. Everything that feeds ``input_ids`` (the Yes/No scorer,
  prefix reuse, training, serving) thus needs no change, and prefix reuse stays exact: two prompts share a prefix
  only up to the first collaborative token that differs (another user, another item).
* The tables are frozen (a buffer, not a parameter) and saved beside the adapter (``collab_tables.safetensors`` and
  ``collab.json``); the mapper is a peft ``modules_to_save`` module (``collab_mapper``), so it is saved, checkpointed
  and resumed with the LoRA weights in ``adapter_model.safetensors``.

>>> import numpy as np
>>> tables = CollabTables(["u1", "u2"], ["i1"], np.zeros((4, 3), np.float32), np.ones((3, 3), np.float32), {})
>>> ids = tables.ids(base=100)
>>> ids("user", "u2"), ids("item", "i1"), ids("user", "nobody")  # rows: 0 padding, 1..n, n + 1 unknown
(102, 105, 103)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmrec.errors import DataError, ModelError

COLLAB_FILE = "collab.json"  # beside the adapter: where the tables came from, their sizes, the mapper's shape
TABLES_FILE = "collab_tables.safetensors"
MAPPER_MODULE = "collab_mapper"  # the module name peft saves with the adapter (``modules_to_save``)
# state-dict keys of a baseline's user / item embeddings: the MF baseline's, FuxiCTR's (DIN, DIEN, DCNv2, SIM)
TABLE_KEYS = {"user": ("user_emb.weight", "embedding_layers.user_id.weight"),
              "item": ("item_emb.weight", "embedding_layers.item_id.weight")}


@dataclass(frozen=True)
class CollabIds:
    """Virtual token ids of users and items: ``base`` (the model's vocabulary size) + the row in the joint table
    (the user rows, then the item rows). An id the tables lack gets its table's unknown row."""

    base: int
    users: dict[str, int] = field(repr=False)
    items: dict[str, int] = field(repr=False)
    n_user_rows: int
    n_item_rows: int

    def __call__(self, kind: str, key: str) -> int:
        if kind == "user":
            return self.base + self.users.get(str(key), self.n_user_rows - 1)
        if kind == "item":
            return self.base + self.n_user_rows + self.items.get(str(key), self.n_item_rows - 1)
        raise ValueError(f"unknown collaborative token kind {kind!r} (user or item)")


@dataclass
class CollabTables:
    """Frozen user and item embeddings of a collaborative model, rows in the layout of the baselines' vocabularies
    (row 0 padding, rows 1..n the ids in ``users`` / ``items`` order, row n + 1 unknown)."""

    users: list[str]
    items: list[str]
    user: np.ndarray  # (len(users) + 2, dim)
    item: np.ndarray  # (len(items) + 2, dim)
    source: dict[str, Any]  # the baseline run: path, model, data fingerprint, split, weights hash

    def __post_init__(self) -> None:
        if self.user.shape != (len(self.users) + 2, self.dim) or self.item.shape != (len(self.items) + 2, self.dim):
            raise DataError(f"collaborative tables of {self.source.get('run', '?')}: user table {self.user.shape} and "
                            f"item table {self.item.shape} do not match {len(self.users)} users and "
                            f"{len(self.items)} items (+ padding and unknown rows) of one width")

    @property
    def dim(self) -> int:
        return int(self.user.shape[1])

    def ids(self, base: int) -> CollabIds:
        """The virtual token ids past a vocabulary of ``base`` ids."""
        return CollabIds(base, {u: i + 1 for i, u in enumerate(self.users)}, {t: i + 1 for i, t in enumerate(self.items)},
                         len(self.users) + 2, len(self.items) + 2)

    def joint(self) -> np.ndarray:
        """The user rows, then the item rows (the table :class:`CollabEmbedding` looks virtual ids up in)."""
        return np.concatenate([self.user, self.item]).astype(np.float32)

    # ------------------------------------------------------------------ sources
    @classmethod
    def from_baseline_run(cls, run: str | Path) -> CollabTables:
        """The user and item embeddings of a finished ``llmrec baseline`` run (its selected weights, ``model/best.pt``,
        and vocabularies, ``model/features.json``); a one-line DataError for anything else."""
        import torch
        import yaml

        from llmrec.io import file_sha256, read_json

        path = Path(run)
        missing = [n for n in ("config.yaml", "metrics.json", "model/best.pt", "model/features.json")
                   if not (path / n).is_file()]
        if missing:
            raise DataError(f"not a finished llmrec baseline run ({', '.join(missing)} missing)", path=path,
                            field="collab.run")
        try:
            config = yaml.safe_load((path / "config.yaml").read_text()) or {}
            state = torch.load(path / "model" / "best.pt", map_location="cpu", weights_only=False)["model"]
        except Exception as exc:  # noqa: BLE001 - any unreadable file is one line
            raise DataError(f"cannot read the baseline run ({type(exc).__name__}: {exc})", path=path,
                            field="collab.run") from None
        features = read_json(path / "model" / "features.json")
        tables = {}
        for kind, suffixes in TABLE_KEYS.items():
            keys = [k for k in state if k.endswith(suffixes)]
            if not keys:
                raise DataError(f"the {config.get('model', '?')} model of this run has no {kind} embedding table "
                                "(collaborative tokens need a model with user and item embeddings: mf, din, dien, "
                                "dcnv2, sim)", path=path, field="collab.run")
            tables[kind] = state[keys[0]].detach().float().numpy()
        identity = config.get("_identity", {})
        source = {"run": str(path), "model": config.get("model"), "data": config.get("data"),
                  "split": identity.get("split", config.get("split")),
                  "data_fingerprint": identity.get("data_fingerprint"),
                  "weights_sha256": file_sha256(path / "model" / "best.pt")}
        if tables["user"].shape[1] != tables["item"].shape[1]:
            raise DataError(f"user ({tables['user'].shape[1]}) and item ({tables['item'].shape[1]}) embeddings differ "
                            "in width", path=path, field="collab.run")
        return cls([str(u) for u in features["users"]], [str(i) for i in features["items"]], tables["user"],
                   tables["item"], source)

    def save(self, folder: str | Path, mapper: dict[str, Any], base: int) -> None:
        """Write the tables and ``collab.json`` (source, sizes, ``mapper`` settings, the model's vocabulary ``base``)."""
        from safetensors.numpy import save_file

        from llmrec.io import atomic_path, write_json

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(folder / TABLES_FILE) as tmp:
            save_file({"user": np.ascontiguousarray(self.user, np.float32),
                       "item": np.ascontiguousarray(self.item, np.float32)}, str(tmp))
        write_json(folder / COLLAB_FILE, {"source": self.source, "dim": self.dim, "mapper": mapper, "vocab_base": base,
                                          "users": self.users, "items": self.items})

    @classmethod
    def load(cls, folder: str | Path) -> tuple[CollabTables, dict[str, Any]]:
        """The tables saved beside an adapter and the rest of its ``collab.json``."""
        from safetensors.numpy import load_file

        folder = Path(folder)
        meta = read_collab(folder)
        if meta is None:
            raise ModelError(f"{folder}: no collaborative tokens here ({COLLAB_FILE} missing)")
        if not (folder / TABLES_FILE).is_file():
            raise ModelError(f"{folder}: {COLLAB_FILE} but no {TABLES_FILE}: train the collab run again")
        try:
            arrays = load_file(str(folder / TABLES_FILE))
        except Exception as exc:  # noqa: BLE001
            raise ModelError(f"{folder / TABLES_FILE}: not a readable safetensors file ({exc})") from None
        return cls(meta["users"], meta["items"], arrays["user"], arrays["item"], meta["source"]), meta


def read_collab(folder: str | Path) -> dict[str, Any] | None:
    """The ``collab.json`` of an adapter folder (None when the adapter has no collaborative tokens)."""
    file = Path(folder) / COLLAB_FILE
    if not file.is_file():
        return None
    try:
        meta = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"{file}: not valid JSON ({exc})") from None
    missing = [k for k in ("source", "mapper", "vocab_base", "users", "items") if k not in meta]
    if missing:
        raise ModelError(f"{file}: field {missing[0]!r} missing; train the collab run again")
    return meta


# ---------------------------------------------------------------------- the model side
def make_mapper(dim: int, hidden: int, out: int):
    """The mapping MLP: ``dim`` -> ``hidden`` -> GELU -> ``out`` (the LLM's hidden size)."""
    from torch import nn

    return nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, out))


def _embedding_class():
    from torch import nn

    class CollabEmbedding(nn.Module):
        """The model's input embeddings, plus mapped collaborative vectors for ids at or past ``base``.

        ``weight``, ``num_embeddings`` and ``embedding_dim`` are the wrapped embedding's (a tied LM head keeps
        reading the same weight).
        """

        def __init__(self, base_module, table, hidden: int) -> None:
            super().__init__()
            self.base_module = base_module
            self.base = int(base_module.weight.shape[0])
            self.register_buffer("table", table, persistent=False)  # frozen; saved beside the adapter
            setattr(self, MAPPER_MODULE, make_mapper(int(table.shape[1]), hidden, int(base_module.weight.shape[1])))

        @property
        def weight(self):
            return self.base_module.weight

        @property
        def num_embeddings(self) -> int:
            return self.base

        @property
        def embedding_dim(self) -> int:
            return int(self.base_module.weight.shape[1])

        def mapped(self, rows):
            """The mapped vectors of table rows (what a virtual id ``base + row`` embeds as)."""
            mapper = getattr(self, MAPPER_MODULE)
            return mapper(self.table[rows])

        def forward(self, input_ids):
            virtual = input_ids >= self.base
            out = self.base_module(input_ids.masked_fill(virtual, 0))
            if bool(virtual.any()):
                vectors = self.mapped(input_ids[virtual] - self.base).to(out.dtype)
                out = out.masked_scatter(virtual.unsqueeze(-1), vectors)
            return out

    return CollabEmbedding


def collab_module(model):
    """The model's :class:`CollabEmbedding` (None when it has no collaborative tokens)."""
    emb = model.get_input_embeddings()
    return emb if hasattr(emb, MAPPER_MODULE) and hasattr(emb, "table") else None


def install_collab(model, tables: CollabTables, hidden: int) -> CollabIds:
    """Wrap ``model``'s input embeddings with the tables and a fresh mapper (an installed one is replaced, its base
    embedding kept); returns the virtual ids."""
    import torch

    current = model.get_input_embeddings()
    existing = collab_module(model)
    base_module = existing.base_module if existing is not None else current
    weight = base_module.weight
    table = torch.as_tensor(tables.joint(), device=weight.device)
    module = _embedding_class()(base_module, table, hidden).to(weight.device)
    model.set_input_embeddings(module)
    return tables.ids(module.base)


def ids_from_meta(meta: dict[str, Any]) -> CollabIds:
    """The virtual ids an adapter's ``collab.json`` describes (no tables loaded: for a process that only renders)."""
    return CollabIds(int(meta["vocab_base"]), {u: i + 1 for i, u in enumerate(meta["users"])},
                     {t: i + 1 for i, t in enumerate(meta["items"])}, len(meta["users"]) + 2, len(meta["items"]) + 2)


def check_collab_backend(folder: str | Path | None, backend: str) -> None:
    """A ModelError when an adapter with collaborative tokens is to run on a backend that cannot place them."""
    if folder is not None and backend != "transformers" and read_collab(folder) is not None:
        raise ModelError(f"{folder}: this adapter places collaborative tokens (CoLLM), which only the transformers "
                         f"backend runs; model.backend is {backend!r}")
