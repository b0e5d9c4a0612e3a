"""Your own data: interactions, items and (optionally) users from CSV, TSV, Parquet or JSON lines files.

The ``files`` data set (docs/own-data.md) reads the files a ``files:`` section of a prepare config
names, maps their columns onto the schema (:mod:`llmrec.data.schema`) and returns the same
:class:`RecData` as the MovieLens loader, so every protocol, the audit and the report run on it.

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "orders.csv").write_text("customer,sku,stars,at\\nc1,p1,5,2024-03-01T10:00:00Z\\nc1,p2,2,2024-03-02T10:00:00Z\\n")
>>> _ = (d / "products.csv").write_text("sku,name,tags\\np1,Kettle,kitchen; tea\\np2,Mug,kitchen\\n")
>>> settings = FilesConfig.model_validate({
...     "interactions": {"path": "orders.csv",
...                      "columns": {"user": "customer", "item": "sku", "rating": "stars", "timestamp": "at"}},
...     "items": {"path": "products.csv", "columns": {"item": "sku", "title": "name"},
...               "text": {"genres": "tags"}, "lists": ["genres"]}})
>>> data = load_files(d, settings)
>>> data.interactions[["user", "item", "rating", "timestamp"]].values.tolist()
[['c1', 'p1', 5.0, 1709287200], ['c1', 'p2', 2.0, 1709373600]]
>>> data.items["genres"].tolist(), data.timestamp_kind
(['kitchen, tea', 'kitchen'], 'unix')
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmrec.data.columns import isin
from llmrec.data.schema import RecData
from llmrec.errors import DataError

__all__ = ["FilesConfig", "InteractionsFile", "ItemsFile", "UsersFile", "files_of", "load_files", "is_implicit"]

FORMATS = ("csv", "tsv", "parquet", "jsonl")
EXTENSIONS = {".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
              ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl"}
TIMESTAMP_FORMATS = ("auto", "seconds", "milliseconds", "iso8601")
MS_FROM = 1e11  # epoch numbers from here on are milliseconds (10^11 s is the year 5138; 10^11 ms is 1973)


class TableFile(BaseModel):
    """Where one table is and how its file is read (shared by the three files)."""

    model_config = ConfigDict(extra="forbid")

    path: str = Field(description="the file (relative paths start at the prepare config's `path`, default the "
                      "current folder); .gz compressed text files are read too")
    format: Literal["auto", "csv", "tsv", "parquet", "jsonl"] = Field(
        "auto", description="auto: from the extension (.csv, .tsv/.tab, .parquet/.pq, .jsonl/.ndjson/.json)")
    delimiter: str | None = Field(None, description="field separator of csv/tsv files, one character "
                                  "(default: ',' for csv, tab for tsv)")
    quote: str | None = Field('"', description="quote character of csv/tsv files (null: fields are never quoted)")
    encoding: str = Field("utf-8", description="text encoding of csv/tsv/jsonl files (utf-8, latin-1, cp1252, ...)")

    @model_validator(mode="before")
    @classmethod
    def _path_only(cls, data: Any) -> Any:
        return {"path": data} if isinstance(data, str) else data  # `items: products.csv` is a path

    @field_validator("delimiter", "quote")
    @classmethod
    def _one_character(cls, value: str | None) -> str | None:
        if value is not None and len(value) != 1:
            raise ValueError(f"must be one character, got {value!r}")
        return value

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown text encoding {value!r} (e.g. utf-8, latin-1, cp1252)") from None
        return value


class InteractionColumns(BaseModel):
    """The interactions file's column for each schema field."""

    model_config = ConfigDict(extra="forbid")

    user: str = Field("user", description="user id column")
    item: str = Field("item", description="item id column (every id must be in the items file)")
    rating: str | None = Field("rating", description="rating column; null: implicit feedback (every interaction "
                               "is positive; the trsr protocol only)")
    timestamp: str | None = Field("timestamp", description="time column; null: no time (file order is each user's "
                                  "order; tallrec/rella split at random, like BookCrossing)")


