"""Evaluation metrics as pure functions: array-likes in, a Python ``float`` out.

Two families:

* **CTR (binary) metrics**, ``f(labels, scores, ...)`` on 1-D arrays: ``labels`` in
  {0, 1}, ``scores`` the predicted probability (or any monotone score, for AUC) of 1:
  :func:`auc`, :func:`gauc`, :func:`log_loss`, :func:`accuracy`, :func:`ctr_report`.
* **Ranking metrics on candidate lists**, ``f(scores, labels, k)`` on 2-D arrays of shape
  ``(n_lists, n_candidates)``; every row needs at least one positive; the result is
  the mean over rows: :func:`recall_at_k`, :func:`mrr_at_k`, :func:`ndcg_at_k`,
  :func:`hit_rate_at_k`, :func:`ranking_report`.

Ties in ranking scores are resolved *in expectation*: every metric returns its exact
expected value when tied candidates are put in a uniformly random order. The result
therefore never depends on the order of the candidate columns, and a constant scorer
gets chance-level numbers (1 positive among 21 candidates: Recall@3 = 3/21).

>>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
0.75
>>> recall_at_k([[0.0] * 21], [[1] + [0] * 20], k=3) == 3 / 21
True
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from llmrec.errors import LlmrecError

__all__ = [
    "MetricInputError",
    "UndefinedMetricError",
    "auc",
    "gauc",
    "log_loss",
    "accuracy",
    "ctr_report",
    "bootstrap_ci",
    "ranking_per_list",
    "recall_at_k",
    "mrr_at_k",
    "ndcg_at_k",
    "hit_rate_at_k",
    "ranking_report",
    "RANKING_METRICS",
    "check_ctr_metric",
    "check_ranking_metric",
    "metric_by_name",
    "higher_is_better",
]


class MetricInputError(LlmrecError, ValueError):
    """Invalid metric input: wrong shape, empty, NaN, non-binary labels, bad ``k``...

    The message names the offending argument.
    """


class UndefinedMetricError(MetricInputError):
    """The metric is mathematically undefined for this input (e.g. AUC with one class)."""


# --------------------------------------------------------------------------- validation


def _as_float_array(name: str, x: ArrayLike) -> NDArray[np.float64]:
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise MetricInputError(f"{name} must be numeric: {exc}") from None
    return arr


def _check_labels(name: str, y: NDArray[np.float64]) -> NDArray[np.bool_]:
    bad = ~((y == 0) | (y == 1))
    if bad.any():
        examples = np.unique(y[bad])[:5].tolist()
        raise MetricInputError(
            f"{name} must contain only 0 and 1, found {int(bad.sum())} other value(s), "
            f"e.g. {examples}"
        )
    return y == 1


def _check_no_nan(name: str, x: NDArray[np.float64]) -> None:
    n_nan = int(np.isnan(x).sum())
    if n_nan:
        raise MetricInputError(f"{name} contains {n_nan} NaN value(s) out of {x.size}")


def _binary_inputs(
    labels: ArrayLike, scores: ArrayLike
) -> tuple[NDArray[np.bool_], NDArray[np.float64]]:
    """Validate 1-D CTR inputs; return (boolean labels, float scores)."""
    y = _as_float_array("labels", labels)
    s = _as_float_array("scores", scores)
    for name, arr in (("labels", y), ("scores", s)):
        if arr.ndim != 1:
            raise MetricInputError(f"{name} must be 1-D, got shape {arr.shape}")
    if y.shape != s.shape:
        raise MetricInputError(
            f"labels and scores must have the same shape, got {y.shape} and {s.shape}"
        )
    if y.size == 0:
        raise MetricInputError("labels and scores are empty")
    _check_no_nan("scores", s)
    return _check_labels("labels", y), s


def _check_k(k: Any, name: str = "k") -> int:
    if isinstance(k, bool) or not isinstance(k, numbers.Integral):
        raise MetricInputError(f"{name} must be a positive integer, got {k!r}")
    if k < 1:
        raise MetricInputError(f"{name} must be >= 1, got {k}")
    return int(k)


def _ranking_inputs(
    scores: ArrayLike, labels: ArrayLike
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """Validate 2-D ranking inputs; return (float scores, boolean labels)."""
    s = _as_float_array("scores", scores)
    y = _as_float_array("labels", labels)
    for name, arr in (("scores", s), ("labels", y)):
        if arr.ndim != 2:
            raise MetricInputError(
                f"{name} must be 2-D (n_lists, n_candidates), got shape {arr.shape}"
                + (" (use x[None, :] for a single list)" if arr.ndim == 1 else "")
            )
    if s.shape != y.shape:
        raise MetricInputError(
            f"scores and labels must have the same shape, got {s.shape} and {y.shape}"
        )
    if s.size == 0:
        raise MetricInputError(f"scores and labels are empty (shape {s.shape})")
    _check_no_nan("scores", s)
    pos = _check_labels("labels", y)
    no_pos = np.flatnonzero(~pos.any(axis=1))
    if no_pos.size:
        rows = no_pos[:5].tolist()
        more = f" and {no_pos.size - 5} more" if no_pos.size > 5 else ""
        raise MetricInputError(
            f"labels: row {rows[0]} has no positive; every row needs at least one "
            f"(rows without a positive: {rows}{more})"
        )
    return s, pos


# --------------------------------------------------------------------------- CTR metrics


def auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """ROC AUC: the probability that a random positive outscores a random negative.

    Computed with the Mann-Whitney U statistic on average ranks, so a tied
    (positive, negative) pair counts 1/2. Only the order of ``scores`` matters.

    Raises :class:`UndefinedMetricError` when ``labels`` hold a single class.

    Pairs (pos, neg): (0.35, 0.1) win, (0.35, 0.4) loss, (0.8, 0.1) win, (0.8, 0.4) win
    -> 3/4; a tie counts half:

    >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    >>> auc([0, 1], [0.5, 0.5])
    0.5
    """
    y, s = _binary_inputs(labels, scores)
    n_pos = int(y.sum())
    n_neg = y.size - n_pos
    if n_pos == 0 or n_neg == 0:
        present = "0 (negative)" if n_pos == 0 else "1 (positive)"
        raise UndefinedMetricError(
            f"auc is undefined: labels contain only class {present} ({y.size} samples)"
        )
    from scipy.stats import rankdata  # here, not at import: scipy.stats costs ~60 MiB and ~0.4 s to import

    ranks = rankdata(s, method="average")
    u = float(ranks[y].sum()) - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def gauc(users: ArrayLike, labels: ArrayLike, scores: ArrayLike) -> float:
    """Group AUC: impression-weighted mean of per-user AUC.

    Users whose labels hold a single class are skipped (their AUC is undefined); each
    remaining user weighs as many as its number of rows. Raises
    :class:`UndefinedMetricError` when no user has both classes.

    User "a": AUC 1 over 2 rows; user "b": AUC 0 over 4 rows; user "c" is skipped.
    (1 * 2 + 0 * 4) / 6 = 1/3:

    >>> round(gauc(["a", "a", "b", "b", "b", "b", "c"],
    ...            [0, 1, 1, 0, 0, 0, 1],
    ...            [0.1, 0.9, 0.1, 0.5, 0.6, 0.7, 0.3]), 4)
    0.3333
    """
    y, s = _binary_inputs(labels, scores)
    u = np.asarray(users)
    if u.ndim != 1:
        raise MetricInputError(f"users must be 1-D, got shape {u.shape}")
    if u.shape != y.shape:
        raise MetricInputError(
            f"users and labels must have the same shape, got {u.shape} and {y.shape}"
        )
    _, codes = np.unique(u, return_inverse=True)
    codes = codes.reshape(-1)
    n_users = int(codes.max()) + 1

    # Average rank of each score within its user, with ties averaged.
    order = np.lexsort((s, codes))
    c_sorted, s_sorted, y_sorted = codes[order], s[order], y[order]
    n = y.size
    idx = np.arange(n)
    new_user = np.ones(n, dtype=bool)
    new_user[1:] = c_sorted[1:] != c_sorted[:-1]
    new_run = new_user.copy()
    new_run[1:] |= s_sorted[1:] != s_sorted[:-1]
    user_start = np.maximum.accumulate(np.where(new_user, idx, 0))
    run_start = np.maximum.accumulate(np.where(new_run, idx, 0))
    run_id = np.cumsum(new_run) - 1
    run_len = np.bincount(run_id)[run_id]
    rank = (run_start - user_start) + (run_len + 1) / 2.0

    count = np.bincount(c_sorted, minlength=n_users).astype(np.float64)
    n_pos = np.bincount(c_sorted, weights=y_sorted, minlength=n_users)
    n_neg = count - n_pos
    rank_sum = np.bincount(c_sorted, weights=rank * y_sorted, minlength=n_users)
    valid = (n_pos > 0) & (n_neg > 0)
    if not valid.any():
        raise UndefinedMetricError(
            f"gauc is undefined: none of the {n_users} users has both a positive and a "
            "negative label"
        )
    user_auc = (rank_sum[valid] - n_pos[valid] * (n_pos[valid] + 1) / 2.0) / (
        n_pos[valid] * n_neg[valid]
    )
    weights = count[valid]
    return float(np.sum(weights * user_auc) / np.sum(weights))


def log_loss(labels: ArrayLike, scores: ArrayLike, eps: float = 1e-7) -> float:
    """Mean binary cross-entropy, natural log, with scores clipped to [eps, 1 - eps].

    ``scores`` must be probabilities in [0, 1]; anything outside raises.

    -(ln 0.8 + ln(1 - 0.4)) / 2 = (0.2231 + 0.5108) / 2:

    >>> round(log_loss([1, 0], [0.8, 0.4]), 4)
    0.367
    """
    y, s = _binary_inputs(labels, scores)
    if not 0.0 <= eps < 0.5:
        raise MetricInputError(f"eps must be in [0, 0.5), got {eps!r}")
    outside = (s < 0.0) | (s > 1.0)
    if outside.any():
        raise MetricInputError(
            f"scores must be probabilities in [0, 1]; {int(outside.sum())} value(s) are "
            f"outside, e.g. {s[outside][:3].tolist()}"
        )
    p = np.clip(s, eps, 1.0 - eps)
    with np.errstate(divide="ignore"):  # eps=0 with a hard 0/1 score gives inf, on purpose
        losses = -np.where(y, np.log(p), np.log1p(-p))
    return float(np.mean(losses))


def accuracy(labels: ArrayLike, scores: ArrayLike, threshold: float = 0.5) -> float:
    """Fraction of rows whose predicted class equals the label.

    The prediction is 1 iff ``score > threshold`` (strictly greater: a score equal to
    the threshold predicts 0). Any real scores are accepted, so logits work with
    ``threshold=0``.

    Predictions for [0.5, 0.5, 0.9, 0.2] are [0, 0, 1, 0]; 3 of 4 match:

    >>> accuracy([0, 1, 1, 0], [0.5, 0.5, 0.9, 0.2])
    0.75
    """
    y, s = _binary_inputs(labels, scores)
    if math.isnan(threshold):
        raise MetricInputError("threshold must not be NaN")
    return float(np.mean((s > threshold) == y))


def ctr_report(
    labels: ArrayLike, scores: ArrayLike, users: ArrayLike | None = None
) -> dict[str, float]:
    """``{"auc", "logloss", "acc"}`` (plus ``"gauc"`` when ``users`` is given).

    An undefined AUC/GAUC (a single class) becomes ``nan`` with a ``RuntimeWarning``
    instead of raising; every other input error still raises.

    >>> r = ctr_report([0, 1], [0.25, 0.75])
    >>> r["auc"], r["acc"], round(r["logloss"], 4)   # -ln(0.75)
    (1.0, 1.0, 0.2877)
    """
    report: dict[str, float] = {}
    try:
        report["auc"] = auc(labels, scores)
    except UndefinedMetricError as exc:
        warnings.warn(str(exc), RuntimeWarning, stacklevel=2)
        report["auc"] = float("nan")
    if users is not None:
        try:
            report["gauc"] = gauc(users, labels, scores)
        except UndefinedMetricError as exc:
            warnings.warn(str(exc), RuntimeWarning, stacklevel=2)
            report["gauc"] = float("nan")
    report["logloss"] = log_loss(labels, scores)
    report["acc"] = accuracy(labels, scores)
    return report


def bootstrap_ci(
    metric, *arrays: ArrayLike, n_boot: int = 1000, level: float = 0.95, seed: int = 0, groups: ArrayLike | None = None
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``metric(*arrays)``: resample rows with replacement.

    ``groups`` (e.g. users) resamples whole groups instead of rows, for samples that are not
    independent. Resamples where the metric is undefined (one class only) are skipped. The
    same ``seed`` gives the same interval.

    >>> lo, hi = bootstrap_ci(auc, [0, 1] * 50, [0.4, 0.6] * 50, n_boot=200)
    >>> (lo, hi)   # a perfect ranking stays perfect in every resample
    (1.0, 1.0)
    >>> lo, hi = bootstrap_ci(auc, [0, 0, 1, 1] * 25, [0.1, 0.4, 0.35, 0.8] * 25, n_boot=500)
    >>> lo < 0.75 < hi
    True
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")
    cols = [np.asarray(a) for a in arrays]
    n = len(cols[0])
    if any(len(c) != n for c in cols):
        raise ValueError("bootstrap_ci: arrays of different lengths")
    rng = np.random.default_rng(seed)
    if groups is not None:
        codes, index = np.unique(np.asarray(groups), return_inverse=True)
        # each group's rows, in row order, as one array and the start and size of each group's block
        order = np.argsort(index, kind="stable")
        sizes = np.bincount(index, minlength=len(codes))
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    values = []
    for _ in range(n_boot):
        if groups is None:
            idx = rng.integers(0, n, size=n)
        else:  # the rows of the drawn groups, group after group (one vectorized gather, no per-group loop)
            drawn = rng.integers(0, len(codes), size=len(codes))
            lengths = sizes[drawn]
            idx = order[np.repeat(starts[drawn] - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                v = float(metric(*[c[idx] for c in cols]))
        except UndefinedMetricError:
            continue
        if np.isfinite(v):
            values.append(v)
    if not values:
        return float("nan"), float("nan")
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return float(lo), float(hi)


# --------------------------------------------------------------------------- ranking
#
# For every positive we need g (candidates with a strictly greater score) and t (size
# of its tie group, itself included). Under a uniformly random order of tied items the
# positive sits uniformly at a position in g+1 .. g+t, which gives the expected value
# of every metric in closed form (see the per-metric helpers). Rows are processed in
# chunks to bound memory, and everything is computed in the row-sorted order.

_CHUNK_ELEMENTS = 1 << 22


class _Chunk:
    """Tie statistics of a block of rows, in each row's descending-score order."""

    def __init__(self, scores: NDArray[np.float64], pos: NDArray[np.bool_]) -> None:
        n, c = scores.shape
        neg = -scores
        order = np.argsort(neg, axis=1)
        v = np.take_along_axis(neg, order, axis=1)
        pos_sorted = np.take_along_axis(pos, order, axis=1)
        new_run = np.ones((n, c), dtype=bool)
        new_run[:, 1:] = v[:, 1:] != v[:, :-1]
        last = np.ones((n, c), dtype=bool)
        last[:, :-1] = new_run[:, 1:]
        col = np.arange(c, dtype=np.int64)
        start = np.maximum.accumulate(np.where(new_run, col, 0), axis=1)
        end = np.minimum.accumulate(np.where(last, col, c)[:, ::-1], axis=1)[:, ::-1]

        self.n_rows = n
        self.n_cand = c
        self.row, where = np.nonzero(pos_sorted)  # one entry per positive, row-major
        self.g = start[self.row, where]  # strictly greater scores
        self.t = end[self.row, where] - self.g + 1  # tie-group size
        self.n_pos = np.bincount(self.row, minlength=n)
        # First tie group holding a positive: start g0, size t0, p0 positives in it.
        first = np.searchsorted(self.row, np.arange(n))
        self.g0 = self.g[first]
        self.t0 = self.t[first]
        in_first = self.g == self.g0[self.row]
        self.p0 = np.bincount(self.row[in_first], minlength=n)


