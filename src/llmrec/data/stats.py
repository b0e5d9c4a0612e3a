"""Statistics of prepared splits: users, items, samples, positive rate, history length.

>>> stats = {"dataset": "toy", "protocol": "rella", "users": 2, "items": 3, "splits": {
...     "train": {"samples": 4, "users": 2, "items": 3, "positive_rate": 0.5,
...               "history_mean": 5.0, "history_median": 5.0, "history_min": 5, "history_max": 5}}}
>>> print(format_stats(stats).splitlines()[0])
toy / rella: 2 users, 3 items
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from llmrec.data.kinds import detect


def split_stats(table: pa.Table) -> dict[str, Any]:
    """Counts for one split (CTR or ranking samples)."""
    has_hist = "history_items" in table.column_names and table.num_rows
    hist = pc.list_value_length(table["history_items"]).to_numpy(zero_copy_only=False) if has_hist else np.zeros(0)
    out: dict[str, Any] = {
        "samples": table.num_rows,
        "users": len(pc.unique(table["user"])) if table.num_rows and "user" in table.column_names else 0,
    }
    kind = detect(table.schema)
    if kind.lists:
        flat_items = pc.list_flatten(table["candidates"])
        labels = pc.list_flatten(table["labels"]).to_numpy(zero_copy_only=False)
        out["items"] = len(pc.unique(flat_items))
        out["candidates_per_sample"] = float(len(labels) / max(table.num_rows, 1))
        out["positive_rate"] = float(labels.mean()) if len(labels) else float("nan")
    else:
        labels = table["label"].to_numpy(zero_copy_only=False)
        col = kind.item_column
        out["items"] = len(pc.unique(table[col])) if table.num_rows and col and col in table.column_names else 0
        out["positive_rate"] = float(labels.mean()) if len(labels) else float("nan")
    out.update(
        history_mean=float(hist.mean()) if len(hist) else float("nan"),
        history_median=float(np.median(hist)) if len(hist) else float("nan"),
        history_min=int(hist.min()) if len(hist) else 0,
        history_max=int(hist.max()) if len(hist) else 0,
    )
    if "history_end" in table.column_names and table.num_rows:
        full = table["history_end"].to_numpy(zero_copy_only=False)
        out["full_history_mean"] = float(full.mean())
    return out


class StatsBuilder:
    """:func:`prepared_stats` gathered one split at a time, so each split can be dropped once it is counted.

    >>> b = StatsBuilder()
    >>> b.add("train", pa.table({"user": ["u", "v"], "item": ["a", "b"], "label": [1, 0]}))
    >>> s = b.result("toy", "rella", [])
    >>> s["users"], s["items"], s["splits"]["train"]["positive_rate"]
    (2, 2, 0.5)
    """

    def __init__(self) -> None:
        self.users: set = set()
        self.items: set = set()
        self.splits: dict[str, dict[str, Any]] = {}

    def add(self, name: str, table: pa.Table) -> None:
        """Count the split ``name``."""
        if "user" in table.column_names:
            self.users.update(pc.unique(table["user"]).to_pylist())
        kind = detect(table.schema)
        col = kind.item_column
        if col is not None and col in table.column_names:
            values = pc.list_flatten(table[col]) if kind.lists else table[col]
            self.items.update(pc.unique(values).to_pylist())
        if "history_items" in table.column_names:
            self.items.update(pc.unique(pc.list_flatten(table["history_items"])).to_pylist())
        self.splits[name] = split_stats(table)

    def result(self, dataset: str, protocol: str, notes: list[str]) -> dict[str, Any]:
        """The statistics of every split added, plus the data-set totals."""
        return {"dataset": dataset, "protocol": protocol, "users": len(self.users), "items": len(self.items),
                "splits": dict(self.splits), "notes": list(notes)}


def prepared_stats(prepared: Any) -> dict[str, Any]:
    """Statistics of every split plus data-set totals (``prepared``: a :class:`~llmrec.data.prepared.PreparedData`).

    Each split is asked for once.
    """
    builder = StatsBuilder()
    for name in prepared.splits:
        builder.add(name, prepared.splits[name])
    return builder.result(prepared.dataset, prepared.protocol, prepared.notes)


def format_stats(stats: dict[str, Any]) -> str:
    """A plain-text table of :func:`prepared_stats` output."""
    head = f"{stats['dataset']} / {stats['protocol']}: {stats['users']:,} users, {stats['items']:,} items"
    cols = ["split", "samples", "users", "items", "pos.rate", "hist.mean", "hist.median", "hist.min", "hist.max",
            "prior.mean"]
    rows = [cols]
    for name, s in stats["splits"].items():
        rows.append(
            [
                name,
                f"{s['samples']:,}",
                f"{s['users']:,}",
                f"{s['items']:,}",
                f"{s['positive_rate']:.4f}",
                f"{s['history_mean']:.2f}" if s["history_max"] else "-",
                f"{s['history_median']:.1f}" if s["history_max"] else "-",
                str(s["history_min"]),
                str(s["history_max"]),
                f"{s['full_history_mean']:.1f}" if "full_history_mean" in s else "-",
            ]
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(cols))]
    lines = [head]
    for j, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("hist.*: history kept in the samples; prior.mean: mean count of all earlier interactions")
    for note in stats.get("notes", []):
        lines.append(f"note: {note}")
    return "\n".join(lines)
