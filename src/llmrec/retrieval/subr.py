"""SUBR: for each sample, the K earlier items of its user most similar to the target.

ReLLa's semantic user behaviour retrieval: among *all* of the user's interactions before the
target (not only the most recent ones a sample keeps), take the K whose item vectors have
the highest cosine similarity with the target's, and show them in chronological order.

Exactness. Unit vectors are scaled by ``SCALE`` = 2048 and rounded to integers; their dot
products are then exact in float32 whatever the summation order (see
:func:`integer_vectors`). So
the fast path (one items x items matrix, or per-user matrix products) and the
straightforward one (a loop over samples) get bit-identical similarities, and the order is
total: higher similarity first, then the more recent item.

Cost. The work is sum over samples of their prior history (ML-1M: 970,009 samples with 371
earlier items on average in the test split). :func:`subr_fast` groups samples by user and by
history length, gathers the similarities of a block of samples against the user's
chronology at once, masks what lies at or after each target, and keeps the top K with
``argpartition``: no Python loop per sample, and never more than ``block_entries``
similarities in memory. Up to ``dense_max_items`` items it precomputes the items x items
similarity matrix (4 bytes per pair: 58 MiB for ML-1M's 3,883 items), in passes over the
target items of at most ``dense_pass_mib`` MiB each (ML-1M: two); above that (ML-25M: 62k
items would need 15 GB) it multiplies the user's vectors block by block instead.

>>> vec = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [1, 0.05]], dtype=np.float32)
>>> seq = np.array([0, 2, 1, 3, 4])       # one user: items 0, 2, 1, 3, then target 4
>>> out = subr_fast(seq, np.array([0]), np.array([0]), np.array([4]), vec, k=2)
>>> out.positions.tolist()                # items 0 and 1 are most like item 4; chronological
[0, 2]
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from llmrec.data.protocols.base import concat_ranges

SCALE = 2048.0
BITS = 22
SHIFT = np.int64(1 << BITS)  # positions within a user's chronology must stay below this
_MIN = np.iinfo(np.int64).min


@dataclass
class Retrieved:
    """Per sample, the chosen positions in its user's chronology (ascending) and their similarity."""

    offsets: np.ndarray  # int64, len n_samples + 1
    positions: np.ndarray  # int32, flat (below SHIFT = 2^22)
    dots: np.ndarray  # int32, flat: integer similarity (cosine x SCALE^2, below 2^24 in magnitude)

    @property
    def similarity(self) -> np.ndarray:
        """Cosine similarity of each chosen item to its target (float32, flat)."""
        return (self.dots / (SCALE * SCALE)).astype(np.float32)

    def equals(self, other: Retrieved) -> bool:
        return all(np.array_equal(a, b) for a, b in ((self.offsets, other.offsets), (self.positions, other.positions),
                                                      (self.dots, other.dots)))


def integer_vectors(vectors: np.ndarray) -> np.ndarray:
    """Unit vectors scaled by ``SCALE`` and rounded to integers, as float32.

    Every partial sum of a dot product of two such vectors is an integer of magnitude at
    most ``|a| |b|`` <= (SCALE + sqrt(d)/2)^2 < 2^24, so float32 represents it exactly and
    the result does not depend on the summation order (BLAS blocking, SIMD, matvec or gemm).
    """
    q = np.rint(np.asarray(vectors, dtype=np.float64) * SCALE)
    bound = (SCALE + 0.5 * np.sqrt(q.shape[1] if q.ndim == 2 else 1)) ** 2
    if bound >= 2**24 or (len(q) and np.abs(q).max() > SCALE + 1):
        raise ValueError("SUBR needs L2-normalised vectors")
    return q.astype(np.float32)


def _integers(values) -> np.ndarray:
    """``values`` as an integer array, without a copy when it is one already (int32 or int64).

    >>> _integers(np.array([1, 2], dtype=np.int32)).dtype, _integers([3]).dtype
    (dtype('int32'), dtype('int64'))
    """
    out = np.asarray(values)
    return out if out.dtype.kind in "iu" and out.dtype.itemsize >= 4 else out.astype(np.int64)


def _check_lengths(user_start: np.ndarray, sample_user: np.ndarray, sample_end: np.ndarray) -> None:
    if len(sample_end) and int(sample_end.max()) >= SHIFT:
        raise ValueError(f"a user history of {int(sample_end.max()):,} items is too long for SUBR (limit {int(SHIFT):,})")


