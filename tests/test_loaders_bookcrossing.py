"""Tests of the Book-Crossing loader: official 2004 dump, cleaned copy, faults and errors."""

from __future__ import annotations

import warnings
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from llmrec.data.loaders.bookcrossing import clean_quotes, load_bookcrossing
from llmrec.errors import DataError

# --- fixtures -------------------------------------------------------------------------


BOOKS_HEADER = (
    b'"ISBN";"Book-Title";"Book-Author";"Year-Of-Publication";"Publisher";"Image-URL-S";"Image-URL-M";"Image-URL-L"\n'
)


def _book(isbn: str, title: str, author: str = "Au Thor", year: str = "1999", publisher: str = "Pub") -> bytes:
    return f'"{isbn}";"{title}";"{author}";"{year}";"{publisher}";"s.jpg";"m.jpg";"l.jpg"\n'.encode("latin-1")


def official_files() -> dict[str, bytes]:
    """A tiny copy of the 2004 dump with its known faults (latin-1, ';', quoted)."""
    books = BOOKS_HEADER + b"".join(
        [
            _book("0001", "Caf\xe9 Society", publisher="Smith &amp; Sons"),
            # a title with escaped quotes (parsed with '\' as escape character)
            _book("0002", 'He said \\"hi\\"', year="0"),
            # the X-Men fault of the real file: an escaped quote closes the title early
            b'"078946697X";"DK Readers: Creating the X-Men (Level 4: Proficient Readers)\\"";Michael Teitelbaum""";'
            b'"2000";"DK Publishing Inc";"s";"m";"l"\n',
            # a line with an extra ';' field: skipped with a warning
            b'"0004";"Broken";"Au";"2001";"Pub";"s";"m";"l";"extra"\n',
            _book("0005", "Five"),
            b'"0006";"Too";"few"\n',  # too few fields: skipped too
        ]
    )
    ratings = (
        b'"User-ID";"ISBN";"Book-Rating"\n'
        b'"1";"0001";"8"\n'
        b'"1";"0002";"0"\n'  # implicit
        b'"1";"078946697X";"10"\n'
        b'"2";"0001";"3"\n'
        b'"2";"9999";"7"\n'  # ISBN absent from BX-Books.csv
        b'"2";"0005";"5"\n'
    )
    users = (
        b'"User-ID";"Location";"Age"\n'
        b'"1";"nyc, new york, usa";NULL\n'
        b'"2";"m\xfcnchen, bayern, germany";"34"\n'
        b'"3";"porto, , portugal";"244"\n'
    )
    return {"BX-Book-Ratings.csv": ratings, "BX-Books.csv": books, "BX-Users.csv": users}


def cleaned_files() -> dict[str, bytes]:
    """A tiny copy of the cleaned csv layout of ../shared/data/bookcrossing."""
    ratings = "User-ID,ISBN,Book-Rating\n8,0002005018,7\n19,0449003787,9\n8,0399135782,5\n8,039592720x,6\n"
    books = (
        "ISBN,Book-Title,Book-Author,Year-Of-Publication,Book-Publisher\n"
        "0002005018,Clara Callan,Richard Bruce Wright,2001,HarperFlamingo Canada\n"
        '0449003787,"\\O\\"" Is for Outlaw""",SUE GRAFTON,2001,Ballantine Books\n'
        '0399135782,"Love, Medicine and Miracles",M.D. Bernie S. Siegel,1988,"Little, Brown"\n'
        "039592720x,Café Noir,Ann Other,0,Pub\n"
    )
    users = (
        "User-ID,User-City,User-State,User-Country,User-Age\n"
        '8,timmins, ontario," canada""",\n'
        '19,weston, ,,"14"""\n'
        '12036,zurich," \\""n/a\\"""," switzerland""",\n'
    )
    return {"BX-Ratings.csv": ratings.encode(), "BX-Books.csv": books.encode(), "BX-Users.csv": users.encode()}


