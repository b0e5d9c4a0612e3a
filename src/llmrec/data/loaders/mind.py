"""MIND news loader (Wu et al., ACL 2020): ``news.tsv`` and ``behaviors.tsv``.

Both files are tab-separated UTF-8 text without a header, read from a directory or from the
official zip (``MINDsmall_train.zip`` holds them at its top level):

* ``news.tsv``: news_id, category, subcategory, title, abstract, url, title_entities,
  abstract_entities. Items are ``item``, ``title``, ``category``, ``subcategory``,
  ``abstract``.
* ``behaviors.tsv``: impression_id, user_id, time (``11/15/2019 8:55:22 AM``), history (news
  ids separated by spaces, oldest first, may be empty) and impressions (``N1-1 N2-0 ...``;
  ``-1`` is a click).

Interactions are clicks, with no rating (NaN) and unix timestamps (``timestamp_kind="unix"``,
the times read as UTC):

1. the click **history** of each user, taken from the user's earliest behaviors row (MIND
   repeats the same history in every row of a user). It has no times, so its ``n`` clicks get
   synthetic timestamps ``t0 - n + i`` (i = 0..n-1), where ``t0`` is the time of that
   earliest impression: strictly before every impression of the user, in history order, the
   newest at ``t0 - 1``;
2. the **clicked impressions** (``-1``), at the impression time. Unlabelled impressions (the
   test split) give no clicks.

A (user, item) pair is kept once, at its earliest timestamp (the count dropped is in
``extra["duplicates_dropped"]``). Rows are sorted by timestamp (ties in file order). Users
are every user of ``behaviors.tsv`` (just the ``user`` column).

>>> import tempfile, pathlib
>>> d = pathlib.Path(tempfile.mkdtemp())
>>> _ = (d / "news.tsv").write_text(
...     "N1\\tsports\\tgolf\\tPar three\\tA golf story.\\turl\\t[]\\t[]\\n"
...     "N2\\tnews\\tworld\\tElections\\t\\turl\\t[]\\t[]\\n"
...     "N3\\tfood\\trecipes\\tSoup\\tHot soup.\\turl\\t[]\\t[]\\n")
>>> _ = (d / "behaviors.tsv").write_text(
...     "1\\tU1\\t11/15/2019 8:55:22 AM\\tN1 N2\\tN3-1 N2-0\\n"
...     "2\\tU2\\t11/15/2019 9:00:00 AM\\t\\tN1-0 N2-1\\n")
>>> data = load_mind(d)
>>> data.interactions[["user", "item", "timestamp"]].values.tolist()
[['U1', 'N1', 1573808120], ['U1', 'N2', 1573808121], ['U1', 'N3', 1573808122], ['U2', 'N2', 1573808400]]
>>> data.items.loc[1, "abstract"], data.users["user"].tolist()
('', ['U1', 'U2'])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from llmrec.data.loaders.files import SourceFiles
from llmrec.data.loaders.movielens import read_delimited
from llmrec.data.schema import RecData
from llmrec.errors import DataError

NEWS_FILE = "news.tsv"
BEHAVIORS_FILE = "behaviors.tsv"
NEWS_COLUMNS = ["item", "category", "subcategory", "title", "abstract", "url", "title_entities", "abstract_entities"]
BEHAVIOR_COLUMNS = ["impression_id", "user", "time", "history", "impressions"]
TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"


def split_tokens(series: pd.Series) -> tuple[np.ndarray, pd.Series]:
    """Split space-separated tokens in Arrow: (row position of each token, tokens).

    The vectorized equivalent of ``series.str.split().explode()`` without empty tokens.

    >>> rows, tokens = split_tokens(pd.Series(["N1 N2", "", " N3-1  N4-0"]))
    >>> rows.tolist(), tokens.tolist()
    ([0, 0, 2, 2], ['N1', 'N2', 'N3-1', 'N4-0'])
    """
    lists = pc.utf8_split_whitespace(pa.array(series.fillna(""), type=pa.large_string(), from_pandas=True))
    tokens = pc.list_flatten(lists)
    rows = pc.list_parent_indices(lists)
    keep = pc.not_equal(tokens, "")
    return rows.filter(keep).to_numpy(), pd.Series(tokens.filter(keep).to_pandas(), dtype=str)


def _unix_seconds(times: pd.Series, where: str) -> pd.Series:
    parsed = pd.to_datetime(times.str.strip(), format=TIME_FORMAT, errors="coerce")
    bad = parsed.isna()
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"cannot read time {times.iloc[row]!r} (expected like '11/15/2019 8:55:22 AM')",
            path=where,
            field="time",
            line=row + 1,
        )
    return ((parsed - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1)).astype("int64")


def load_mind(path: str | Path) -> RecData:
    """Load MIND from a directory or zip holding ``news.tsv`` and ``behaviors.tsv``.

    See the module docstring for how clicks and the synthetic history timestamps are built.

    >>> import tempfile, pathlib, zipfile
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "MINDsmall_train.zip"
    >>> with zipfile.ZipFile(p, "w") as z:
    ...     z.writestr("news.tsv", "N1\\tnews\\tworld\\tHello\\tAbstract.\\turl\\t[]\\t[]\\n")
    ...     z.writestr("behaviors.tsv", "1\\tU9\\t11/11/2019 1:00:00 PM\\tN1\\tN1-1\\n")
    >>> data = load_mind(p)
    >>> len(data.interactions), data.extra["duplicates_dropped"], data.timestamp_kind
    (1, 1, 'unix')
    """
    src = SourceFiles(path)
    src.require(NEWS_FILE)
    src.require(BEHAVIORS_FILE)
    where = {"interactions": src.display(BEHAVIORS_FILE), "items": src.display(NEWS_FILE), "users": src.display(BEHAVIORS_FILE)}

    news = read_delimited(
        src.read_bytes(NEWS_FILE), sep="\t", names=NEWS_COLUMNS, where=where["items"], encoding="utf-8", dtype=str
    ).fillna("")
    items = news[["item", "title", "category", "subcategory", "abstract"]].copy()
    for col in items.columns:
        items[col] = items[col].str.strip()

    behaviors = read_delimited(
        src.read_bytes(BEHAVIORS_FILE), sep="\t", names=BEHAVIOR_COLUMNS, where=where["interactions"], encoding="utf-8", dtype=str
    ).fillna("")
    behaviors["user"] = behaviors["user"].str.strip()
    empty_user = behaviors["user"] == ""
    if empty_user.any():
        row = int(np.flatnonzero(empty_user.to_numpy())[0])
        raise DataError("empty user id", path=where["interactions"], field="user_id", line=row + 1)
    behaviors["t"] = _unix_seconds(behaviors["time"], where["interactions"])

    # (i) history of each user's earliest impression, with synthetic times before it
    first = behaviors.sort_values("t", kind="stable").drop_duplicates("user", keep="first")
    rows, hist_items = split_tokens(first["history"])
    position = pd.Series(rows).groupby(rows).cumcount().to_numpy()
    length = np.bincount(rows, minlength=len(first))[rows]
    t0 = first["t"].to_numpy()[rows]
    history = pd.DataFrame(
        {"user": first["user"].to_numpy()[rows], "item": hist_items.to_numpy(), "timestamp": t0 - length + position}
    )

    # (ii) clicked impressions ("N123-1") at the impression time
    rows, tokens = split_tokens(behaviors["impressions"])
    is_click = tokens.str.endswith("-1").to_numpy()
    rows = rows[is_click]
    clicks = pd.DataFrame(
        {
            "user": behaviors["user"].to_numpy()[rows],
            "item": tokens[is_click].str.slice(0, -2).to_numpy(),
            "timestamp": behaviors["t"].to_numpy()[rows],
        }
    )

    inter = pd.concat([history, clicks], ignore_index=True).sort_values("timestamp", kind="stable")
    dup = inter.duplicated(["user", "item"], keep="first")
    inter = inter[~dup].reset_index(drop=True)
    inter["rating"] = np.nan
    users = pd.DataFrame({"user": pd.unique(behaviors["user"])})
    extra = {
        "impressions": len(behaviors),
        "history_clicks": len(history),
        "impression_clicks": len(clicks),
        "duplicates_dropped": int(dup.sum()),
        "synthetic_history_timestamps": True,
    }
    return RecData("mind", inter[["user", "item", "rating", "timestamp"]], items, users,
                   timestamp_kind="unix", sources=where, extra=extra).validated()  # fmt: skip
