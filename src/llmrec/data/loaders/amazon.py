"""Amazon loaders: text-rich item sequences (TRSR layout) and raw Amazon Reviews files.

Two layouts, detected from the files in the directory or zip:

* **sequences** (the ``amazon-games`` copy, from RUCAIBox/LLMRank): ``items.tsv``
  (``item_id<TAB>title``) and ``sequences.tsv`` (``user_id<TAB>item_ids<TAB>history_capped``,
  item ids separated by spaces, oldest first), UTF-8 with a header. There are no timestamps:
  each sequence becomes one interaction per (user, item, position) with ``timestamp`` = the
  position 0..n-1 (``timestamp_kind="order"``) and no rating (NaN). ``history_capped``
  (optional column, ``0``/``1``) is kept as a bool column of the users table: it marks users
  whose older history was cut by the source.
* **raw Amazon Reviews** (2018 or 2014 release): one reviews JSON-lines file (``*.json``,
  ``*.jsonl``, optionally ``.gz``; fields ``reviewerID``, ``asin``, ``overall``,
  ``unixReviewTime``) and an optional metadata file ``meta_*.json(.gz)`` (``asin``,
  ``title``, and when present ``description``, ``brand``, ``category``). The rating is
  ``overall``; ``timestamp_kind="unix"``. Items get their text from the metadata; reviews of
  items with no title there are dropped with one warning (count in
  ``extra["no_title_dropped"]``). Without a metadata file every item has an empty title
  (with a warning). Exact duplicate reviews (same user, item, rating and time: the 2018 files
  have some) are dropped (``extra["duplicates_dropped"]``). The 2014 metadata files are
  Python literals, not JSON: convert them to JSON lines first.

Titles have their HTML entities decoded (``&amp;`` -> ``&``; the sources keep them).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "items.tsv").write_text("item_id\\ttitle\\n0\\tZelda &amp; Link\\n1\\tMario\\n")
>>> _ = (d / "sequences.tsv").write_text("user_id\\titem_ids\\thistory_capped\\n7\\t1 0\\t0\\n")
>>> data = load_amazon(d)
>>> data.interactions[["user", "item", "timestamp"]].values.tolist()
[['7', '1', 0], ['7', '0', 1]]
>>> data.items["title"].tolist(), data.users["history_capped"].tolist(), data.timestamp_kind
(['Zelda & Link', 'Mario'], [False], 'order')
"""

from __future__ import annotations

import csv
import gzip
import io
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from llmrec.data.columns import isin, unescape_html
from llmrec.data.loaders.files import SourceFiles, documented_encoding
from llmrec.data.schema import RecData, check_rating_scale, require_columns
from llmrec.errors import DataError

ITEMS_FILE = "items.tsv"
STARS = (1.0, 5.0)  # Amazon Reviews: 1-5 stars
SEQUENCES_FILE = "sequences.tsv"
JSON_SUFFIXES = (".json", ".jsonl", ".json.gz", ".jsonl.gz")
REVIEW_COLUMNS = ["reviewerID", "asin", "overall", "unixReviewTime"]
META_COLUMNS = ["asin", "title", "description", "brand", "category"]
_TRUE = {"1", "true", "True", "TRUE", "yes"}
_FALSE = {"0", "false", "False", "FALSE", "no", ""}


def _read_tsv(raw: bytes, where: str, columns: list[str], what: str) -> pd.DataFrame:
    if not raw.strip():
        raise DataError("file is empty", path=where)
    documented_encoding(raw, "utf-8", where)
    header = raw.split(b"\n", 1)[0].rstrip(b"\r").decode("utf-8", errors="replace")
    if "\t" not in header:
        raise DataError(
            f"expected a tab-separated header ({', '.join(columns)}), found {header[:80]!r}",
            path=where,
            line=1,
            hint="wrong separator or wrong file?",
        )
    try:
        frame = pd.read_csv(
            io.BytesIO(raw), sep="\t", header=0, dtype=str, keep_default_na=False,
            quoting=csv.QUOTE_NONE, encoding="utf-8", engine="c",
        )  # fmt: skip
    except (ValueError, pd.errors.ParserError) as exc:
        raise DataError(f"could not parse: {exc}", path=where) from None
    require_columns(frame, columns, path=where, what=what)
    return frame


