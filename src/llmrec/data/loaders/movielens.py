"""MovieLens loaders: 100K (u.data/u.item/u.user), 1M (*.dat, latin-1), 25M / latest (csv).

Each loader reads the official zip archive directly, or a directory holding its files.

>>> import zipfile, tempfile, pathlib
>>> p = pathlib.Path(tempfile.mkdtemp()) / "ml-1m.zip"
>>> with zipfile.ZipFile(p, "w") as z:
...     z.writestr("ml-1m/ratings.dat", "1::10::5::978300760\\n1::20::2::978300761\\n")
...     z.writestr("ml-1m/movies.dat", "10::Heat (1995)::Action|Crime\\n20::Up (2009)::Animation\\n")
...     z.writestr("ml-1m/users.dat", "1::F::1::10::48067\\n")
>>> data = load_ml_1m(p)
>>> data.interactions["rating"].tolist(), data.users.loc[0, "age"]
([5.0, 2.0], 'under 18')
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pandas as pd

from llmrec.data.loaders.files import SourceFiles, documented_encoding
from llmrec.data.schema import RecData, check_rating_scale
from llmrec.errors import DataError

ML_AGE = {
    "1": "under 18", "18": "18-24", "25": "25-34", "35": "35-44",
    "45": "45-49", "50": "50-55", "56": "56+",
}  # fmt: skip
ML_OCCUPATION = {
    "0": "other", "1": "academic/educator", "2": "artist", "3": "clerical/admin",
    "4": "college/grad student", "5": "customer service", "6": "doctor/health care",
    "7": "executive/managerial", "8": "farmer", "9": "homemaker", "10": "K-12 student",
    "11": "lawyer", "12": "programmer", "13": "retired", "14": "sales/marketing",
    "15": "scientist", "16": "self-employed", "17": "technician/engineer",
    "18": "tradesman/craftsman", "19": "unemployed", "20": "writer",
}  # fmt: skip
STARS = (1.0, 5.0)  # MovieLens-100K / 1M: whole stars 1-5
HALF_STARS = (0.5, 5.0)  # MovieLens-25M / 20M / latest: half stars 0.5-5
ML_GENDER = {"F": "female", "M": "male"}
ML100K_GENRES = [
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery",
    "Romance", "Sci-Fi", "Thriller", "War", "Western",
]  # fmt: skip


def read_delimited(
    raw: bytes,
    *,
    sep: str,
    names: list[str],
    where: str,
    encoding: str = "latin-1",
    dtype: dict | None = None,
    header: bool = False,
) -> pd.DataFrame:
    """Parse a delimited file into ``names`` columns with the fast C parser.

    Multi-character separators (MovieLens-1M's ``::``) are first rewritten to a tab, which
    never occurs in those files, so no slow Python-engine parsing is needed. A file with the
    wrong separator or the wrong number of fields gives a :class:`DataError` naming it.
    """
    if not raw.strip():
        raise DataError("file is empty", path=where)
    encoding = documented_encoding(raw, encoding, where)
    if len(sep) > 1:
        if b"\t" in raw[:65536]:
            raise DataError(f"unexpected tab character; expected {sep!r}-separated fields", path=where, line=1)
        raw = raw.replace(sep.encode(encoding), b"\t")
        sep = "\t"
    first = raw.split(b"\n", 1)[0].decode(encoding, errors="replace").rstrip("\r")
    n_fields = len(first.split(sep))
    if n_fields < len(names) if not header else n_fields < 2:
        raise DataError(
            f"expected {len(names)} {sep!r}-separated fields ({', '.join(names)}), found {n_fields} on the first line "
            f"{first[:80]!r}",
            path=where,
            line=1,
            hint="wrong separator or wrong file?",
        )
    try:
        frame = pd.read_csv(
            io.BytesIO(raw),
            sep=sep,
            header=0 if header else None,
            names=None if header else names,
            usecols=None if header else range(len(names)),
            encoding=encoding,
            quoting=csv.QUOTE_NONE if not header else csv.QUOTE_MINIMAL,
            dtype=dtype,
            engine="c",
            keep_default_na=False,
            na_values=[""],
        )
    except (ValueError, pd.errors.ParserError) as exc:
        if isinstance(exc.__context__, KeyboardInterrupt) or "KeyboardInterrupt" in str(exc):
            raise KeyboardInterrupt from None  # Ctrl-C inside the C parser is not a corrupt file
        raise DataError(f"could not parse: {exc}", path=where) from None
    return frame


def _numeric(frame: pd.DataFrame, column: str, where: str) -> pd.Series:
    values = pd.to_numeric(frame[column], errors="coerce")
    bad = values.isna() & frame[column].notna()
    if bad.any() or values.isna().any():
        row = int(np.flatnonzero((values.isna()).to_numpy())[0])
        value = frame[column].iloc[row]
        what = "missing value (a short line?)" if pd.isna(value) else f"non-numeric value {str(value)!r}"
        raise DataError(what, path=where, field=column, line=row + 1)
    return values


def load_ml_1m(path: str | Path) -> RecData:
    """MovieLens-1M: ``UserID::MovieID::Rating::Timestamp`` and friends, latin-1 text."""
    src = SourceFiles(path)
    where = {k: src.display(f) for k, f in [("interactions", "ratings.dat"), ("items", "movies.dat"), ("users", "users.dat")]}
    ratings = read_delimited(
        src.read_bytes("ratings.dat"), sep="::", names=["user", "item", "rating", "timestamp"], where=where["interactions"]
    )
    ratings["rating"] = _numeric(ratings, "rating", where["interactions"])
    check_rating_scale(ratings["rating"], STARS, path=where["interactions"], name="MovieLens")
    ratings["timestamp"] = _numeric(ratings, "timestamp", where["interactions"])
    movies = read_delimited(src.read_bytes("movies.dat"), sep="::", names=["item", "title", "genres"], where=where["items"], dtype=str)
    movies["genres"] = movies["genres"].fillna("").str.replace("|", ", ", regex=False)
    users = read_delimited(
        src.read_bytes("users.dat"), sep="::", names=["user", "gender", "age", "occupation", "zip"], where=where["users"], dtype=str
    )
    users["gender"] = users["gender"].map(ML_GENDER).fillna(users["gender"])
    users["age"] = users["age"].map(ML_AGE).fillna(users["age"])
    users["occupation"] = users["occupation"].map(ML_OCCUPATION).fillna(users["occupation"])
    return RecData("ml-1m", ratings, movies, users, timestamp_kind="unix", sources=where,
                   extra={"rating_scale": list(STARS)}).validated()


def load_ml_100k(path: str | Path) -> RecData:
    """MovieLens-100K: ``u.data`` (tab), ``u.item`` and ``u.user`` (``|``), latin-1 text."""
    src = SourceFiles(path)
    where = {k: src.display(f) for k, f in [("interactions", "u.data"), ("items", "u.item"), ("users", "u.user")]}
    ratings = read_delimited(src.read_bytes("u.data"), sep="\t", names=["user", "item", "rating", "timestamp"], where=where["interactions"])
    ratings["rating"] = _numeric(ratings, "rating", where["interactions"])
    check_rating_scale(ratings["rating"], STARS, path=where["interactions"], name="MovieLens")
    ratings["timestamp"] = _numeric(ratings, "timestamp", where["interactions"])
    cols = ["item", "title", "release_date", "video_release_date", "imdb_url", *[f"g{i}" for i in range(19)]]
    items = read_delimited(src.read_bytes("u.item"), sep="|", names=cols, where=where["items"], dtype=str)
    flags = items[[f"g{i}" for i in range(19)]].to_numpy() == "1"
    names = np.array(ML100K_GENRES, dtype=object)
    items["genres"] = [", ".join(names[row]) for row in flags]  # 1,682 rows: not a hot path
    items = items[["item", "title", "release_date", "genres", "imdb_url"]]
    users = read_delimited(src.read_bytes("u.user"), sep="|", names=["user", "age", "gender", "occupation", "zip"], where=where["users"], dtype=str)
    users["gender"] = users["gender"].map(ML_GENDER).fillna(users["gender"])
    return RecData("ml-100k", ratings, items, users, timestamp_kind="unix", sources=where,
                   extra={"rating_scale": list(STARS)}).validated()


def load_ml_csv(path: str | Path, name: str = "ml-25m") -> RecData:
    """MovieLens-25M / 20M / latest(-small): ``ratings.csv`` and ``movies.csv`` with headers.

    ``tags.csv``, when present, is folded into the items as a ``tags`` text field (the most
    frequent tags first). There are no user profiles in these releases.
    """
    src = SourceFiles(path)
    where = {"interactions": src.display("ratings.csv"), "items": src.display("movies.csv")}
    ratings = _read_csv_fast(src.read_bytes("ratings.csv"), where["interactions"])
    ratings = ratings.rename(columns={"userId": "user", "movieId": "item"})
    from llmrec.data.schema import require_columns

    require_columns(ratings, ["user", "item", "rating", "timestamp"], path=where["interactions"], what="ratings")
    check_rating_scale(pd.to_numeric(ratings["rating"], errors="coerce"), HALF_STARS, path=where["interactions"],
                       name="MovieLens", first_line=2)
    movies_raw = src.read_bytes("movies.csv")
    documented_encoding(movies_raw, "utf-8", where["items"])
    movies = pd.read_csv(io.BytesIO(movies_raw), dtype=str, keep_default_na=False, encoding="utf-8")
    movies = movies.rename(columns={"movieId": "item"})
    require_columns(movies, ["item", "title", "genres"], path=where["items"], what="movies")
    movies["genres"] = movies["genres"].str.replace("|", ", ", regex=False).replace("(no genres listed)", "")
    if src.has("tags.csv"):
        tags_raw = src.read_bytes("tags.csv")
        documented_encoding(tags_raw, "utf-8", src.display("tags.csv"))
        tags = pd.read_csv(io.BytesIO(tags_raw), dtype=str, keep_default_na=False)
        if {"movieId", "tag"} <= set(tags.columns):
            top = (
                tags.assign(tag=tags["tag"].str.strip().str.lower())
                .groupby(["movieId", "tag"]).size().rename("n").reset_index()
                .sort_values(["movieId", "n", "tag"], ascending=[True, False, True])
                .groupby("movieId").head(10)
                .groupby("movieId")["tag"].agg(", ".join)
            )
            movies["tags"] = movies["item"].map(top).fillna("")
    return RecData(name, ratings[["user", "item", "rating", "timestamp"]], movies, None, timestamp_kind="unix",
                   sources=where, extra={"rating_scale": list(HALF_STARS)}).validated()


def _read_csv_fast(raw: bytes, where: str) -> pd.DataFrame:
    """Numeric csv with a header via pyarrow (25M rows in seconds)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(pa.BufferReader(raw))
    except pa.ArrowInvalid as exc:
        raise DataError(f"could not parse: {exc}", path=where) from exc
    return table.to_pandas()
