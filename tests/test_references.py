"""Independent references: the metrics and the classic floors against scikit-learn and plain pandas.

The project's metrics are pure functions checked against hand-computed values in tests/test_metrics.py; here the
same quantities come from another implementation (scikit-learn, in the ``test`` extra) on random inputs with ties,
and two baselines are recomputed from the prepared tables without any of the project's feature code. Each test
names the mutation it catches ("Mutation: ...").
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from llmrec.baselines.run import run_baseline
from llmrec.data.prepare import PrepareConfig, prepare
from llmrec.data.prepared import PreparedData
from llmrec.metrics import accuracy, auc, log_loss
from tests.baseline_helpers import QUIET, baseline_config
from tests.conftest import write_ml1m_zip

sklearn_metrics = pytest.importorskip("sklearn.metrics")


@pytest.mark.parametrize("seed", range(5))
def test_auc_logloss_and_accuracy_equal_sklearn(seed):
    """On random labels and scores (rounded to 2 decimals: many ties) the metrics equal scikit-learn's.

    Mutation: ``rankdata(s, method="average")`` -> ``method="ordinal"`` in ``auc`` (src/llmrec/metrics.py), i.e.
    a tied pair counted as 0 or 1 instead of 1/2; or ``s > threshold`` -> ``s >= threshold`` in ``accuracy``; or
    ``np.log(p)`` -> ``np.log2(p)`` in ``log_loss``.
    """
    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    labels = rng.integers(0, 2, n)
    labels[:2] = [0, 1]  # both classes
    scores = np.round(np.clip(rng.beta(2, 2, n) + 0.15 * labels, 0.01, 0.99), 2)
    scores[:4] = 0.5  # ties at the threshold
    assert auc(labels, scores) == pytest.approx(sklearn_metrics.roc_auc_score(labels, scores), abs=1e-12)
    assert log_loss(labels, scores) == pytest.approx(sklearn_metrics.log_loss(labels, scores), abs=1e-12)
    assert accuracy(labels, scores) == pytest.approx(sklearn_metrics.accuracy_score(labels, scores > 0.5), abs=1e-12)


# ---------------------------------------------------------------------------------------------- classic floors
GENRES = ["Action", "Comedy", "Drama", "Horror"]


@pytest.fixture(scope="module")
def planted_folder(tmp_path_factory) -> str:
    """200 users x 60 ratings of 120 movies; movies of the loved genres (every 5th movie, the user's own genre for
    some users) are rated high: user, item and genre effects a logistic regression can learn."""
    rng = np.random.default_rng(0)
    movies = [(m, f"Movie {m} (1990)", f"{GENRES[m % 4]}|{GENRES[(m // 4) % 4]}") for m in range(1, 121)]
    rows = []
    for u in range(1, 201):
        items = rng.choice(np.arange(1, 121), size=60, replace=False)
        generous = u % 3 == 0
        for t, m in enumerate(items):
            p = 0.25 + 0.35 * (m % 4 == 1) + 0.25 * (m % 5 == 0) + 0.2 * generous
            r = int(rng.integers(4, 6)) if rng.random() < p else int(rng.integers(1, 4))
            rows.append((u, int(m), r, 1_000_000 + 1000 * t + u))
    root = tmp_path_factory.mktemp("references")
    zip_path = write_ml1m_zip(root / "ml-1m.zip", rows, movies)
    out = root / "rella"
    prepare(PrepareConfig(dataset="ml-1m", protocol="rella", path=str(zip_path), out=str(out)), log=lambda m: None)
    return str(out)


def _one_hot(frame: pd.DataFrame, items: pd.DataFrame, columns):
    """Sparse one-hot user and item ids and multi-hot genres, built with pandas alone."""
    import scipy.sparse as sp

    genres = items.set_index("item")["genres"].str.split(", ")
    parts = []
    for name, values in (("user", frame["user"]), ("item", frame["item"])):
        index = {v: i for i, v in enumerate(columns[name])}
        codes = values.map(index)
        known = codes.notna().to_numpy()
        parts.append(sp.csr_matrix((np.ones(known.sum()), (np.flatnonzero(known), codes[known].astype(int))),
                                   shape=(len(frame), len(index))))
    index = {g: i for i, g in enumerate(columns["genre"])}
    r, c = zip(*[(row, index[g]) for row, item in enumerate(frame["item"]) for g in genres[item] if g in index])
    parts.append(sp.csr_matrix((np.ones(len(r)), (r, c)), shape=(len(frame), len(index))))
    return sp.hstack(parts).tocsr()


def test_logreg_baseline_matches_sklearn_logistic_regression(planted_folder, tmp_path):
    """The ``logreg`` floor (one weight per user, item and genre, Adam with early stopping) reaches the test AUC of
    scikit-learn's ``LogisticRegression`` (L2, C=1) fitted on one-hot features built here with pandas from the same
    training rows, within .02 (measured: .7069 against .7072 on 1,100 test samples).

    Mutation: drop the item term of ``LogisticRegression.logits`` (``0 * self.item(...)``,
    src/llmrec/baselines/models.py): .6398 against .7072. (Dropping the genre term changes little here: every item
    has fixed genres, so the item weights absorb them.)
    """
    from sklearn.linear_model import LogisticRegression

    _, result = run_baseline(baseline_config("logreg", planted_folder, tmp_path / "lr", {}, {}), **QUIET)
    prepared = PreparedData.load(planted_folder)
    train = prepared.split("train", columns=["user", "item", "label"]).to_pandas()
    test = prepared.split("test", columns=["user", "item", "label"]).to_pandas()
    items = prepared.items
    columns = {"user": sorted(train["user"].unique()), "item": sorted(train["item"].unique()),
               "genre": sorted({g for gs in items["genres"].str.split(", ") for g in gs if g})}
    model = LogisticRegression(C=1.0, max_iter=2000).fit(_one_hot(train, items, columns), train["label"])
    reference = sklearn_metrics.roc_auc_score(test["label"], model.predict_proba(_one_hot(test, items, columns))[:, 1])
    ours = result["metrics"]["auc"]
    assert reference > 0.65  # the features carry the planted effects
    assert abs(ours - reference) < 0.02, (ours, reference)


def test_history_rate_equals_a_pandas_computation(planted_folder, tmp_path):
    """``history_rate`` scores each test sample with the share of liked items (rating above the folder's label
    threshold) among its 10 most recent history items, shrunk toward the training positive rate with weight 1:
    recomputed here from the test split's history ratings with pandas, sample by sample.

    Mutation: ``float(v > features.label_threshold)`` -> ``>=`` in ``HistoryRate`` (src/llmrec/baselines/models.py),
    or ``history_len=10`` -> ``history_len=5`` in its registration: the scores differ.
    """
    path, _ = run_baseline(baseline_config("history_rate", planted_folder, tmp_path / "hr", {}, {}), **QUIET)
    prepared = PreparedData.load(planted_folder)
    threshold = prepared.config["label_threshold"]
    prior = prepared.split("train", columns=["label"]).to_pandas()["label"].mean()
    test = prepared.split("test", columns=["sample_id", "history_ratings"]).to_pandas()
    recent = test["history_ratings"].map(lambda r: list(r)[-10:])
    liked = recent.map(lambda r: sum(x > threshold for x in r))
    expected = (liked + prior) / (recent.map(len) + 1.0)
    preds = pd.read_parquet(path / "predictions.parquet").set_index("sample_id")["score"]
    np.testing.assert_allclose(preds.loc[test["sample_id"]].to_numpy(), expected.to_numpy(), atol=1e-6)


def test_history_mean_equals_a_pandas_and_sklearn_computation(planted_folder, tmp_path):
    """``history_mean`` scores each test sample with a logistic calibration of the mean rating of its 10 most recent
    history items, shrunk toward the training rows' mean history rating with weight 1; the calibration is fitted
    on the training rows. Recomputed here with pandas and sklearn's (unpenalized) LogisticRegression.

    Mutation: the shrinkage weight, the window (``history_len``), or the centre of the calibration: the scores
    differ.
    """
    from sklearn.linear_model import LogisticRegression

    path, _ = run_baseline(baseline_config("history_mean", planted_folder, tmp_path / "hm", {}, {}), **QUIET)
    prepared = PreparedData.load(planted_folder)

    def recent(split):
        frame = prepared.split(split, columns=["sample_id", "label", "history_ratings"]).to_pandas()
        return frame, frame["history_ratings"].map(lambda r: list(r)[-10:])

    train, train_recent = recent("train")
    centre = np.concatenate(train_recent.to_list()).mean()

    def shrunk(r):
        return (r.map(sum) + centre) / (r.map(len) + 1.0) - centre

    model = LogisticRegression(C=np.inf, tol=1e-10, max_iter=1000).fit(shrunk(train_recent).to_frame(),
                                                                           train["label"])
    test, test_recent = recent("test")
    expected = model.predict_proba(shrunk(test_recent).to_frame())[:, 1]
    preds = pd.read_parquet(path / "predictions.parquet").set_index("sample_id")["score"]
    np.testing.assert_allclose(preds.loc[test["sample_id"]].to_numpy(), expected, atol=1e-4)


def _history_features(prepared: PreparedData, split: str) -> np.ndarray:
    """The five history features and the no-same-genre indicator of each sample, from the user's chronology before
    ``history_end``, in plain Python (raw, not standardized)."""
    seqs = {r["user"]: r for r in prepared.sequences.to_pylist()}
    genres = prepared.items.set_index("item")["genres"].str.split(", ").map(set).to_dict()
    threshold = prepared.config["label_threshold"]
    out = []
    for row in prepared.split(split, columns=["user", "item", "history_end"]).to_pylist():
        seq = seqs[row["user"]]
        items, ratings = seq["items"][: row["history_end"]], seq["ratings"][: row["history_end"]]
        mean = float(np.mean(ratings))
        same = [r for i, r in zip(items, ratings) if genres[i] & genres[row["item"]]]
        out.append([np.log1p(len(ratings)), mean, np.mean(np.array(ratings) > threshold), np.mean(ratings[-10:]),
                    np.mean(same) if same else mean, float(not same)])
    return np.array(out)


def test_logreg_history_matches_sklearn_on_the_same_features(planted_folder, tmp_path):
    """``logreg_history`` (the shared Adam trainer, early stopping on validation) reaches the test AUC of scikit-learn's
    ``LogisticRegression(C=1, lbfgs, max_iter=300)`` (the issue's setting) fitted on features built here without the
    project's feature code: one-hot user, item, gender, age, occupation, multi-hot genres, and the five history
    features standardized with the training rows' mean and deviation plus the indicator; within .02 (measured:
    .7047 against .7057 on 1,100 test samples; here the planted effects are those of users and items, so the history
    features add little; on ML-1M they add .03, docs/baselines.md).

    Mutation: drop the history term of ``HistoryLogisticRegression.logits`` (src/llmrec/baselines/models.py), or
    standardize with the test rows' statistics: the AUCs part.
    """
    import scipy.sparse as sp
    from sklearn.linear_model import LogisticRegression

    _, result = run_baseline(baseline_config("logreg_history", planted_folder, tmp_path / "lrh", {}, {}), **QUIET)
    prepared = PreparedData.load(planted_folder)
    users = prepared.users.set_index("user")
    frames = {s: prepared.split(s, columns=["user", "item", "label"]).to_pandas() for s in ("train", "test")}
    train = frames["train"]
    columns = {"user": sorted(train["user"].unique()), "item": sorted(train["item"].unique()),
               "genre": sorted({g for gs in prepared.items["genres"].str.split(", ") for g in gs if g})}
    raw = {s: _history_features(prepared, s) for s in frames}
    mean, std = raw["train"][:, :5].mean(0), raw["train"][:, :5].std(0)

    def design(split: str):
        frame = frames[split]
        parts = [_one_hot(frame, prepared.items, columns)]
        for name in ("gender", "age", "occupation"):
            values = frame["user"].map(users[name].astype(str))
            parts.append(sp.csr_matrix(pd.get_dummies(values).reindex(
                columns=sorted(users[name].astype(str).unique()), fill_value=0).to_numpy(dtype=float)))
        stats = raw[split].copy()
        stats[:, :5] = (stats[:, :5] - mean) / std
        return sp.hstack([*parts, sp.csr_matrix(stats)]).tocsr()

    model = LogisticRegression(C=1.0, solver="lbfgs", max_iter=300).fit(design("train"), train["label"])
    test = frames["test"]
    reference = sklearn_metrics.roc_auc_score(test["label"], model.predict_proba(design("test"))[:, 1])
    ours = result["metrics"]["auc"]
    assert reference > 0.65
    assert abs(ours - reference) < 0.02, (ours, reference)
