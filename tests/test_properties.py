"""Property-based tests (hypothesis) of what every number rests on: metrics, protocols, prompt budgets, SUBR.

Each property is checked on small generated inputs against a brute-force or by-definition reference.
Runs are reproducible: tests/conftest.py loads the ``ci`` profile (``derandomize=True``, no example
database) unless ``HYPOTHESIS_PROFILE=explore`` asks for fresh random examples; a failure prints the
``@reproduce_failure`` blob. The whole file takes well under a minute.
"""

from __future__ import annotations

import itertools
import math
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import assume, event, given, note, settings
from hypothesis import strategies as st

from llmrec.data.protocols import (
    PROTOCOLS,
    RellaConfig,
    TallrecConfig,
    TrsrConfig,
    build_rella,
    build_tallrec,
    build_trsr,
)
from llmrec.data.schema import RecData
from llmrec.errors import DataError
from llmrec.metrics import (
    accuracy,
    auc,
    bootstrap_ci,
    gauc,
    log_loss,
    ranking_per_list,
    ranking_report,
)

# =========================================================================== strategies

# scores on a grid of 1/64: 1 - s is exact, and ties are frequent
grid_scores = st.integers(0, 64).map(lambda i: i / 64)


@st.composite
def binary_case(draw, min_size: int = 2, max_size: int = 30, scores=grid_scores):
    """Labels with both classes and scores of the same length."""
    n = draw(st.integers(min_size, max_size))
    labels = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda y: 0 < sum(y) < len(y)))
    s = draw(st.lists(scores, min_size=n, max_size=n))
    return np.array(labels), np.array(s, dtype=float)


@st.composite
def ranking_case(draw, max_lists: int = 4, max_cand: int = 6, max_score: int = 3):
    """A few candidate lists with small integer scores (many ties) and at least one positive per list."""
    n = draw(st.integers(1, max_lists))
    c = draw(st.integers(1, max_cand))
    scores = draw(st.lists(st.lists(st.integers(0, max_score), min_size=c, max_size=c), min_size=n, max_size=n))
    labels = draw(st.lists(st.lists(st.integers(0, 1), min_size=c, max_size=c).filter(any), min_size=n, max_size=n))
    return np.array(scores, dtype=float), np.array(labels)


# =========================================================================== CTR metrics


def _pairwise_auc(y, s) -> Fraction:
    """By definition: P(a random positive outscores a random negative), a tie counting 1/2."""
    pos = [v for v, lab in zip(s, y) if lab]
    neg = [v for v, lab in zip(s, y) if not lab]
    wins = sum(Fraction(1) if p > q else Fraction(1, 2) if p == q else Fraction(0) for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def _auc_over_tie_orders(y, s) -> Fraction:
    """AUC averaged over every strict order of the tied scores (each order equally likely)."""
    total, count = Fraction(0), 0
    for perm in itertools.permutations(range(len(s))):
        # perm[i]: the tie-breaker of row i; a strict order that refines the scores
        strict = [(v, perm[i]) for i, v in enumerate(s)]
        pos = [strict[i] for i in range(len(s)) if y[i]]
        neg = [strict[i] for i in range(len(s)) if not y[i]]
        total += Fraction(sum(p > q for p in pos for q in neg), len(pos) * len(neg))
        count += 1
    return total / count


@settings(max_examples=60)
@given(binary_case())
def test_auc_equals_the_pairwise_count(case):
    y, s = case
    assert auc(y, s) == pytest.approx(float(_pairwise_auc(y, s)), abs=1e-12)


@settings(max_examples=25)
@given(binary_case(max_size=6, scores=st.integers(0, 2).map(float)))
def test_auc_with_ties_is_the_expectation_over_tie_orders(case):
    """Mutation: ``rankdata(method="ordinal")`` in :func:`auc` (ties broken by position) fails this."""
    y, s = case
    assert auc(y, s) == pytest.approx(float(_auc_over_tie_orders(y, s)), abs=1e-12)


@st.composite
def strictly_increasing_map(draw, values):
    """A strictly increasing map of the distinct ``values`` (arbitrary gaps, any offset)."""
    distinct = sorted(set(values.tolist()))
    gaps = draw(st.lists(st.floats(1e-3, 1e3), min_size=len(distinct), max_size=len(distinct)))
    start = draw(st.floats(-1e3, 1e3))
    image = start + np.cumsum(gaps)
    return dict(zip(distinct, image))


@settings(max_examples=60)
@given(binary_case(), st.data())
def test_auc_is_invariant_under_strictly_monotone_transforms(case, data):
    y, s = case
    mapping = data.draw(strictly_increasing_map(s))
    t = np.array([mapping[v] for v in s])
    assert auc(y, t) == pytest.approx(auc(y, s), abs=1e-12)
    # and a few closed-form ones
    for f in (np.exp, lambda x: x**3 + 2 * x, lambda x: np.log1p(x) * 7 - 3, lambda x: 1 / (1 + np.exp(-10 * x))):
        assert auc(y, f(s)) == pytest.approx(auc(y, s), abs=1e-12)


@settings(max_examples=60)
@given(binary_case())
def test_auc_of_reversed_scores_is_one_minus_auc(case):
    y, s = case
    assert auc(y, 1 - s) == pytest.approx(1 - auc(y, s), abs=1e-12)
    assert auc(1 - y, s) == pytest.approx(1 - auc(y, s), abs=1e-12)  # swapping the classes too


@settings(max_examples=40)
@given(st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 1), grid_scores), min_size=2, max_size=30))
def test_gauc_is_the_row_weighted_mean_of_per_user_auc(rows):
    users, y, s = (np.array(c) for c in zip(*rows))
    weights, values = [], []
    for u in sorted(set(users.tolist())):
        m = users == u
        if 0 < y[m].sum() < m.sum():
            weights.append(m.sum())
            values.append(float(_pairwise_auc(y[m], s[m])))
    assume(weights)
    assert gauc(users, y, s) == pytest.approx(float(np.average(values, weights=weights)), abs=1e-12)


