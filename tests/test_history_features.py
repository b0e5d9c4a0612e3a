"""The history features of the ``logreg_history`` floor (``llmrec.baselines.features.history_features``).

They come from each sample's own earlier ratings only: recomputed here from the user's chronology with plain
Python, sample by sample; and altering the target's own rating or anything the user rated later leaves a sample's
features as they were (while altering an earlier rating moves them: the check can fail).
"""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from llmrec.baselines.features import HISTORY_STATS, CtrFeatures, history_features
from llmrec.data.prepare import PrepareConfig, prepare
from llmrec.data.prepared import PreparedData
from tests.conftest import random_ratings, write_ml1m_zip

GENRES = ["Action", "Comedy", "Drama", "Horror", "Sci-Fi"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A ReLLa folder (histories from the chronology) of 25 users x 10-70 ratings; movies of 1-2 genres."""
    root = tmp_path_factory.mktemp("hist")
    ratings = random_ratings(25, 80, (10, 70), seed=7)
    movies = [(m, f"Movie {m} (1990)", GENRES[m % 5] + ("|" + GENRES[(m // 5) % 5] if m % 3 else ""))
              for m in range(1, 81)]
    zip_path = write_ml1m_zip(root / "ml-1m.zip", ratings, movies)
    out = root / "rella"
    prepare(PrepareConfig(dataset="ml-1m", protocol="rella", path=str(zip_path), out=str(out),
                          rella={"max_history": 5}), log=lambda m: None)
    return PreparedData.load(out)


def reference(prepared: PreparedData, split: str) -> np.ndarray:
    """The features of every sample from the user's chronology before ``history_end``, in plain Python."""
    seqs = {r["user"]: r for r in prepared.sequences.to_pylist()}
    genres = {r["item"]: set(r["genres"].split(", ")) for r in prepared.items.to_dict("records")}
    threshold = prepared.config["label_threshold"]
    out = []
    for row in prepared.split(split).to_pylist():
        seq = seqs[row["user"]]
        items, ratings = list(seq["items"])[: row["history_end"]], list(seq["ratings"])[: row["history_end"]]
        mean = sum(ratings) / len(ratings)
        same = [r for i, r in zip(items, ratings) if genres[i] & genres[row["item"]]]
        out.append([math.log1p(len(items)), mean, sum(r > threshold for r in ratings) / len(ratings),
                    sum(ratings[-10:]) / len(ratings[-10:]), sum(same) / len(same) if same else mean,
                    float(not same)])
    return np.array(out)


@pytest.mark.parametrize("split", ["train", "test"])
def test_history_features_equal_a_plain_python_computation(folder, split):
    """Over the whole chronology before the target (the samples keep only 5 items; the features read all of them).

    Mutation: ``end - 10`` -> ``end - 5`` (last ratings), ``>`` -> ``>=`` (positive rate), or ``shares &= rated`` ->
    all history positions (same genre): the values differ."""
    feats = CtrFeatures.build(folder, 0, history_stats=True)
    split_arrays = feats.split(folder, split)
    assert split_arrays.source == "chronology"
    np.testing.assert_allclose(split_arrays.stats, reference(folder, split), atol=1e-9)
    assert split_arrays.stats.shape[1] == len(HISTORY_STATS)
    if split == "train":  # early samples with no earlier item of the target's genres, and later ones with some
        assert set(split_arrays.stats[:, 5].tolist()) == {0.0, 1.0}


def test_later_interactions_and_the_target_rating_do_not_change_the_features(folder):
    """For each of 30 test samples: every rating at or after its target in the user's chronology (the target's own
    included) is replaced by another, and its row's ``rating`` too: its features stay exactly as they were. Changing
    one earlier rating instead changes them."""
    feats = CtrFeatures.build(folder, 0, history_stats=True)
    table = folder.split("test")
    base = feats.from_table(table, "test")
    flat_items, flat_ratings, offsets = feats.chronology
    lengths = {r["user"]: len(r["items"]) for r in folder.sequences.to_pylist()}
    rng = np.random.default_rng(0)
    for row in rng.choice(len(table), size=30, replace=False):
        start, end = int(base.start[row]), int(base.end[row])
        user_end = int(offsets[base.user[row]] + lengths[table.column("user")[row].as_py()])
        assert end < user_end  # the target itself is at ``end``
        altered = flat_ratings.copy()
        altered[end:user_end] = feats.ratings.size - 1 - altered[end:user_end] + 1  # other levels, unknown ones too
        feats.chronology = (flat_items, altered, offsets)
        changed_rating = table.set_column(table.column_names.index("rating"), "rating",
                                          pa.array([6.0 - v for v in table.column("rating").to_pylist()]))
        after = feats.from_table(changed_rating, "test")
        np.testing.assert_array_equal(after.stats[row], base.stats[row])
        if end > start:  # an earlier rating does move them
            earlier = flat_ratings.copy()
            earlier[end - 1] = 1 if earlier[end - 1] != 1 else len(feats.ratings.values)
            feats.chronology = (flat_items, earlier, offsets)
            assert not np.array_equal(feats.from_table(table, "test").stats[row], base.stats[row])
        feats.chronology = (flat_items, flat_ratings, offsets)


def test_history_features_from_the_rows_a_request_carries(folder):
    """Without a chronology (``source="samples"``: a served request) the features read the history the row keeps."""
    feats = CtrFeatures.build(folder, 0, history_stats=True)
    table = folder.split("test")
    rows = feats.from_table(table, "test", source="samples")
    kept = [list(r) for r in table.column("history_ratings").to_pylist()]
    np.testing.assert_allclose(rows.stats[:, 1], [sum(r) / len(r) for r in kept])
    np.testing.assert_allclose(rows.stats[:, 0], [math.log1p(len(r)) for r in kept])
    direct = history_features(feats, rows)
    np.testing.assert_array_equal(direct, rows.stats)
