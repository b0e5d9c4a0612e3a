"""Book-Crossing loader (Ziegler et al., WWW 2005): ratings, books and users.

Two layouts are read, each detected per file by sniffing the header line:

* the **official 2004 dump** (``BX-CSV-Dump.zip``): ``BX-Book-Ratings.csv``,
  ``BX-Books.csv`` and ``BX-Users.csv``, ``;``-separated, every field double-quoted,
  latin-1/cp1252 text. Ratings are 1-10 (explicit) or 0 (implicit: the user interacted with
  the book without rating it). Known faults of ``BX-Books.csv`` are handled: titles holding
  ``\\"`` escaped quotes are parsed with ``\\`` as the escape character, and lines that still
  have the wrong number of fields are skipped, counted in ``extra["skipped_lines"]`` and
  reported in one warning per file. Ratings for ISBNs absent from ``BX-Books.csv`` (about 10%
  of the official ratings) are dropped with a warning and counted in
  ``extra["unknown_isbn_dropped"]``.
* the **cleaned copy** (``BX-Ratings.csv``, ``BX-Books.csv``, ``BX-Users.csv``): ``,``-separated
  csv with a header and standard quoting, UTF-8; users have ``User-City``, ``User-State``,
  ``User-Country`` and ``User-Age``. Its quoting artefacts (a trailing ``"`` on the last
  location field, ``\\"`` in some titles) are cleaned. The ``BX-NewBooks*`` files that come
  with that copy are a second, disjoint book set from another project: they are ignored.

Text is decoded as UTF-8, falling back to cp1252 and then latin-1 when that fails; the
encoding used per file is in ``extra["encodings"]``.

Output: interactions ``user``, ``item`` (the ISBN as given), ``rating`` (float) and no
timestamp (``timestamp_kind="none"``: the timestamp column is the file order within each
user, 0, 1, 2, ...). With ``explicit_only=True`` (the default) the implicit 0 ratings are
dropped (their number is in ``extra["implicit_dropped"]``). Items: ``item``, ``title``,
``author``, ``year`` (``""`` when unknown or 0), ``publisher``. Users: ``user``,
``location`` (``"city, state, country"``) and ``age`` (a string; ``""`` when missing or
outside 5..110).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "BX-Book-Ratings.csv").write_bytes(
...     b'"User-ID";"ISBN";"Book-Rating"\\n"1";"0001";"8"\\n"1";"0002";"0"\\n"2";"0002";"5"\\n')
>>> _ = (d / "BX-Books.csv").write_bytes(
...     b'"ISBN";"Book-Title";"Book-Author";"Year-Of-Publication";"Publisher";'
...     b'"Image-URL-S";"Image-URL-M";"Image-URL-L"\\n'
...     b'"0001";"Caf\\xe9 \\\\"Noir\\\\"";"A. Writer";"1999";"Pub";"s";"m";"l"\\n'
...     b'"0002";"Two";"B. Writer";"0";"Pub";"s";"m";"l"\\n')
>>> _ = (d / "BX-Users.csv").write_bytes(
...     b'"User-ID";"Location";"Age"\\n"1";"nyc, new york, usa";"NULL"\\n"2";"porto, , portugal";"17"\\n')
>>> data = load_bookcrossing(d)
>>> data.interactions[["user", "item", "rating"]].values.tolist()
[['1', '0001', 8.0], ['2', '0002', 5.0]]
>>> data.items.loc[0, "title"], data.users["age"].tolist(), data.extra["implicit_dropped"]
('Café "Noir"', ['', '17'], 1)
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv

from llmrec.data.columns import isin, unescape_html
from llmrec.data.loaders.files import SourceFiles
from llmrec.data.schema import RecData, require_columns
from llmrec.errors import DataError

RATINGS_FILES = ("BX-Book-Ratings.csv", "BX-Ratings.csv")
BOOKS_FILE = "BX-Books.csv"
USERS_FILE = "BX-Users.csv"
AGE_RANGE = (5, 110)


def decode_text(raw: bytes) -> tuple[bytes, str]:
    """Return ``raw`` as UTF-8 bytes and the encoding it was read with.

    UTF-8 first; on a decoding error cp1252 (the Windows superset of latin-1 that the 2004
    dump mostly uses) and, if the file has bytes undefined in cp1252, latin-1.

    >>> decode_text("café".encode("cp1252"))
    (b'caf\\xc3\\xa9', 'cp1252')
    """
    for encoding in ("utf-8", "cp1252", "latin-1"):
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        return (raw if encoding == "utf-8" else text.encode("utf-8")), encoding
    raise AssertionError("latin-1 decodes any bytes")  # pragma: no cover


def sniff_separator(raw: bytes, where: str) -> str:
    """Return ``";"`` or ``","`` from the header line; a :class:`DataError` otherwise."""
    header = raw.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", errors="replace")
    n_semi, n_comma = header.count(";"), header.count(",")
    if n_semi == 0 and n_comma == 0:
        raise DataError(
            f"cannot detect the separator: the header line {header[:80]!r} has neither ';' nor ','",
            path=where,
            line=1,
            hint="Book-Crossing files are ';'-separated (official dump) or ','-separated (cleaned copy)",
        )
    return ";" if n_semi >= n_comma else ","


def read_bx_table(raw: bytes, where: str) -> tuple[pd.DataFrame, dict]:
    """Parse one Book-Crossing csv file (either layout) into a frame of strings.

    Lines with the wrong number of fields are skipped; the returned info dict has
    ``sep``, ``encoding``, ``skipped`` (count), ``skipped_lines`` (the first line numbers,
    1-based, header included) and ``warning`` (a message naming the file, or ``None``).
    """
    if not raw.strip():
        raise DataError("file is empty", path=where)
    data, encoding = decode_text(raw)
    sep = sniff_separator(data, where)
    header = data.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8")
    names = [h.strip().strip('"').strip() for h in header.lstrip("\ufeff").split(sep)]
    bad_lines: list[int | None] = []

    def on_bad_line(row: pacsv.InvalidRow) -> str:
        bad_lines.append(row.number)
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(use_threads=False, column_names=names, skip_rows=1),
            parse_options=pacsv.ParseOptions(
                delimiter=sep,
                quote_char='"',
                double_quote=True,
                escape_char="\\" if sep == ";" else False,
                newlines_in_values=False,
                invalid_row_handler=on_bad_line,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False, quoted_strings_can_be_null=False
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise DataError(f"could not parse: {exc}", path=where) from exc
    frame = table.to_pandas()
    info = {"sep": sep, "encoding": encoding, "skipped": len(bad_lines), "skipped_lines": bad_lines[:20], "warning": None}
    if bad_lines:
        shown = ", ".join(str(n) for n in bad_lines[:5] if n is not None)
        info["warning"] = (
            f"{where}: skipped {len(bad_lines)} line(s) with the wrong number of {sep!r}-separated fields "
            f"(expected {len(names)}; first lines: {shown}{', ...' if len(bad_lines) > 5 else ''})"
        )
    return frame, info


def clean_quotes(series: pd.Series, backslashes: bool = True) -> pd.Series:
    r"""Undo quoting artefacts in text fields (vectorized).

    With ``backslashes`` (for the cleaned copy, whose ``\"`` escapes were half undone),
    ``\"`` becomes ``"`` and a stray ``\`` left where a quote was becomes ``"``. Trailing
    quotes are dropped when they do not close a quote opened in the text.

    >>> clean_quotes(pd.Series(['\\O\\" Is for Outlaw"', 'the \\Wind\\""', 'He said "hi"', 'plain""'])).tolist()
    ['"O" Is for Outlaw', 'the "Wind"', 'He said "hi"', 'plain']
    """
    series = series.astype(str)
    has_bs = series.str.contains("\\", regex=False) if backslashes else None
    if has_bs is not None and has_bs.any():
        fixed = series[has_bs].str.replace('\\"', '"', regex=False).str.replace("\\", '"', regex=False)
        series = series.where(~has_bs, fixed)
    has_q = series.str.endswith('"')
    if has_q.any():
        sub = series[has_q]
        stripped = sub.str.rstrip('"')
        body_quotes = stripped.str.count('"')
        fixed = stripped.where(body_quotes % 2 == 0, stripped + '"')
        series = series.where(~has_q, fixed)
    return series


def _clean_age(age: pd.Series) -> pd.Series:
    values = pd.to_numeric(age.str.strip().str.strip('"').str.strip(), errors="coerce")
    ok = values.between(*AGE_RANGE) & (values == np.floor(values))
    out = pd.Series("", index=age.index, dtype=object)
    out[ok] = values[ok].astype("int64").astype(str)
    return out


def _clean_location_part(part: pd.Series) -> pd.Series:
    part = part.str.replace("\\", "", regex=False).str.strip(' "\t').str.strip()
    return part.where(~part.str.lower().isin(["n/a", "na", "none", "null"]), "")


def _join_parts(parts: list[pd.Series]) -> pd.Series:
    """Join the non-empty parts with ", " (vectorized)."""
    out = parts[0]
    for part in parts[1:]:
        both = (out != "") & (part != "")
        out = (out + ", " + part).where(both, out + part)
    return out


def _numeric_ratings(ratings: pd.DataFrame, where: str, skipped: int) -> pd.Series:
    values = pd.to_numeric(ratings["Book-Rating"].str.strip(), errors="coerce")
    bad = values.isna() | ~values.between(0, 10)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"rating {ratings['Book-Rating'].iloc[row]!r} is not a number in 0..10 (data row {row + 1})",
            path=where,
            field="Book-Rating",
            line=row + 2 if skipped == 0 else None,
        )
    return values.astype("float64")


def load_bookcrossing(path: str | Path, explicit_only: bool = True) -> RecData:
    """Load Book-Crossing from a directory or zip (official 2004 dump or the cleaned copy).

    See the module docstring for the two layouts and their faults. ``explicit_only`` drops
    the implicit 0 ratings of the official dump (keep them with ``explicit_only=False``:
    they then stay as rating 0.0).

    >>> import tempfile, pathlib, zipfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "bx.zip"
    >>> with zipfile.ZipFile(p, "w") as z:
    ...     z.writestr("BX-Ratings.csv", "User-ID,ISBN,Book-Rating\\n8,0002005018,7\\n8,0399135782,9\\n")
    ...     z.writestr("BX-Books.csv", "ISBN,Book-Title,Book-Author,Year-Of-Publication,Book-Publisher\\n"
    ...                "0002005018,Clara Callan,Richard Bruce Wright,2001,HarperFlamingo Canada\\n"
    ...                '0399135782,"The Kitchen God\\'s Wife",Amy Tan,1991,"Putnam, Pub Group"\\n')
    ...     z.writestr("BX-Users.csv", "User-ID,User-City,User-State,User-Country,User-Age\\n"
    ...                '8,timmins, ontario," canada""' '",\\n')
    >>> data = load_bookcrossing(p)
    >>> data.users.loc[0, "location"], data.items["publisher"].tolist(), data.timestamp_kind
    ('timmins, ontario, canada', ['HarperFlamingo Canada', 'Putnam, Pub Group'], 'none')
    >>> data.interactions["timestamp"].tolist()
    [0, 1]
    """
    src = SourceFiles(path)
    ratings_name = src.require(*RATINGS_FILES)
    ratings_file = Path(ratings_name).name
    src.require(BOOKS_FILE)
    has_users = src.has(USERS_FILE)
    where = {"interactions": src.display(ratings_file), "items": src.display(BOOKS_FILE)}
    if has_users:
        where["users"] = src.display(USERS_FILE)
    extra: dict = {"skipped_lines": 0, "skipped_lines_by_file": {}, "encodings": {}}

    def read(name: str, table: str) -> pd.DataFrame:
        frame, info = read_bx_table(src.read_bytes(name), where[table])
        extra["encodings"][name] = info["encoding"]
        extra.setdefault("separators", {})[name] = info["sep"]
        if info["skipped"]:
            warnings.warn(info["warning"], stacklevel=3)
            extra["skipped_lines"] += info["skipped"]
            extra["skipped_lines_by_file"][name] = info["skipped"]
        return frame

    # books
    books = read(BOOKS_FILE, "items")
    publisher_col = "Publisher" if "Publisher" in books.columns else "Book-Publisher"
    require_columns(
        books, ["ISBN", "Book-Title", "Book-Author", "Year-Of-Publication", publisher_col], path=where["items"], what="books"
    )
    items = pd.DataFrame({"item": books["ISBN"].str.strip()})
    for col, out in [("Book-Title", "title"), ("Book-Author", "author"), (publisher_col, "publisher")]:
        items[out] = unescape_html(clean_quotes(books[col], backslashes=publisher_col != "Publisher").str.strip())
    year = books["Year-Of-Publication"].str.strip()
    items["year"] = year.where(year.str.fullmatch(r"[1-9]\d{3}"), "")
    items = items[["item", "title", "author", "year", "publisher"]]

    # ratings
    ratings = read(ratings_file, "interactions")
    require_columns(ratings, ["User-ID", "ISBN", "Book-Rating"], path=where["interactions"], what="ratings")
    inter = pd.DataFrame(
        {
            "user": ratings["User-ID"].str.strip(),
            "item": ratings["ISBN"].str.strip(),
            "rating": _numeric_ratings(ratings, where["interactions"], extra["skipped_lines_by_file"].get(ratings_file, 0)),
        }
    )
    n_raw = len(inter)
    implicit = inter["rating"] == 0
    extra["implicit_ratings"] = int(implicit.sum())
    if explicit_only:
        inter = inter[~implicit]
        extra["implicit_dropped"] = int(implicit.sum())
    unknown = ~isin(inter["item"], items["item"])
    extra["unknown_isbn_dropped"] = int(unknown.sum())
    if unknown.any():
        warnings.warn(
            f"{where['interactions']}: dropped {int(unknown.sum())} of {len(inter)} ratings whose ISBN is absent "
            f"from {BOOKS_FILE} ({inter.loc[unknown, 'item'].nunique()} distinct ISBNs)",
            stacklevel=2,
        )
        inter = inter[~unknown]
    extra["raw_ratings"] = n_raw

    # users
    users = None
    if has_users:
        raw_users = read(USERS_FILE, "users")
        require_columns(raw_users, ["User-ID"], path=where["users"], what="users")
        users = pd.DataFrame({"user": raw_users["User-ID"].str.strip()})
        if "Location" in raw_users.columns:
            require_columns(raw_users, ["Location", "Age"], path=where["users"], what="users")
            users["location"] = raw_users["Location"].str.strip()
            users["age"] = _clean_age(raw_users["Age"])
        else:
            cols = ["User-City", "User-State", "User-Country", "User-Age"]
            require_columns(raw_users, cols, path=where["users"], what="users")
            users["location"] = _join_parts([_clean_location_part(raw_users[c]) for c in cols[:3]])
            users["age"] = _clean_age(raw_users["User-Age"])
        users["location"] = unescape_html(users["location"])
    fmt = "official-2004" if extra["separators"][ratings_file] == ";" else "cleaned"
    extra["format"] = fmt
    extra["rating_scale"] = [0.0, 10.0]  # checked row by row in _numeric_ratings
    return RecData(
        "bookcrossing", inter.reset_index(drop=True), items, users, timestamp_kind="none", sources=where, extra=extra
    ).validated()