@settings(max_examples=60)
@given(binary_case(scores=st.floats(0, 1)), st.sampled_from([1e-7, 1e-3, 0.1]))
def test_log_loss_bounds_and_definition(case, eps):
    y, s = case
    ll = log_loss(y, s, eps=eps)
    assert 0.0 <= ll <= -math.log(eps) + 1e-12
    p = np.clip(s, eps, 1 - eps)
    assert ll == pytest.approx(float(np.mean([-math.log(q) if lab else -math.log(1 - q) for lab, q in zip(y, p)])),
                               rel=1e-9, abs=1e-12)
    assert log_loss(1 - y, 1 - s, eps=eps) == pytest.approx(ll, rel=1e-9, abs=1e-12)  # the classes are symmetric
    # perfect predictions cost only the clipping; a constant 1/2 costs ln 2
    assert log_loss(y, y.astype(float), eps=eps) == pytest.approx(-math.log(1 - eps), rel=1e-9)
    assert log_loss(y, np.full(len(y), 0.5), eps=eps) == pytest.approx(math.log(2))


@settings(max_examples=40)
@given(binary_case(scores=st.floats(-5, 5)), st.sampled_from([0.0, 0.5]))
def test_accuracy_is_the_share_of_strictly_above_threshold_predictions(case, threshold):
    y, s = case
    acc = accuracy(y, s, threshold=threshold)
    assert 0 <= acc <= 1
    assert acc == pytest.approx(sum(int(v > threshold) == lab for v, lab in zip(s, y)) / len(y))


# =========================================================================== ranking metrics


def _strict_value(order: list[int], pos: np.ndarray, metric: str, k: int) -> float:
    """A metric of one list in one strict order (``order``: candidates, best first)."""
    ranks = [r for r, c in enumerate(order, start=1) if pos[c]]
    n_pos = len(ranks)
    if metric == "recall":
        return sum(r <= k for r in ranks) / n_pos
    if metric == "hit":
        return float(any(r <= k for r in ranks))
    if metric == "mrr":
        return 1 / ranks[0] if ranks[0] <= k else 0.0
    if metric == "ndcg":
        dcg = sum(1 / math.log2(r + 1) for r in ranks if r <= k)
        ideal = sum(1 / math.log2(r + 1) for r in range(1, min(n_pos, k) + 1))
        return dcg / ideal
    raise AssertionError(metric)


def _brute_force_list(scores: np.ndarray, pos: np.ndarray, metric: str, k: int) -> float:
    """The metric averaged over every order of the candidates that agrees with the scores (ties in any order)."""
    values = [_strict_value(list(p), pos, metric, k) for p in itertools.permutations(range(len(scores)))
              if all(scores[a] >= scores[b] for a, b in zip(p, p[1:]))]
    return float(np.mean(values))


@settings(max_examples=40)
@given(ranking_case(), st.integers(1, 7))
def test_ranking_metrics_equal_the_brute_force_over_tie_orders(case, k):
    """Mutation: drop the ``/ ch.t`` in ``_recall_rows`` (ties counted as wins) and this fails."""
    s, y = case
    per_list = ranking_per_list(s, y, ks=(k,), metrics=("recall", "mrr", "ndcg", "hit"))
    for metric in ("recall", "mrr", "ndcg", "hit"):
        expected = [_brute_force_list(s[i], y[i].astype(bool), metric, k) for i in range(len(s))]
        np.testing.assert_allclose(per_list[f"{metric}@{k}"], expected, atol=1e-12, err_msg=metric)


