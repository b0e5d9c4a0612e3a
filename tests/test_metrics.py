"""Tests of llmrec.metrics against values worked out by hand (arithmetic in comments)
and against a brute-force enumeration of every order of tied candidates."""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from llmrec import metrics as M
from llmrec.metrics import (
    MetricInputError,
    UndefinedMetricError,
    accuracy,
    auc,
    ctr_report,
    gauc,
    hit_rate_at_k,
    log_loss,
    mrr_at_k,
    ndcg_at_k,
    ranking_report,
    recall_at_k,
)

RANKING = {
    "recall": recall_at_k,
    "mrr": mrr_at_k,
    "ndcg": ndcg_at_k,
    "hit": hit_rate_at_k,
}


# =========================================================================== CTR: AUC


def test_auc_hand_example():
    # positives 0.35, 0.8; negatives 0.1, 0.4
    # pairs: (0.35>0.1)=1, (0.35>0.4)=0, (0.8>0.1)=1, (0.8>0.4)=1 -> 3/4
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


def test_auc_ties_count_half():
    # positives 0.5, 0.9; negatives 0.5, 0.2
    # (0.5 vs 0.5) tie = 1/2, (0.5 > 0.2) = 1, (0.9 > 0.5) = 1, (0.9 > 0.2) = 1
    # -> 3.5 / 4 = 0.875
    assert auc([0, 1, 0, 1], [0.5, 0.5, 0.2, 0.9]) == pytest.approx(0.875)
    # every pair tied -> 1/2
    assert auc([0, 1, 1, 0, 1], [0.3] * 5) == pytest.approx(0.5)


def test_auc_extremes_and_order_only():
    y = [0, 0, 1, 1, 1]
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.5])
    assert auc(y, s) == 1.0
    assert auc(y, -s) == 0.0
    # only the order matters: any strictly increasing transform, unbounded scores
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == auc(
        [0, 0, 1, 1], np.log([0.1, 0.4, 0.35, 0.8]) * 100
    )
    assert auc([0, 1, 0], [-np.inf, np.inf, 0.0]) == 1.0
    assert isinstance(auc(y, s), float)


def test_auc_accepts_bool_and_float_labels():
    s = [0.1, 0.4, 0.35, 0.8]
    assert auc([False, False, True, True], s) == auc([0.0, 0.0, 1.0, 1.0], s) == 0.75


@pytest.mark.parametrize(("labels", "present"), [([1, 1, 1], "1"), ([0, 0], "0")])
def test_auc_single_class_is_undefined(labels, present):
    with pytest.raises(UndefinedMetricError, match=f"only class {present}"):
        auc(labels, np.linspace(0, 1, len(labels)))
    assert issubclass(UndefinedMetricError, ValueError)


def test_auc_nan_scores_are_counted():
    with pytest.raises(MetricInputError, match=r"scores contains 2 NaN"):
        auc([0, 1, 0, 1], [0.1, np.nan, np.nan, 0.3])


@pytest.mark.parametrize(
    ("labels", "scores", "pattern"),
    [
        ([0, 1, 1], [0.1, 0.2], r"same shape.*\(3,\).*\(2,\)"),
        ([], [], "empty"),
        ([[0, 1]], [[0.1, 0.2]], "labels must be 1-D"),
        ([0, 1], [[0.1, 0.2]], "scores must be 1-D"),
        ([0, 2, 1], [0.1, 0.2, 0.3], r"labels must contain only 0 and 1.*\[2\.0\]"),
        ([0, 1], ["a", "b"], "scores must be numeric"),
    ],
)
@pytest.mark.parametrize("metric", [auc, log_loss, accuracy])
def test_ctr_input_errors(metric, labels, scores, pattern):
    with pytest.raises(MetricInputError, match=pattern):
        metric(labels, scores)


# =========================================================================== CTR: GAUC


