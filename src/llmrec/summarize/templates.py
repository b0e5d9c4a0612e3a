"""Summary prompt templates: YAML files with an ``item`` text and ``block`` / ``merge`` / ``update`` prompts.

* ``item``: the text of one history item (Jinja over its ``items.parquet`` columns, e.g.
  ``"{{ title }}"`` or ``"{{ category }}: {{ title }}"``): which fields a summary sees;
* ``block``: summarize the items of one block (variable ``items``, a list of item texts);
* ``merge``: summarize several summaries (``summaries``), the upper levels of the hierarchy;
* ``update``: the recurrent step (``summary``, the previous summary, and ``items``);
* ``stop``: stop strings of the generated summary (added to ``generation.stop``).

Every prompt also sees ``domain`` / ``domain_plural`` ("item" / "items", "news article" / ...).

>>> t = load_summary_template("summary_instruct")
>>> print(t.prompt("block", items=["Halo 3", "Forza 2"], domain_plural="games").splitlines()[-2])
1. Halo 3
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2

from llmrec.errors import ConfigError
from llmrec.prompts.template import read_template_yaml, shipped_templates, template_file
from llmrec.registry import Registry

KINDS = ("block", "merge", "update")
_ENV = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, autoescape=False)


@dataclass
class SummaryTemplate:
    """A summary template loaded from YAML (see the module docstring)."""

    name: str
    item: str
    block: str
    merge: str
    update: str
    stop: list[str] = field(default_factory=list)
    description: str = ""
    source: str = ""

    def __post_init__(self) -> None:
        self._compiled = {}
        for kind in ("item", *KINDS):
            try:
                self._compiled[kind] = _ENV.from_string(getattr(self, kind))
            except jinja2.TemplateSyntaxError as exc:
                raise ConfigError(f"{self.source or self.name}: {kind}: line {exc.lineno}: template syntax error: "
                                  f"{exc.message}") from exc

    @classmethod
    def from_file(cls, path: str | Path) -> SummaryTemplate:
        path = Path(path)
        data = read_template_yaml(path, ("name", "item", *KINDS), "summary template")
        bad = [k for k in ("name", "item", *KINDS) if not isinstance(data[k], str)]
        if bad:
            raise ConfigError(f"{path}: summary template field {bad[0]!r} must be text")
        stop = data.get("stop", [])
        if not isinstance(stop, list) or not all(isinstance(s, str) and s for s in stop):
            raise ConfigError(f"{path}: stop must be a list of non-empty strings")
        return cls(name=data["name"], item=data["item"], block=data["block"], merge=data["merge"], update=data["update"],
                   stop=stop, description=data.get("description", ""), source=str(path))

    def item_text(self, fields: dict[str, Any]) -> str:
        """The text of one item from its fields (missing fields are an error naming them)."""
        try:
            return " ".join(self._compiled["item"].render(**fields).split())
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"summary template {self.name}: item: {exc.message} (the item fields are: "
                              f"{', '.join(sorted(fields))})") from None

    def prompt(self, kind: str, **variables: Any) -> str:
        """The text of a ``block``, ``merge`` or ``update`` prompt."""
        try:
            return self._compiled[kind].render(**variables)
        except jinja2.UndefinedError as exc:
            raise ConfigError(f"summary template {self.name}: {kind}: {exc.message}") from None

    def text(self) -> str:
        """The template's content (part of the cache key of everything generated with it)."""
        return "\n".join([self.item, self.block, self.merge, self.update, repr(self.stop)])


SUMMARY_TEMPLATES: Registry[Path] = shipped_templates("llmrec.summarize", "summary template")


def load_summary_template(name_or_path: str | Path) -> SummaryTemplate:
    """A shipped summary template by name, or a template file by path."""
    return SummaryTemplate.from_file(template_file(name_or_path, SUMMARY_TEMPLATES))