@settings(max_examples=60)
@given(ranking_case(max_lists=5, max_cand=12, max_score=5))
def test_ranking_metrics_are_in_0_1_monotone_in_k_and_capped_at_the_list_length(case):
    s, y = case
    c = s.shape[1]
    ks = list(range(1, c + 3))
    report = ranking_report(s, y, ks=ks)
    for metric in ("recall", "mrr", "ndcg", "hit"):
        values = [report[f"{metric}@{k}"] for k in ks]
        assert all(-1e-12 <= v <= 1 + 1e-12 for v in values), (metric, values)
        assert values[c - 1] == values[c] == values[c + 1]  # k beyond the list length changes nothing
        if metric != "ndcg" or (y.sum(axis=1) == 1).all():
            # NDCG@k is monotone in k with one positive per list (TRSR's lists); with several it need not be:
            # see test_ndcg_is_not_monotone_in_k_with_several_positives
            assert all(a <= b + 1e-12 for a, b in zip(values, values[1:])), (metric, values)
    # a constant scorer gets chance: Recall@k = k / c for one positive
    one = np.zeros_like(y)
    one[:, 0] = 1
    assert ranking_report(np.zeros_like(s), one, ks=(1,))["recall@1"] == pytest.approx(1 / c)


def test_ndcg_is_not_monotone_in_k_with_several_positives():
    """Positives at ranks 1 and 3: NDCG@1 = 1, NDCG@2 = 1 / (1 + 1/log2 3) = .613 (the ideal list grows)."""
    s, y = [[0.9, 0.8, 0.7]], [[1, 0, 1]]
    r = ranking_report(s, y, ks=(1, 2, 3))
    assert r["ndcg@1"] == 1.0
    assert r["ndcg@2"] == pytest.approx(1 / (1 + 1 / math.log2(3)))
    assert r["ndcg@2"] < r["ndcg@1"]


@settings(max_examples=40)
@given(ranking_case(max_cand=8), st.randoms(use_true_random=False))
def test_ranking_metrics_do_not_depend_on_candidate_order(case, rnd):
    s, y = case
    perm = list(range(s.shape[1]))
    rnd.shuffle(perm)
    a = ranking_report(s, y, ks=(1, 3, 5))
    b = ranking_report(s[:, perm], y[:, perm], ks=(1, 3, 5))
    assert a == pytest.approx(b, abs=1e-12)


# =========================================================================== bootstrap intervals


@settings(max_examples=25)
@given(binary_case(min_size=4, max_size=40), st.integers(0, 2**32 - 1))
def test_bootstrap_interval_is_seeded_ordered_and_in_range(case, seed):
    y, s = case
    lo, hi = bootstrap_ci(auc, y, s, n_boot=200, seed=seed)
    assert (lo, hi) == bootstrap_ci(auc, y, s, n_boot=200, seed=seed)  # same seed, same interval, bit for bit
    assert 0 <= lo <= hi <= 1
    lo, hi = bootstrap_ci(log_loss, y, s, n_boot=200, seed=seed)
    assert 0 <= lo <= hi


@settings(max_examples=30)
@given(st.lists(st.integers(0, 1), min_size=1, max_size=60), st.integers(0, 2**32 - 1))
def test_bootstrap_interval_of_a_mean_contains_the_mean(values, seed):
    """The percentile interval of a sample mean (ACC, LogLoss, the per-list ranking values) contains the mean.

    Not a theorem for every statistic (see the next test), but for a mean of n values the resampled mean
    falls on each side of the sample mean with probability far above 2.5% (binomial resampling), so
    with 500 resamples it is what every seed gives.
    """
    x = np.array(values, dtype=float)
    lo, hi = bootstrap_ci(np.mean, x, n_boot=500, seed=seed)
    assert lo <= x.mean() <= hi


def test_a_percentile_interval_need_not_contain_a_biased_statistic():
    """Why the property above is stated for means: for (mean)^2 of values centred on 0 the estimate is
    (about) 0, but a resample's squared mean is that small only when its mean is (about) 0 again, which
    irregular values almost never give: the whole interval lies above the estimate."""
    x = np.array([-2.3, -1.7, -0.9, -0.4, 0.2, 0.6, 1.1, 1.5, 0.8, 1.3])
    x = x - x.mean()
    estimate = np.mean(x) ** 2
    lo, hi = bootstrap_ci(lambda v: np.mean(v) ** 2, x, n_boot=500, seed=0)
    assert estimate < 1e-20 and estimate < lo < hi


@settings(max_examples=25)
@given(binary_case(min_size=4, max_size=30), st.integers(0, 1000))
def test_bootstrap_by_groups_of_one_row_equals_the_row_bootstrap(case, seed):
    y, s = case
    assert bootstrap_ci(auc, y, s, n_boot=100, seed=seed, groups=np.arange(len(y))) == \
        bootstrap_ci(auc, y, s, n_boot=100, seed=seed)


@settings(max_examples=25)
@given(st.lists(st.integers(1, 5), min_size=1, max_size=8), st.integers(0, 1000))
def test_bootstrap_by_groups_resamples_whole_groups(sizes, seed):
    """Every resample holds each drawn group whole (all its rows, the same number of times each)."""
    groups = np.repeat(np.arange(len(sizes)) * 7 % 11, sizes)  # group labels not in row order
    rows = np.arange(len(groups))
    seen = []

    def metric(r):
        counts = np.bincount(r, minlength=len(rows))
        for g in np.unique(groups):
            members = counts[groups == g]
            assert (members == members[0]).all(), f"group {g} drawn in part: {members}"
        seen.append(len(r))
        return float(np.mean(r))

    bootstrap_ci(metric, rows, n_boot=30, seed=seed, groups=groups)
    assert len(seen) == 30


