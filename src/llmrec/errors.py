"""Error types with a message that names what is wrong, where, and how to fix it."""

from __future__ import annotations

from pathlib import Path


class LlmrecError(Exception):
    """Base class of every error this library raises on purpose."""


class DataError(LlmrecError, ValueError):
    """Bad input data: a missing file, a wrong separator, a missing column, unknown ids...

    The message always names the file (when there is one) and the field or line.

    >>> print(DataError("column missing", path="ratings.csv", field="rating"))
    ratings.csv: field 'rating': column missing
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        field: str | None = None,
        line: int | None = None,
        hint: str | None = None,
    ) -> None:
        self.path = str(path) if path is not None else None
        self.field = field
        self.line = line
        self.hint = hint
        where = []
        if self.path is not None:
            where.append(self.path + (f":{line}" if line is not None else ""))
        if field is not None:
            where.append(f"field {field!r}")
        text = ": ".join([*where, message])
        if hint:
            text += f" ({hint})"
        super().__init__(text)


class ConfigError(LlmrecError, ValueError):
    """An invalid configuration file or command-line override."""


class ModelError(LlmrecError):
    """A model that cannot be found, loaded or used for scoring."""


class OutputError(LlmrecError):
    """An output location that cannot or must not be written (exists, not ours, read-only)."""