class InteractionsFile(TableFile):
    """Who interacted with what, when, and the rating when there is one."""

    columns: InteractionColumns = Field(default_factory=InteractionColumns)
    rating_scale: tuple[float, float] | None = Field(
        None, description="[low, high] of the ratings (a rating outside fails naming its line); null: read from the "
        "ratings: 0-5 when none exceeds 5, 0-10 when none exceeds 10 and more than 1% exceed 5, else refused")
    timestamp_format: str = Field(
        "auto", description="auto (numbers: epoch seconds, or milliseconds from 10^11 on; text: ISO 8601), seconds, "
        "milliseconds, iso8601, or a strftime format such as '%d/%m/%Y %H:%M'; times without a zone are UTC")

    @field_validator("rating_scale")
    @classmethod
    def _scale(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not (np.isfinite(value).all() and value[0] < value[1]):
            raise ValueError(f"rating_scale {list(value)}: give [low, high] with low < high")
        return value

    @field_validator("timestamp_format")
    @classmethod
    def _known_format(cls, value: str) -> str:
        if value not in TIMESTAMP_FORMATS and "%" not in value:
            raise ValueError(f"{value!r}: one of {', '.join(TIMESTAMP_FORMATS)}, or a strftime format with %")
        return value


class ItemColumns(BaseModel):
    model_config = ConfigDict(extra="forbid")

    item: str = Field("item", description="item id column (ids must be unique)")
    title: str = Field("title", description="title column (what prompts call the item)")


def _as_mapping(value: Any) -> Any:
    """``[a, b]`` -> ``{a: a, b: b}`` (fields keep the file's column names)."""
    return {str(v): str(v) for v in value} if isinstance(value, list) else value


class ItemsFile(TableFile):
    """The catalog: one row per item, its title and the text fields prompts and the retrieval encoder show."""

    columns: ItemColumns = Field(default_factory=ItemColumns)
    text: dict[str, str] = Field(default_factory=dict, description="more text fields, as {field: file column} "
                                 "or a list of columns (kept under their names); templates read genres, author, "
                                 "year, publisher, description, ...")
    lists: list[str] = Field(default_factory=list, description="text fields that hold lists: split on "
                             "list_separator and joined with ', ' (how prompts and the baselines' categories read them)")
    list_separator: str = Field(";", description="separator of the `lists` fields in csv/tsv files (spaces around "
                                "values are dropped); Parquet / JSON lists need none")

    @field_validator("text", mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        return _as_mapping(value)

    @model_validator(mode="after")
    def _lists_are_fields(self) -> ItemsFile:
        unknown = [f for f in self.lists if f not in self.text]
        if unknown:
            raise ValueError(f"lists: {unknown[0]!r} is not a text field (text fields: "
                             f"{', '.join(self.text) or 'none'})")
        clash = [f for f in self.text if f in ("item", "title")]
        if clash:
            raise ValueError(f"text: {clash[0]!r} is a schema column; name the field otherwise")
        return self


class UserColumns(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user: str = Field("user", description="user id column (ids must be unique)")


class UsersFile(TableFile):
    """Profiles: one row per user (templates read gender, age, occupation)."""

    columns: UserColumns = Field(default_factory=UserColumns)
    profile: dict[str, str] = Field(default_factory=dict, description="profile fields, as {field: file column} "
                                    "or a list of columns")

    @field_validator("profile", mode="before")
    @classmethod
    def _mapping(cls, value: Any) -> Any:
        return _as_mapping(value)

    @model_validator(mode="after")
    def _no_user_field(self) -> UsersFile:
        if "user" in self.profile:
            raise ValueError("profile: 'user' is the id column; name the field otherwise")
        return self


class FilesConfig(BaseModel):
    """The ``files:`` section of a prepare config: your own data set (docs/own-data.md).

    >>> FilesConfig.model_validate({"interactions": "clicks.jsonl", "items": "items.csv"}).interactions.path
    'clicks.jsonl'
    """

    model_config = ConfigDict(extra="forbid")

    interactions: InteractionsFile = Field(description="the interactions file (one row per rating / click / purchase)")
    items: ItemsFile = Field(description="the items file (one row per item)")
    users: UsersFile | None = Field(None, description="the users file (one row per user; optional)")
    unknown_items: Literal["error", "drop"] = Field(
        "error", description="interactions whose item is not in the items file: error, or drop them")
    unknown_users: Literal["error", "drop", "keep"] = Field(
        "error", description="with a users file, interactions whose user is not in it: error, drop them, or keep "
        "them (an empty profile)")


def is_implicit(settings: FilesConfig) -> bool:
    """Whether the files hold implicit feedback (no rating column)."""
    return settings.interactions.columns.rating is None


def _tables(settings: FilesConfig) -> list[tuple[str, TableFile]]:
    out: list[tuple[str, TableFile]] = [("interactions", settings.interactions), ("items", settings.items)]
    return out + ([("users", settings.users)] if settings.users is not None else [])


def _resolve(root: Path, spec: TableFile) -> Path:
    path = Path(spec.path).expanduser()
    return path if path.is_absolute() else Path(root) / path


def files_of(root: str | Path, settings: FilesConfig) -> list[Path]:
    """The files the settings name, resolved against ``root`` (refused as output folders, hashed for step keys).

    >>> [str(p) for p in files_of("shop", FilesConfig.model_validate({"interactions": "a.csv", "items": "/b.csv"}))]
    ['shop/a.csv', '/b.csv']
    """
    return [_resolve(Path(root), spec) for _, spec in _tables(settings)]


# --- reading one file -------------------------------------------------------------------------------------------


@dataclass
class _Table:
    """One file read: its needed columns (file names), and how to say where a row is."""

    frame: pd.DataFrame
    where: str  # the file, for messages
    role: str  # interactions / items / users (the config section)
    text: str | None = None  # decoded text of csv/tsv/jsonl files (line numbers of errors)
    fmt: str = "csv"
    delimiter: str = ","
    quote: str | None = '"'

    def line(self, row: int) -> int | None:
        """The 1-based line on which data row ``row`` (0-based) starts; None for Parquet (rows, not lines)."""
        if self.text is None:
            return None
        if self.fmt == "jsonl":
            seen = -1
            for number, raw in enumerate(self.text.splitlines(), 1):
                if raw.strip():
                    seen += 1
                    if seen == row:
                        return number
            return None
        reader = csv.reader(io.StringIO(self.text), delimiter=self.delimiter, quotechar=self.quote or '"',
                            quoting=csv.QUOTE_MINIMAL if self.quote else csv.QUOTE_NONE)
        seen, start = -2, 1  # the header is row -1
        for fields in reader:
            if fields:  # blank lines are skipped, as the parser does
                seen += 1
                if seen == row:
                    return start
            start = reader.line_num + 1
        return None

    def error(self, message: str, row: int | None = None, column: str | None = None, hint: str | None = None
              ) -> DataError:
        line = self.line(row) if row is not None else None
        if row is not None and line is None:
            message = f"row {row + 1}: {message}"
        return DataError(message, path=self.where, line=line, field=column, hint=hint)


def _format_of(spec: TableFile, path: Path, role: str) -> tuple[str, bool]:
    suffixes = [s.lower() for s in path.suffixes]
    gz = bool(suffixes) and suffixes[-1] == ".gz"
    if spec.format != "auto":
        return spec.format, gz
    ext = suffixes[-2] if gz and len(suffixes) > 1 else (suffixes[-1] if suffixes and not gz else "")
    if ext not in EXTENSIONS:
        raise DataError(f"cannot tell the file format from the extension {ext or '(none)'!r}", path=path,
                        hint=f"set files.{role}.format: csv, tsv, parquet or jsonl")
    return EXTENSIONS[ext], gz


def _decode(raw: bytes, spec: TableFile, where: str, role: str, delimiter: str | None) -> str:
    """The file's text; undecodable bytes fail naming the line (and the column of a csv/tsv file)."""
    if raw.startswith(codecs.BOM_UTF8) and spec.encoding.lower().replace("_", "-") in ("utf-8", "utf8"):
        raw = raw[len(codecs.BOM_UTF8):]
    try:
        return raw.decode(spec.encoding)
    except UnicodeDecodeError as exc:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        column = None
        if delimiter is not None:
            header = raw.split(b"\n", 1)[0].decode(spec.encoding, errors="replace").rstrip("\r").split(delimiter)
            index = raw[line_start:exc.start].decode(spec.encoding, errors="replace").count(delimiter)
            column = header[index] if index < len(header) and line > 1 else None
        raise DataError(f"not {spec.encoding} text (byte 0x{raw[exc.start]:02x})", path=where, line=line,
                        field=column, hint=f"set files.{role}.encoding (e.g. latin-1 or cp1252) or re-encode the "
                        "file as UTF-8") from None


def _missing(columns: list[str], have: list[str], where: str, role: str, needed: dict[str, str], line: int | None
             ) -> None:
    for key, column in needed.items():
        if column not in have:
            shown = ", ".join(map(str, have[:30])) + (", ..." if len(have) > 30 else "")
            raise DataError(f"no column {column!r} (the file has columns: {shown or 'none'})", path=where, line=line,
                            field=column, hint=f"map it with files.{role}.{key}, or check the delimiter / format")


def _read(root: Path, spec: TableFile, role: str, needed: dict[str, str]) -> _Table:
    """Read the columns ``needed`` ({config key: file column}) of one file, as text where the format is text."""
    path = _resolve(root, spec)
    where = str(path)
    if not path.is_file():
        raise DataError("no such file" if not path.exists() else "not a file", path=where,
                        hint=f"check files.{role}.path (relative paths start at the config's path, default the "
                        "current folder)")
    fmt, gz = _format_of(spec, path, role)
    columns = list(dict.fromkeys(needed.values()))
    if fmt == "parquet":
        return _read_parquet(path, where, role, needed, columns)
    try:
        raw = path.read_bytes()
        if gz:
            raw = gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read ({getattr(exc, 'strerror', None) or exc})", path=where) from None
    delimiter = spec.delimiter or ("\t" if fmt == "tsv" else ",")
    text = _decode(raw, spec, where, role, None if fmt == "jsonl" else delimiter)
    if not text.strip():
        raise DataError("file is empty", path=where)
    if fmt == "jsonl":
        frame = _read_jsonl(text, where, role, needed, columns)
        return _Table(frame[columns], where, role, text, "jsonl")
    return _Table(_read_delimited(text, where, role, needed, columns, delimiter, spec.quote), where, role, text,
                  fmt, delimiter, spec.quote)


def _read_parquet(path: Path, where: str, role: str, needed: dict[str, str], columns: list[str]) -> _Table:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        names = pq.ParquetFile(path).schema_arrow.names
        _missing(columns, names, where, role, needed, None)
        table = pq.read_table(path, columns=columns)
    except (pa.ArrowException, OSError) as exc:
        raise DataError(f"not a readable Parquet file ({' '.join(str(exc).split())[:200]})", path=where) from None
    return _Table(table.to_pandas(), where, role, None, "parquet")


def _read_delimited(text: str, where: str, role: str, needed: dict[str, str], columns: list[str], delimiter: str,
                    quote: str | None) -> pd.DataFrame:
    quoting = csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE
    first = next(csv.reader(io.StringIO(text.lstrip("\r\n")), delimiter=delimiter, quotechar=quote or '"',
                            quoting=quoting), [])
    _missing(columns, first, where, role, needed, 1)
    try:
        return pd.read_csv(io.StringIO(text), sep=delimiter, quotechar=quote or '"', quoting=quoting, usecols=columns,
                           dtype=str, keep_default_na=False, na_values=[""], engine="c")
    except (ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc.__context__, KeyboardInterrupt) or "KeyboardInterrupt" in str(exc):
            raise KeyboardInterrupt from None
        message = " ".join(str(exc).split())
        found = re.search(r"line (\d+)", message)
        raise DataError(f"could not parse: {message}", path=where, line=int(found.group(1)) if found else None,
                        hint=f"check files.{role}.delimiter / quote") from None


def _read_jsonl(text: str, where: str, role: str, needed: dict[str, str], columns: list[str]) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.json as pj

    try:
        table = pj.read_json(pa.BufferReader(text.encode("utf-8")))
        frame = table.select([c for c in columns if c in table.column_names]).to_pandas()
        have = table.column_names
    except pa.ArrowInvalid:  # a bad line, or a column of mixed types: read line by line (exact lines)
        records = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON: {exc.msg} at column {exc.colno}", path=where, line=number,
                                hint="one JSON object per line (JSON lines)") from None
            if not isinstance(record, dict):
                raise DataError(f"not a JSON object but {type(record).__name__}", path=where, line=number,
                                hint="one JSON object per line (JSON lines)") from None
            records.append(record)
        frame = pd.DataFrame.from_records(records)
        have = list(frame.columns)
    _missing(columns, have, where, role, needed, 1)
    return frame


# --- columns to schema values -----------------------------------------------------------------------------------


def _ids(table: _Table, column: str, key: str) -> pd.Series:
    values = table.frame[column]
    empty = values.isna().to_numpy()
    if values.dtype == object or pd.api.types.is_string_dtype(values):
        empty = empty | ((values.astype(str).str.strip() == "").to_numpy() & ~empty)
    if empty.any():
        row = int(np.flatnonzero(empty)[0])
        raise table.error(f"empty {key} id", row, column, hint="every row needs one")
    if values.dtype.kind in "iu":
        return values.astype("int64").astype(str)
    if values.dtype.kind == "f":
        whole = values == np.floor(values)
        if whole.all():
            return values.astype("int64").astype(str)
    return values.astype(str)


def _text(values: pd.Series, separator: str | None) -> pd.Series:
    """Text of a field: lists (native, or split on ``separator``) joined with ', '; missing values empty."""
    def join(value: Any) -> str:
        if isinstance(value, (list, tuple, np.ndarray)):
            return ", ".join(str(v).strip() for v in value if v is not None and str(v).strip())
        if value is None or (isinstance(value, float) and np.isnan(value)):
            return ""
        if separator is not None:
            return ", ".join(p.strip() for p in str(value).split(separator) if p.strip())
        return str(value)

    if values.dtype.kind == "f" and values.dropna().eq(np.floor(values.dropna())).all():
        values = values.astype("Int64")
    if values.dtype == object or separator is not None:
        return values.map(join).astype(str)
    return values.astype(str).where(values.notna(), "")


def _ratings(table: _Table, column: str) -> np.ndarray:
    values = table.frame[column]
    numbers = pd.to_numeric(values, errors="coerce")
    bad = (numbers.isna() & values.notna()).to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise table.error(f"rating {str(values.iloc[row])!r} is not a number", row, column,
                          hint="empty cells are interactions without a rating; set files.interactions.columns.rating: "
                          "null for implicit feedback")
    return numbers.to_numpy(dtype=np.float32)


MIXED_SHARE = 0.01  # a 0-10 scale read from the ratings needs more than this share of them above 5


def _rating_scale(table: _Table, column: str, ratings: np.ndarray, configured: tuple[float, float] | None
                  ) -> tuple[float, float] | None:
    """The ratings' scale: ``configured`` (every rating inside it), else read from the ratings (the rule of
    :class:`InteractionsFile.rating_scale`); a rating outside, or a few stray ones above 5, fail naming the line."""
    values = ratings.astype(np.float64)
    rated = ~np.isnan(values)
    if not rated.any():
        return configured

    def first(mask: np.ndarray) -> tuple[int, float]:
        row = int(np.flatnonzero(mask)[0])
        return row, float(values[row])

    setting = "files.interactions.rating_scale"
    if configured is not None:
        low, high = configured
        bad = rated & ((values < low) | (values > high))
        if bad.any():
            row, value = first(bad)
            raise table.error(f"rating {value:g} is outside the rating scale {low:g}-{high:g}", row, column,
                              hint=f"fix or remove the line, or widen {setting}")
        return configured
    bad = rated & ((values < 0) | (values > 10))
    if bad.any():
        row, value = first(bad)
        raise table.error(f"rating {value:g} is outside 0-10, the scales read without a configured one", row, column,
                          hint=f"fix or remove the line, or set {setting}: [low, high] (and a label_threshold)")
    above = rated & (values > 5)
    if not above.any():
        return (0.0, 5.0)
    if above.sum() <= MIXED_SHARE * rated.sum():
        row, value = first(above)
        raise table.error(f"rating {value:g} is above 5, as are only {int(above.sum()):,} of {int(rated.sum()):,} "
                          "ratings (mixed scales?)", row, column,
                          hint=f"fix or remove those lines, or set {setting}: [0, 10] if that is the scale")
    return (0.0, 10.0)


def _epoch_ns(table: _Table, column: str, how: str) -> np.ndarray:
    """Each row's time as int64 nanoseconds since the epoch (UTC)."""
    values = table.frame[column]
    missing = values.isna().to_numpy()
    if missing.any():
        row = int(np.flatnonzero(missing)[0])
        raise table.error("empty timestamp", row, column, hint="every interaction needs a time, or set "
                          "files.interactions.columns.timestamp: null")
    if pd.api.types.is_datetime64_any_dtype(values):
        stamps = values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")
        return stamps.dt.as_unit("ns").array.asi8.copy()
    numbers = pd.to_numeric(values, errors="coerce") if how in ("auto", "seconds", "milliseconds") else None
    if numbers is not None and (how != "auto" or numbers.notna().all()):
        bad = numbers.isna().to_numpy()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise table.error(f"timestamp {str(values.iloc[row])!r} is not a number of {how}", row, column,
                              hint="set files.interactions.timestamp_format (auto, seconds, milliseconds, iso8601, "
                              "or a strftime format)")
        unit = how if how != "auto" else ("milliseconds" if float(numbers.abs().max()) >= MS_FROM else "seconds")
        scale = 1_000_000 if unit == "milliseconds" else 1_000_000_000
        floats = numbers.to_numpy(dtype=np.float64)
        if numbers.dtype.kind in "iu" or (floats == np.floor(floats)).all():  # whole numbers: exact integer arithmetic
            return numbers.to_numpy(dtype=np.float64 if numbers.dtype.kind == "f" else np.int64).astype(np.int64) * scale
        return np.round(floats * scale).astype(np.int64)
    text = values.astype(str).str.strip()
    fmt = "ISO8601" if how in ("auto", "iso8601") else how
    try:
        stamps = pd.to_datetime(text, format=fmt, utc=True, errors="coerce")
    except ValueError as exc:  # a format pandas refuses outright
        raise table.error(f"timestamp format {how!r}: {exc}", None, column) from None
    bad = stamps.isna().to_numpy()
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        expected = ("ISO 8601 like 2024-03-01T10:00:00Z, epoch seconds or milliseconds" if how == "auto"
                    else "ISO 8601 like 2024-03-01T10:00:00Z" if how == "iso8601" else f"the format {how!r}")
        raise table.error(f"cannot read timestamp {str(values.iloc[row])!r} as {expected}", row, column,
                          hint="set files.interactions.timestamp_format (auto, seconds, milliseconds, iso8601, or "
                          "a strftime format such as '%d/%m/%Y %H:%M')")
    return stamps.dt.as_unit("ns").array.asi8.copy()


def _unique_ids(table: _Table, ids: pd.Series, column: str, key: str) -> None:
    dup = ids.duplicated().to_numpy()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        first = int(np.flatnonzero((ids == ids.iloc[row]).to_numpy())[0])
        where = table.line(first)
        also = f"line {where}" if where is not None else f"row {first + 1}"
        raise table.error(f"duplicate {key} id {ids.iloc[row]!r} (first on {also})", row, column,
                          hint=f"one row per {key}")


def _unknown(table: _Table, ids: pd.Series, known: pd.Series, column: str, key: str, other: str, policy: str
             ) -> np.ndarray:
    """Mask of rows whose id is in ``known``; with policy ``error`` unknown ids fail naming the first line."""
    ok = isin(ids, known)
    if ok.all() or policy != "error":
        return ok
    row = int(np.flatnonzero(~ok)[0])
    n_ids = int(pd.unique(ids[~ok]).size)
    fix = "unknown_items: drop" if key == "item" else "unknown_users: drop (or keep: an empty profile)"
    n_rows = int((~ok).sum())
    raise table.error(f"{n_rows:,} interaction{'s' if n_rows != 1 else ''} name{'' if n_rows != 1 else 's'} "
                      f"{n_ids:,} {key} id{'s' if n_ids != 1 else ''} not in {other} (the first: "
                      f"{ids.iloc[row]!r})", row, column, hint=f"add them to that file, or set files.{fix}")


def load_files(root: str | Path, settings: FilesConfig) -> RecData:
    """Read the files ``settings`` name (relative to ``root``) into a validated :class:`RecData` named ``files``.

    Errors name the file, the line (Parquet: the row) and the column: a missing column (with the columns the file
    has), an empty id, a rating or time that cannot be read, a duplicate item or user id, interactions of unknown
    items or users (their count; ``unknown_items: drop`` leaves them out), bytes that are not the file's encoding.
    """
    root = Path(root)
    cfg = settings.interactions
    cols = cfg.columns
    needed = {"columns.user": cols.user, "columns.item": cols.item}
    if cols.rating is not None:
        needed["columns.rating"] = cols.rating
    if cols.timestamp is not None:
        needed["columns.timestamp"] = cols.timestamp
    inter_t = _read(root, cfg, "interactions", needed)
    inter = pd.DataFrame({"user": _ids(inter_t, cols.user, "user"), "item": _ids(inter_t, cols.item, "item")})
    inter["rating"] = _ratings(inter_t, cols.rating) if cols.rating is not None else np.float32("nan")
    scale = _rating_scale(inter_t, cols.rating, inter["rating"].to_numpy(), cfg.rating_scale) if cols.rating else None
    notes = []
    if cols.timestamp is not None:
        ns = _epoch_ns(inter_t, cols.timestamp, cfg.timestamp_format)
        inter["timestamp"] = np.floor_divide(ns, 1_000_000_000)

    icfg = settings.items
    item_needed = {"columns.item": icfg.columns.item, "columns.title": icfg.columns.title}
    item_needed.update({f"text.{k}": v for k, v in icfg.text.items()})
    items_t = _read(root, icfg, "items", item_needed)
    items = pd.DataFrame({"item": _ids(items_t, icfg.columns.item, "item")})
    _unique_ids(items_t, items["item"], icfg.columns.item, "item")
    items["title"] = _text(items_t.frame[icfg.columns.title], None)
    for name, column in icfg.text.items():
        items[name] = _text(items_t.frame[column], icfg.list_separator if name in icfg.lists else None)

    keep = _unknown(inter_t, inter["item"], items["item"], cols.item, "item", items_t.where, settings.unknown_items)
    if not keep.all():
        notes.append(f"{int((~keep).sum()):,} interactions of items not in {items_t.where} dropped")

    users = None
    sources = {"interactions": inter_t.where, "items": items_t.where}
    if settings.users is not None:
        ucfg = settings.users
        users_t = _read(root, ucfg, "users", {"columns.user": ucfg.columns.user,
                                              **{f"profile.{k}": v for k, v in ucfg.profile.items()}})
        users = pd.DataFrame({"user": _ids(users_t, ucfg.columns.user, "user")})
        _unique_ids(users_t, users["user"], ucfg.columns.user, "user")
        for name, column in ucfg.profile.items():
            users[name] = _text(users_t.frame[column], None)
        known = _unknown(inter_t, inter["user"], users["user"], cols.user, "user", users_t.where,
                         settings.unknown_users)
        if not known.all():
            if settings.unknown_users == "drop":
                notes.append(f"{int((~known).sum()):,} interactions of users not in {users_t.where} dropped")
                keep &= known
            else:
                extra = pd.DataFrame({"user": pd.unique(inter["user"][~known])})
                users = pd.concat([users, extra], ignore_index=True).fillna("")
                notes.append(f"{len(extra):,} users not in {users_t.where} kept with an empty profile")
        sources["users"] = users_t.where
    if cols.timestamp is not None and (ns % 1_000_000_000 != 0).any():
        # sub-second times: the schema keeps seconds, and the rows in the order of their exact times (the
        # chronology breaks ties in seconds by row order)
        order = np.argsort(ns, kind="stable")
        inter, keep = inter.iloc[order], keep[order]
        notes.append("timestamps rounded down to seconds; rows ordered by their exact times")
    if not keep.all():
        inter = inter[keep]
        if len(inter) == 0:
            raise DataError("no interactions left after dropping unknown ids", path=inter_t.where)
    inter = inter.reset_index(drop=True)
    data = RecData("files", inter, items, users, timestamp_kind="unix" if cols.timestamp is not None else "none",
                   sources=sources, extra={**({"notes": notes} if notes else {}),
                                           **({"rating_scale": list(scale)} if scale is not None else {})})
    return data.validated()