# =========================================================================== protocols


@st.composite
def interactions(draw, max_users: int = 8, max_per_user: int = 16, n_items: int = 30, scale: int = 5):
    """An interaction table: users with a few ratings each, repeated timestamps (ties) and, rarely, a
    repeated item; rows in a shuffled file order."""
    n_users = draw(st.integers(1, max_users))
    rows = []
    for u in range(n_users):
        n = draw(st.integers(1, max_per_user))
        items = draw(st.lists(st.integers(1, n_items), min_size=n, max_size=n))
        ratings = draw(st.lists(st.integers(1, scale), min_size=n, max_size=n))
        stamps = draw(st.lists(st.integers(0, 40), min_size=n, max_size=n))
        rows += [(f"u{u}", str(i), float(r), t) for i, r, t in zip(items, ratings, stamps)]
    order = draw(st.permutations(range(len(rows))))
    inter = pd.DataFrame([rows[i] for i in order], columns=["user", "item", "rating", "timestamp"])
    items = pd.DataFrame({"item": [str(i) for i in range(1, n_items + 1)],
                          "title": [f"T{i}" for i in range(1, n_items + 1)]})
    return RecData("toy", inter, items, timestamp_kind="unix").validated()


def _chronologies(data: RecData) -> dict[str, pd.DataFrame]:
    """Each user's interactions in the protocols' order: by timestamp, ties in file order."""
    inter = data.interactions.reset_index(drop=True)
    inter["row"] = np.arange(len(inter))
    return {u: g.sort_values(["timestamp", "row"], kind="stable").reset_index(drop=True)
            for u, g in inter.groupby("user")}


def _main_splits(out) -> dict[str, list[dict]]:
    return {s: out.splits[s].to_pylist() for s in ("train", "valid", "test")}


def _check_ctr_samples(data: RecData, out, history_k: int, min_history: int, threshold: float) -> None:
    """History = the stretch of the user's chronology right before the target (never the target, never later)."""
    chrono = _chronologies(data)
    for name, rows in _main_splits(out).items():
        for r in rows:
            g = chrono[r["user"]]
            end = r["history_end"]
            assert end >= min_history, (name, r)
            target = g.iloc[end]
            assert (target["item"], target["rating"], target["timestamp"]) == (r["item"], r["rating"], r["timestamp"])
            start = max(0, end - history_k)
            assert r["history_items"] == g["item"].tolist()[start:end]
            assert r["history_ratings"] == g["rating"].tolist()[start:end]
            stamps = g["timestamp"].tolist()[start:end]
            assert all(t <= r["timestamp"] for t in stamps), "a history item later than its target"
            assert r["label"] == int(r["rating"] > threshold)


def _check_time_split(out) -> None:
    rows = _main_splits(out)
    stamps = {s: [r["timestamp"] for r in rows[s]] for s in rows}
    names = [s for s in ("train", "valid", "test") if stamps[s]]
    for a, b in zip(names, names[1:]):
        assert max(stamps[a]) <= min(stamps[b]), f"{a} reaches into {b}'s period"


@settings(max_examples=40)
@given(interactions(), st.integers(1, 8), st.integers(1, 6), st.sampled_from([None, 1.0, 2.0, 4.0]),
       st.integers(0, 3))
def test_rella_histories_end_right_before_the_target_and_splits_follow_time(data, max_history, min_history,
                                                                             threshold, seed):
    ratings = data.interactions["rating"]
    assume(threshold is None or ratings.min() <= threshold < ratings.max())
    cfg = RellaConfig(max_history=max_history, min_history=min_history, label_threshold=threshold, seed=seed)
    try:
        out = build_rella(data, cfg)
    except DataError as exc:
        assert "no samples" in str(exc)
        assert (data.interactions.groupby("user").size() <= min_history).all()
        return
    assert PROTOCOLS["rella"].time_ordered and out.config["order"] == "time"
    expected_threshold = 3.0 if threshold is None else threshold
    assert out.config["label_threshold"] == expected_threshold
    _check_ctr_samples(data, out, max_history, min_history, expected_threshold)
    _check_time_split(out)
    counts = data.interactions.groupby("user").size()
    assert sum(len(r) for r in _main_splits(out).values()) == int((counts - min_history).clip(lower=0).sum())
    again = build_rella(data, cfg)
    assert all(again.splits[s].equals(out.splits[s]) for s in out.splits)


@settings(max_examples=40)
@given(interactions(), st.integers(1, 5), st.integers(1, 60), st.integers(0, 3),
       st.lists(st.integers(1, 20), max_size=3, unique=True))