def test_gauc_hand_example():
    # user a: rows (0, 0.1), (1, 0.9)            -> AUC 1, 2 impressions
    # user b: pos 0.1 vs negs 0.5, 0.6, 0.7      -> AUC 0, 4 impressions
    # user c: a single row, one class            -> skipped
    # GAUC = (2 * 1 + 4 * 0) / (2 + 4) = 1/3
    users = ["a", "a", "b", "b", "b", "b", "c"]
    labels = [0, 1, 1, 0, 0, 0, 1]
    scores = [0.1, 0.9, 0.1, 0.5, 0.6, 0.7, 0.3]
    assert gauc(users, labels, scores) == pytest.approx(1 / 3)


def test_gauc_with_ties_within_user():
    # user 7: pos 0.5 vs neg 0.5 -> tie -> 1/2 (2 rows)
    # user 3: pos 0.2, 0.8 vs neg 0.5 -> 0 + 1 -> 1/2 (3 rows); identical scores in
    #         another user must not count as ties here
    # GAUC = (2 * 0.5 + 3 * 0.5) / 5 = 0.5
    users = [7, 7, 3, 3, 3]
    labels = [1, 0, 1, 0, 1]
    scores = [0.5, 0.5, 0.2, 0.5, 0.8]
    assert gauc(users, labels, scores) == pytest.approx(0.5)


def test_gauc_matches_per_user_loop():
    rng = np.random.default_rng(3)
    n = 400
    users = rng.integers(0, 30, n)
    labels = rng.integers(0, 2, n)
    scores = rng.integers(0, 6, n) / 5.0  # many ties
    num = den = 0.0
    for u in np.unique(users):
        m = users == u
        if labels[m].min() == labels[m].max():
            continue
        num += m.sum() * auc(labels[m], scores[m])
        den += m.sum()
    assert gauc(users, labels, scores) == pytest.approx(num / den, abs=1e-12)


