"""Prompt templates: YAML files with a Jinja ``context`` and ``candidate`` part.

The ``context`` holds what several prompts can share (user profile, history, summary); the
``candidate`` holds the target item, the question and the start of the answer. A prompt is
``context + candidate``; the answer token follows it directly.

Variables: ``history`` (list of item dicts, oldest first, each with the item's text fields
plus ``rating``, ``stars``, ``liked`` and ``label``), ``target`` (item dict; also
``target.rated_by`` and ``target.liked_share``, the target's rows and percent of likes in the
training split, computed on first use, a training row leaving its own label out), ``user``
(profile dict), ``summary`` (text or None), ``domain`` / ``domain_plural``. The filter
``quote`` wraps text in double quotes. ``user_cf`` and ``item_cf`` place one collaborative token
(the user's, the target item's; CoLLM-style, :mod:`llmrec.llm.collab`): a model whose adapter maps a
collaborative model's embeddings there; each counts as one token of the budget.

:meth:`PromptTemplate.render` keeps the prompt within ``max_tokens`` by dropping history items,
the oldest first, or in a given ``drop_order`` (retrieved histories drop the least similar
first); the question and the candidate are never cut. With a chat model the
prompt becomes the user turn of the tokenizer's chat template.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
import yaml

from llmrec.configfile import yaml_problem
from llmrec.errors import ConfigError, LlmrecError
from llmrec.registry import Registry


class PromptError(LlmrecError):
    """A prompt that cannot be rendered (e.g. over the token budget even without history)."""


SEPARATOR = "\u241f"  # a character no tokenizer merges with its neighbours, removed before tokenizing

# collaborative tokens: a marker in the rendered text, one virtual token id after tokenizing
CF_FIELDS = {"user_cf": "user", "item_cf": "item"}  # template variable -> the kind of token it places
_CF_START, _CF_SEP, _CF_END = "\u2402", "\u241e", "\u2403"
_CF_MARK = re.compile(f"{_CF_START}(user|item){_CF_SEP}(.*?){_CF_END}", re.S)
CollabIdsFn = Callable[[str, str], int]  # (kind, id) -> the virtual token id (llmrec.llm.collab.CollabIds)


def cf_marker(kind: str, key: str) -> str:
    """The text a ``user_cf`` / ``item_cf`` field renders to; tokenizing turns it into one collaborative token.

    >>> _CF_MARK.findall("a " + cf_marker("user", "7") + " b")
    [('user', '7')]
    """
    return f"{_CF_START}{kind}{_CF_SEP}{key}{_CF_END}"


class OptionalUndefined(jinja2.StrictUndefined):
    """A field the data does not have is false in a test (``{% if user.age %}``: a data set without ages, such as
    your own files, renders the other fields) and an error anywhere else (a misspelt ``{{ target.titel }}``).

    >>> env = jinja2.Environment(undefined=OptionalUndefined)
    >>> env.from_string("{% if user.age %}aged {{ user.age }}{% else %}-{% endif %}").render(user={})
    '-'
    >>> env.from_string("{{ user.age }}").render(user={})
    Traceback (most recent call last):
        ...
    jinja2.exceptions.UndefinedError: 'dict object' has no attribute 'age'
    """

    def __bool__(self) -> bool:
        return False


_ENV = jinja2.Environment(undefined=OptionalUndefined, keep_trailing_newline=True, autoescape=False)
_ENV.filters["quote"] = lambda s: f'"{s}"'


@dataclass(frozen=True)
class RenderedPrompt:
    """Token ids of one rendered prompt and how much history it kept."""

    context_ids: tuple[int, ...]
    candidate_ids: tuple[int, ...]
    text: str
    history_kept: int
    history_total: int

    def __len__(self) -> int:
        return len(self.context_ids) + len(self.candidate_ids)


@dataclass
class PromptTemplate:
    """A template loaded from a YAML file (see the module docstring)."""

    name: str
    context: str
    candidate: str
    answer: dict[str, str]
    description: str = ""
    protocols: tuple[str, ...] = ()
    source: str = ""

    def __post_init__(self) -> None:
        try:
            self._context = _ENV.from_string(self.context)
            self._candidate = _ENV.from_string(self.candidate)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(f"{self.source or self.name}:{exc.lineno}: template syntax error: {exc.message}") from exc
        if set(self.answer) != {"yes", "no"}:
            raise ConfigError(f"{self.source or self.name}: answer must have exactly the keys 'yes' and 'no'")
        used = set()
        for part in (self.context, self.candidate):
            used |= jinja2.meta.find_undeclared_variables(_ENV.parse(part))
        self.collab_fields = tuple(f for f in CF_FIELDS if f in used)

    def check_collab(self, collab: bool) -> None:
        """A ConfigError when the template's collaborative markers and the model disagree: markers but no
        collaborative embeddings (``collab`` false), or collaborative embeddings with nowhere to go.

        >>> PromptTemplate("t", "{{ user_cf }} hi", "Yes?", {"yes": "Yes", "no": "No"}).check_collab(False)
        Traceback (most recent call last):
            ...
        llmrec.errors.ConfigError: template t places collaborative tokens ({{ user_cf }}), but the model has none: score with the adapter of a train run with a collab: section (or use a template without them)
        """
        if self.collab_fields and not collab:
            fields = ", ".join("{{ " + f + " }}" for f in self.collab_fields)
            raise ConfigError(f"template {self.name} places collaborative tokens ({fields}), but the model has none: "
                              "score with the adapter of a train run with a collab: section (or use a template "
                              "without them)")
        if collab and not self.collab_fields:
            raise ConfigError(f"template {self.name} has no {{{{ user_cf }}}} / {{{{ item_cf }}}} marker, so the "
                              "model's collaborative tokens have nowhere to go: set template to one that places them")

    @classmethod
    def from_file(cls, path: str | Path) -> PromptTemplate:
        path = Path(path)
        data = read_template_yaml(path, ("name", "context", "candidate", "answer"))
        return cls(
            name=data["name"], context=data["context"], candidate=data["candidate"], answer=data["answer"],
            description=data.get("description", ""), protocols=tuple(data.get("protocols", ())), source=str(path),
        )

    # ---------------------------------------------------------------- rendering
    def render_text(self, variables: dict[str, Any], history: list[dict]) -> tuple[str, str]:
        """Context and candidate text for ``history`` (a list of item dicts)."""
        try:
            return self._context.render(**variables, history=history), self._candidate.render(**variables, history=history)
        except jinja2.UndefinedError as exc:
            raise PromptError(f"template {self.name}: {exc.message}") from exc

    def render(
        self,
        tokenizer,
        variables: dict[str, Any],
        history: list[dict],
        max_tokens: int | None = None,
        chat: bool = False,
        where: str = "",
        drop_order: list[int] | None = None,
        collab: CollabIdsFn | None = None,
    ) -> RenderedPrompt:
        """Render and tokenize, dropping history items until within ``max_tokens``.

        Items go oldest first, or in ``drop_order`` (indices into ``history``); the kept ones
        stay in their order. ``collab`` gives the virtual token id of each collaborative marker.
        """

        def build(n: int) -> RenderedPrompt:
            if drop_order is None:
                kept = history[len(history) - n :] if n else []
            else:
                dropped = set(drop_order[: len(history) - n])
                kept = [h for i, h in enumerate(history) if i not in dropped]
            ctx, cand = self.render_text(variables, kept)
            ctx_ids, cand_ids, text = encode(tokenizer, ctx, cand, chat, collab)
            return RenderedPrompt(ctx_ids, cand_ids, text, n, len(history))

        full = build(len(history))
        if max_tokens is None or len(full) <= max_tokens:
            return full
        lo, hi, best = 0, len(history) - 1, None  # the largest n that fits
        while lo <= hi:
            mid = (lo + hi) // 2
            cand = build(mid)
            if len(cand) <= max_tokens:
                best, lo = cand, mid + 1
            else:
                hi = mid - 1
        if best is None:
            empty = build(0)
            raise PromptError(
                f"{where + ': ' if where else ''}prompt has {len(empty)} tokens without any history, over the budget "
                f"of {max_tokens}; raise max_prompt_tokens or shorten the template"
            )
        return best


def encode(tokenizer, context: str, candidate: str, chat: bool, collab: CollabIdsFn | None = None
           ) -> tuple[tuple[int, ...], tuple[int, ...], str]:
    """Token ids of context and candidate (tokenized separately so contexts can be shared); each collaborative
    marker becomes the one token id ``collab(kind, id)`` (the text around it is tokenized piece by piece)."""
    if _CF_START in context or _CF_START in candidate:
        return _encode_collab(tokenizer, context, candidate, chat, collab)
    if chat:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": context + SEPARATOR + candidate}], tokenize=False, add_generation_prompt=True
        )
        ctx_text, cand_text = text.split(SEPARATOR, 1)
        ctx_ids = tokenizer(ctx_text, add_special_tokens=False)["input_ids"]
        cand_ids = tokenizer(cand_text, add_special_tokens=False)["input_ids"]
        return tuple(ctx_ids), tuple(cand_ids), ctx_text + cand_text
    ctx_ids = tokenizer(context, add_special_tokens=True)["input_ids"]
    cand_ids = tokenizer(candidate, add_special_tokens=False)["input_ids"]
    return tuple(ctx_ids), tuple(cand_ids), context + candidate


def _encode_collab(tokenizer, context: str, candidate: str, chat: bool, collab: CollabIdsFn | None
                   ) -> tuple[tuple[int, ...], tuple[int, ...], str]:
    if collab is None:
        raise ConfigError("the template places collaborative tokens ({{ user_cf }} / {{ item_cf }}), but the model has "
                          "none: score with the adapter of a train run with a collab: section")
    if chat:
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": context + SEPARATOR + candidate}], tokenize=False, add_generation_prompt=True
        )
        ctx_text, cand_text = text.split(SEPARATOR, 1)
        ctx_ids, cand_ids = _pieces(tokenizer, ctx_text, False, collab), _pieces(tokenizer, cand_text, False, collab)
    else:
        ctx_text, cand_text = context, candidate
        ctx_ids, cand_ids = _pieces(tokenizer, context, True, collab), _pieces(tokenizer, candidate, False, collab)
    shown = _CF_MARK.sub(lambda m: f"<{m.group(1)}_cf>", ctx_text + cand_text)
    return tuple(ctx_ids), tuple(cand_ids), shown


def _pieces(tokenizer, text: str, special: bool, collab: CollabIdsFn) -> list[int]:
    """Token ids of ``text``: the text between markers tokenized piece by piece, each marker one virtual id."""
    parts = _CF_MARK.split(text)  # text, kind, id, text, kind, id, ..., text
    ids: list[int] = []
    for j in range(0, len(parts), 3):
        first = j == 0 and special
        if parts[j] or first:
            ids += tokenizer(parts[j], add_special_tokens=first)["input_ids"]
        if j + 1 < len(parts):
            ids.append(int(collab(parts[j + 1], parts[j + 2])))
    return ids


def read_template_yaml(path: Path, required: tuple[str, ...], what: str = "template") -> dict[str, Any]:
    """The mapping in a template's YAML file; a ConfigError naming the file and the first missing field."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: cannot read {what}: invalid YAML: {yaml_problem(exc)}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a {what} is a YAML mapping")
    missing = [k for k in required if k not in data]
    if missing:
        raise ConfigError(f"{path}: {what} field {missing[0]!r} missing (needs {', '.join(required)})")
    return data