def test_tallrec_windows_end_right_before_the_target_and_splits_follow_time(data, history_len, max_samples, seed,
                                                                             few_shot):
    cfg = TallrecConfig(history_len=history_len, max_samples=max_samples, seed=seed, few_shot=few_shot)
    try:
        out = build_tallrec(data, cfg)
    except DataError as exc:
        assert "no samples" in str(exc)
        assert (data.interactions.groupby("user").size() <= history_len).all()
        return
    assert out.config["order"] == "time"
    rows = [r for split in _main_splits(out).values() for r in split]
    assert 0 < len(rows) <= max_samples
    assert all(len(r["history_items"]) == history_len for r in rows)
    _check_ctr_samples(data, out, history_len, history_len, 3.0)
    _check_time_split(out)
    # the kept samples are the most recent ones: none left out is later than one kept
    counts = data.interactions.groupby("user").size()
    if len(rows) < int((counts - history_len).clip(lower=0).sum()):
        chrono = _chronologies(data)
        kept = {(r["user"], r["history_end"]) for r in rows}
        left_out = [g.iloc[p]["timestamp"] for u, g in chrono.items() for p in range(history_len, len(g))
                    if (u, p) not in kept]
        assert max(left_out) <= min(r["timestamp"] for r in rows)
    train = set(out.splits["train"]["sample_id"].to_pylist())
    subsets = sorted(n for n in few_shot if n <= len(train))
    drawn = [set(out.splits[f"fewshot_{n}"]["sample_id"].to_pylist()) for n in subsets]
    assert all(len(d) == n for d, n in zip(drawn, subsets))
    assert all(a <= b <= train for a, b in zip(drawn, drawn[1:] + [train]))  # nested, all from train
    again = build_tallrec(data, cfg)
    assert all(again.splits[s].equals(out.splits[s]) for s in out.splits)


@settings(max_examples=30)
@given(interactions(max_users=14, max_per_user=9, n_items=40, scale=10), st.integers(2, 5), st.integers(1, 4),
       st.integers(0, 3))
def test_trsr_lists_split_users_and_end_right_before_the_target(data, min_interactions, eval_negatives, seed):
    cfg = TrsrConfig(min_interactions=min_interactions, max_interactions=9, n_train=20, n_valid=2, n_test=2,
                     eval_negatives=eval_negatives, seed=seed)
    counts = data.interactions.groupby("user").size()
    eligible = set(counts[(counts >= min_interactions) & (counts <= 9)].index)
    try:
        out = build_trsr(data, cfg)
    except DataError as exc:
        assert len(eligible) < 3 and "interactions" in str(exc)
        return
    assert PROTOCOLS["trsr"].disjoint_users
    rows = _main_splits(out)
    users = {s: {r["user"] for r in rows[s]} for s in rows}
    assert not (users["train"] & users["valid"] or users["train"] & users["test"] or users["valid"] & users["test"])
    assert set().union(*users.values()) == eligible
    chrono = _chronologies(data)
    seen = data.interactions.groupby("user")["item"].apply(set).to_dict()
    for name, split in rows.items():
        for r in split:
            g = chrono[r["user"]]
            assert r["target"] == g["item"].iloc[-1] and r["timestamp"] == g["timestamp"].iloc[-1]
            assert r["history_items"] == g["item"].tolist()[:-1] and r["history_end"] == len(g) - 1
            assert all(t <= r["timestamp"] for t in g["timestamp"].iloc[:-1])
            assert len(r["candidates"]) == (1 if name == "train" else eval_negatives) + 1
            assert sum(r["labels"]) == 1 and r["candidates"][r["labels"].index(1)] == r["target"]
            assert not (set(r["candidates"]) - {r["target"]}) & seen[r["user"]]
    again = build_trsr(data, cfg)
    assert all(again.splits[s].equals(out.splits[s]) for s in out.splits)


@settings(max_examples=12)
@given(st.integers(0, 10_000), st.sampled_from(["tallrec", "rella", "trsr"]), st.integers(0, 5))
def test_prepare_is_seeded_same_seed_same_files_and_the_audit_passes(data_seed, protocol, seed):
    """``llmrec data prepare`` twice with one config writes byte-identical folders, which the leakage audit passes."""
    from llmrec.data.audit import audit_prepared
    from llmrec.data.prepare import PrepareConfig, prepare
    from tests.conftest import random_ratings, write_ml1m_zip

    section = {"tallrec": {"history_len": 3, "max_samples": 80, "few_shot": [4, 8], "seed": seed},
               "rella": {"min_history": 2, "max_history": 6, "seed": seed},
               "trsr": {"min_interactions": 4, "max_interactions": 30, "eval_negatives": 3, "n_test": 3, "n_valid": 3,
                        "seed": seed}}[protocol]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        zip_path = write_ml1m_zip(tmp / "ml-1m.zip", random_ratings(12, 60, (3, 25), seed=data_seed))
        folders = []
        for name in ("a", "b"):
            cfg = PrepareConfig(dataset="ml-1m", protocol=protocol, path=str(zip_path), out=str(tmp / name),
                                **{protocol: section})
            folders.append(prepare(cfg, log=lambda m: None)[1])
        files = sorted(p.name for p in folders[0].iterdir())
        assert files == sorted(p.name for p in folders[1].iterdir())
        for f in files:
            assert (folders[0] / f).read_bytes() == (folders[1] / f).read_bytes(), f
        report = audit_prepared(folders[0])
        assert report["ok"], report
        status = {c["check"]: c["status"] for c in report["checks"]}
        assert status["history_matches_chronology"] == "ok" and status["history_before_target"] == "ok"
        assert status["users_disjoint" if protocol == "trsr" else "split_periods"] == "ok"


