"""A prepared folder: the splits of one protocol on one data set, as written by ``llmrec data prepare``.

Layout::

    train.parquet valid.parquet test.parquet [fewshot_N.parquet ...]   samples
    items.parquet users.parquet [sequences.parquet]                      texts, profiles, full chronology
    meta.json   data set, protocol, config, notes, and the SHA-256 of every file
    stats.json / stats.txt                                               the statistics table

:meth:`PreparedData.fingerprint` is a content hash (of meta.json, which holds the file
hashes), so a run folder can tell when a prepared folder was re-made in place.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from llmrec.data.kinds import KINDS, TABLE_COLUMNS, check_columns, detect
from llmrec.data.stats import format_stats, prepared_stats
from llmrec.errors import ConfigError, DataError
from llmrec.io import (
    atomic_directory,
    check_output_dir,
    file_sha256,
    is_leftover,
    read_json,
    write_json,
    write_parquet,
    write_text,
)

OWN_FILES = ("meta.json", "stats.json", "stats.txt")

# Columns every reader of a prepared folder relies on, by kind of table (extra columns are fine); the sample kinds
# own theirs (llmrec.data.kinds)
REQUIRED_COLUMNS: dict[str, tuple[str, ...]] = {**{k.name: k.columns for k in KINDS.values()}, **TABLE_COLUMNS}


def sample_kind(protocol: str, columns: list[str]) -> str:
    """``ctr``, ``ranking`` or ``instruction``: what a split with these columns holds (:func:`llmrec.data.kinds.detect`;
    ``protocol`` is not needed any more)."""
    return detect(columns).name


def prepared_kind(directory: Path) -> tuple[str, str] | None:
    """(dataset, protocol) of a prepared folder written by llmrec, or None when it is something else.

    A folder counts as ours only if meta.json says so and every file in it is one we write.
    """
    try:
        meta = json.loads((directory / "meta.json").read_text())
        kind = (str(meta["dataset"]), str(meta["protocol"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    for p in directory.iterdir():
        if is_leftover(p.name):
            continue
        if not (p.is_file() and (p.suffix == ".parquet" or p.name in OWN_FILES or p.suffix == ".json")):
            return None
    return kind


def check_prepared_target(directory: str | Path, dataset: str, protocol: str, overwrite: bool = False,
                          sources=()) -> None:
    """Refuse an output folder that holds anything but a prepared folder of the same data set and protocol.

    Another prepared folder is replaced only with ``overwrite``; files llmrec did not write are
    never deleted (see :func:`llmrec.io.check_output_dir`).
    """
    check_output_dir(directory, overwrite=overwrite, what="prepared folder", sources=sources,
                     owned=lambda p: None if (k := prepared_kind(p)) is None else
                     ("same" if k == (dataset, protocol) else f"prepared {k[0]}/{k[1]}"))


@dataclass
class PreparedData:
    """The output of a protocol builder, written by :meth:`save` as one directory."""

    dataset: str
    protocol: str
    splits: dict[str, pa.Table]
    items: pd.DataFrame
    users: pd.DataFrame
    sequences: pa.Table | None
    config: dict[str, Any]
    notes: list[str] = field(default_factory=list)
    provenance: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name -> JSON written beside the data
    attachments: dict[str, pd.DataFrame] = field(default_factory=dict)  # file name -> parquet table beside the data
    # a folder derived by a model (SUBR encodings, LLM summaries): what it was made from and how; its fingerprint
    # hashes this instead of the files, whose last bits differ from machine to machine (float kernels)
    recipe: dict[str, Any] | None = None
    _stats: dict[str, Any] | None = field(default=None, repr=False, compare=False)
    path: Path | None = field(default=None, repr=False, compare=False)

    def stats(self) -> dict[str, Any]:
        """Statistics table data (computed once, then cached)."""
        if self._stats is None:
            self._stats = prepared_stats(self)
        return self._stats

    def check_target(self, directory: str | Path, overwrite: bool = False, sources=()) -> None:
        """Refuse an output folder that holds something else (see :func:`check_prepared_target`)."""
        check_prepared_target(directory, self.dataset, self.protocol, overwrite, sources)

    def save(self, directory: str | Path, *, overwrite: bool = False, sources=()) -> Path:
        """Write ``<split>.parquet``, ``items``, ``users``, ``sequences``, ``meta.json``, ``stats.json``.

        The directory appears complete or not at all. An existing folder is replaced only when it
        is a prepared folder of the same data set and protocol (another one with ``overwrite``);
        a folder holding anything else is refused, never emptied.
        """
        from llmrec import __version__

        self.check_target(directory, overwrite, sources)
        stats = self.stats()
        with atomic_directory(directory) as tmp:
            for name, table in self.splits.items():
                write_parquet(tmp / f"{name}.parquet", table)
            write_parquet(tmp / "items.parquet", self.items)
            write_parquet(tmp / "users.parquet", self.users)
            if self.sequences is not None:
                write_parquet(tmp / "sequences.parquet", self.sequences)
            write_json(tmp / "stats.json", stats)
            write_text(tmp / "stats.txt", format_stats(stats) + "\n")
            for name, record in self.provenance.items():  # e.g. retrieval.json of a SUBR folder
                write_json(tmp / name, record)
            for name, frame in self.attachments.items():  # e.g. summaries.parquet of a summarized folder
                write_parquet(tmp / name, frame)
            write_json(
                tmp / "meta.json",
                {
                    "llmrec_version": __version__,
                    "dataset": self.dataset,
                    "protocol": self.protocol,
                    "splits": list(self.splits),
                    "config": self.config,
                    "notes": self.notes,
                    "files": {p.name: file_sha256(p) for p in sorted(tmp.iterdir()) if p.suffix in (".parquet", ".txt")
                              or p.name == "stats.json" or p.name in self.provenance},
                    **({"recipe": self.recipe} if self.recipe is not None else {}),
                },
            )
        return Path(directory)

    @classmethod
    def load(cls, directory: str | Path) -> PreparedData:
        """Read a directory written by :meth:`save` (``llmrec.load``).

        Example (a folder written by ``llmrec data prepare`` or :func:`llmrec.prepare`)::

            import llmrec

            data = llmrec.load("prepared/ml-100k-tallrec")
            data.split("test").num_rows, data.protocol
        """
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.exists():
            raise DataError("not a prepared data directory (meta.json missing)", path=directory,
                            hint="run `llmrec data prepare` first")
        meta = read_json(meta_path)
        if not isinstance(meta, dict):
            raise DataError("metadata is not a JSON object", path=meta_path, hint="prepare the data again")
        missing = [k for k in ("dataset", "protocol", "splits", "config") if k not in meta]
        if missing:
            raise DataError(f"metadata lacks {', '.join(missing)}", path=meta_path, hint="prepare the data again")

        def read(name: str) -> pa.Table:
            p = directory / f"{name}.parquet"
            try:
                return pq.read_table(p)
            except (OSError, pa.ArrowInvalid) as exc:
                raise DataError(f"cannot read table: {exc}", path=p, hint="prepare the data again") from None

        splits = {name: read(name) for name in meta["splits"]}
        kinds = {name: detect(table.schema) for name, table in splits.items()}
        for name, table in splits.items():
            check_columns(table, kinds[name], directory / f"{name}.parquet")
        items, users = read("items"), read("users")
        if any(kind.names_items for kind in kinds.values()):
            check_columns(items, "items", directory / "items.parquet")
            check_columns(users, "users", directory / "users.parquet")
        seq_path = directory / "sequences.parquet"
        return cls(
            dataset=meta["dataset"],
            protocol=meta["protocol"],
            splits=splits,
            items=items.to_pandas(),
            users=users.to_pandas(),
            sequences=read("sequences") if seq_path.exists() else None,
            config=meta["config"],
            notes=meta.get("notes", []),
            path=directory,
        )

    def split(self, name: str) -> pa.Table:
        """The split called ``name``, or a ConfigError naming the folder and the splits it has."""
        if name not in self.splits:
            where = str(self.path) if self.path else f"{self.dataset}/{self.protocol}"
            raise ConfigError(f"{where}: no split {name!r} (has: {', '.join(self.splits)})")
        return self.splits[name]

    def shown_history(self) -> int | None | str:
        """How many history items a prompt shows by default, as the folder itself says: the ``recent_items`` beside
        the summary of a summarized folder, None (every item it keeps: the retrieved K) for a retrieved one, or
        ``"protocol"`` (the protocol's default) for a folder as prepared.

        >>> PreparedData("d", "trsr", {}, None, None, None, {"summary": {"recent_items": 3}}).shown_history()
        3
        """
        if isinstance(self.config.get("summary"), dict):
            return self.config["summary"].get("recent_items")
        return None if "retrieval" in self.config else "protocol"

    def fingerprint(self) -> str:
        """Content hash of the prepared folder (changes when it is prepared again with other data)."""
        if self.path is None:
            raise DataError("only a saved prepared folder has a fingerprint")
        return folder_fingerprint(self.path)


def folder_fingerprint(directory: str | Path) -> str:
    """Content hash of a saved prepared folder from its ``meta.json`` (file hashes included), without reading the data.

    A folder a model derived (``llmrec retrieve``, ``llmrec summarize``) is hashed by its ``recipe`` instead: the
    source folder's fingerprint, the settings and the model's weights. Encodings and generations differ in their last
    bits from one machine to another, so the same recipe gives the same fingerprint everywhere, as the same step key
    does inside an experiment.
    """
    directory = Path(directory)
    meta = json.loads((directory / "meta.json").read_text())
    if "recipe" in meta:
        blob = json.dumps({k: meta[k] for k in ("dataset", "protocol", "splits", "config", "recipe")}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
    if "files" not in meta:  # folders from before file hashes: hash the files now
        meta["files"] = {p.name: file_sha256(p) for p in sorted(directory.iterdir()) if p.suffix == ".parquet"}
    blob = json.dumps({k: meta[k] for k in ("dataset", "protocol", "splits", "config", "files")}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
