"""Tests of the MIND loader (news.tsv + behaviors.tsv). There is no real copy of MIND here."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from llmrec.data.loaders.mind import load_mind, split_tokens
from llmrec.errors import DataError

NEWS = (
    "N1\tsports\tgolf\tPar three\tA golf story.\thttps://assets.msn.com/N1\t[]\t[]\n"
    "N2\tnews\tnewsworld\tElections\t\thttps://assets.msn.com/N2\t[]\t[]\n"
    "N3\tfoodanddrink\trecipes\tSoup \"hot\"\tHot soup.\thttps://assets.msn.com/N3\t[{\"Label\": \"Soup\"}]\t[]\n"
    "N4\tnews\tnewsus\tRain\tIt rains.\thttps://assets.msn.com/N4\t[]\t[]\n"
    "N5\tmovies\tmovienews\tFilm\tA film.\thttps://assets.msn.com/N5\t[]\t[]\n"
)
# U1's rows are out of order in the file: its earliest row (8:55:22 AM) is the second one.
BEHAVIORS = (
    "1\tU1\t11/15/2019 10:00:00 AM\tN1 N2\tN3-0 N4-1 N5-0\n"
    "2\tU1\t11/15/2019 8:55:22 AM\tN1 N2\tN4-0 N3-1\n"
    "3\tU2\t11/14/2019 11:59:59 PM\t\tN1-1 N2-1 N3-0\n"
    "4\tU3\t11/13/2019 1:00:00 PM\tN5\tN5-1 N1-0\n"  # re-clicks a history item: kept once
)
T_U1 = 1573808122  # 2019-11-15 08:55:22 UTC
T_U1_LATER = 1573812000  # 2019-11-15 10:00:00 UTC
T_U2 = 1573775999  # 2019-11-14 23:59:59 UTC
T_U3 = 1573650000  # 2019-11-13 13:00:00 UTC


def write_dir(root: Path, news: str = NEWS, behaviors: str = BEHAVIORS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "news.tsv").write_text(news, encoding="utf-8")
    (root / "behaviors.tsv").write_text(behaviors, encoding="utf-8")
    return root


@pytest.mark.parametrize("as_zip", [False, True])
def test_load_mind(tmp_path, as_zip):
    path = write_dir(tmp_path / "MINDsmall_train")
    if as_zip:
        archive = tmp_path / "MINDsmall_train.zip"
        with zipfile.ZipFile(archive, "w") as z:  # the official zip has the files at the top
            z.write(path / "news.tsv", "news.tsv")
            z.write(path / "behaviors.tsv", "behaviors.tsv")
            z.writestr("entity_embedding.vec", "Q1\t0.1\n")
        path = archive
    data = load_mind(path)
    assert data.timestamp_kind == "unix"
    rows = data.chronological()[["user", "item", "timestamp"]].values.tolist()
    assert rows == [
        ["U1", "N1", T_U1 - 2], ["U1", "N2", T_U1 - 1],  # history before the earliest impression
        ["U1", "N3", T_U1], ["U1", "N4", T_U1_LATER],  # clicks at the impression time
        ["U2", "N1", T_U2], ["U2", "N2", T_U2],  # empty history, two clicks
        ["U3", "N5", T_U3 - 1],  # history item re-clicked: first kept
    ]  # fmt: skip
    assert data.interactions["rating"].isna().all()
    assert data.interactions["timestamp"].is_monotonic_increasing
    assert data.extra["duplicates_dropped"] == 1
    assert data.extra["history_clicks"] == 3 and data.extra["impression_clicks"] == 5
    assert list(data.items.columns) == ["item", "title", "category", "subcategory", "abstract"]
    items = data.items.set_index("item")
    assert items.loc["N3", "title"] == 'Soup "hot"'
    assert items.loc["N2", "abstract"] == ""
    assert items.loc["N1", ["category", "subcategory"]].tolist() == ["sports", "golf"]
    assert data.users["user"].tolist() == ["U1", "U2", "U3"]
    assert list(data.users.columns) == ["user"]
    assert data.sources["interactions"].endswith("behaviors.tsv")
    assert data.sources["items"].endswith("news.tsv")


def test_history_timestamps_precede_every_impression(tmp_path):
    history = " ".join(["N1", "N2", "N3", "N4"])
    behaviors = f"1\tU1\t11/15/2019 8:00:00 AM\t{history}\tN5-1\n"
    data = load_mind(write_dir(tmp_path / "m", behaviors=behaviors))
    t0 = 1573804800
    assert data.interactions["timestamp"].tolist() == [t0 - 4, t0 - 3, t0 - 2, t0 - 1, t0]
    assert data.interactions["item"].tolist() == ["N1", "N2", "N3", "N4", "N5"]


def test_unlabelled_impressions_give_no_clicks(tmp_path):
    behaviors = "1\tU1\t11/15/2019 8:00:00 AM\tN1\tN2 N3\n2\tU2\t11/15/2019 8:00:00 AM\t\tN2 N3\n"
    data = load_mind(write_dir(tmp_path / "m", behaviors=behaviors))
    assert data.interactions["item"].tolist() == ["N1"]
    assert data.users["user"].tolist() == ["U1", "U2"]


def test_split_tokens():
    import pandas as pd

    rows, tokens = split_tokens(pd.Series(["a b", "", "  c  d ", None]))
    assert rows.tolist() == [0, 0, 2, 2] and tokens.tolist() == ["a", "b", "c", "d"]


def test_missing_file(tmp_path):
    root = write_dir(tmp_path / "m")
    (root / "news.tsv").unlink()
    with pytest.raises(DataError, match="news.tsv not found") as exc:
        load_mind(root)
    assert exc.value.path == str(root)


def test_missing_path(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_mind(tmp_path / "MINDsmall_train.zip")


def test_wrong_separator(tmp_path):
    root = write_dir(tmp_path / "m", behaviors="1,U1,11/15/2019 8:00:00 AM,N1,N2-1\n")
    with pytest.raises(DataError, match="expected 5 '\\\\t'-separated fields") as exc:
        load_mind(root)
    assert exc.value.path == str(root / "behaviors.tsv") and exc.value.line == 1


def test_missing_column(tmp_path):
    root = write_dir(tmp_path / "m", news="N1\tsports\tgolf\tPar three\n")
    with pytest.raises(DataError, match="found 4") as exc:
        load_mind(root)
    assert exc.value.path == str(root / "news.tsv")


def test_bad_time(tmp_path):
    behaviors = "1\tU1\t11/15/2019 8:00:00 AM\tN1\tN2-1\n2\tU2\t2019-11-15T08:00:00\tN1\tN2-1\n"
    root = write_dir(tmp_path / "m", behaviors=behaviors)
    with pytest.raises(DataError, match="cannot read time") as exc:
        load_mind(root)
    assert exc.value.field == "time" and exc.value.line == 2 and exc.value.path == str(root / "behaviors.tsv")


def test_unknown_news_id(tmp_path):
    root = write_dir(tmp_path / "m", behaviors="1\tU1\t11/15/2019 8:00:00 AM\tN1 N99\tN2-1\n")
    with pytest.raises(DataError, match="unknown item") as exc:
        load_mind(root)
    assert exc.value.field == "item" and "'N99'" in str(exc.value)
    assert exc.value.path == str(root / "behaviors.tsv")


def test_empty_user_id(tmp_path):
    root = write_dir(tmp_path / "m", behaviors="1\t\t11/15/2019 8:00:00 AM\tN1\tN2-1\n")
    with pytest.raises(DataError, match="empty user id") as exc:
        load_mind(root)
    assert exc.value.line == 1


def test_duplicate_news_id(tmp_path):
    root = write_dir(tmp_path / "m", news=NEWS + NEWS.splitlines(keepends=True)[0])
    with pytest.raises(DataError, match="duplicate item id 'N1'"):
        load_mind(root)