# =========================================================================== prompt budgets

N_ITEMS = 19


@pytest.fixture(scope="module")
def prompt_kit():
    """Item texts of varied length, the word-level test tokenizer and the shipped templates."""
    from llmrec.prompts.build import PromptData
    from llmrec.prompts.template import load_template
    from tests.tiny_models import tiny_tokenizer

    ids = [str(i) for i in range(N_ITEMS)]
    # the longest title in characters is not the longest in tokens (one long word against many short ones)
    titles = [f"Movie {i}" + " Part" * (i % 5) for i in range(N_ITEMS - 3)] + \
        ["Extraordinarilylongsingleword", "A B C D E F G", "Twentyfourcharacterslong"]
    items = pd.DataFrame({"item": ids, "title": titles,
                          "genres": ["Drama" if i % 2 else "Comedy|Drama" for i in range(N_ITEMS)]})
    users = pd.DataFrame({"user": ["u"], "gender": ["female"], "age": ["25"], "occupation": ["writer"]})
    texts = PromptData.from_tables(items, users, "ml-1m", label_threshold=3)
    templates = {name: load_template(name) for name in ("tallrec_movie", "rella_movie", "rella_movie_counts", "trsr")}
    return texts, templates, tiny_tokenizer()


@st.composite
def ctr_row(draw, retrieved: bool):
    n = draw(st.integers(0, 12))
    row = {"sample_id": 0, "user": "u", "item": str(draw(st.integers(0, N_ITEMS - 1))),
           "history_items": [str(i) for i in draw(st.lists(st.integers(0, N_ITEMS - 1), min_size=n, max_size=n))],
           "history_ratings": [float(r) for r in draw(st.lists(st.integers(1, 5), min_size=n, max_size=n))]}
    if retrieved:  # SUBR's similarities, with ties
        row["history_similarity"] = draw(st.lists(st.sampled_from([0.1, 0.4, 0.7, 0.9]), min_size=n, max_size=n))
    return row


def _expected_kept(row: dict, k: int | None, n_kept: int | None = None) -> list[int]:
    """By the documented rules: ``history_k`` keeps the k most recent items (a retrieved history: the k most
    similar, the more recent among equals); the budget then drops the oldest first (retrieved: the least
    similar first, the older first among equals). Indices into the row's history, chronological; ``n_kept``
    None: all the items shown before the budget."""
    n = len(row["history_items"])
    sims = row.get("history_similarity")
    by_value = list(range(n)) if sims is None else sorted(range(n), key=lambda i: (sims[i], i))  # first to go first
    shown = by_value[max(0, n - k):] if k is not None else by_value
    if n_kept is None:
        n_kept = len(shown)
    return sorted(shown[len(shown) - n_kept:] if n_kept else [])


@settings(max_examples=60)
@given(st.booleans().flatmap(ctr_row), st.sampled_from(["tallrec_movie", "rella_movie", "rella_movie_counts"]),
       st.one_of(st.none(), st.integers(0, 14)), st.data())
def test_ctr_prompts_stay_within_the_budget_and_drop_history_in_the_documented_order(prompt_kit, row, template, k,
                                                                                    data):
    """Never over ``max_prompt_tokens``; history dropped oldest first (SUBR: least similar first); the target and
    question always kept; as much history as fits. Mutation: keep ``history[:n]`` in ``PromptTemplate.render``."""
    from llmrec.prompts.build import render_ctr
    from llmrec.prompts.template import PromptError

    texts, templates, tok = prompt_kit
    tpl = templates[template]
    variables = texts.variables(row["user"], row["item"])

    def rendered(kept: list[int]):
        hist = [texts.item(row["history_items"][i], row["history_ratings"][i]) for i in kept]
        ctx, cand = tpl.render_text(variables, hist)
        return ctx + cand, len(tok(ctx)["input_ids"]) + len(tok(cand, add_special_tokens=False)["input_ids"])

    bare_text, bare = rendered([])
    full = rendered(_expected_kept(row, k))[1]
    budget = max(1, data.draw(st.integers(bare - 5, full + 5), label="budget"))  # mostly a cut somewhere inside
    note(f"row {row}, k {k}, budget {budget}, prompt without history {bare} tokens")
    try:
        (p,) = render_ctr([row], texts, tpl, tok, k, budget, chat=False)
    except PromptError:
        assert bare > budget  # refused only when the question and target alone do not fit
        return
    assert len(p) <= budget
    kept = _expected_kept(row, k, p.history_kept)
    text, length = rendered(kept)
    assert p.text == text and len(p) == length
    assert p.candidate_ids == tuple(tok(bare_text[len(tpl.render_text(variables, [])[0]):],
                                        add_special_tokens=False)["input_ids"])  # the candidate part is never cut
    assert texts.item(row["item"])["title"] in p.text
    shown = len(_expected_kept(row, k))
    assert p.history_total == shown
    event(f"{'retrieved' if 'history_similarity' in row else 'recent'} history, "
          f"{'cut' if p.history_kept < shown else 'not cut'} by the budget, "
          f"{'partly' if 0 < p.history_kept < shown else 'all or nothing'}")
    if p.history_kept < shown:  # maximal: one more item (the next one in the drop order) would not fit
        assert rendered(_expected_kept(row, k, p.history_kept + 1))[1] > budget


