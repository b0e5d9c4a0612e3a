"""Tests of the Amazon loader: the sequences layout and raw Amazon Reviews JSON lines."""

from __future__ import annotations

import gzip
import json
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest

from llmrec.data.loaders.amazon import load_amazon
from llmrec.errors import DataError

ITEMS = "item_id\ttitle\n0\tFire Emblem\n1\tGBA Case &amp; Strap\n2\tIvan \"Ironman\" Stewart's Off Road\n3\tUnused\n"
SEQUENCES = "user_id\titem_ids\thistory_capped\n1\t2 0 1\t0\n2\t1 2\t1\n3\t\t0\n"


def write_sequences(root: Path, items: str = ITEMS, sequences: str = SEQUENCES) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "items.tsv").write_text(items, encoding="utf-8")
    (root / "sequences.tsv").write_text(sequences, encoding="utf-8")
    return root


def jsonl(rows: list[dict]) -> bytes:
    return ("\n".join(json.dumps(r) for r in rows) + "\n").encode()


REVIEWS = [
    {"reviewerID": "A1", "asin": "0700026657", "overall": 5.0, "unixReviewTime": 1445040000, "reviewText": "Fun"},
    {"reviewerID": "A1", "asin": "B00001", "overall": 2.0, "unixReviewTime": 1445050000, "style": {"Format:": "Disc"}},
    {"reviewerID": "A2", "asin": "B00001", "overall": 4.0, "unixReviewTime": 1300000000},
    {"reviewerID": "A2", "asin": "B00001", "overall": 4.0, "unixReviewTime": 1300000000},  # exact duplicate
    {"reviewerID": "A2", "asin": "B00NOMETA", "overall": 3.0, "unixReviewTime": 1300000001},
]
META = [
    {"asin": "0700026657", "title": "Anno 2070 &amp; More", "description": ["Build.", "Trade."],
     "brand": "Ubisoft", "category": ["Video Games", "PC", "Games"]},
    {"asin": "B00001", "title": "Doom", "description": "Shoot.", "category": []},
    {"asin": "B00001", "title": "Doom (duplicate meta row)"},
    {"asin": "B00EMPTY", "title": ""},
]  # fmt: skip


# --- sequences layout ---------------------------------------------------------------------


@pytest.mark.parametrize("as_zip", [False, True])
def test_sequences_layout(tmp_path, as_zip):
    root = write_sequences(tmp_path / "amazon-games")
    path = root
    if as_zip:
        path = tmp_path / "games.zip"
        with zipfile.ZipFile(path, "w") as z:
            for name in ("items.tsv", "sequences.tsv"):
                z.write(root / name, f"amazon-games/{name}")
    data = load_amazon(path)
    assert data.timestamp_kind == "order"
    inter = data.interactions
    assert inter[["user", "item"]].values.tolist() == [["1", "2"], ["1", "0"], ["1", "1"], ["2", "1"], ["2", "2"]]
    assert inter["timestamp"].tolist() == [0, 1, 2, 0, 1]
    assert inter["rating"].isna().all()
    assert data.items["title"].tolist() == [
        "Fire Emblem", "GBA Case & Strap", 'Ivan "Ironman" Stewart\'s Off Road', "Unused"
    ]  # fmt: skip
    assert data.users["user"].tolist() == ["1", "2", "3"]  # user 3 has an empty sequence
    assert data.users["history_capped"].dtype == bool
    assert data.users["history_capped"].tolist() == [False, True, False]
    assert data.extra["history_capped_users"] == 1 and data.extra["empty_sequences"] == 1
    assert data.sources["interactions"].endswith("sequences.tsv")
    assert data.sources["items"].endswith("items.tsv")


def test_sequences_without_capped_column(tmp_path):
    data = load_amazon(write_sequences(tmp_path / "a", sequences="user_id\titem_ids\nu\t0 1\n"))
    assert list(data.users.columns) == ["user"]
    assert len(data.interactions) == 2


def test_sequences_missing_file(tmp_path):
    root = write_sequences(tmp_path / "a")
    (root / "items.tsv").unlink()
    with pytest.raises(DataError, match="items.tsv not found") as exc:
        load_amazon(root)
    assert exc.value.path == str(root)


def test_sequences_missing_column(tmp_path):
    root = write_sequences(tmp_path / "a", sequences="user_id\titems\n1\t0 1\n")
    with pytest.raises(DataError) as exc:
        load_amazon(root)
    assert exc.value.field == "item_ids" and exc.value.path == str(root / "sequences.tsv")


def test_sequences_wrong_separator(tmp_path):
    root = write_sequences(tmp_path / "a", items="item_id,title\n0,Fire Emblem\n")
    with pytest.raises(DataError, match="tab-separated") as exc:
        load_amazon(root)
    assert exc.value.path == str(root / "items.tsv") and exc.value.line == 1


def test_sequences_unknown_item(tmp_path):
    root = write_sequences(tmp_path / "a", sequences="user_id\titem_ids\thistory_capped\n1\t0 42\t0\n")
    with pytest.raises(DataError, match="unknown item") as exc:
        load_amazon(root)
    assert exc.value.field == "item" and exc.value.path == str(root / "sequences.tsv")
    assert "'42'" in str(exc.value)


def test_sequences_bad_capped_flag(tmp_path):
    root = write_sequences(tmp_path / "a", sequences="user_id\titem_ids\thistory_capped\n1\t0\t0\n2\t1\tmaybe\n")
    with pytest.raises(DataError, match="'maybe'") as exc:
        load_amazon(root)
    assert exc.value.field == "history_capped" and exc.value.line == 3


