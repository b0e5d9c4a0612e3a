"""Seeded draws of samples, shared by LLM training and the classic baselines (same N, same rows)."""

from __future__ import annotations

import numpy as np

from llmrec.errors import DataError

__all__ = ["sample_indices"]


def sample_indices(n_rows: int, n: int | None, seed: int) -> np.ndarray:
    """``n`` row indices drawn without replacement with ``seed`` (all rows when ``n`` is None), sorted.

    Nested across sizes for one seed: the 16 are among the 64, the 64 among the 256.

    >>> small, big = sample_indices(100, 4, 0), sample_indices(100, 16, 0)
    >>> set(small) <= set(big), len(big)
    (True, 16)
    """
    if n is None or n >= n_rows:
        if n is not None and n > n_rows:
            raise DataError(f"cannot draw {n} training samples from a split of {n_rows}")
        return np.arange(n_rows)
    return np.sort(np.random.default_rng(seed).permutation(n_rows)[:n])