def _cum_discounts(n: int) -> NDArray[np.float64]:
    """D[r] = sum_{j=1..r} 1 / log2(j + 1), D[0] = 0."""
    d = np.zeros(n + 1)
    d[1:] = np.cumsum(1.0 / np.log2(np.arange(2, n + 2)))
    return d


def _recall_rows(ch: _Chunk, k: int) -> NDArray[np.float64]:
    # P(rank <= k) for a positive uniform on g+1..g+t = clip((k - g) / t, 0, 1).
    p_in = np.clip((k - ch.g) / ch.t, 0.0, 1.0)
    return np.bincount(ch.row, weights=p_in, minlength=ch.n_rows) / ch.n_pos


def _ndcg_rows(ch: _Chunk, k: int, d: NDArray[np.float64]) -> NDArray[np.float64]:
    # E[gain] = mean of the discounts of positions g+1..g+t that are <= k.
    gain = (d[np.minimum(ch.g + ch.t, k)] - d[np.minimum(ch.g, k)]) / ch.t
    dcg = np.bincount(ch.row, weights=gain, minlength=ch.n_rows)
    return dcg / d[np.minimum(ch.n_pos, k)]


def _first_position_rows(ch: _Chunk, k: int, reciprocal: bool) -> NDArray[np.float64]:
    """E[1/rank1 * [rank1 <= k]] (reciprocal) or P(rank1 <= k), rank1 = first positive.

    rank1 = g0 + J with J the position of the first of p0 positives among t0 shuffled
    slots: P(J = j) = C(t0 - j, p0 - 1) / C(t0, p0), j = 1 .. t0 - p0 + 1, computed by
    the recurrence P(J = j + 1) = P(J = j) * (t0 - j - p0 + 1) / (t0 - j).
    """
    out = np.zeros(ch.n_rows)
    live = np.flatnonzero(ch.g0 < k)
    if live.size == 0:
        return out
    g0 = ch.g0[live].astype(np.float64)
    t0 = ch.t0[live].astype(np.float64)
    p0 = ch.p0[live].astype(np.float64)
    j_max = int(min(np.max(t0 - p0 + 1), k - np.min(g0)))
    acc = np.zeros(live.size)
    prob = p0 / t0
    for j in range(1, j_max + 1):
        rank = g0 + j
        term = prob / rank if reciprocal else prob
        acc += np.where(rank <= k, term, 0.0)
        prob = prob * np.maximum(t0 - j - p0 + 1, 0.0) / np.maximum(t0 - j, 1.0)
    out[live] = acc
    return out


