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
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from llmrec.data.kinds import check_columns, detect
from llmrec.data.stats import StatsBuilder, format_stats, prepared_stats
from llmrec.errors import ConfigError, DataError
from llmrec.io import (
    as_arrow,
    atomic_directory,
    check_output_dir,
    file_sha256,
    is_leftover,
    read_json,
    table_sha256,
    write_json,
    write_parquet,
    write_text,
)

OWN_FILES = ("meta.json", "stats.json", "stats.txt")

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
class ReadLog:
    """Every Parquet read of a prepared folder in this process, for tests and benchmarks (see :data:`READS`).

    ``tables``: one ``(file, columns)`` per read of data (``columns`` None: every column);
    ``footers``: one file per read of a footer (row count and schema, no data).

    >>> log = ReadLog()
    >>> log.tables.append(("d/test.parquet", None))
    >>> log.count("d/test.parquet"), log.count(Path("d/train.parquet"))
    (1, 0)
    """

    tables: list[tuple[str, tuple[str, ...] | None]] = field(default_factory=list)
    footers: list[str] = field(default_factory=list)

    def count(self, path: str | Path) -> int:
        """How many times the data of ``path`` was read."""
        return sum(1 for p, _ in self.tables if p == str(path))

    def clear(self) -> None:
        self.tables.clear()
        self.footers.clear()


READS = ReadLog()  # the reads of this process; tests clear it, act, then look


def _unreadable(path: Path, exc: Exception) -> DataError:
    """The error of a table that cannot be read: "no such file" when it is not there (a deleted split)."""
    if not Path(path).exists():
        return DataError("no such file: the prepared folder lost this table", path=path,
                         hint="prepare the data again")
    return DataError(f"cannot read table: {getattr(exc, 'strerror', None) or exc}", path=path,
                     hint="prepare the data again")


def read_footer(path: Path) -> pq.FileMetaData:
    """Row count and schema of a Parquet file, from its footer (no data read).

    >>> read_footer(Path("no/such/test.parquet"))
    Traceback (most recent call last):
    ...
    llmrec.errors.DataError: no/such/test.parquet: no such file: the prepared folder lost this table (prepare the data again)
    """
    try:
        meta = pq.read_metadata(path)
    except (OSError, pa.ArrowInvalid) as exc:
        raise _unreadable(path, exc) from None
    READS.footers.append(str(path))
    return meta


def read_parquet(path: Path, columns: list[str] | None = None) -> pa.Table:
    """The table in ``path`` (only ``columns``, in that order, when given), counted in :data:`READS`."""
    try:
        table = pq.read_table(path, columns=columns)
    except (OSError, pa.ArrowInvalid) as exc:
        raise _unreadable(path, exc) from None
    READS.tables.append((str(path), None if columns is None else tuple(columns)))
    return table


def release_read_buffers() -> None:
    """Hand the memory Arrow's allocator kept from finished reads back to the operating system.

    Decoding Parquet leaves freed scratch buffers in Arrow's pool (mimalloc keeps them for
    reuse: ~60 MiB after reading ML-1M's sequences.parquet), which numpy cannot use. Call it
    once between reading the data and a numpy-heavy step; it frees nothing still in use.
    """
    pa.default_memory_pool().release_unused()


def check_has_columns(names: list[str], columns: list[str], path: str | Path) -> None:
    """A DataError naming the file and the first of ``columns`` not in ``names``.

    >>> check_has_columns(["user", "item"], ["item", "label"], "test.parquet")
    Traceback (most recent call last):
    ...
    llmrec.errors.DataError: test.parquet: field 'label': no such column (the table has user, item)
    """
    for column in columns:
        if column not in names:
            raise DataError(f"no such column (the table has {', '.join(names)})", path=path, field=column)


def select_columns(table: pa.Table, columns: list[str] | None, path: str | Path) -> pa.Table:
    """``table`` with only ``columns`` (all when None), or a DataError naming ``path`` and a missing column."""
    if columns is None:
        return table
    check_has_columns(table.column_names, columns, path)
    return table.select(columns)


def _stamp(path: Path) -> tuple[int, int, int]:
    """Inode, size and modification time of ``path``: what changes when the file is written again."""
    try:
        st = path.stat()
    except OSError as exc:
        raise _unreadable(path, exc) from None
    return st.st_ino, st.st_size, st.st_mtime_ns