def _load_sequences(src: SourceFiles) -> RecData:
    src.require(ITEMS_FILE)
    src.require(SEQUENCES_FILE)
    where = {"interactions": src.display(SEQUENCES_FILE), "items": src.display(ITEMS_FILE), "users": src.display(SEQUENCES_FILE)}
    items = _read_tsv(src.read_bytes(ITEMS_FILE), where["items"], ["item_id", "title"], "items")
    items = items.rename(columns={"item_id": "item"})
    items["item"] = items["item"].str.strip()
    items["title"] = unescape_html(items["title"]).str.strip()

    seqs = _read_tsv(src.read_bytes(SEQUENCES_FILE), where["interactions"], ["user_id", "item_ids"], "sequences")
    users = pd.DataFrame({"user": seqs["user_id"].str.strip()})
    if "history_capped" in seqs.columns:
        flag = seqs["history_capped"].str.strip()
        bad = ~flag.isin(_TRUE | _FALSE)
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataError(
                f"expected 0 or 1, found {flag.iloc[row]!r}", path=where["users"], field="history_capped", line=row + 2
            )
        users["history_capped"] = flag.isin(_TRUE).to_numpy()
    exploded = pd.DataFrame({"user": users["user"], "item": seqs["item_ids"].str.split()}).explode("item")
    exploded = exploded[exploded["item"].notna()]
    inter = pd.DataFrame(
        {
            "user": exploded["user"].to_numpy(),
            "item": exploded["item"].astype(str).to_numpy(),
            "rating": np.nan,
            "timestamp": exploded.groupby(level=0).cumcount().to_numpy(),
        }
    )
    extra = {"format": "sequences", "empty_sequences": int((seqs["item_ids"].str.strip() == "").sum())}
    if "history_capped" in users.columns:
        extra["history_capped_users"] = int(users["history_capped"].sum())
    return RecData("amazon", inter, items, users, timestamp_kind="order", sources=where, extra=extra).validated()


def _json_members(src: SourceFiles) -> list[str]:
    if src.is_zip:
        with zipfile.ZipFile(src.path) as z:
            members = [n for n in z.namelist() if not n.endswith("/")]
    else:
        members = [str(p.relative_to(src.path)) for p in src.path.rglob("*") if p.is_file()]
    return sorted(m for m in members if m.lower().endswith(JSON_SUFFIXES) and not Path(m).name.startswith("."))


def _read_json_lines(src: SourceFiles, member: str, columns: list[str], where: str) -> pd.DataFrame:
    """Read the ``columns`` present in a JSON-lines file (gzip allowed), in chunks."""
    name = Path(member).name
    raw = src.read_bytes(name)
    if not raw.strip():
        raise DataError("file is empty", path=where)
    compression = "gzip" if raw[:2] == b"\x1f\x8b" else None
    parts = []
    try:
        with pd.read_json(
            io.BytesIO(raw), lines=True, compression=compression, dtype=False,
            chunksize=200_000, encoding="utf-8",
        ) as reader:  # fmt: skip
            for chunk in reader:
                parts.append(chunk[[c for c in columns if c in chunk.columns]])
    except (ValueError, gzip.BadGzipFile, EOFError, UnicodeDecodeError) as exc:
        hint = "each line must be one JSON object"
        if name.lower().startswith("meta"):
            hint += "; the 2014 meta files are Python literals: convert them to JSON lines first"
        raise DataError(f"could not parse JSON lines: {exc}", path=where, hint=hint) from exc
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    for col in columns:  # a column may appear in some chunks only
        if col not in frame.columns and any(col in p.columns for p in parts):
            frame[col] = None
    return frame


def _join_text(series: pd.Series, sep: str) -> pd.Series:
    """Lists -> joined strings, strings as they are, missing -> "" (vectorized via explode)."""
    flat = series.explode()
    flat = flat[flat.notna()].astype(str).str.strip()
    flat = flat[flat != ""]
    joined = flat.groupby(level=0).agg(sep.join)
    return joined.reindex(series.index, fill_value="").astype(str)