def write_dir(root: Path, files: dict[str, bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, raw in files.items():
        (root / name).write_bytes(raw)
    return root


def write_zip(path: Path, files: dict[str, bytes], prefix: str = "") -> Path:
    with zipfile.ZipFile(path, "w") as z:
        for name, raw in files.items():
            z.writestr(prefix + name, raw)
    return path


def load_quietly(path: Path, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_bookcrossing(path, **kwargs)


# --- official 2004 dump -----------------------------------------------------------------


def test_official_dump_directory(tmp_path):
    root = write_dir(tmp_path / "bx", official_files())
    with pytest.warns(UserWarning) as record:
        data = load_bookcrossing(root)
    messages = [str(w.message) for w in record]
    skipped = [m for m in messages if "skipped" in m]
    assert len(skipped) == 1  # one warning for the file, not one per line
    assert "BX-Books.csv" in skipped[0] and "skipped 2 line(s)" in skipped[0]
    assert "first lines: 5, 7" in skipped[0]
    unknown = [m for m in messages if "absent" in m]
    assert len(unknown) == 1 and "BX-Book-Ratings.csv" in unknown[0] and "dropped 1 of" in unknown[0]

    assert data.timestamp_kind == "none"
    inter = data.interactions
    assert inter[["user", "item"]].values.tolist() == [["1", "0001"], ["1", "078946697X"], ["2", "0001"], ["2", "0005"]]
    assert inter["rating"].tolist() == [8.0, 10.0, 3.0, 5.0]
    assert inter["timestamp"].tolist() == [0, 1, 0, 1]  # file order within each user
    assert data.extra["skipped_lines"] == 2
    assert data.extra["skipped_lines_by_file"] == {"BX-Books.csv": 2}
    assert data.extra["implicit_dropped"] == 1
    assert data.extra["unknown_isbn_dropped"] == 1
    assert data.extra["format"] == "official-2004"
    assert data.extra["encodings"]["BX-Books.csv"] == "cp1252"

    items = data.items.set_index("item")
    assert list(data.items.columns) == ["item", "title", "author", "year", "publisher"]
    assert set(items.index) == {"0001", "0002", "078946697X", "0005"}
    assert items.loc["0001", "title"] == "Café Society"
    assert items.loc["0001", "publisher"] == "Smith & Sons"
    assert items.loc["0002", "title"] == 'He said "hi"'
    assert items.loc["0002", "year"] == ""
    xmen = items.loc["078946697X"]
    assert xmen["title"] == "DK Readers: Creating the X-Men (Level 4: Proficient Readers)"
    assert (xmen["author"], xmen["year"], xmen["publisher"]) == ("Michael Teitelbaum", "2000", "DK Publishing Inc")

    users = data.users.set_index("user")
    assert list(data.users.columns) == ["user", "location", "age"]
    assert users.loc["1", "location"] == "nyc, new york, usa"
    assert users.loc["2", "location"] == "münchen, bayern, germany"
    assert users["age"].tolist() == ["", "34", ""]  # NULL and 244 -> ""
    assert data.sources["items"].endswith("BX-Books.csv")


def test_official_dump_zip_and_implicit_ratings(tmp_path):
    archive = write_zip(tmp_path / "BX-CSV-Dump.zip", official_files())
    data = load_quietly(archive, explicit_only=False)
    assert data.interactions["rating"].tolist() == [8.0, 0.0, 10.0, 3.0, 5.0]
    assert data.interactions.loc[1, "item"] == "0002"
    assert data.extra["implicit_ratings"] == 1 and "implicit_dropped" not in data.extra
    assert data.sources["interactions"] == f"{archive}!BX-Book-Ratings.csv"


def test_without_users_file(tmp_path):
    files = official_files()
    del files["BX-Users.csv"]
    data = load_quietly(write_dir(tmp_path / "bx", files))
    assert list(data.users.columns) == ["user"]
    assert data.users["user"].tolist() == ["1", "2"]


# --- cleaned copy -------------------------------------------------------------------------


@pytest.mark.parametrize("as_zip", [False, True])
def test_cleaned_copy(tmp_path, as_zip):
    files = cleaned_files()
    files["BX-NewBooks.csv"] = b"garbage that must be ignored\n"
    path = write_zip(tmp_path / "bx.zip", files, prefix="bookcrossing/") if as_zip else write_dir(tmp_path / "bx", files)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the clean copy gives no warning
        data = load_bookcrossing(path)
    assert data.extra["format"] == "cleaned"
    assert data.extra["encodings"] == {"BX-Books.csv": "utf-8", "BX-Ratings.csv": "utf-8", "BX-Users.csv": "utf-8"}
    inter = data.interactions
    assert inter["user"].tolist() == ["8", "19", "8", "8"]
    assert inter["timestamp"].tolist() == [0, 0, 1, 2]
    assert inter["rating"].dtype == "float32"

    items = data.items.set_index("item")
    assert items.loc["0449003787", "title"] == '"O" Is for Outlaw'
    assert items.loc["0399135782", "title"] == "Love, Medicine and Miracles"
    assert items.loc["0399135782", "publisher"] == "Little, Brown"
    assert items.loc["039592720x", "title"] == "Café Noir"
    assert items.loc["039592720x", "year"] == ""

    users = data.users.set_index("user")
    assert users.loc["8", "location"] == "timmins, ontario, canada"
    assert users.loc["8", "age"] == ""
    assert users.loc["19", "location"] == "weston"  # empty state and country dropped
    assert users.loc["19", "age"] == "14"  # the quote artefact sits on the age here
    assert users.loc["12036", "location"] == "zurich, switzerland"  # n/a dropped
    assert data.sources["users"].endswith("BX-Users.csv")


def test_cleaned_copy_latin1_fallback(tmp_path):
    files = cleaned_files()
    files["BX-Books.csv"] = files["BX-Books.csv"].decode().encode("latin-1")
    data = load_quietly(write_dir(tmp_path / "bx", files))
    assert data.extra["encodings"]["BX-Books.csv"] == "cp1252"
    assert data.items.set_index("item").loc["039592720x", "title"] == "Café Noir"


def test_bom_and_crlf(tmp_path):
    files = {name: raw.replace(b"\n", b"\r\n") for name, raw in cleaned_files().items()}
    files["BX-Ratings.csv"] = b"\xef\xbb\xbf" + files["BX-Ratings.csv"]
    data = load_quietly(write_dir(tmp_path / "bx", files))
    assert data.interactions["item"].tolist() == ["0002005018", "0449003787", "0399135782", "039592720x"]
    assert data.users.set_index("user").loc["19", "age"] == "14"
    assert not data.items["publisher"].str.endswith("\r").any()


def test_clean_quotes():
    values = ['Mitchell\'s \\Gone With the Wind\\""', 'plain', 'end "quoted"', 'x"""']
    assert clean_quotes(pd.Series(values)).tolist() == [
        'Mitchell\'s "Gone With the Wind"', "plain", 'end "quoted"', "x"
    ]


# --- errors -----------------------------------------------------------------------------


def test_missing_ratings_file(tmp_path):
    files = cleaned_files()
    del files["BX-Ratings.csv"]
    root = write_dir(tmp_path / "bx", files)
    with pytest.raises(DataError, match="BX-Book-Ratings.csv or BX-Ratings.csv not found") as exc:
        load_bookcrossing(root)
    assert exc.value.path == str(root)


def test_missing_books_file(tmp_path):
    files = cleaned_files()
    del files["BX-Books.csv"]
    with pytest.raises(DataError, match="BX-Books.csv not found"):
        load_bookcrossing(write_dir(tmp_path / "bx", files))


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_bookcrossing(tmp_path / "nope")


def test_missing_column_names_file_and_field(tmp_path):
    files = cleaned_files()
    files["BX-Ratings.csv"] = b"User-ID,ISBN,Score\n8,0002005018,7\n"
    root = write_dir(tmp_path / "bx", files)
    with pytest.raises(DataError) as exc:
        load_bookcrossing(root)
    assert exc.value.field == "Book-Rating"
    assert exc.value.path == str(root / "BX-Ratings.csv")


def test_missing_user_column(tmp_path):
    files = cleaned_files()
    files["BX-Users.csv"] = b"User-ID,User-City,User-State,User-Country\n8,a,b,c\n"
    with pytest.raises(DataError) as exc:
        load_bookcrossing(write_dir(tmp_path / "bx", files))
    assert exc.value.field == "User-Age" and exc.value.path.endswith("BX-Users.csv")


def test_wrong_separator(tmp_path):
    files = cleaned_files()
    files["BX-Ratings.csv"] = b"User-ID\tISBN\tBook-Rating\n8\t0002005018\t7\n"
    with pytest.raises(DataError, match="cannot detect the separator") as exc:
        load_bookcrossing(write_dir(tmp_path / "bx", files))
    assert exc.value.path.endswith("BX-Ratings.csv") and exc.value.line == 1


def test_empty_file(tmp_path):
    files = cleaned_files()
    files["BX-Books.csv"] = b""
    with pytest.raises(DataError, match="empty") as exc:
        load_bookcrossing(write_dir(tmp_path / "bx", files))
    assert exc.value.path.endswith("BX-Books.csv")


def test_unknown_user_is_an_error(tmp_path):
    files = cleaned_files()
    files["BX-Ratings.csv"] += b"777,0002005018,4\n"
    with pytest.raises(DataError, match="unknown user") as exc:
        load_bookcrossing(write_dir(tmp_path / "bx", files))
    assert exc.value.field == "user" and exc.value.path.endswith("BX-Ratings.csv")


def test_bad_rating_value(tmp_path):
    files = cleaned_files()
    files["BX-Ratings.csv"] = b"User-ID,ISBN,Book-Rating\n8,0002005018,great\n"
    with pytest.raises(DataError, match="'great'") as exc:
        load_bookcrossing(write_dir(tmp_path / "bx", files))
    assert exc.value.field == "Book-Rating" and exc.value.line == 2


def test_all_ratings_dropped_is_an_error(tmp_path):
    files = official_files()
    files["BX-Book-Ratings.csv"] = b'"User-ID";"ISBN";"Book-Rating"\n"1";"0001";"0"\n'
    with pytest.raises(DataError, match="no interactions"):
        load_quietly(write_dir(tmp_path / "bx", files))


# --- real data --------------------------------------------------------------------------


@pytest.mark.shared_data
def test_real_cleaned_bookcrossing(shared_dataset):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_bookcrossing(shared_dataset("bookcrossing"))
    summary = data.summary()
    assert (summary["interactions"], summary["users"], summary["items"]) == (204_164, 48_299, 18_185)
    assert len(data.users) == 48_299 and len(data.items) == 18_185
    counts = data.interactions["rating"].value_counts().sort_index()
    assert counts.to_dict() == {
        1.0: 712, 2.0: 1173, 3.0: 2559, 4.0: 3855, 5.0: 20080,
        6.0: 16195, 7.0: 35437, 8.0: 51206, 9.0: 34822, 10.0: 38125,
    }  # fmt: skip
    assert data.extra["skipped_lines"] == 0 and data.extra["unknown_isbn_dropped"] == 0
    assert not data.users["location"].str.endswith('"').any()
    assert not data.users["age"].str.contains('"').any()
    assert data.users["age"].eq("").mean() > 0.39  # 39% of the ages are missing in the source
    per_user = data.interactions.groupby("user").size()
    assert int((per_user >= 11).sum()) == 3440