class SavedTables:
    """The Parquet files of a saved prepared folder, read when first asked for.

    A footer (row count, column names) is read once per file. A whole table is read once and
    kept (``keep=False`` reads it without keeping it, for one pass over a big split); a read of
    some columns returns just those, read from the file unless the whole table is kept already,
    and is never kept, so a later whole read still gets every column. A file replaced after its
    footer was read (the folder prepared again meanwhile) is refused, not mixed with the old one.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._footers: dict[str, pq.FileMetaData] = {}
        self._stamps: dict[str, tuple[int, int, int]] = {}
        self._tables: dict[str, pa.Table] = {}

    def path(self, name: str) -> Path:
        return self.directory / f"{name}.parquet"

    def footer(self, name: str) -> pq.FileMetaData:
        """Row count and schema of ``name`` (read once)."""
        if name not in self._footers:
            self._stamps[name] = _stamp(self.path(name))
            self._footers[name] = read_footer(self.path(name))
        return self._footers[name]

    def schema(self, name: str) -> pa.Schema:
        return self.footer(name).schema.to_arrow_schema()

    def column_names(self, name: str) -> list[str]:
        return self.schema(name).names

    def num_rows(self, name: str) -> int:
        return self.footer(name).num_rows

    def table(self, name: str, columns: list[str] | None = None, *, keep: bool = True) -> pa.Table:
        """The table ``name`` (only ``columns`` when given), from memory when it was read whole before."""
        if name in self._tables:
            return select_columns(self._tables[name], columns, self.path(name))
        check_has_columns(self.column_names(name), columns or [], self.path(name))
        if _stamp(self.path(name)) != self._stamps[name]:
            raise DataError("the file changed since the folder was opened (prepared again meanwhile?)",
                            path=self.path(name), hint="run the command again")
        if columns is not None:
            return read_parquet(self.path(name), list(columns))
        table = read_parquet(self.path(name))
        if keep:
            self._tables[name] = table
        return table


class LazyTables(Mapping[str, pa.Table]):
    """A mapping of names to tables, each made by ``make(name)`` when it is looked up.

    The names are known up front, so ``in``, ``len`` and iteration make nothing. Whether a
    table is made once or on every lookup is up to ``make`` (:meth:`SavedTables.table` keeps
    what it reads).

    >>> made = []
    >>> tables = LazyTables(["a", "b"], lambda name: made.append(name) or pa.table({"x": [name]}))
    >>> list(tables), "b" in tables, made
    (['a', 'b'], True, [])
    >>> tables["b"]["x"].to_pylist(), made
    (['b'], ['b'])
    """

    def __init__(self, names: list[str], make: Callable[[str], pa.Table]) -> None:
        self._names = list(names)
        self._make = make

    def __getitem__(self, name: str) -> pa.Table:
        if name not in self._names:
            raise KeyError(name)
        return self._make(name)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"LazyTables({self._names!r})"


_ON_DISK = object()  # items / users / sequences not read yet
_UNSET = object()  # a cached value not made yet


class PreparedData:
    """The output of a protocol builder, written by :meth:`save` as one directory.

    Built in memory by a protocol builder (``splits`` a dict of tables), or loaded by
    :meth:`load`: then nothing but meta.json and the Parquet footers is read until a split,
    ``items``, ``users`` or ``sequences`` is asked for, and :meth:`split` can read only the
    columns a caller needs.

    >>> import tempfile
    >>> rows = {"sample_id": [0, 1], "user": ["u", "u"], "item": ["a", "b"], "label": [1, 0],
    ...         "history_items": [[], ["a"]], "history_ratings": [[], [5.0]]}
    >>> made = PreparedData("toy", "rella", {"test": pa.table(rows)}, pd.DataFrame({"item": ["a", "b"],
    ...     "title": ["A", "B"]}), pd.DataFrame({"user": ["u"]}), None, {})
    >>> folder = made.save(Path(tempfile.mkdtemp()) / "toy-rella")
    >>> READS.clear(); loaded = PreparedData.load(folder)
    >>> READS.tables, loaded.num_rows("test"), "label" in loaded.column_names("test")
    ([], 2, True)
    >>> loaded.split("test", columns=["item", "label"]).to_pydict()
    {'item': ['a', 'b'], 'label': [1, 0]}
    >>> loaded.split("test").num_rows, loaded.split("test").num_rows, READS.count(folder / "test.parquet")
    (2, 2, 2)
    """

    def __init__(
        self,
        dataset: str,
        protocol: str,
        splits: Mapping[str, pa.Table],
        items: pd.DataFrame,
        users: pd.DataFrame,
        sequences: pa.Table | None,
        config: dict[str, Any],
        notes: list[str] | None = None,
        provenance: dict[str, dict[str, Any]] | None = None,
        attachments: dict[str, pd.DataFrame] | None = None,
        recipe: dict[str, Any] | None = None,
        _stats: dict[str, Any] | None = None,
        path: Path | None = None,
        *,
        files: SavedTables | None = None,
    ) -> None:
        self.dataset = dataset
        self.protocol = protocol
        self.splits = splits
        self._items, self._users, self._sequences = items, users, sequences
        self.config = config
        self.notes = list(notes) if notes is not None else []
        self.provenance = provenance if provenance is not None else {}  # file name -> JSON written beside the data
        self.attachments = attachments if attachments is not None else {}  # file name -> parquet table beside the data
        # a folder derived by a model (SUBR encodings, LLM summaries): what it was made from and how; its fingerprint
        # hashes this instead of the files, whose last bits differ from machine to machine (float kernels)
        self.recipe = recipe
        self._stats = _stats
        self.path = path
        self._files = files  # the Parquet files behind a loaded folder
        self._segmenter: Any = _UNSET  # the segments of its training split, made when first asked for

    def __repr__(self) -> str:
        return (f"PreparedData(dataset={self.dataset!r}, protocol={self.protocol!r}, splits={list(self.splits)!r}, "
                f"path={str(self.path) if self.path else None!r})")

    @property
    def items(self) -> pd.DataFrame:
        """Item ids and texts (a loaded folder reads items.parquet when first asked)."""
        if self._items is _ON_DISK:
            self._items = self._files.table("items", keep=False).to_pandas()
        return self._items

    @items.setter
    def items(self, value: pd.DataFrame) -> None:
        self._items = value

    @property
    def users(self) -> pd.DataFrame:
        """User ids and profiles (a loaded folder reads users.parquet when first asked)."""
        if self._users is _ON_DISK:
            self._users = self._files.table("users", keep=False).to_pandas()
        return self._users

    @users.setter
    def users(self, value: pd.DataFrame) -> None:
        self._users = value

    @property
    def sequences(self) -> pa.Table | None:
        """Every user's full chronology, or None (a loaded folder reads sequences.parquet when first asked)."""
        if self._sequences is _ON_DISK:
            self._sequences = self._files.table("sequences")
        return self._sequences

    @sequences.setter
    def sequences(self, value: pa.Table | None) -> None:
        self._sequences = value

    @property
    def has_sequences(self) -> bool:
        """Whether there is a full chronology (``sequences.parquet``), without reading it."""
        return self._sequences is not None

    def stats(self) -> dict[str, Any]:
        """Statistics table data (computed once, then cached)."""
        if self._stats is None:
            self._stats = prepared_stats(self)
        return self._stats

    def segmenter(self) -> Any:
        """The segments of scored samples fixed by the training split (target-item popularity, history length;
        :class:`llmrec.data.segments.Segmenter`), made once per opened folder; None when there are none."""
        if self._segmenter is _UNSET:
            from llmrec.data.segments import Segmenter

            self._segmenter = Segmenter.from_prepared(self)
        return self._segmenter

    def check_target(self, directory: str | Path, overwrite: bool = False, sources=()) -> None:
        """Refuse an output folder that holds something else (see :func:`check_prepared_target`)."""
        check_prepared_target(directory, self.dataset, self.protocol, overwrite, sources)

    def save(self, directory: str | Path, *, overwrite: bool = False, sources=()) -> Path:
        """Write ``<split>.parquet``, ``items``, ``users``, ``sequences``, ``meta.json``, ``stats.json``.

        The directory appears complete or not at all. An existing folder is replaced only when it
        is a prepared folder of the same data set and protocol (another one with ``overwrite``);
        a folder holding anything else is refused, never emptied. Each split is asked for once,
        written and counted for the statistics, so splits that are made on demand (a
        :class:`LazyTables`) need not all be in memory at once.
        """
        from llmrec import __version__

        self.check_target(directory, overwrite, sources)
        with atomic_directory(directory) as tmp:
            builder = StatsBuilder()
            content: dict[str, str] = {}  # the tables' values, the same from any pyarrow / pandas release

            def write(file: str, table: Any) -> None:
                arrow = as_arrow(table)  # converted once, for the file and its hash
                write_parquet(tmp / file, arrow)
                content[file] = table_sha256(arrow)

            for name in self.splits:
                table = self.splits[name]
                write(f"{name}.parquet", table)
                if self._stats is None:
                    builder.add(name, table)
                del table
            stats = self._stats if self._stats is not None else builder.result(self.dataset, self.protocol, self.notes)
            write("items.parquet", self.items)
            write("users.parquet", self.users)
            if self.sequences is not None:
                write("sequences.parquet", self.sequences)
            write_json(tmp / "stats.json", stats)
            write_text(tmp / "stats.txt", format_stats(stats) + "\n")
            for name, record in self.provenance.items():  # e.g. retrieval.json of a SUBR folder
                write_json(tmp / name, record)
            for name, frame in self.attachments.items():  # e.g. summaries.parquet of a summarized folder
                write(name, frame)
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
                    "content": dict(sorted(content.items())),
                    **({"recipe": self.recipe} if self.recipe is not None else {}),
                },
            )
        self._stats = stats
        return Path(directory)

    @classmethod
    def load(cls, directory: str | Path) -> PreparedData:
        """Open a directory written by :meth:`save` (``llmrec.load``): meta.json and the Parquet footers now, the
        data when asked for.

        The columns every reader relies on are checked here, from the footers. Example (a folder written by
        ``llmrec data prepare`` or :func:`llmrec.prepare`)::

            import llmrec

            data = llmrec.load("prepared/ml-100k-tallrec")
            data.num_rows("test"), data.protocol
        """
        directory = Path(directory)
        meta = _read_meta(directory)
        files = SavedTables(directory)
        kinds = {}
        for name in meta["splits"]:  # the footers' column names: the check reads no data
            kinds[name] = detect(files.column_names(name))
            check_columns(files.column_names(name), kinds[name], files.path(name))
        for name in ("items", "users"):
            columns = files.column_names(name)  # the files must be readable whatever the samples
            if any(kind.names_items for kind in kinds.values()):
                check_columns(columns, name, files.path(name))
        return cls(
            dataset=meta["dataset"],
            protocol=meta["protocol"],
            splits=LazyTables(meta["splits"], files.table),
            items=_ON_DISK,
            users=_ON_DISK,
            sequences=_ON_DISK if files.path("sequences").exists() else None,
            config=meta["config"],
            notes=meta.get("notes", []),
            path=directory,
            files=files,
        )

    def split(self, name: str, columns: list[str] | None = None, *, keep: bool = True) -> pa.Table:
        """The split called ``name`` (only ``columns``, in that order, when given).

        A ConfigError names the folder and the splits it has when there is no such split; a
        DataError names the file and the column when a requested column is missing. A split
        read whole from disk is kept for the next call unless ``keep=False``; a read of some
        columns reads only those and is not kept.
        """
        if name not in self.splits:
            raise ConfigError(f"{self._where()}: no split {name!r} (has: {', '.join(self.splits)})")
        if self._files is not None:
            return self._files.table(name, columns, keep=keep)
        return select_columns(self.splits[name], columns, f"{self._where()}: split {name}")

    def num_rows(self, name: str) -> int:
        """Rows of the split (or ``items`` / ``users`` / ``sequences``) ``name``, from the footer when on disk."""
        self._check_name(name)
        if self._files is not None:
            return self._files.num_rows(name)
        return len(self._in_memory(name))

    def column_names(self, name: str) -> list[str]:
        """Columns of the split (or ``items`` / ``users`` / ``sequences``) ``name``, from the footer when on disk."""
        self._check_name(name)
        if self._files is not None:
            return self._files.column_names(name)
        table = self._in_memory(name)
        return table.column_names if isinstance(table, pa.Table) else list(table.columns)

    def schema(self, name: str) -> pa.Schema:
        """Arrow schema of the split (or ``items`` / ``users`` / ``sequences``) ``name``, from the footer when on disk."""
        self._check_name(name)
        if self._files is not None:
            return self._files.schema(name)
        table = self._in_memory(name)
        return table.schema if isinstance(table, pa.Table) else pa.Schema.from_pandas(table, preserve_index=False)

    def table(self, name: str, columns: list[str] | None = None) -> pa.Table:
        """``items``, ``users`` or ``sequences`` as an Arrow table (only ``columns`` when given)."""
        if name not in ("items", "users", "sequences"):
            raise ValueError(f"table() reads items, users or sequences, not {name!r}; use split()")
        if self._files is not None and getattr(self, f"_{name}") is _ON_DISK:
            return self._files.table(name, columns, keep=False)
        return select_columns(as_arrow(self._in_memory(name)), columns, f"{self._where()}: {name}")

    def _in_memory(self, name: str) -> pa.Table | pd.DataFrame:
        if name in ("items", "users", "sequences"):
            table = getattr(self, name)
            if table is None:
                raise DataError(f"no {name} table", path=self._where())
            return table
        return self.split(name)

    def _check_name(self, name: str) -> None:
        """A ConfigError naming the folder and the splits it has when ``name`` is neither a split nor a side table."""
        if name not in self.splits and name not in ("items", "users", "sequences"):
            raise ConfigError(f"{self._where()}: no split {name!r} (has: {', '.join(self.splits)})")

    def _where(self) -> str:
        return str(self.path) if self.path else f"{self.dataset}/{self.protocol}"

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