@settings(max_examples=40)
@given(ctr_row(retrieved=False),
       st.tuples(st.booleans(), st.lists(st.integers(0, N_ITEMS - 1), max_size=4)).map(
           lambda t: [N_ITEMS - 3, N_ITEMS - 2] * t[0] + t[1]).filter(len),  # often the two deceptive titles
       st.one_of(st.none(), st.integers(0, 14)), st.sampled_from([None, "likes dramas"]), st.data())
def test_ranking_prompts_share_one_history_within_the_budget(prompt_kit, row, candidates, k, summary, data):
    """Every candidate of a list fits the budget with the same, most recent history; the summary and every
    candidate are kept; as much history as fits the longest candidate prompt."""
    from llmrec.prompts.build import render_ranking
    from llmrec.prompts.template import PromptError

    texts, templates, tok = prompt_kit
    tpl = templates["trsr"]
    row = {**row, "candidates": [str(c) for c in candidates], "summary": summary}

    def lengths(n_kept: int | None) -> list[int]:
        hist = [texts.item(row["history_items"][i], row["history_ratings"][i])
                for i in _expected_kept(row, k, n_kept)]
        out = []
        for c in row["candidates"]:
            ctx, cand = tpl.render_text(texts.variables("u", c, summary), hist)
            out.append(len(tok(ctx)["input_ids"]) + len(tok(cand, add_special_tokens=False)["input_ids"]))
        return out

    budget = max(1, data.draw(st.integers(max(lengths(0)) - 5, max(lengths(None)) + 5), label="budget"))
    try:
        (group,) = render_ranking([row], texts, tpl, tok, k, budget, chat=False)
    except (PromptError, DataError):
        assert max(lengths(0)) > budget
        return
    assert len(group) == len(row["candidates"])
    assert max(len(p) for p in group) <= budget
    assert len({p.context_ids for p in group}) == 1  # one shared context (prefix reuse, a fair ranking)
    n = group[0].history_kept
    assert all(p.history_kept == n for p in group)
    assert [len(p) for p in group] == lengths(n)
    for c, p in zip(row["candidates"], group):
        assert f"Candidate: {texts.item(c)['title']}\n" in p.text
        assert summary is None or summary in p.text
    shown = len(_expected_kept(row, k))
    event(f"{'cut' if n < shown else 'not cut'} by the budget, {'partly' if 0 < n < shown else 'all or nothing'}")
    if n < shown:
        assert max(lengths(n + 1)) > budget


# =========================================================================== SUBR


@st.composite
def subr_problem(draw):
    """Users' chronologies over a small catalogue (repeated items, tied similarities) and samples at any position."""
    n_items = draw(st.integers(1, 8))
    dim = draw(st.integers(1, 3))
    # small integer directions: many items point the same way (tied similarities), some opposite
    raw = np.array(draw(st.lists(st.lists(st.integers(-2, 2), min_size=dim, max_size=dim).filter(any),
                                 min_size=n_items, max_size=n_items)), dtype=np.float64)
    vectors = (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)
    lengths = draw(st.lists(st.integers(1, 14), min_size=1, max_size=5))
    seq_rows = np.array(draw(st.lists(st.integers(0, n_items - 1), min_size=sum(lengths), max_size=sum(lengths))))
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    samples = draw(st.lists(st.integers(0, len(lengths) - 1).flatmap(
        lambda u: st.tuples(st.just(u), st.integers(0, lengths[u] - 1))), min_size=1, max_size=12))
    users = np.array([u for u, _ in samples], dtype=np.int64)
    ends = np.array([e for _, e in samples], dtype=np.int64)
    k = draw(st.integers(1, 6))
    return seq_rows, starts, users, ends, vectors, k


