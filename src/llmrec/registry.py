"""One small registry class for every pluggable part (backends, protocols, data sets, baselines, step kinds,
templates): one way to register, one error message for an unknown name, one listing for the CLI.

A registry is a mapping from a name to a record. Looking up an unknown name raises
:class:`UnknownName`, a :class:`~llmrec.errors.ConfigError` (and a ``KeyError``, so ``name in
registry`` and ``registry.get(name)`` behave like a dict's) that names the config field and lists
the known names::

>>> shapes = Registry("shape", key="model.shape", describe=lambda s: s["doc"])
>>> _ = shapes.register({"doc": "four corners"}, "square", aliases=("box",))
>>> shapes["box"]["doc"], sorted(shapes), "circle" in shapes, shapes.get("circle")
('four corners', ['square'], False, None)
>>> shapes["circle"]
Traceback (most recent call last):
...
llmrec.registry.UnknownName: model.shape: unknown shape 'circle' (known: square)
>>> print(shapes.listing())
square  four corners
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, MutableMapping
from typing import Generic, TypeVar

from llmrec.errors import ConfigError

T = TypeVar("T")

__all__ = ["Registry", "UnknownName"]


class UnknownName(ConfigError, KeyError):
    """A name no registry entry has (a ConfigError for users, a KeyError for mapping code)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class Registry(MutableMapping[str, T], Generic[T]):
    """Named records of one kind of part, in registration order.

    ``what`` names the part in messages ("backend"), ``key`` the config field or option that
    names one ("model.backend"); ``describe`` gives a record's one-line description for
    :meth:`listing`. Names are matched case-insensitively when ``fold_case`` is set (data sets),
    and ``aliases`` given at registration resolve to their entry without being listed.
    """

    def __init__(self, what: str, *, key: str | None = None, describe: Callable[[T], str] | None = None,
                 fold_case: bool = False) -> None:
        self.what = what
        self.key = key
        self._describe = describe
        self._fold = fold_case
        self._entries: dict[str, T] = {}
        self._aliases: dict[str, str] = {}

    def _norm(self, name: str) -> str:
        name = str(name)
        name = name.lower() if self._fold else name
        return self._aliases.get(name, name)

    def register(self, entry: T, name: str | None = None, *, aliases: Iterable[str] = ()) -> T:
        """Add (or replace) ``entry`` under ``name`` (default: its ``name`` attribute); returns the entry, so a
        module can write ``X = registry.register(Record(...))``."""
        name = name if name is not None else entry.name
        self._entries[name.lower() if self._fold else name] = entry
        for alias in aliases:
            self._aliases[alias.lower() if self._fold else alias] = name
        return entry

    def unknown(self, name: str) -> UnknownName:
        """The error for ``name`` not being registered (also for callers that check a name before a lookup)."""
        where = f"{self.key}: " if self.key else ""
        return UnknownName(f"{where}unknown {self.what} {name!r} (known: {', '.join(sorted(self._entries)) or 'none'})")

    def __getitem__(self, name: str) -> T:
        try:
            return self._entries[self._norm(name)]
        except KeyError:
            raise self.unknown(name) from None

    def __setitem__(self, name: str, entry: T) -> None:
        self._entries[self._norm(name)] = entry

    def __delitem__(self, name: str) -> None:
        del self._entries[self._norm(name)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._norm(name) in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._entries)})"

    def names(self, where: Callable[[T], bool] | None = None) -> list[str]:
        """Registered names in registration order (only those whose record passes ``where``)."""
        return [n for n, e in self._entries.items() if where is None or where(e)]

    def describe(self, name: str) -> str:
        """The one-line description of an entry ('' when the registry has no ``describe``)."""
        return self._describe(self[name]) if self._describe else ""

    def listing(self, where: Callable[[T], bool] | None = None) -> str:
        """One line per entry, ``name  description``, names padded to one width (what ``--list`` prints)."""
        names = self.names(where)
        width = max((len(n) for n in names), default=0)
        return "\n".join(f"{n:<{width}}  {self.describe(n)}".rstrip() for n in names)