# where a missing prepared folder comes from: a data set prepared, or a retrieve / summarize output (ReLLa's SUBR
# folders, LLM-TRSR's summaries)
MAKE_IT_FIRST = ("check the path, or make it first: `llmrec data prepare`, or `llmrec retrieve` / `llmrec summarize` "
                 "for their output folders")


def _read_meta(directory: Path) -> dict[str, Any]:
    """meta.json of a prepared folder, checked for the keys :meth:`PreparedData.load` needs."""
    meta_path = directory / "meta.json"
    if not directory.exists():
        raise DataError("no such folder", path=directory, hint=MAKE_IT_FIRST)
    if not directory.is_dir():
        raise DataError("not a folder (a prepared data folder was expected)", path=directory)
    if not meta_path.exists():
        raise DataError("not a prepared data directory (meta.json missing)", path=directory,
                        hint="run `llmrec data prepare` first")
    meta = read_json(meta_path)
    if not isinstance(meta, dict):
        raise DataError("metadata is not a JSON object", path=meta_path, hint="prepare the data again")
    missing = [k for k in ("dataset", "protocol", "splits", "config") if k not in meta]
    if missing:
        raise DataError(f"metadata lacks {', '.join(missing)}", path=meta_path, hint="prepare the data again")
    return meta


def open_prepared(path: str | Path, opened: dict[str, PreparedData] | None = None) -> PreparedData:
    """The prepared folder at ``path``, opened once per command: ``opened`` (path -> folder) holds the folders this
    command opened already, so checks and runs that share one read its footers and data once.

    >>> opened = {}
    >>> open_prepared("no/such/folder", opened)
    Traceback (most recent call last):
    ...
    llmrec.errors.DataError: no/such/folder: no such folder (check the path, or make it first: `llmrec data prepare`, or `llmrec retrieve` / `llmrec summarize` for their output folders)
    """
    if opened is None:
        return PreparedData.load(path)
    key = str(Path(path).resolve())
    if key not in opened:
        opened[key] = PreparedData.load(path)
    return opened[key]