def test_gauc_errors():
    with pytest.raises(UndefinedMetricError, match="none of the 2 users"):
        gauc([1, 1, 2], [0, 0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(MetricInputError, match="users and labels must have the same"):
        gauc([1, 2], [0, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(MetricInputError, match="users must be 1-D"):
        gauc([[1, 2, 3]], [0, 1, 1], [0.1, 0.2, 0.3])


# =========================================================================== CTR: log loss


def test_log_loss_hand_values():
    # -(ln 0.8 + ln(1 - 0.4)) / 2
    expected = -(math.log(0.8) + math.log(0.6)) / 2
    assert log_loss([1, 0], [0.8, 0.4]) == pytest.approx(expected, rel=1e-12)
    # p = 0.5 everywhere -> ln 2 whatever the labels
    assert log_loss([0, 1, 1], [0.5, 0.5, 0.5]) == pytest.approx(math.log(2), rel=1e-12)


def test_log_loss_clips_to_eps():
    # label 1 with score 0 -> -ln(eps); label 0 with score 1 -> -ln(1 - (1 - eps)) = -ln(eps)
    # label 1 with score 1 -> -ln(1 - eps)
    eps = 1e-7
    expected = -(math.log(eps) + math.log(eps) + math.log(1 - eps)) / 3
    assert log_loss([1, 0, 1], [0.0, 1.0, 1.0]) == pytest.approx(expected, rel=1e-9)
    assert log_loss([1], [0.0], eps=1e-3) == pytest.approx(-math.log(1e-3), rel=1e-12)
    assert log_loss([1], [0.0], eps=0.0) == math.inf


def test_log_loss_rejects_non_probabilities():
    with pytest.raises(MetricInputError, match=r"\[0, 1\]; 2 value\(s\)"):
        log_loss([1, 0, 1], [1.5, -0.1, 0.5])
    with pytest.raises(MetricInputError, match="eps"):
        log_loss([1, 0], [0.2, 0.3], eps=0.5)


# =========================================================================== CTR: accuracy


def test_accuracy_threshold_is_strict():
    # predictions (score > 0.5): 0.5 -> 0, 0.5 -> 0, 0.9 -> 1, 0.2 -> 0
    # labels 0, 1, 1, 0 -> matches T, F, T, T -> 3/4
    assert accuracy([0, 1, 1, 0], [0.5, 0.5, 0.9, 0.2]) == 0.75
    # just above the threshold predicts 1
    assert accuracy([1], [np.nextafter(0.5, 1.0)]) == 1.0
    assert accuracy([1], [0.5]) == 0.0


def test_accuracy_custom_threshold_and_logits():
    # threshold 0.3: 0.3 -> 0 (not >), 0.31 -> 1, 0.1 -> 0; labels 0, 1, 1 -> 2/3
    assert accuracy([0, 1, 1], [0.3, 0.31, 0.1], threshold=0.3) == pytest.approx(2 / 3)
    # logits with threshold 0: -2 -> 0, 0 -> 0, 3 -> 1; labels 0, 1, 1 -> 2/3
    assert accuracy([0, 1, 1], [-2.0, 0.0, 3.0], threshold=0.0) == pytest.approx(2 / 3)


# =========================================================================== CTR: report


def test_ctr_report():
    r = ctr_report([0, 1, 1, 0], [0.2, 0.6, 0.4, 0.4])
    assert set(r) == {"auc", "logloss", "acc"}
    # pos 0.6, 0.4 vs neg 0.2, 0.4: 1 + 1 + 1 + 1/2 -> 3.5 / 4
    assert r["auc"] == pytest.approx(0.875)
    # predictions 0, 1, 0, 0 -> T, T, F, T
    assert r["acc"] == 0.75
    expected = -(math.log(0.8) + math.log(0.6) + math.log(0.4) + math.log(0.6)) / 4
    assert r["logloss"] == pytest.approx(expected, rel=1e-12)
    assert all(type(v) is float for v in r.values())


def test_ctr_report_single_class_warns_and_gives_nan():
    with pytest.warns(RuntimeWarning, match="auc is undefined"):
        r = ctr_report([1, 1], [0.9, 0.4])
    assert math.isnan(r["auc"])
    assert r["acc"] == 0.5
    assert r["logloss"] == pytest.approx(-(math.log(0.9) + math.log(0.4)) / 2)
    # other input errors still raise
    with pytest.raises(MetricInputError):
        ctr_report([1, 0], [0.9])


def test_ctr_report_with_users():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = ctr_report([0, 1, 1, 0], [0.2, 0.6, 0.4, 0.4], users=[1, 1, 2, 2])
    # user 1: 0.6 > 0.2 -> 1; user 2: 0.4 vs 0.4 tie -> 1/2; (2 * 1 + 2 * 0.5) / 4
    assert r["gauc"] == pytest.approx(0.75)


# =========================================================================== ranking: by hand


def test_single_positive_at_rank_two():
    scores = [[0.9, 0.8, 0.1]]
    labels = [[0, 1, 0]]
    assert recall_at_k(scores, labels, 1) == 0.0
    assert recall_at_k(scores, labels, 3) == 1.0
    assert mrr_at_k(scores, labels, 1) == 0.0
    assert mrr_at_k(scores, labels, 3) == 0.5
    assert ndcg_at_k(scores, labels, 1) == 0.0
    # DCG = 1/log2(2 + 1); ideal DCG = 1/log2(1 + 1) = 1
    assert ndcg_at_k(scores, labels, 3) == pytest.approx(1 / math.log2(3), rel=1e-12)
    assert hit_rate_at_k(scores, labels, 1) == 0.0
    assert hit_rate_at_k(scores, labels, 2) == 1.0


def test_multi_positive_rows():
    scores = [
        [0.9, 0.8, 0.7, 0.6, 0.5],  # positives ranked 1, 3, 5
        [0.5, 0.6, 0.7, 0.8, 0.9],  # reversed: the positives (cols 1, 2) are ranked 4, 3
    ]
    labels = [
        [1, 0, 1, 0, 1],
        [0, 1, 1, 0, 0],
    ]
    k = 3
    # row 0: 2 of 3 positives in top 3; row 1: 1 of 2 (rank 3)
    assert recall_at_k(scores, labels, k) == pytest.approx((2 / 3 + 1 / 2) / 2)
    # row 0: first positive at rank 1; row 1: at rank 3
    assert mrr_at_k(scores, labels, k) == pytest.approx((1 + 1 / 3) / 2)
    # row 0: DCG = 1/log2(2) + 1/log2(4) = 1.5, ideal = 1 + 1/log2(3) + 1/log2(4)
    # row 1: DCG = 1/log2(4) = 0.5,            ideal = 1 + 1/log2(3)
    ndcg0 = 1.5 / (1 + 1 / math.log2(3) + 0.5)
    ndcg1 = 0.5 / (1 + 1 / math.log2(3))
    assert ndcg_at_k(scores, labels, k) == pytest.approx((ndcg0 + ndcg1) / 2, rel=1e-12)
    assert hit_rate_at_k(scores, labels, k) == 1.0
    assert hit_rate_at_k(scores, labels, 2) == 0.5  # row 1 has no positive in top 2


def test_all_tied_one_positive_in_21():
    scores = np.zeros((1, 21))
    for pos_col in (0, 7, 20):  # whatever the candidate order
        labels = np.zeros((1, 21))
        labels[0, pos_col] = 1
        # the positive is uniform on ranks 1..21
        assert recall_at_k(scores, labels, 3) == pytest.approx(3 / 21, rel=1e-12)
        assert hit_rate_at_k(scores, labels, 3) == pytest.approx(3 / 21, rel=1e-12)
        # E[1/rank; rank <= 3] = (1 + 1/2 + 1/3) / 21
        assert mrr_at_k(scores, labels, 3) == pytest.approx((1 + 1 / 2 + 1 / 3) / 21)
        # E[1/rank] = H_21 / 21
        h21 = sum(1 / r for r in range(1, 22))
        assert mrr_at_k(scores, labels, 21) == pytest.approx(h21 / 21, rel=1e-12)
        # E[DCG@3] = (1/log2 2 + 1/log2 3 + 1/log2 4) / 21, ideal DCG = 1
        dcg = (1 + 1 / math.log2(3) + 1 / math.log2(4)) / 21
        assert ndcg_at_k(scores, labels, 3) == pytest.approx(dcg, rel=1e-12)
        assert recall_at_k(scores, labels, 21) == pytest.approx(1.0)


def test_all_tied_two_positives_in_4():
    scores = np.full((1, 4), 0.3)
    labels = [[0, 1, 0, 1]]
    # each positive is in the top 1 with P = 1/4 -> recall@1 = (1/4 + 1/4) / 2
    assert recall_at_k(scores, labels, 1) == pytest.approx(1 / 4)
    # P(top slot is a positive) = 2/4
    assert hit_rate_at_k(scores, labels, 1) == pytest.approx(1 / 2)
    # P(no positive in top 2) = C(2,2) / C(4,2) = 1/6 -> hit@2 = 5/6
    assert hit_rate_at_k(scores, labels, 2) == pytest.approx(5 / 6)
    # first positive J: P(J=1) = C(3,1)/C(4,2) = 3/6, P(J=2) = 2/6, P(J=3) = 1/6
    # MRR@4 = 3/6 * 1 + 2/6 * 1/2 + 1/6 * 1/3 = 13/18; MRR@2 = 3/6 + 2/6 * 1/2 = 2/3
    assert mrr_at_k(scores, labels, 4) == pytest.approx(13 / 18)
    assert mrr_at_k(scores, labels, 2) == pytest.approx(2 / 3)
    # E[DCG@2] = 2 positives * (1 + 1/log2 3) / 4; ideal DCG@2 = 1 + 1/log2 3 -> 1/2
    assert ndcg_at_k(scores, labels, 2) == pytest.approx(0.5)


def test_partial_tie_group_straddling_k():
    # ranks: 1 = col 0 (neg); cols 1, 2, 3 tie for ranks 2..4 with 2 positives; col 4 last
    scores = [[3.0, 2.0, 2.0, 2.0, 1.0]]
    labels = [[0, 1, 0, 1, 0]]
    k = 2
    # rank 2 holds one of the 3 tied candidates: a positive with P = 2/3
    assert hit_rate_at_k(scores, labels, k) == pytest.approx(2 / 3)
    assert mrr_at_k(scores, labels, k) == pytest.approx(2 / 3 * 1 / 2)
    # each positive is at rank 2 with P = 1/3 -> recall = (1/3 + 1/3) / 2
    assert recall_at_k(scores, labels, k) == pytest.approx(1 / 3)
    # E[DCG@2] = 2 * (1/3) / log2(3); ideal DCG@2 = 1 + 1/log2(3)
    expected = (2 / 3 / math.log2(3)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(scores, labels, k) == pytest.approx(expected)
    # k = 4 covers the whole group: first positive J in {1, 2} of the group with
    # P(J=1) = 2/3, P(J=2) = 1/3 -> MRR = 2/3 * 1/2 + 1/3 * 1/3
    assert mrr_at_k(scores, labels, 4) == pytest.approx(1 / 3 + 1 / 9)
    assert hit_rate_at_k(scores, labels, 4) == 1.0


def test_k_larger_than_the_list():
    scores = [[0.9, 0.8, 0.1]]
    labels = [[0, 1, 0]]
    assert recall_at_k(scores, labels, 100) == 1.0
    assert mrr_at_k(scores, labels, 100) == 0.5
    assert ndcg_at_k(scores, labels, 100) == pytest.approx(1 / math.log2(3))
    assert hit_rate_at_k(scores, labels, 100) == 1.0
    # all candidates positive: everything is perfect at any k
    assert ndcg_at_k([[0.2, 0.1]], [[1, 1]], 50) == pytest.approx(1.0)


def test_infinite_scores_rank_normally():
    # -inf works as "never recommend": the two -inf candidates tie for ranks 2..3
    scores = [[-np.inf, 0.4, -np.inf]]
    labels = [[1, 0, 0]]
    assert recall_at_k(scores, labels, 2) == pytest.approx(1 / 2)
    assert mrr_at_k(scores, labels, 3) == pytest.approx((1 / 2 + 1 / 3) / 2)


def test_ranking_report_keys_and_consistency():
    rng = np.random.default_rng(1)
    scores = rng.integers(0, 4, (40, 12)).astype(float)
    labels = (rng.random((40, 12)) < 0.2).astype(int)
    labels[:, 0] = 1
    r = ranking_report(scores, labels, ks=(1, 5, 20))
    assert list(r) == [f"{m}@{k}" for k in (1, 5, 20) for m in ("recall", "mrr", "ndcg", "hit")]
    for key, value in r.items():
        name, k = key.split("@")
        assert type(value) is float
        assert value == RANKING[name](scores, labels, int(k))
    assert set(ranking_report(scores, labels)) == {
        f"{m}@{k}" for k in (3, 5, 10) for m in ("recall", "mrr", "ndcg", "hit")
    }
    # repeated ks are computed once, not summed twice
    assert ranking_report(scores, labels, ks=(5, 5))["recall@5"] == r["recall@5"]


# =========================================================================== ranking: brute force


def _metrics_of_order(rel: list[int], k: int) -> dict[str, float]:
    """The textbook definitions on one fully ordered list of binary relevances."""
    n_pos = sum(rel)
    top = rel[:k]
    first = next(i for i, r in enumerate(rel) if r) + 1
    dcg = sum(1 / math.log2(i + 2) for i, r in enumerate(top) if r)
    idcg = sum(1 / math.log2(i + 2) for i in range(min(n_pos, k)))
    return {
        "recall": sum(top) / n_pos,
        "mrr": 1 / first if first <= k else 0.0,
        "ndcg": dcg / idcg,
        "hit": float(any(top)),
    }


def _brute_force_expectation(scores: np.ndarray, labels: np.ndarray, k: int) -> dict:
    """Average the metrics over every permutation of the candidates, each then ranked
    by a stable sort on descending score: every order of tied items appears equally often."""
    n = len(scores)
    totals = dict.fromkeys(RANKING, 0.0)
    count = 0
    for perm in itertools.permutations(range(n)):
        ranked = sorted(perm, key=lambda i: -scores[i])  # stable: ties keep perm order
        for name, value in _metrics_of_order([int(labels[i]) for i in ranked], k).items():
            totals[name] += value
        count += 1
    return {name: total / count for name, total in totals.items()}


def test_brute_force_over_all_tie_orders():
    rng = np.random.default_rng(12345)
    checked = 0
    for _ in range(60):
        n = int(rng.integers(1, 7))  # up to 6 candidates: 720 permutations
        scores = rng.integers(0, 3, n).astype(float)  # 3 distinct values -> many ties
        labels = (rng.random(n) < 0.4).astype(int)
        if labels.sum() == 0:
            labels[rng.integers(0, n)] = 1
        for k in range(1, n + 2):
            expected = _brute_force_expectation(scores, labels, k)
            for name, fn in RANKING.items():
                got = fn(scores[None, :], labels[None, :], k)
                assert got == pytest.approx(expected[name], abs=1e-9), (
                    name, k, scores.tolist(), labels.tolist(),
                )
            checked += 1
    assert checked > 100


def test_brute_force_seven_all_tied_and_multi_row_mean():
    # a 7-candidate all-tied row (5040 orders) with 3 positives, plus two other rows;
    # the vectorized value is the mean of the per-row brute-force expectations
    rows_s = np.array(
        [[1, 1, 1, 1, 1, 1, 1], [5, 2, 2, 2, 2, 0, 0], [3, 3, 1, 2, 2, 2, 0]], dtype=float
    )
    rows_y = np.array([[0, 1, 0, 1, 0, 1, 0], [0, 0, 1, 0, 0, 1, 0], [0, 0, 1, 1, 0, 1, 1]])
    for k in (1, 2, 3, 5, 7):
        per_row = [_brute_force_expectation(s, y, k) for s, y in zip(rows_s, rows_y)]
        for name, fn in RANKING.items():
            expected = sum(r[name] for r in per_row) / len(per_row)
            assert fn(rows_s, rows_y, k) == pytest.approx(expected, abs=1e-9), (name, k)


# =========================================================================== ranking: properties


def test_invariant_to_permuting_candidate_columns():
    rng = np.random.default_rng(7)
    scores = rng.integers(0, 5, (200, 15)).astype(float)
    labels = (rng.random((200, 15)) < 0.15).astype(int)
    labels[np.arange(200), rng.integers(0, 15, 200)] = 1
    base = ranking_report(scores, labels, ks=(1, 3, 10, 15))
    for _ in range(5):
        perm = rng.permutation(15)
        other = ranking_report(scores[:, perm], labels[:, perm], ks=(1, 3, 10, 15))
        for key in base:
            assert other[key] == pytest.approx(base[key], abs=1e-12), key
    # and per-row independent permutations too
    idx = np.argsort(rng.random((200, 15)), axis=1)
    other = ranking_report(
        np.take_along_axis(scores, idx, 1), np.take_along_axis(labels, idx, 1), ks=(1, 3, 10, 15)
    )
    for key in base:
        assert other[key] == pytest.approx(base[key], abs=1e-12), key


def test_mean_over_rows_and_chunking(monkeypatch):
    rng = np.random.default_rng(11)
    scores = rng.integers(0, 6, (57, 9)).astype(float)
    labels = (rng.random((57, 9)) < 0.3).astype(int)
    labels[:, 4] = 1
    whole = ranking_report(scores, labels, ks=(2, 4))
    per_row = [ranking_report(scores[i : i + 1], labels[i : i + 1], ks=(2, 4)) for i in range(57)]
    for key in whole:
        assert whole[key] == pytest.approx(np.mean([r[key] for r in per_row]), abs=1e-12)
    monkeypatch.setattr(M, "_CHUNK_ELEMENTS", 20)  # 2 rows per chunk
    chunked = ranking_report(scores, labels, ks=(2, 4))
    for key in whole:
        assert chunked[key] == pytest.approx(whole[key], abs=1e-12)


def test_metrics_are_bounded_and_monotone_in_k():
    rng = np.random.default_rng(5)
    scores = rng.random((100, 20)).round(1)
    labels = (rng.random((100, 20)) < 0.1).astype(int)
    labels[:, -1] = 1
    prev = dict.fromkeys(RANKING, 0.0)
    for k in range(1, 22):
        for name, fn in RANKING.items():
            v = fn(scores, labels, k)
            assert 0.0 <= v <= 1.0 + 1e-12
            if name != "ndcg":  # NDCG@k need not grow with k
                assert v >= prev[name] - 1e-12
            prev[name] = v


# =========================================================================== ranking: errors


@pytest.mark.parametrize("fn", list(RANKING.values()))
def test_ranking_input_errors(fn):
    ok_s = [[0.3, 0.2], [0.1, 0.5]]
    ok_y = [[1, 0], [0, 1]]
    with pytest.raises(MetricInputError, match=r"same shape.*\(2, 2\).*\(2, 3\)"):
        fn(ok_s, [[1, 0, 0], [0, 1, 0]], 1)
    with pytest.raises(MetricInputError, match=r"scores must be 2-D.*x\[None, :\]"):
        fn([0.3, 0.2], [1, 0], 1)
    with pytest.raises(MetricInputError, match="empty"):
        fn(np.zeros((0, 5)), np.zeros((0, 5)), 1)
    with pytest.raises(MetricInputError, match="empty"):
        fn(np.zeros((3, 0)), np.zeros((3, 0)), 1)
    with pytest.raises(MetricInputError, match="scores contains 1 NaN"):
        fn([[0.3, np.nan], [0.1, 0.5]], ok_y, 1)
    with pytest.raises(MetricInputError, match="labels must contain only 0 and 1"):
        fn(ok_s, [[1, 0], [0, 3]], 1)
    with pytest.raises(MetricInputError, match=r"row 1 has no positive.*\[1, 3\]"):
        fn([[0.3, 0.2]] * 4, [[1, 0], [0, 0], [0, 1], [0, 0]], 1)
    for bad_k in (0, -1):
        with pytest.raises(MetricInputError, match="k must be >= 1"):
            fn(ok_s, ok_y, bad_k)
    for bad_k in (2.5, True, "3", None):
        with pytest.raises(MetricInputError, match="k must be a positive integer"):
            fn(ok_s, ok_y, bad_k)
    assert fn(ok_s, ok_y, np.int64(1)) == 1.0  # numpy integers are fine


def test_ranking_report_errors():
    with pytest.raises(MetricInputError, match="ks must name at least one"):
        ranking_report([[0.1]], [[1]], ks=())
    with pytest.raises(MetricInputError, match="k must be >= 1"):
        ranking_report([[0.1]], [[1]], ks=(3, 0))


def test_bootstrap_interval_is_seeded_and_close_to_the_analytic_width():
    from llmrec.metrics import auc, bootstrap_ci

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 2000)
    s = y * 0.8 + rng.normal(size=2000)
    a = auc(y, s)
    lo, hi = bootstrap_ci(auc, y, s, n_boot=400, seed=1)
    assert (lo, hi) == bootstrap_ci(auc, y, s, n_boot=400, seed=1)
    assert lo < a < hi
    # Hanley & McNeil (1982) standard error of the AUC
    n1, n0 = y.sum(), (1 - y).sum()
    q1, q2 = a / (2 - a), 2 * a * a / (1 + a)
    se = np.sqrt((a * (1 - a) + (n1 - 1) * (q1 - a * a) + (n0 - 1) * (q2 - a * a)) / (n1 * n0))
    assert 0.8 < (hi - lo) / (2 * 1.96 * se) < 1.25


def test_bootstrap_by_group_is_wider_for_correlated_samples():
    from llmrec.metrics import bootstrap_ci, log_loss

    rng = np.random.default_rng(0)
    users = np.repeat(np.arange(20), 50)
    bias = rng.normal(scale=2.0, size=20)[users]  # samples of one user move together
    y = (rng.random(1000) < 0.5).astype(int)
    p = 1 / (1 + np.exp(-(bias + (2 * y - 1) * 0.5)))
    rows = bootstrap_ci(log_loss, y, p, n_boot=300)
    grouped = bootstrap_ci(log_loss, y, p, n_boot=300, groups=users)
    assert grouped[1] - grouped[0] > 1.5 * (rows[1] - rows[0])
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(log_loss, y, p, level=1.5)


# ---------------------------------------------------------------- gaps mutation testing found (docs/development.md)

@pytest.mark.parametrize("metric", ["auc", "logloss", "recall@1", "recall@2", "mrr@3", "ndcg@2", "hit@1"])
def test_metric_by_name_is_the_named_metric(metric):
    """Mutants that read another metric or pass the wrong argument survived without this."""
    from llmrec.metrics import metric_by_name, ranking_report

    rng = np.random.default_rng(3)
    if metric in ("auc", "logloss"):
        labels, scores = np.array([0, 1, 1, 0, 1, 0, 1, 1]), rng.uniform(0.05, 0.95, 8)
        want = auc(labels, scores) if metric == "auc" else M.log_loss(labels, scores)
    else:
        labels = np.zeros((5, 4), dtype=int)
        labels[np.arange(5), rng.integers(0, 4, 5)] = 1
        scores = rng.uniform(size=(5, 4))
        want = ranking_report(scores, labels, ks=(int(metric.split("@")[1]),))[metric]
    assert metric_by_name(metric, labels, scores) == pytest.approx(want, abs=1e-12)


def test_ctr_report_keeps_the_other_metrics_when_gauc_is_undefined():
    """Every user one-class: GAUC is undefined, reported as NaN under its own key with a RuntimeWarning, and the
    other metrics are still there."""
    labels, scores, users = [1, 1, 0, 0], [0.9, 0.2, 0.3, 0.6], ["a", "a", "b", "b"]
    with pytest.warns(RuntimeWarning):
        report = M.ctr_report(labels, scores, users=users)
    assert math.isnan(report["gauc"]) and report["auc"] == pytest.approx(auc(labels, scores))
    assert set(report) >= {"auc", "logloss", "acc", "gauc"}


@pytest.mark.parametrize("scores, labels, pattern", [
    ([0.1, 0.2], [[0, 1]], r"^scores must be 2-D .*x\[None, :\]"),
    ([[0.1, 0.2]], [0, 1], r"^labels must be 2-D"),
    ([["a", "b"]], [[0, 1]], r"^scores must be numeric"),
    ([[0.1, 0.2]], [["x", "y"]], r"^labels must be numeric"),
    ([[0.1, 0.2]], [[0, 1, 0]], r"^scores and labels must have the same shape"),
    ([[0.1, 0.2]], [[0, 0]], r"^labels: row 0 has no positive"),
])
def test_ranking_input_errors_name_the_argument(scores, labels, pattern):
    with pytest.raises(M.MetricInputError, match=pattern):
        M.ranking_report(scores, labels, ks=(1,))


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5])
def test_bootstrap_levels_outside_zero_one_are_refused(level):
    with pytest.raises(ValueError):
        M.bootstrap_ci(auc, [0, 1, 0, 1], [0.1, 0.9, 0.2, 0.8], level=level)
