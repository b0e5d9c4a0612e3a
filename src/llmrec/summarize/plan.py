"""How a history becomes summary prompts: blocks of items, the levels of the hierarchy, the recurrence.

Pure functions on counts and lists (no model):

>>> blocks(["a", "b", "c", "d", "e", "f", "g"], 3)
[['a', 'b', 'c'], ['d', 'e', 'f'], ['g']]
>>> hierarchy_levels(12, fan_in=5)  # 12 block summaries -> 3 merged -> 1
[12, 3, 1]
>>> hierarchy_levels(1, fan_in=5)  # one block: its summary is the user's summary
[1]
>>> groups(["s1", "s2", "s3", "s4"], 3)
[['s1', 's2'], ['s3', 's4']]
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def blocks(items: Sequence[T], size: int) -> list[list[T]]:
    """Consecutive blocks of ``size`` items, oldest first (the last one may be shorter)."""
    if size < 1:
        raise ValueError("block size must be at least 1")
    return [list(items[i : i + size]) for i in range(0, len(items), size)]


def groups(summaries: Sequence[T], fan_in: int) -> list[list[T]]:
    """Split one level's summaries into the fewest groups of at most ``fan_in``, sizes as even as possible."""
    if fan_in < 2:
        raise ValueError("fan_in must be at least 2")
    n = len(summaries)
    k = math.ceil(n / fan_in)
    base, extra = divmod(n, k)
    out, at = [], 0
    for g in range(k):
        size = base + (1 if g < extra else 0)
        out.append(list(summaries[at : at + size]))
        at += size
    return out


def hierarchy_levels(n_blocks: int, fan_in: int) -> list[int]:
    """Prompts at each level of the hierarchy of a history with ``n_blocks`` blocks (the last level is 1)."""
    if n_blocks < 1:
        return []
    levels = [n_blocks]
    while levels[-1] > 1:
        levels.append(math.ceil(levels[-1] / fan_in))
    return levels