def test_duplicate_user_is_an_error(tmp_path):
    root = write_sequences(tmp_path / "a", sequences="user_id\titem_ids\n1\t0\n1\t1\n")
    with pytest.raises(DataError, match="duplicate user"):
        load_amazon(root)


# --- raw Amazon Reviews -----------------------------------------------------------------


@pytest.mark.parametrize("as_zip", [False, True])
def test_reviews_with_meta(tmp_path, as_zip):
    files = {"Video_Games_5.json.gz": gzip.compress(jsonl(REVIEWS)), "meta_Video_Games.json": jsonl(META)}
    if as_zip:
        path = tmp_path / "amazon.zip"
        with zipfile.ZipFile(path, "w") as z:
            for name, raw in files.items():
                z.writestr(f"raw/{name}", raw)
    else:
        path = tmp_path / "raw"
        (path / "sub").mkdir(parents=True)
        for name, raw in files.items():
            (path / "sub" / name).write_bytes(raw)
    with pytest.warns(UserWarning, match=r"dropped 1 of 4 reviews of 1 items with no title in meta_Video_Games.json"):
        data = load_amazon(path)
    assert data.timestamp_kind == "unix"
    inter = data.interactions
    assert inter[["user", "item"]].values.tolist() == [["A1", "0700026657"], ["A1", "B00001"], ["A2", "B00001"]]
    assert inter["rating"].tolist() == [5.0, 2.0, 4.0]
    assert inter["timestamp"].tolist() == [1445040000, 1445050000, 1300000000]
    assert data.extra["duplicates_dropped"] == 1 and data.extra["no_title_dropped"] == 1
    items = data.items.set_index("item")
    assert set(items.index) == {"0700026657", "B00001"}  # leading zero kept, empty title dropped
    assert items.loc["0700026657", "title"] == "Anno 2070 & More"
    assert items.loc["0700026657", "description"] == "Build. Trade."
    assert items.loc["0700026657", "category"] == "Video Games > PC > Games"
    assert items.loc["B00001", "title"] == "Doom"  # first meta row wins
    assert items.loc["B00001", "description"] == "Shoot."
    assert items.loc["B00001", "brand"] == ""
    assert data.sources["interactions"].endswith("Video_Games_5.json.gz")
    assert data.sources["items"].endswith("meta_Video_Games.json")


def test_reviews_without_meta(tmp_path):
    (tmp_path / "Video_Games_5.json").write_bytes(jsonl(REVIEWS[:3]))
    with pytest.warns(UserWarning, match="no meta"):
        data = load_amazon(tmp_path)
    assert data.items["item"].tolist() == ["0700026657", "B00001"]
    assert (data.items["title"] == "").all()
    assert np.array_equal(data.interactions["rating"], [5.0, 2.0, 4.0])


def test_reviews_missing_column(tmp_path):
    rows = [{"reviewerID": "A1", "asin": "B1", "unixReviewTime": 1}]
    (tmp_path / "reviews.json").write_bytes(jsonl(rows))
    with pytest.raises(DataError) as exc:
        load_amazon(tmp_path)
    assert exc.value.field == "overall" and exc.value.path == str(tmp_path / "reviews.json")


def test_reviews_not_json(tmp_path):
    (tmp_path / "reviews.json").write_text("reviewerID,asin\nA1,B1\n")
    with pytest.raises(DataError, match="JSON") as exc:
        load_amazon(tmp_path)
    assert exc.value.path == str(tmp_path / "reviews.json")


def test_meta_2014_python_literals(tmp_path):
    (tmp_path / "reviews_Video_Games_5.json").write_bytes(jsonl(REVIEWS[:1]))
    (tmp_path / "meta_Video_Games.json").write_text("{'asin': '0700026657', 'title': 'Anno'}\n")
    with pytest.raises(DataError, match="Python literals") as exc:
        load_amazon(tmp_path)
    assert exc.value.path == str(tmp_path / "meta_Video_Games.json")


def test_several_review_files(tmp_path):
    (tmp_path / "Video_Games.json").write_bytes(jsonl(REVIEWS))
    (tmp_path / "Video_Games_5.json").write_bytes(jsonl(REVIEWS))
    with pytest.raises(DataError, match="several reviews files"):
        load_amazon(tmp_path)


def test_only_meta_file(tmp_path):
    (tmp_path / "meta_Video_Games.json").write_bytes(jsonl(META))
    with pytest.raises(DataError, match="no reviews file"):
        load_amazon(tmp_path)


def test_neither_layout(tmp_path):
    (tmp_path / "ratings.csv").write_text("a,b\n")
    with pytest.raises(DataError, match="no Amazon data found") as exc:
        load_amazon(tmp_path)
    assert exc.value.path == str(tmp_path)


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_amazon(tmp_path / "nope")


# --- real data --------------------------------------------------------------------------


@pytest.mark.shared_data
def test_real_amazon_games(shared_dataset):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = load_amazon(shared_dataset("amazon-games"))
    summary = data.summary()
    assert (summary["interactions"], summary["users"], summary["catalog_items"]) == (352_158, 40_437, 16_859)
    assert data.users["history_capped"].sum() == 301
    assert not data.interactions.duplicated(["user", "timestamp"]).any()
    lengths = data.interactions.groupby("user").size()
    assert lengths.min() >= 5  # 5-core
    assert not data.items["title"].str.contains("&amp;", regex=False).any()