def _hit_rows(ch: _Chunk, k: int) -> NDArray[np.float64]:
    # Hypergeometric: with m = k - g0 slots of the first positive group inside the top
    # k, P(no positive in them) = C(t0 - p0, m) / C(t0, m) = C(t0 - m, p0) / C(t0, p0)
    #   = prod_{i<m} (t0 - p0 - i) / (t0 - i) = prod_{i<p0} (t0 - m - i) / (t0 - i);
    # each row uses the shorter product (exact for small integers, no overflow).
    m = np.clip(k - ch.g0, 0, ch.t0)
    t0 = ch.t0.astype(np.float64)
    p0 = ch.p0.astype(np.float64)
    by_p = ch.p0 <= m
    n_factors = np.minimum(ch.p0, m)
    top = np.where(by_p, t0 - m, t0 - p0)  # numerator of the first factor
    p_none = np.ones(ch.n_rows)
    for i in range(int(n_factors.max(initial=0))):
        factor = (top - i) / np.maximum(t0 - i, 1.0)
        p_none *= np.where(i < n_factors, factor, 1.0)
    return 1.0 - p_none


_METRICS = ("recall", "mrr", "ndcg", "hit")


def ranking_per_list(
    scores: ArrayLike, labels: ArrayLike, ks: Sequence[int] = (3,), metrics: Sequence[str] = ("recall", "mrr", "ndcg")
) -> dict[str, NDArray[np.float64]]:
    """Each list's own value of every ``metric@k`` (the ranking metrics are their means).

    For intervals: a bootstrap of the mean of these values is a bootstrap of the metric.

    >>> ranking_per_list([[0.9, 0.5, 0.7], [0.1, 0.8, 0.2]], [[0, 1, 0], [0, 1, 0]], ks=(1,), metrics=("recall",))
    {'recall@1': array([0., 1.])}
    """
    s, pos = _ranking_inputs(scores, labels)
    ks = list(dict.fromkeys(_check_k(k) for k in ks))
    n, c = s.shape
    d = _cum_discounts(c)
    out = {f"{m}@{k}": np.empty(n, dtype=np.float64) for k in ks for m in metrics}
    step = max(1, _CHUNK_ELEMENTS // c)
    for lo in range(0, n, step):
        ch = _Chunk(s[lo : lo + step], pos[lo : lo + step])
        for k in ks:
            kk = min(k, c)
            for m in metrics:
                if m == "recall":
                    rows = _recall_rows(ch, kk)
                elif m == "mrr":
                    rows = _first_position_rows(ch, kk, reciprocal=True)
                elif m == "ndcg":
                    rows = _ndcg_rows(ch, kk, d)
                elif m == "hit":
                    rows = _hit_rows(ch, kk)
                else:
                    raise MetricInputError(f"unknown ranking metric {m!r} (recall, mrr, ndcg, hit)")
                out[f"{m}@{k}"][lo : lo + ch.n_rows] = rows
    return out


def _ranking_means(
    scores: ArrayLike, labels: ArrayLike, ks: Sequence[int], metrics: Sequence[str]
) -> dict[str, float]:
    return {key: float(rows.mean()) for key, rows in ranking_per_list(scores, labels, ks, metrics).items()}


def recall_at_k(scores: ArrayLike, labels: ArrayLike, k: int) -> float:
    """Mean over rows of (positives in the top ``k``) / (positives in the row).

    Ties are broken in expectation (uniformly random order of tied candidates).

    The positive is ranked 2nd:

    >>> recall_at_k([[0.9, 0.8, 0.1]], [[0, 1, 0]], k=1)
    0.0
    >>> recall_at_k([[0.9, 0.8, 0.1]], [[0, 1, 0]], k=2)
    1.0

    Four tied candidates, one positive: P(it is first) = 1/4:

    >>> recall_at_k([[0.0, 0.0, 0.0, 0.0]], [[1, 0, 0, 0]], k=1)
    0.25
    """
    return _ranking_means(scores, labels, [k], ["recall"])[f"recall@{k}"]


def mrr_at_k(scores: ArrayLike, labels: ArrayLike, k: int) -> float:
    """Mean over rows of 1 / rank of the first positive, or 0 if that rank is > ``k``.

    Ties are broken in expectation (uniformly random order of tied candidates).

    >>> mrr_at_k([[0.9, 0.8, 0.1]], [[0, 1, 0]], k=3)
    0.5

    Two tied candidates, one positive: (1/1 + 1/2) / 2:

    >>> mrr_at_k([[0.0, 0.0]], [[1, 0]], k=2)
    0.75
    """
    return _ranking_means(scores, labels, [k], ["mrr"])[f"mrr@{k}"]


def ndcg_at_k(scores: ArrayLike, labels: ArrayLike, k: int) -> float:
    """Mean over rows of DCG@k / ideal DCG@k with binary gains and discount 1/log2(rank+1).

    Ties are broken in expectation (uniformly random order of tied candidates).

    The positive is ranked 2nd: DCG = 1/log2(3), ideal DCG = 1/log2(2) = 1:

    >>> round(ndcg_at_k([[0.9, 0.8, 0.1]], [[0, 1, 0]], k=3), 4)
    0.6309
    """
    return _ranking_means(scores, labels, [k], ["ndcg"])[f"ndcg@{k}"]


def hit_rate_at_k(scores: ArrayLike, labels: ArrayLike, k: int) -> float:
    """Mean over rows of 1 if any positive is in the top ``k``, else 0.

    Ties are broken in expectation (uniformly random order of tied candidates).

    >>> hit_rate_at_k([[0.9, 0.8, 0.1]], [[0, 1, 0]], k=1)
    0.0

    Four tied candidates, two positives: P(the first slot holds a positive) = 2/4:

    >>> hit_rate_at_k([[0.0, 0.0, 0.0, 0.0]], [[1, 1, 0, 0]], k=1)
    0.5
    """
    return _ranking_means(scores, labels, [k], ["hit"])[f"hit@{k}"]


def ranking_report(
    scores: ArrayLike, labels: ArrayLike, ks: Sequence[int] = (3, 5, 10)
) -> dict[str, float]:
    """All ranking metrics at every ``k``: keys ``"recall@k"``, ``"mrr@k"``,
    ``"ndcg@k"``, ``"hit@k"``. The ranks are computed once for all of them.

    >>> r = ranking_report([[0.9, 0.8, 0.1]], [[0, 1, 0]], ks=(1, 3))
    >>> r["recall@1"], r["recall@3"], r["mrr@3"], r["hit@1"]
    (0.0, 1.0, 0.5, 0.0)
    """
    ks = list(ks)
    if not ks:
        raise MetricInputError("ks must name at least one k")
    return _ranking_means(scores, labels, ks, _METRICS)


# --------------------------------------------------------------------------- metrics by name
RANKING_METRICS = ("recall", "mrr", "ndcg", "hit")


def check_ctr_metric(metric: str, field: str = "metric") -> None:
    """A ConfigError (naming ``field``) unless ``metric`` is a metric of CTR predictions (``auc``, ``logloss``).

    >>> check_ctr_metric("auc")
    >>> check_ctr_metric("mrr@3", "valid.metric")
    Traceback (most recent call last):
        ...
    llmrec.errors.ConfigError: valid.metric: 'mrr@3' is not a CTR metric (auc, logloss)
    """
    from llmrec.errors import ConfigError

    if metric not in ("auc", "logloss"):
        raise ConfigError(f"{field}: {metric!r} is not a CTR metric (auc, logloss)")


def check_ranking_metric(metric: str, field: str = "metric") -> None:
    """A ConfigError (naming ``field``) unless ``metric`` is a metric of ranked lists (``recall@k``, ``mrr@k``, ...).

    >>> check_ranking_metric("recall@3")
    >>> check_ranking_metric("auc", "selection.metric")
    Traceback (most recent call last):
        ...
    llmrec.errors.ConfigError: selection.metric: 'auc' is not a ranking metric (recall@k, mrr@k, ndcg@k, hit@k)
    """
    from llmrec.errors import ConfigError

    name, _, k = metric.partition("@")
    if name not in RANKING_METRICS or not k.isdigit() or int(k) < 1:
        raise ConfigError(f"{field}: {metric!r} is not a ranking metric (recall@k, mrr@k, ndcg@k, hit@k)")


def metric_by_name(metric: str, labels: ArrayLike, scores: ArrayLike) -> float:
    """``metric`` (``auc``, ``logloss`` or ``recall@k`` / ``mrr@k`` / ``ndcg@k`` / ``hit@k``) of scores
    against labels (1-D for CTR, ``(n_lists, n_candidates)`` for ranking).

    >>> metric_by_name("mrr@3", [[0, 1, 0]], [[0.9, 0.8, 0.1]])
    0.5
    """
    if metric == "auc":
        return float(auc(labels, scores))
    if metric == "logloss":
        return float(log_loss(labels, scores))
    k = int(metric.partition("@")[2])
    return float(ranking_report(scores, labels, ks=(k,))[metric])


def higher_is_better(metric: str) -> bool:
    """Whether a larger value of ``metric`` is better (all but LogLoss)."""
    return metric != "logloss"
