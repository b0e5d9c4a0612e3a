"""Vectorized helpers on pandas columns shared by the loaders and the schema.

>>> isin(pd.Series(["a", "b"]), pd.Series(["b"])).tolist()
[False, True]
>>> unescape_html(pd.Series(["A &amp; B", "Marvel&rsquo;s", "plain"])).tolist()
['A & B', 'Marvel’s', 'plain']
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc


def isin(values: pd.Series, known: pd.Series) -> np.ndarray:
    """Fast ``values.isin(known)`` for id columns, compared as strings.

    Arrow's hash lookup: pandas' ``isin`` on string dtypes loops in Python (seconds on
    millions of rows).
    """
    mask = pc.is_in(
        pa.array(values.astype(str), type=pa.string()), value_set=pa.array(known.astype(str), type=pa.string())
    )
    return mask.to_numpy(zero_copy_only=False)


def unescape_html(series: pd.Series) -> pd.Series:
    """Decode HTML entities (``&amp;``, ``&rsquo;``...), touching only rows that have ``&``."""
    series = series.fillna("").astype(str)
    mask = series.str.contains("&", regex=False)
    if mask.any():
        series = series.where(~mask, series[mask].map(html.unescape))
    return series