@settings(max_examples=80)
@given(subr_problem(), st.sampled_from([0, 10_000]), st.sampled_from([1, 2]), st.sampled_from([0, 32]))
def test_subr_retrieves_the_k_most_similar_earlier_items_in_chronological_order(problem, dense_max_items, threads,
                                                                                dense_pass_mib):
    """Per sample: min(K, earlier items) positions, strictly before the target, ascending (chronological), and
    no unchosen earlier item more similar than a chosen one (ties: the more recent wins); deterministic, and the
    fast path equals the straightforward one. Mutation: ``>=`` for ``>`` in the mask of positions at or after
    the target (the target retrieved as its own history) fails this."""
    from llmrec.retrieval import subr_fast, subr_reference
    from llmrec.retrieval.subr import SCALE, integer_vectors

    seq_rows, starts, users, ends, vectors, k = problem
    got = subr_fast(seq_rows, starts, users, ends, vectors, k, dense_max_items=dense_max_items, block_entries=1024,
                    threads=threads, dense_pass_mib=dense_pass_mib)
    q = integer_vectors(vectors).astype(np.int64)
    assert np.diff(got.offsets).tolist() == np.minimum(ends, k).tolist()
    for i, (u, end) in enumerate(zip(users, ends)):
        pos = got.positions[got.offsets[i] : got.offsets[i + 1]].tolist()
        assert pos == sorted(set(pos)) and all(0 <= p < end for p in pos)  # chronological, strictly earlier
        history = seq_rows[starts[u] : starts[u] + end]
        target = seq_rows[starts[u] + end]
        dots = [int(q[history[p]] @ q[target]) for p in range(end)]
        assert got.dots[got.offsets[i] : got.offsets[i + 1]].tolist() == [dots[p] for p in pos]
        key = [(dots[p], p) for p in range(end)]  # higher similarity first, then the more recent
        chosen = {key[p] for p in pos}
        assert all(c > o for c in chosen for o in set(key) - chosen)
    np.testing.assert_allclose(got.similarity, got.dots / SCALE**2, rtol=1e-6)
    assert got.equals(subr_fast(seq_rows, starts, users, ends, vectors, k))  # other blocking, same bits
    assert got.equals(subr_reference(seq_rows, starts, users, ends, vectors, k))
    # a sample's retrieval depends on its own chronology only: any split of the samples gives the same rows
    from llmrec.retrieval.subr import concat_retrieved

    cut = len(ends) // 2
    halves = [subr_fast(seq_rows, starts, users[a:b], ends[a:b], vectors, k) for a, b in ((0, cut), (cut, len(ends)))]
    assert concat_retrieved(halves).equals(got)


def test_subr_handles_a_sample_repeated_more_often_than_its_history_is_long():
    """Found by the property above: four copies of one sample with 2 earlier items (K = 1) made the block
    sizing index past its position range (a ValueError on broadcasting)."""
    from llmrec.retrieval import subr_fast, subr_reference

    vectors = np.array([[1, 0], [0.6, 0.8], [0, 1]], dtype=np.float32)
    problem = (np.array([0, 1, 2]), np.array([0]), np.zeros(4, dtype=np.int64), np.full(4, 2), vectors, 1)
    got = subr_fast(*problem)
    assert got.positions.tolist() == [1] * 4 and got.equals(subr_reference(*problem))


@settings(max_examples=8)
@given(st.integers(0, 10_000), st.integers(1, 6))
def test_retrieved_folders_hold_earlier_items_in_chronological_order(data_seed, k):
    """Through ``retrieve`` on a prepared ReLLa folder: each history is min(K, history_end) items of the user's
    chronology strictly before the target, ascending, with their ratings; the folder passes the audit; a second
    run writes the same files."""
    from llmrec.data.audit import audit_prepared
    from llmrec.data.prepare import PrepareConfig, prepare
    from llmrec.data.prepared import PreparedData
    from llmrec.retrieval import EncoderSettings, RetrievalConfig, retrieve
    from tests.conftest import random_ratings, write_ml1m_zip

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        zip_path = write_ml1m_zip(tmp / "ml-1m.zip", random_ratings(8, 30, (2, 20), seed=data_seed))
        data = prepare(PrepareConfig(dataset="ml-1m", protocol="rella", path=str(zip_path), out=str(tmp / "rella"),
                                     rella={"min_history": 1}), log=lambda m: None)[1]
        ids = PreparedData.load(data).items["item"].tolist()
        rng = np.random.default_rng(data_seed)
        vec = tmp / "vectors.parquet"
        pd.DataFrame({"item": ids, "vector": list(rng.integers(-2, 3, size=(len(ids), 3)).astype(float) + 0.01)}
                     ).to_parquet(vec)
        outs = []
        for name in ("a", "b"):
            config = RetrievalConfig(data=str(data), out=str(tmp / name), k=k,
                                     encoder=EncoderSettings(kind="file", path=str(vec), pca_dim=None))
            outs.append(retrieve(config, log=lambda m: None, progress=False)[0])
        got = PreparedData.load(outs[0])
        seqs = {r["user"]: r for r in got.sequences.to_pylist()}
        for name in ("train", "valid", "test"):
            for r in got.splits[name].to_pylist():
                s, end = seqs[r["user"]], r["history_end"]
                pos = r["history_positions"]
                assert len(pos) == min(k, end) and pos == sorted(set(pos)) and all(0 <= p < end for p in pos)
                assert r["history_items"] == [s["items"][p] for p in pos]
                assert r["history_ratings"] == [s["ratings"][p] for p in pos]
                assert all(s["timestamps"][p] <= r["timestamp"] for p in pos)
        assert audit_prepared(outs[0])["ok"]
        for f in sorted(p.name for p in outs[0].iterdir()):
            if f != "meta.json":  # meta.json names its own folder's sources
                assert (outs[0] / f).read_bytes() == (outs[1] / f).read_bytes(), f
