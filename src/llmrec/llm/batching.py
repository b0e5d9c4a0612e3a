"""Length-sorted batches under a size and a padded-token cap, and shared token prefixes: used by scoring
and generation."""

from __future__ import annotations

from collections.abc import Sequence


def length_batches(lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length, longest first, under the size and token caps.

    >>> length_batches([3, 9, 4, 8], batch_size=2)
    [[1, 3], [2, 0]]
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        width = lengths[current[0]] if current else lengths[i]
        too_many = len(current) >= batch_size
        too_big = max_batch_tokens is not None and (len(current) + 1) * width > max_batch_tokens
        if current and (too_many or too_big):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Length of the longest common prefix of two token sequences.

    >>> common_prefix([1, 2, 3], [1, 2, 4, 5])
    2
    """
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