def shipped_templates(package: str, what: str = "template", key: str = "template") -> Registry[Path]:
    """The registry of the YAML templates shipped in ``<package>/templates`` (name -> file); more can be
    registered by name with ``registry.register(path, name)``."""
    folder = resources.files(package) / "templates"
    registry: Registry[Path] = Registry(what, key=key, describe=lambda p: str(p))
    for p in sorted(folder.iterdir(), key=str):
        if str(p).endswith(".yaml"):
            registry.register(Path(str(p)), Path(str(p)).stem)
    return registry


def template_file(name_or_path: str | Path, shipped: Registry[Path]) -> Path:
    """The file of a registered template by name, or a template file by path; a ConfigError listing the known ones."""
    if str(name_or_path) in shipped:
        return shipped[str(name_or_path)]
    path = Path(name_or_path)
    if path.is_file():
        return path
    if "/" in str(name_or_path) or path.suffix in (".yaml", ".yml"):
        raise ConfigError(f"{shipped.what} file {str(name_or_path)!r} not found" +
                          (" (a folder)" if path.is_dir() else ""))
    raise ConfigError(f"{shipped.unknown(str(name_or_path))}, or give a file path")


TEMPLATES: Registry[Path] = shipped_templates("llmrec.prompts")


def load_template(name_or_path: str | Path) -> PromptTemplate:
    """A shipped template by name, or a template file by path."""
    return PromptTemplate.from_file(template_file(name_or_path, TEMPLATES))