def _load_reviews(src: SourceFiles, members: list[str]) -> RecData:
    metas = [m for m in members if Path(m).name.lower().startswith("meta")]
    reviews = [m for m in members if m not in metas]
    if not reviews:
        raise DataError(
            "no reviews file (*.json or *.json.gz other than meta_*) found", path=src.path,
            hint=f"expected {ITEMS_FILE} + {SEQUENCES_FILE}, or an Amazon Reviews JSON-lines file",
        )  # fmt: skip
    for kind, found in (("reviews", reviews), ("metadata", metas)):
        if len(found) > 1:
            raise DataError(
                f"several {kind} files found ({', '.join(found)}); keep one per folder", path=src.path
            )
    review_name = Path(reviews[0]).name
    where = {"interactions": src.display(review_name)}
    frame = _read_json_lines(src, reviews[0], REVIEW_COLUMNS, where["interactions"])
    require_columns(frame, REVIEW_COLUMNS, path=where["interactions"], what="reviews")
    ts = pd.to_numeric(frame["unixReviewTime"], errors="coerce")
    rating = pd.to_numeric(frame["overall"], errors="coerce")
    for col, values in (("unixReviewTime", ts), ("overall", rating)):
        if values.isna().any():
            row = int(np.flatnonzero(values.isna().to_numpy())[0])
            raise DataError(f"non-numeric value {frame[col].iloc[row]!r}", path=where["interactions"], field=col, line=row + 1)
    check_rating_scale(rating, STARS, path=where["interactions"], name="Amazon Reviews", field="overall")
    inter = pd.DataFrame(
        {
            "user": frame["reviewerID"].astype(str).str.strip(),
            "item": frame["asin"].astype(str).str.strip(),
            "rating": rating.astype("float64"),
            "timestamp": ts.astype("int64"),
        }
    )
    extra: dict = {"format": "amazon-reviews", "raw_reviews": len(inter), "rating_scale": list(STARS)}
    dup = inter.duplicated(["user", "item", "rating", "timestamp"])
    extra["duplicates_dropped"] = int(dup.sum())
    inter = inter[~dup]

    if metas:
        meta_name = Path(metas[0]).name
        where["items"] = src.display(meta_name)
        meta = _read_json_lines(src, metas[0], META_COLUMNS, where["items"])
        require_columns(meta, ["asin", "title"], path=where["items"], what="metadata")
        meta = meta.drop_duplicates("asin", keep="first")
        items = pd.DataFrame({"item": meta["asin"].astype(str).str.strip()})
        items["title"] = unescape_html(_join_text(meta["title"], " ")).str.strip()
        for col, out, sep in (("description", "description", " "), ("brand", "brand", " "), ("category", "category", " > ")):
            if col in meta.columns:
                items[out] = unescape_html(_join_text(meta[col], sep)).str.strip()
        items = items[items["title"] != ""].drop_duplicates("item").reset_index(drop=True)
        no_title = ~isin(inter["item"], items["item"])
        extra["no_title_dropped"] = int(no_title.sum())
        if no_title.any():
            warnings.warn(
                f"{where['interactions']}: dropped {int(no_title.sum())} of {len(inter)} reviews of "
                f"{inter.loc[no_title, 'item'].nunique()} items with no title in {meta_name}",
                stacklevel=3,
            )
            inter = inter[~no_title]
    else:
        where["items"] = where["interactions"]
        warnings.warn(
            f"{src.path}: no meta_*.json(.gz) metadata file; items have empty titles", stacklevel=3
        )
        items = pd.DataFrame({"item": pd.unique(inter["item"]), "title": ""})
    return RecData("amazon", inter.reset_index(drop=True), items, None, timestamp_kind="unix", sources=where, extra=extra).validated()


def load_amazon(path: str | Path) -> RecData:
    """Load Amazon data from a directory or zip: the sequences layout or raw reviews JSON.

    See the module docstring for both layouts. A folder with neither gives a
    :class:`DataError` naming it.

    >>> import gzip, json, tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> rows = [{"reviewerID": "U1", "asin": "B01", "overall": 5.0, "unixReviewTime": 1400000000},
    ...         {"reviewerID": "U1", "asin": "B02", "overall": 3.0, "unixReviewTime": 1400000500}]
    >>> _ = (d / "Video_Games_5.json.gz").write_bytes(gzip.compress("\\n".join(map(json.dumps, rows)).encode()))
    >>> meta = [{"asin": "B01", "title": "Tetris", "category": ["Video Games", "Puzzle"]},
    ...         {"asin": "B02", "title": "Doom", "description": ["Shooter.", "Classic."]}]
    >>> _ = (d / "meta_Video_Games.json").write_text("\\n".join(map(json.dumps, meta)))
    >>> data = load_amazon(d)
    >>> data.interactions[["item", "rating", "timestamp"]].values.tolist()
    [['B01', 5.0, 1400000000], ['B02', 3.0, 1400000500]]
    >>> data.items[["title", "category", "description"]].values.tolist()
    [['Tetris', 'Video Games > Puzzle', ''], ['Doom', '', 'Shooter. Classic.']]
    """
    src = SourceFiles(path)
    if src.has(ITEMS_FILE) or src.has(SEQUENCES_FILE):
        return _load_sequences(src)
    members = _json_members(src)
    if not members:
        raise DataError(
            "no Amazon data found",
            path=src.path,
            hint=f"expected {ITEMS_FILE} + {SEQUENCES_FILE}, or an Amazon Reviews JSON-lines file "
            "(e.g. Video_Games_5.json.gz) with an optional meta_*.json.gz",
        )
    return _load_reviews(src, members)