def folder_fingerprint(directory: str | Path) -> str:
    """Content hash of a saved prepared folder from its ``meta.json`` (the hashes of its tables' values, written at
    save: the same from any pyarrow / pandas release, where the Parquet bytes are not), without reading the data.
    A folder saved before those hashes is hashed by its files' bytes, as it was then.

    A folder a model derived (``llmrec retrieve``, ``llmrec summarize``) is hashed by its ``recipe`` instead: the
    source folder's fingerprint, the settings and the model's weights. Encodings and generations differ in their last
    bits from one machine to another, so the same recipe gives the same fingerprint everywhere, as the same step key
    does inside an experiment.
    """
    def digest(*keys: str, **more: Any) -> str:
        blob = json.dumps({**{k: meta[k] for k in ("dataset", "protocol", "splits", "config", *keys)}, **more},
                          sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]

    directory = Path(directory)
    meta = json.loads((directory / "meta.json").read_text())
    if "recipe" in meta:
        return digest("recipe")
    if "content" in meta:  # the tables by content, provenance records (llmrec's own JSON) by bytes; the statistics
        # are computed from the tables (their floats' last bits are numpy's)
        files = {name: sha for name, sha in meta["files"].items()
                 if not name.endswith(".parquet") and name not in ("stats.json", "stats.txt")}
        return digest("content", files=files)
    if "files" not in meta:  # folders from before file hashes: hash the files now
        meta["files"] = {p.name: file_sha256(p) for p in sorted(directory.iterdir()) if p.suffix == ".parquet"}
    return digest("files")