def subr_fast(seq_rows: np.ndarray, user_start: np.ndarray, sample_user: np.ndarray, sample_end: np.ndarray,
              vectors: np.ndarray, k: int, *, dense_max_items: int = 12000, dense_pass_mib: int = 32,
              block_entries: int = 1 << 15, threads: int | None = None,
              progress: Callable[[int], None] | None = None) -> Retrieved:
    """SUBR for every sample, vectorized per block of samples of one user (see the module docstring).

    ``seq_rows``: vector row of every interaction of the flattened chronology; ``user_start``:
    each user's first index in it; ``sample_user`` / ``sample_end``: the user (index into
    ``user_start``) and the number of earlier interactions of every sample. Blocks hold about
    ``block_entries`` similarities, so they stay in the CPU cache; users are shared among
    ``threads`` threads (default: the CPUs this process may use). Up to ``dense_max_items`` items, the items x
    items similarities are precomputed in passes over the targets, at most ``dense_pass_mib`` MiB of them at a
    time (the samples whose target falls in a pass are retrieved in it).
    """
    threads = threads or max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
    sample_user, sample_end = _integers(sample_user), _integers(sample_end)  # int32 stays int32: no copies
    _check_lengths(user_start, sample_user, sample_end)
    q = integer_vectors(vectors)
    # every per-sample array below is freed as soon as it is used: ML-1M's 970k samples make each 4-8 MiB, and
    # the peak is the outputs, the dense matrix and what is still alive beside them
    offsets = np.zeros(len(sample_end) + 1, dtype=np.int64)
    np.cumsum(np.minimum(sample_end, k), out=offsets[1:])
    positions = np.empty(int(offsets[-1]), dtype=np.int32)  # int32 (see Retrieved): half the memory of int64
    dots = np.empty(int(offsets[-1]), dtype=np.int32)
    target_rows = seq_rows[user_start[sample_user] + sample_end].astype(np.int32)  # item rows: below 2^31

    # samples with at most k earlier items keep all of them
    small = np.flatnonzero(sample_end <= k)
    if len(small):
        pos, _ = concat_ranges(np.zeros(len(small), dtype=np.int64), sample_end[small])
        slots, _ = concat_ranges(offsets[small], sample_end[small])
        owner = np.repeat(small, sample_end[small])
        positions[slots] = pos
        dots[slots] = _row_dots(q, seq_rows[user_start[sample_user[owner]] + pos], target_rows[owner])
        del pos, slots, owner
        if progress:
            progress(len(small))
    del small

    def run_pass(order: np.ndarray, first_row: int, dense: np.ndarray | None) -> None:
        """SUBR of the samples ``order`` (sorted by user, then history end); ``dense``: the similarities of the
        target rows from ``first_row`` on to every item (None: per-user matrix products)."""
        cuts = np.flatnonzero(np.diff(sample_user[order])) + 1
        # positions up to the longest history, and counts up to the most samples of one user (repeated samples too)
        most = int(np.diff(np.concatenate([[0], cuts, [len(order)]])).max())
        arange = np.arange(max(int(sample_end[order].max()), most) + 1, dtype=np.int64)
        n_items = np.int64(len(q))
        flat_dense = dense.ravel() if dense is not None else None

        def one_user(group: np.ndarray) -> None:
            start = user_start[sample_user[group[0]]]
            ends = sample_end[group]
            history = seq_rows[start : start + int(ends[-1])]
            user_q = None if dense is not None else q[history]
            i = 0
            while i < len(group):
                # as many samples as fit in block_entries similarities (their ends ascend)
                fits = arange[1 : len(group) - i + 1] * ends[i:]
                j = i + max(1, int(np.searchsorted(fits, block_entries, side="right")))
                block, length = group[i:j], int(ends[j - 1])
                t = target_rows[block]
                if flat_dense is not None:  # one flat gather: cheaper than rows then columns when histories are short
                    sims = flat_dense.take((t[:, None] - first_row) * n_items + history[None, :length])
                else:
                    sims = (q[t] @ user_q[:length].T).astype(np.int32)
                key = sims.astype(np.int64)  # similarity in the high bits, position in the low ones
                np.left_shift(key, BITS, out=key)
                key += arange[:length]
                key[arange[:length] >= ends[i:j, None]] = _MIN
                top = np.partition(key, length - k, axis=1)[:, length - k :]
                pos = top & (SHIFT - 1)
                order_in_row = np.argsort(pos, axis=1)
                slots = offsets[block][:, None] + arange[:k]
                positions[slots] = np.take_along_axis(pos, order_in_row, axis=1)
                dots[slots] = np.take_along_axis(top >> BITS, order_in_row, axis=1)
                i = j
            if progress:
                progress(len(group))

        groups = np.split(order, cuts)
        if threads > 1:  # numpy's gathers, partitions and matrix products release the GIL
            # one task per thread (every threads-th user: balanced), not one per user: thousands of futures cost
            with ThreadPoolExecutor(threads) as pool:
                for _ in pool.map(lambda share: [one_user(g) for g in share],
                                  [groups[t::threads] for t in range(threads)]):
                    pass
        else:
            for group in groups:
                one_user(group)

    big = np.flatnonzero(sample_end > k)
    if len(big) == 0:
        return Retrieved(offsets, positions, dots)
    order = big[np.lexsort((sample_end[big], sample_user[big]))].astype(np.int32 if len(sample_end) < 2**31 else np.int64)
    del big
    # the items x items similarities in passes over the targets' rows, at most ``dense_pass_mib`` at a time (ML-1M:
    # two passes of 29 MiB instead of one 58 MiB matrix); above dense_max_items, per-user matrix products, one pass
    n_items = len(q)
    dense_ok = n_items <= dense_max_items
    rows_per_pass = max(1, (dense_pass_mib << 20) // (4 * max(n_items, 1))) if dense_ok else max(n_items, 1)
    for lo in range(0, max(n_items, 1), rows_per_pass):
        hi = min(lo + rows_per_pass, n_items)
        if hi - lo >= n_items:
            part = order
        else:
            targets = target_rows[order]
            part = order[(targets >= lo) & (targets < hi)]  # still sorted by user, then end
            del targets
        if len(part):
            run_pass(part, lo, _dense_similarities(q, lo, hi) if dense_ok else None)
    return Retrieved(offsets, positions, dots)


def _dense_similarities(q: np.ndarray, first: int = 0, stop: int | None = None, rows: int = 256) -> np.ndarray:
    """The integer similarities (int32) of items ``first`` to ``stop`` (default: the last) to every item, a block
    of ``rows`` rows at a time.

    Exact whatever the blocking (see :func:`integer_vectors`), and never a float32 copy of the
    whole matrix beside it.

    >>> q = integer_vectors(np.array([[1, 0], [0.6, 0.8], [0, 1]]))
    >>> _dense_similarities(q, rows=1).tolist() == (q @ q.T).astype(np.int32).tolist()
    True
    >>> _dense_similarities(q, 1, 3).tolist() == (q[1:] @ q.T).astype(np.int32).tolist()
    True
    """
    stop = len(q) if stop is None else stop
    dense = np.empty((stop - first, len(q)), dtype=np.int32)
    for lo in range(first, stop, rows):
        dense[lo - first : lo - first + rows] = q[lo : min(lo + rows, stop)] @ q.T
    return dense


def _row_dots(q: np.ndarray, rows_a: np.ndarray, rows_b: np.ndarray, chunk: int = 1 << 12) -> np.ndarray:
    # chunk: two chunk x dim float32 gathers (8 MiB each at 512 dims), not 256 MiB
    out = np.empty(len(rows_a), dtype=np.int64)
    for lo in range(0, len(rows_a), chunk):
        a, b = q[rows_a[lo : lo + chunk]], q[rows_b[lo : lo + chunk]]
        out[lo : lo + chunk] = np.einsum("ij,ij->i", a, b).astype(np.int64)
    return out


def subr_reference(seq_rows: np.ndarray, user_start: np.ndarray, sample_user: np.ndarray, sample_end: np.ndarray,
                   vectors: np.ndarray, k: int) -> Retrieved:
    """The straightforward SUBR: one sample at a time (for tests and ``llmrec bench retrieval``)."""
    _check_lengths(user_start, np.asarray(sample_user), np.asarray(sample_end))
    q = integer_vectors(vectors)
    counts = np.minimum(np.asarray(sample_end, dtype=np.int64), k)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    positions = np.empty(int(offsets[-1]), dtype=np.int32)  # filled sample by sample
    dots = np.empty(int(offsets[-1]), dtype=np.int32)
    bounds = offsets.tolist()
    for i, (u, end) in enumerate(zip(sample_user, sample_end)):
        start, end = int(user_start[u]), int(end)
        hist = seq_rows[start : start + end]
        sims = (q[hist] @ q[seq_rows[start + end]]).astype(np.int64)
        if end <= k:
            chosen = np.arange(end)
        else:
            ranking = np.argsort(-(sims * SHIFT + np.arange(end)), kind="stable")
            chosen = np.sort(ranking[:k])
        positions[bounds[i] : bounds[i + 1]] = chosen
        dots[bounds[i] : bounds[i + 1]] = sims[chosen]
    return Retrieved(offsets, positions, dots)


def _cat(parts: list[np.ndarray]) -> np.ndarray:
    return np.concatenate(parts).astype(np.int32) if parts else np.zeros(0, np.int32)


def concat_retrieved(parts: list[Retrieved]) -> Retrieved:
    """One :class:`Retrieved` of consecutive blocks of samples (SUBR run on each block separately).

    >>> a = Retrieved(np.array([0, 1]), np.array([3]), np.array([9]))
    >>> b = Retrieved(np.array([0, 2, 2]), np.array([0, 1]), np.array([5, 4]))
    >>> concat_retrieved([a, b]).offsets.tolist()
    [0, 1, 3, 3]
    """
    offsets, shift = [np.zeros(1, dtype=np.int64)], 0
    for part in parts:
        offsets.append(part.offsets[1:] + shift)
        shift += int(part.offsets[-1])
    return Retrieved(np.concatenate(offsets).astype(np.int64), _cat([p.positions for p in parts]),
                     _cat([p.dots for p in parts]))
