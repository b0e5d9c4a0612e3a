"""One schema for every data set: interactions, items and users.

* ``interactions``: ``user`` (str), ``item`` (str), ``rating`` (float32; NaN for implicit
  feedback such as clicks), ``timestamp`` (int64). Rows are kept in source order, so a
  stable sort by ``(user, timestamp)`` gives each user's chronology with ties broken by
  file order. ``timestamp_kind`` says what the timestamp means: ``"unix"`` (seconds since
  the epoch), ``"order"`` (the source only gives the order: 0, 1, 2, ... per user) or
  ``"none"`` (no order at all, e.g. the cleaned BookCrossing files).
* ``items``: ``item`` (str, unique), ``title`` (str) and more text fields (genres, author...).
* ``users``: ``user`` (str, unique) and profile fields (gender, age, occupation...); a data
  set without profiles has just the ``user`` column.

>>> import pandas as pd
>>> data = RecData(
...     name="toy",
...     interactions=pd.DataFrame({"user": ["u1", "u1"], "item": ["a", "b"],
...                                "rating": [5.0, 2.0], "timestamp": [1, 2]}),
...     items=pd.DataFrame({"item": ["a", "b"], "title": ["A", "B"]}),
... ).validated()
>>> data.summary()["interactions"], list(data.users.columns)
(2, ['user'])
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from llmrec.data.columns import isin
from llmrec.errors import DataError
from llmrec.io import atomic_directory, check_output_dir, is_leftover, read_json, write_json, write_parquet

TimestampKind = Literal["unix", "order", "none"]

INTERACTION_COLUMNS = ("user", "item", "rating", "timestamp")
ITEM_KEY = "item"
USER_KEY = "user"
SCHEMA_VERSION = 1


def require_columns(frame: pd.DataFrame, columns: tuple[str, ...] | list[str], *, path: Any, what: str) -> None:
    """Raise :class:`DataError` naming the file and the first missing column."""
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise DataError(
            f"missing column in {what} (found columns: {', '.join(map(str, frame.columns)) or 'none'})",
            path=path,
            field=missing[0],
            hint="check the separator, the header line and the file format",
        )


def check_known_ids(ids: pd.Series, known: pd.Series, *, path: Any, field: str, what: str) -> None:
    """Raise :class:`DataError` if ``ids`` holds values absent from ``known``."""
    unknown_mask = pd.Series(~isin(ids, known), index=ids.index)
    if unknown_mask.any():
        unknown = pd.unique(ids[unknown_mask])
        examples = ", ".join(repr(str(x)) for x in unknown[:5])
        raise DataError(
            f"{int(unknown_mask.sum())} rows reference {len(unknown)} unknown {what} ids "
            f"(e.g. {examples})",
            path=path,
            field=field,
            hint=f"every {field} must appear in the {what} file",
        )


def check_rating_scale(ratings: pd.Series | np.ndarray, scale: tuple[float, float], *, path: Any, name: str,
                       field: str = "rating", first_line: int | None = 1, lines: np.ndarray | None = None) -> None:
    """Raise :class:`DataError` naming the file and line of the first rating outside ``scale`` (or not finite).

    ``first_line`` is the line of the first data row (2 after a header; None when lines cannot be counted), or
    ``lines`` the line of each row. Missing ratings (NaN) are left to the loader.

    >>> check_rating_scale(pd.Series([4.0, 99.0]), (1, 5), path="u.data", name="MovieLens")
    Traceback (most recent call last):
        ...
    llmrec.errors.DataError: u.data:2: field 'rating': rating 99 is outside the MovieLens scale 1-5 (fix or remove the line)
    """
    values = np.asarray(ratings, dtype=np.float64)
    low, high = scale
    bad = np.isinf(values) | (values < low) | (values > high)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        line = int(lines[row]) if lines is not None else (row + first_line if first_line is not None else None)
        raise DataError(f"rating {values[row]:g} is outside the {name} scale {low:g}-{high:g}", path=path, field=field,
                        line=line, hint="fix or remove the line")


def _as_str(series: pd.Series) -> pd.Series:
    if series.dtype.kind in "iu":
        return series.astype("int64").astype(str)
    if series.dtype.kind == "f":
        if series.notna().all() and (series == np.floor(series)).all():
            return series.astype("int64").astype(str)
    return series.astype(str)


def _schema_kind(directory: Path) -> str | None:
    """The data set name of a schema folder written by :meth:`RecData.save`, else None."""
    try:
        meta = json.loads((directory / "meta.json").read_text())
        name = str(meta["name"]) if "schema_version" in meta else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if name is None:
        return None
    ours = {"interactions.parquet", "items.parquet", "users.parquet", "meta.json"}
    return name if all(p.name in ours or is_leftover(p.name) for p in directory.iterdir()) else None


def check_schema_target(directory: str | Path, name: str, overwrite: bool = False, sources=()) -> None:
    """Refuse an output folder that holds anything but this data set in the schema (see ``check_output_dir``)."""
    check_output_dir(directory, overwrite=overwrite, what="data folder", sources=sources,
                     owned=lambda p: None if (k := _schema_kind(p)) is None else ("same" if k == name else f"data set {k}"))


@dataclass
class RecData:
    """A data set in the llmrec schema (see the module docstring).

    ``sources`` maps ``"interactions"``, ``"items"`` and ``"users"`` to the file each table
    came from, so that validation errors can name it.
    """

    name: str
    interactions: pd.DataFrame
    items: pd.DataFrame
    users: pd.DataFrame | None = None
    timestamp_kind: TimestampKind = "unix"
    sources: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def _src(self, table: str) -> str:
        return self.sources.get(table, f"<{self.name} {table}>")

    def validated(self) -> RecData:
        """Return a copy with canonical dtypes, after checking columns and id references.

        Raises :class:`DataError` naming the source file and field on missing columns,
        null or duplicate keys and interactions that reference unknown users or items.
        """
        inter = self.interactions
        require_columns(inter, ["user", "item"], path=self._src("interactions"), what="interactions")
        inter = inter.copy()
        if "rating" not in inter.columns:
            inter["rating"] = np.nan
        if "timestamp" not in inter.columns:
            if self.timestamp_kind == "unix":
                raise DataError(
                    "missing column in interactions", path=self._src("interactions"), field="timestamp"
                )
            inter["timestamp"] = inter.groupby("user", sort=False).cumcount()
        for key in ("user", "item"):
            if inter[key].isna().any():
                line = int(np.flatnonzero(inter[key].isna().to_numpy())[0])
                raise DataError(f"empty id in interaction row {line}", path=self._src("interactions"), field=key)
            inter[key] = _as_str(inter[key])
        inter["rating"] = pd.to_numeric(inter["rating"], errors="coerce").astype("float32")
        ts = pd.to_numeric(inter["timestamp"], errors="coerce")
        if ts.isna().any():
            raise DataError(
                f"{int(ts.isna().sum())} non-numeric timestamps", path=self._src("interactions"), field="timestamp"
            )
        inter["timestamp"] = ts.astype("int64")
        extra_cols = [c for c in inter.columns if c not in INTERACTION_COLUMNS]
        inter = inter[[*INTERACTION_COLUMNS, *extra_cols]].reset_index(drop=True)

        items = self.items
        require_columns(items, [ITEM_KEY, "title"], path=self._src("items"), what="items")
        items = items.copy()
        items[ITEM_KEY] = _as_str(items[ITEM_KEY])
        dup = items[ITEM_KEY].duplicated()
        if dup.any():
            raise DataError(
                f"duplicate item id {items[ITEM_KEY][dup].iloc[0]!r}", path=self._src("items"), field=ITEM_KEY
            )
        items["title"] = items["title"].fillna("").astype(str)
        items = items.reset_index(drop=True)
        check_known_ids(inter["item"], items[ITEM_KEY], path=self._src("interactions"), field="item", what="item")

        if self.users is None or len(self.users.columns) <= 1 and len(self.users) == 0:
            users = pd.DataFrame({USER_KEY: pd.unique(inter["user"])})
        else:
            users = self.users.copy()
            require_columns(users, [USER_KEY], path=self._src("users"), what="users")
            users[USER_KEY] = _as_str(users[USER_KEY])
            dup = users[USER_KEY].duplicated()
            if dup.any():
                raise DataError(
                    f"duplicate user id {users[USER_KEY][dup].iloc[0]!r}", path=self._src("users"), field=USER_KEY
                )
            check_known_ids(inter["user"], users[USER_KEY], path=self._src("interactions"), field="user", what="user")
        users = users.reset_index(drop=True)
        if len(inter) == 0:
            raise DataError("no interactions", path=self._src("interactions"))
        return RecData(
            name=self.name,
            interactions=inter,
            items=items,
            users=users,
            timestamp_kind=self.timestamp_kind,
            sources=dict(self.sources),
            extra=dict(self.extra),
        )

    def chronological(self) -> pd.DataFrame:
        """Interactions sorted by user then timestamp; ties keep the source order."""
        return self.interactions.sort_values(["user", "timestamp"], kind="stable").reset_index(drop=True)

    def summary(self) -> dict[str, Any]:
        """Counts of the three tables, for statistics tables and metadata."""
        inter = self.interactions
        return {
            "name": self.name,
            "interactions": len(inter),
            "users": int(inter["user"].nunique()),
            "items": int(inter["item"].nunique()),
            "catalog_items": len(self.items),
            "rated": int(inter["rating"].notna().sum()),
            "timestamp_kind": self.timestamp_kind,
        }

    def save(self, directory: str | Path, *, overwrite: bool = False, sources=()) -> Path:
        """Write ``interactions/items/users.parquet`` and ``meta.json`` atomically.

        An existing folder is replaced only when it holds this data set in the schema (another one
        with ``overwrite``); a folder holding anything else is refused, never emptied.
        """
        directory = Path(directory)
        check_schema_target(directory, self.name, overwrite, sources)
        with atomic_directory(directory) as tmp:
            write_parquet(tmp / "interactions.parquet", self.interactions)
            write_parquet(tmp / "items.parquet", self.items)
            write_parquet(tmp / "users.parquet", self.users if self.users is not None else pd.DataFrame())
            write_json(
                tmp / "meta.json",
                {
                    "schema_version": SCHEMA_VERSION,
                    "name": self.name,
                    "timestamp_kind": self.timestamp_kind,
                    "sources": self.sources,
                    "extra": self.extra,
                    "summary": self.summary(),
                },
            )
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> RecData:
        """Read a directory written by :meth:`save`."""
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.exists():
            raise DataError("not an llmrec data directory (meta.json missing)", path=directory)
        meta = read_json(meta_path)
        if not isinstance(meta, dict):
            raise DataError("metadata is not a JSON object", path=meta_path)
        tables = {}
        for name in ("interactions", "items", "users"):
            p = directory / f"{name}.parquet"
            if not p.exists():
                raise DataError("table missing", path=p)
            tables[name] = pd.read_parquet(p)
        return cls(
            name=meta["name"],
            timestamp_kind=meta["timestamp_kind"],
            sources=meta.get("sources", {}),
            extra=meta.get("extra", {}),
            **tables,
        )
