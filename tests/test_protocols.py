"""Protocol builders on hand-made data (exact expectations) and on random data (invariants)."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from llmrec.data.protocols import (
    PreparedData,
    RellaConfig,
    TallrecConfig,
    TrsrConfig,
    build_rella,
    build_tallrec,
    build_trsr,
)
from llmrec.data.protocols.base import concat_ranges, split_by_rank
from llmrec.data.schema import RecData
from llmrec.errors import DataError
from tests.conftest import random_ratings


def make_data(rows, name="toy", timestamp_kind="unix", n_items=None):
    inter = pd.DataFrame(rows, columns=["user", "item", "rating", "timestamp"])
    n_items = n_items or int(inter["item"].max())
    items = pd.DataFrame({"item": range(1, n_items + 1), "title": [f"T{i}" for i in range(1, n_items + 1)]})
    if timestamp_kind == "none":
        inter = inter.drop(columns="timestamp")
    return RecData(name, inter, items, timestamp_kind=timestamp_kind).validated()


def test_concat_ranges_matches_python_loop():
    rng = np.random.default_rng(0)
    index = rng.integers(0, 100, 50)
    lengths = rng.integers(0, 7, 50)
    flat, offsets = concat_ranges(index, lengths)
    expected = [i + j for i, n in zip(index, lengths) for j in range(n)]
    assert flat.tolist() == expected
    assert offsets.tolist() == [0, *np.cumsum(lengths).tolist()]


def test_split_by_rank_proportions():
    labels = split_by_rank(1000, (0.8, 0.1, 0.1))
    assert (labels == "train").sum() == 800 and (labels == "valid").sum() == 100 and (labels == "test").sum() == 100
    assert list(labels[:800]) == ["train"] * 800


def test_rella_hand_made():
    # user 1 rates items 1..8 at times 10..80 (ratings alternate 5, 2); user 2 rates 3 items
    rows = [(1, i, 5 if i % 2 else 2, i * 10) for i in range(1, 9)] + [(2, i, 4, 5 + i) for i in range(1, 4)]
    out = build_rella(make_data(rows), RellaConfig(min_history=5, max_history=2, split=(1, 1, 1)))
    all_rows = pa.concat_tables(out.splits.values()).to_pylist()
    # samples: user 1's 6th, 7th, 8th ratings (5 earlier ones each); user 2 has too few
    assert sorted(r["item"] for r in all_rows) == ["6", "7", "8"]
    by_item = {r["item"]: r for r in all_rows}
    assert by_item["6"]["history_items"] == ["4", "5"]  # the 2 most recent, oldest first
    assert by_item["8"]["history_ratings"] == [2.0, 5.0]
    assert by_item["8"]["history_end"] == 7  # 7 earlier ratings in sequences.parquet
    assert [by_item[i]["label"] for i in "678"] == [0, 1, 0]  # rating > 3
    # global time split 1:1:1 -> oldest sample in train, newest in test
    assert [out.splits[s]["item"].to_pylist() for s in ("train", "valid", "test")] == [["6"], ["7"], ["8"]]
    seq = out.sequences.to_pylist()
    assert seq[0]["items"] == [str(i) for i in range(1, 9)]


def test_rella_random_data_invariants():
    data = make_data(random_ratings(40, 80, (3, 50), seed=1))
    out = build_rella(data, RellaConfig(max_history=7))
    seq = {r["user"]: r for r in out.sequences.to_pylist()}
    n_samples = sum(t.num_rows for t in out.splits.values())
    counts = data.interactions.groupby("user").size()
    assert n_samples == int((counts - 5).clip(lower=0).sum())  # every rating after the 5th
    times = [out.splits[s]["timestamp"].to_numpy() for s in ("train", "valid", "test")]
    assert times[0].max() <= times[1].min() and times[1].max() <= times[2].min()  # global time split
    for row in out.splits["valid"].to_pylist():
        full = seq[row["user"]]
        end = row["history_end"]
        assert full["items"][end] == row["item"]  # the pointer lands on the target
        assert row["history_items"] == full["items"][max(0, end - 7) : end]
        assert row["history_ratings"] == full["ratings"][max(0, end - 7) : end]


def test_rella_threshold_defaults_to_5_on_ten_point_scale():
    rows = [(1, i, r, i) for i, r in enumerate([7, 7, 7, 7, 7, 5, 6, 10], start=1)]
    out = build_rella(make_data(rows), RellaConfig(split=(1, 0, 0)))
    assert out.splits["train"]["label"].to_pylist() == [0, 1, 1]
    assert out.config["label_threshold"] == 5


def test_rella_errors():
    with pytest.raises(DataError, match="no samples"):
        build_rella(make_data([(1, 1, 5, 1), (1, 2, 4, 2)]), RellaConfig())
    implicit = make_data([(1, 1, np.nan, 1), (1, 2, np.nan, 2)])
    with pytest.raises(DataError, match="explicit ratings"):
        build_rella(implicit, RellaConfig())
    no_time = make_data([(1, 1, 5, 0)], timestamp_kind="none")
    with pytest.raises(DataError, match="no timestamps"):
        build_rella(no_time, RellaConfig(order="time"))


def test_tallrec_time_windows():
    rows = random_ratings(20, 50, (5, 40), seed=2)
    data = make_data(rows)
    cfg = TallrecConfig(max_samples=100, few_shot=[4, 16, 1000])
    out = build_tallrec(data, cfg)
    main = pa.concat_tables([out.splits[s] for s in ("train", "valid", "test")])
    assert main.num_rows == 100
    assert [out.splits[s].num_rows for s in ("train", "valid", "test")] == [80, 10, 10]
    # the kept samples are the most recent ones
    chrono = data.chronological()
    chrono["pos"] = chrono.groupby("user").cumcount()
    eligible = chrono[chrono["pos"] >= 10]
    assert main["timestamp"].to_numpy().min() >= np.sort(eligible["timestamp"].to_numpy())[-100]
    # each history is exactly the 10 ratings before the target
    by_user = {u: g for u, g in chrono.groupby("user")}
    for row in out.splits["test"].to_pylist():
        g = by_user[row["user"]]
        pos = row["history_end"]
        assert g["item"].tolist()[pos] == row["item"]
        assert row["history_items"] == g["item"].tolist()[pos - 10 : pos]
        assert row["label"] == int(row["rating"] > 3)
    # few-shot subsets come from train, are nested, and oversize requests are skipped with a note
    train_ids = set(out.splits["train"]["sample_id"].to_pylist())
    f4, f16 = (set(out.splits[f"fewshot_{n}"]["sample_id"].to_pylist()) for n in (4, 16))
    assert f4 <= f16 <= train_ids and len(f16) == 16
    assert "fewshot_1000" not in out.splits and any("1000" in n for n in out.notes)


def test_tallrec_seeded_and_deterministic():
    data = make_data(random_ratings(20, 50, (12, 30), seed=3))
    a = build_tallrec(data, TallrecConfig(seed=1))
    b = build_tallrec(data, TallrecConfig(seed=1))
    c = build_tallrec(data, TallrecConfig(seed=2))
    assert a.splits["fewshot_16"].equals(b.splits["fewshot_16"])
    assert not a.splits["fewshot_16"].equals(c.splits["fewshot_16"])


def test_tallrec_book_recipe_without_timestamps():
    rows = random_ratings(30, 100, (8, 30), seed=4, scale=10)
    data = make_data(rows, timestamp_kind="none", n_items=100)
    out = build_tallrec(data, TallrecConfig(few_shot=[]))
    main = pa.concat_tables([out.splits[s] for s in ("train", "valid", "test")]).to_pylist()
    counts = data.interactions.groupby("user").size()
    assert len(main) == int((counts >= 11).sum())  # one sample per user with >= 11 ratings
    assert len({r["user"] for r in main}) == len(main)
    rated = data.interactions.groupby("user")["item"].apply(list).to_dict()
    for r in main:
        assert len(r["history_items"]) == 10 and r["item"] not in r["history_items"]
        assert set(r["history_items"]) <= set(rated[r["user"]])
        # file order is kept inside the history
        order = [rated[r["user"]].index(i) for i in r["history_items"]]
        assert order == sorted(order)
        assert r["label"] == int(r["rating"] > 5)
    assert "history_end" not in out.splits["train"].column_names
    assert any("random" in n for n in out.notes)


def test_trsr_candidates():
    rows = random_ratings(60, 300, (8, 30), seed=5)
    data = make_data(rows, n_items=300)
    out = build_trsr(data, TrsrConfig(n_train=30, n_valid=5, n_test=5))
    counts = data.interactions.groupby("user").size()
    eligible = set(counts[(counts >= 10) & (counts <= 25)].index)
    seen = data.interactions.groupby("user")["item"].apply(set).to_dict()
    chrono = data.chronological().groupby("user")["item"].apply(list).to_dict()
    users_by_split = {}
    for name, n_cand in (("train", 2), ("valid", 21), ("test", 21)):
        rows = out.splits[name].to_pylist()
        users_by_split[name] = {r["user"] for r in rows}
        for r in rows:
            assert r["user"] in eligible
            assert len(r["candidates"]) == n_cand == len(set(r["candidates"]))
            assert sum(r["labels"]) == 1
            pos = r["candidates"][r["labels"].index(1)]
            assert pos == r["target"] == chrono[r["user"]][-1]
            assert r["history_items"] == chrono[r["user"]][:-1]
            negatives = set(r["candidates"]) - {pos}
            assert not negatives & seen[r["user"]]  # never the user's own items
    assert not users_by_split["train"] & users_by_split["test"]
    assert not users_by_split["valid"] & users_by_split["test"]
    # the positive is not always in the same slot
    slots = [r["labels"].index(1) for r in out.splits["train"].to_pylist()]
    assert len(set(slots)) == 2


def test_trsr_scales_down_and_errors():
    rows = random_ratings(30, 200, (10, 12), seed=6)
    out = build_trsr(make_data(rows, n_items=200), TrsrConfig())
    sizes = [out.splits[s].num_rows for s in ("train", "valid", "test")]
    assert sum(sizes) == 30 and all(s >= 1 for s in sizes)
    assert any("scaled" in n for n in out.notes)
    # enough users for full evaluation sets: train gets the rest
    out = build_trsr(make_data(rows, n_items=200), TrsrConfig(n_train=100, n_valid=5, n_test=5))
    assert [out.splits[s].num_rows for s in ("train", "valid", "test")] == [20, 5, 5]
    assert any("20 train users" in n for n in out.notes)
    with pytest.raises(DataError, match="interactions"):
        build_trsr(make_data(random_ratings(5, 50, (2, 4))), TrsrConfig())
    with pytest.raises(ValueError):
        TrsrConfig(min_interactions=30, max_interactions=10)


def test_prepared_roundtrip_and_corrupt_file(tmp_path):
    data = make_data(random_ratings(20, 50, (6, 20), seed=7))
    out = build_rella(data, RellaConfig())
    out.save(tmp_path / "p")
    again = PreparedData.load(tmp_path / "p")
    assert again.splits["test"].equals(out.splits["test"])
    assert again.stats() == out.stats()
    (tmp_path / "p" / "valid.parquet").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"valid\.parquet"):
        PreparedData.load(tmp_path / "p")
    with pytest.raises(DataError, match="meta.json"):
        PreparedData.load(tmp_path)
