"""Atomic file and directory writes: a reader never sees a half-written output.

Every writer first writes to a temporary sibling and then renames it into place
(``os.replace`` is atomic on POSIX within one file system).

>>> import tempfile, json, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> write_json(d / "m.json", {"auc": 0.5})
>>> json.loads((d / "m.json").read_text())
{'auc': 0.5}
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from llmrec.errors import DataError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it to ``path`` on success.

    On an exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_directory(path: str | Path, *, overwrite: bool = True) -> Iterator[Path]:
    """Yield an empty temporary directory; move it to ``path`` when the block succeeds.

    An existing ``path`` is replaced only after the new content is complete.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def read_json(path: str | Path) -> Any:
    """The JSON in ``path``; a DataError naming the file when it is unreadable or not JSON."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read JSON ({type(exc).__name__}: {exc})", path=path) from None


def write_json(path: str | Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False, default=str) + "\n")


def write_text(path: str | Path, text: str) -> None:
    """Write ``text`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def as_arrow(table: pd.DataFrame | pa.Table) -> pa.Table:
    """An Arrow table as written to Parquet: a DataFrame converted without its index, an Arrow table as it is."""
    return pa.Table.from_pandas(table, preserve_index=False) if isinstance(table, pd.DataFrame) else table


def write_parquet(path: str | Path, table: pd.DataFrame | pa.Table) -> None:
    """Write a DataFrame or Arrow table to Parquet, atomically (zstd compressed)."""
    table = as_arrow(table)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _hash_array(h: Any, arr: pa.Array) -> None:
    """Feed ``arr``'s values, in a canonical form, to ``h``: integer, float and text widths unified (int32 and int64,
    string and large_string, list and large_list hash alike), nulls by position, chunking and slicing ignored."""
    import numpy as np
    import pyarrow.compute as pc

    t = arr.type
    if pa.types.is_dictionary(t):
        return _hash_array(h, arr.dictionary_decode())
    nulls = arr.null_count
    h.update(f"{len(arr)}:{nulls};".encode())
    if nulls:
        h.update(np.asarray(arr.is_null(), dtype=np.uint8).tobytes())
    if pa.types.is_null(t):
        h.update(b"null")
    elif pa.types.is_boolean(t) or pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_temporal(t):
        kind = ("b" if pa.types.is_boolean(t) else "u" if pa.types.is_unsigned_integer(t) else "f"
                if pa.types.is_floating(t) else "i")
        target = {"b": pa.int8(), "u": pa.uint64(), "f": pa.float64(), "i": pa.int64()}[kind]
        if pa.types.is_temporal(t):
            h.update(str(t).encode())  # unit and zone matter; the values are its integers
            arr = arr.view(pa.int64()) if t.bit_width == 64 else arr.view(pa.int32())
        values = arr.cast(target)
        values = pc.fill_null(values, 0) if nulls else values
        h.update(kind.encode() + values.to_numpy(zero_copy_only=False).tobytes())
    elif getattr(pa.types, "is_string_view", lambda _: False)(t) or getattr(pa.types, "is_binary_view", lambda _: False)(t):
        _hash_array(h, arr.cast(pa.large_binary()))
    elif pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_binary(t) or pa.types.is_large_binary(t):
        large = pa.types.is_large_string(t) or pa.types.is_large_binary(t)
        buffers = arr.buffers()
        offsets = np.frombuffer(buffers[1], dtype=np.int64 if large else np.int32)[arr.offset: arr.offset + len(arr) + 1]
        h.update(b"s" + np.diff(offsets).astype(np.int64, copy=False).tobytes())
        if len(arr) and buffers[2] is not None:
            h.update(memoryview(buffers[2])[int(offsets[0]): int(offsets[-1])])
    elif pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_fixed_size_list(t):
        lengths = pc.fill_null(pc.list_value_length(arr), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        h.update(b"l" + lengths.tobytes())
        _hash_array(h, arr.flatten())
    elif pa.types.is_struct(t):
        for i, child in enumerate(arr.flatten()):  # (flatten: the children at the struct's own slice)
            h.update(f"<{t.field(i).name}>".encode())
            _hash_array(h, child)
    else:
        raise DataError(f"cannot fingerprint a column of type {t}")


def table_sha256(table: pa.Table | pd.DataFrame) -> str:
    """Hex SHA-256 of a table's content: its column names and values, not the bytes of a file that holds it.

    Parquet files of the same data differ from one pyarrow / pandas release to the next (writer version, schema
    metadata, string and list widths); this hash does not, so a prepared folder's fingerprint is the same on every
    machine that prepares the same data.

    >>> a = pa.table({"item": pa.array(["a", None], pa.string()), "n": pa.array([1, 2], pa.int32())})
    >>> b = pa.table({"item": pa.array(["a", None], pa.large_string()), "n": pa.array([1, 2], pa.int64())})
    >>> table_sha256(a) == table_sha256(b), table_sha256(a) == table_sha256(a.slice(1))
    (True, False)
    """
    table = as_arrow(table)
    h = hashlib.sha256()
    for name, column in zip(table.column_names, table.columns, strict=True):
        h.update(f"[{name}]".encode())
        _hash_array(h, column.combine_chunks() if column.num_chunks != 1 else column.chunk(0))
    return h.hexdigest()


def file_md5(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex MD5 of a file (GroupLens publishes MD5 checksums for its archives)."""
    h = hashlib.md5()  # noqa: S324 - checksum, not security
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


_LEFTOVER = re.compile(r"\..+\.(tmp|old-\d+)")


def is_leftover(name: str) -> bool:
    """A temporary name of :func:`atomic_path` / :func:`atomic_directory` (left by a kill -9).

    >>> is_leftover(".train.parquet.k2j1.tmp"), is_leftover(".git"), is_leftover("notes.txt")
    (True, False, False)
    """
    return bool(_LEFTOVER.fullmatch(name))


def _probe(path: Path, folder: Path, what: str) -> None:
    """Create and remove a folder where the output's temporary sibling will go: write permission bits say yes on
    file systems that take no new entries (``/proc``, ``/sys`` as root), which would fail after the work."""
    import tempfile

    from llmrec.errors import OutputError

    try:
        os.rmdir(tempfile.mkdtemp(prefix=".llmrec-probe-", dir=folder))
    except OSError as exc:
        raise OutputError(f"{path}: cannot create files in {folder} ({exc.strerror or exc}); choose another {what}"
                          ) from None


def check_output_dir(path: str | Path, *, owned: Callable[[Path], str | None], overwrite: bool = False,
                     what: str = "output folder", sources: Iterable[str | Path] = ()) -> None:
    """Refuse to write a folder over anything that is not ours; call before any work starts.

    * the current folder, a path whose parent is a file, or a parent that is not writable:
      refused;
    * an existing non-empty folder: ``owned(path)`` says whose it is: ``"same"`` (ours, the
      same kind of output: replaced), ``"other"`` (ours, another kind: replaced only with
      ``overwrite``) or None (not ours: never deleted, refused);
    * a folder that holds one of the input ``sources``: refused.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "notes.txt").write_text("mine")
    4
    >>> check_output_dir(d, owned=lambda p: None)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    llmrec.errors.OutputError: ...: output folder exists and holds files llmrec did not write (notes.txt); choose another output folder
    """
    from llmrec.errors import OutputError

    path = Path(path)
    resolved = path.resolve()
    if resolved == Path.cwd().resolve() or resolved == Path(resolved.anchor) or resolved == Path.home().resolve():
        raise OutputError(f"{path}: refusing to use this folder as the {what} (it would be replaced); "
                          "name a new folder")
    for src in sources:
        src_path = Path(src).resolve()
        if src_path == resolved or resolved in src_path.parents:
            raise OutputError(f"{path}: the {what} holds the input {src}; choose another output folder")
    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is not a folder; choose another {what}")
    parent = resolved
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"{path}: {parent} is a file, not a folder; choose another {what}")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"{path}: cannot write in {parent} (permission denied); choose another {what}")
    _probe(path, resolved.parent if resolved.parent.exists() else parent, what)
    if path.is_dir():
        entries = sorted(p.name for p in path.iterdir() if not is_leftover(p.name))  # .git counts: never ours
        if not entries:
            return
        whose = owned(path)
        if whose is None:
            shown = ", ".join(entries[:3]) + (", ..." if len(entries) > 3 else "")
            raise OutputError(f"{path}: {what} exists and holds files llmrec did not write ({shown}); "
                              "choose another output folder")
        if whose != "same" and not overwrite:
            raise OutputError(f"{path}: holds another llmrec output ({whose}); pass --overwrite to replace it")
        if not os.access(path, os.W_OK | os.X_OK):
            raise OutputError(f"{path}: cannot replace this {what} (permission denied)")
