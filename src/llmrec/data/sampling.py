"""Seeded draws of samples: the same N gives the same rows in every command.

Two draws, kept apart because recorded results depend on each: :func:`sample_indices` picks
training samples (``train_samples`` of ``llmrec train`` and ``llmrec baseline``, nested across
sizes), :func:`subset_rows` picks evaluation subsets (``limit`` of ``llmrec evaluate``, the
selection subset of training, the baselines' ``test.limit``). ``llmrec summarize``'s ``limits``
uses the first on the training split and the second on the others, so a summarized folder holds
exactly the rows the other rows of a table train and test on.
"""

from __future__ import annotations

import numpy as np

from llmrec.errors import DataError

__all__ = ["TRAIN_SAMPLES_FILE", "sample_indices", "subset_rows", "training_rows_record"]

# the file of a train or baseline run folder that names the training rows it used (:func:`training_rows_record`)
TRAIN_SAMPLES_FILE = "train_samples.json"


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


def subset_rows(n_rows: int, limit: int | None, seed: int) -> list[int]:
    """All row indices, or a seeded random subset of ``limit`` of them (in table order).

    >>> subset_rows(5, None, 0), len(subset_rows(100, 10, 0)), subset_rows(100, 10, 0) == subset_rows(100, 10, 0)
    ([0, 1, 2, 3, 4], 10, True)
    """
    if limit is None or limit >= n_rows:
        return list(range(n_rows))
    return sorted(np.random.default_rng(seed).choice(n_rows, size=limit, replace=False).tolist())


def training_rows_record(prepared, split: str, indices, seed: int) -> dict:
    """What a run trained on, for its ``train_samples.json``: the split, the seed of the draw, the row indices and
    the ``sample_id`` of each row (only that column is read), so two runs' training rows can be compared.

    >>> import pyarrow as pa
    >>> class Folder:  # a stand-in for a prepared folder
    ...     path = "prepared/toy"
    ...     def split(self, name, columns=None):
    ...         return pa.table({"sample_id": [10, 11, 12, 13]})
    >>> training_rows_record(Folder(), "train", sample_indices(4, 2, 0), 0)
    {'data': 'prepared/toy', 'split': 'train', 'sample_seed': 0, 'samples': 2, 'rows': [0, 2], 'sample_ids': [10, 12]}
    """
    rows = [int(i) for i in indices]
    ids = prepared.split(split, columns=["sample_id"]).column("sample_id").take(rows).to_pylist()
    path = getattr(prepared, "path", None)
    return {"data": str(path) if path is not None else None, "split": split, "sample_seed": int(seed), "samples": len(rows), "rows": rows,
            "sample_ids": ids}
