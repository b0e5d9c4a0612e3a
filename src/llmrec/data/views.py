"""Views of prepared rows that other steps need: the CTR view of ranking samples.

Training on TRSR (LLM-TRSR) reads each candidate list as labelled CTR rows: the positive and
``negatives`` negatives, each with the list's user, history and summary.

>>> rows = [{"sample_id": 3, "user": "u", "history_items": ["a"], "candidates": ["x", "y", "z"], "labels": [0, 1, 0]}]
>>> [(r["item"], r["label"]) for r in ranking_to_ctr(rows, negatives=1)]
[('y', 1), ('x', 0)]
"""

from __future__ import annotations

from typing import Any

from llmrec.errors import DataError

__all__ = ["ranking_to_ctr"]


def ranking_to_ctr(rows: list[dict[str, Any]], negatives: int | None = 1) -> list[dict[str, Any]]:
    """One CTR row per positive and per each of the first ``negatives`` negatives of every list (None: all).

    The rows keep every other field of their list (``sample_id``, ``user``, ``history_items``,
    ``summary``, ...); ``item`` is the candidate and ``label`` its 0/1 label.
    """
    out = []
    for row in rows:
        base = {k: v for k, v in row.items() if k not in ("candidates", "labels")}
        cands, labels = list(row["candidates"]), [int(x) for x in row["labels"]]
        if len(cands) != len(labels):
            raise DataError(f"sample {row.get('sample_id')}: {len(cands)} candidates but {len(labels)} labels",
                            field="labels")
        pos = [c for c, y in zip(cands, labels) if y == 1]
        neg = [c for c, y in zip(cands, labels) if y != 1]
        if not pos:
            raise DataError(f"sample {row.get('sample_id')}: a candidate list without a positive", field="labels")
        neg = neg if negatives is None else neg[:negatives]
        out.extend({**base, "item": c, "label": 1} for c in pos)
        out.extend({**base, "item": c, "label": 0} for c in neg)
    return out
