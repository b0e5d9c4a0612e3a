"""From prepared samples to rendered prompts: item texts, user profiles, history windows.

>>> import pandas as pd
>>> texts = PromptData.from_tables(
...     pd.DataFrame({"item": ["1", "2"], "title": ["Heat (1995)", "Up (2009)"], "genres": ["Action", "Animation"]}),
...     pd.DataFrame({"user": ["7"], "gender": ["female"]}), dataset="ml-1m", label_threshold=3)
>>> texts.item("2", rating=4.0)["liked"], texts.item("1")["label"], texts.domain
(True, '"Heat (1995)"', 'movie')
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from llmrec.data.protocols import get_protocol
from llmrec.errors import DataError
from llmrec.prompts.template import PromptTemplate, RenderedPrompt, load_template

DOMAINS = {"ml": ("movie", "movies"), "bookcrossing": ("book", "books"), "amazon": ("item", "items"),
           "mind": ("news article", "news articles")}


def domain_of(dataset: str) -> tuple[str, str]:
    """(singular, plural) noun for the items of a data set."""
    for prefix, nouns in DOMAINS.items():
        if dataset.startswith(prefix):
            return nouns
    return ("item", "items")


def default_template(protocol: str, dataset: str) -> str:
    """Shipped template for a protocol and data set (from the protocol's record).

    >>> default_template("tallrec", "bookcrossing"), default_template("trsr", "amazon-games")
    ('tallrec_book', 'trsr')
    """
    return get_protocol(protocol).template_for(domain_of(dataset)[0])


def default_history_k(protocol: str) -> int | None:
    """History items shown per prompt by default (the protocol's record; None: all in the sample)."""
    return get_protocol(protocol).history_k


@dataclass
class PromptData:
    """Item texts and user profiles of one prepared data set, as template variables."""

    items: dict[str, dict[str, Any]]
    users: dict[str, dict[str, Any]]
    dataset: str
    label_threshold: float | None = None
    domain: str = "item"
    domain_plural: str = "items"
    _missing_user: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_tables(cls, items: pd.DataFrame, users: pd.DataFrame, dataset: str, label_threshold: float | None) -> PromptData:
        text_items = items.fillna("").astype(str)
        item_map = {row["item"]: row for row in text_items.to_dict("records")}
        user_map = {row["user"]: row for row in users.fillna("").astype(str).to_dict("records")} if len(users) else {}
        singular, plural = domain_of(dataset)
        fields = [c for c in users.columns if c != "user"]
        return cls(item_map, user_map, dataset, label_threshold, singular, plural, {c: "" for c in fields})

    def item(self, item_id: str, rating: float | None = None) -> dict[str, Any]:
        """Template view of one item: its text fields, ``label``, and rating-derived fields."""
        try:
            base = self.items[item_id]
        except KeyError:
            raise DataError(f"item {item_id!r} of the samples is not in items.parquet", field="item") from None
        view = dict(base)
        author = base.get("author", "")
        view["label"] = f'"{base["title"]}"' + (f" by {author}" if author else "")
        has_rating = rating is not None and not (isinstance(rating, float) and math.isnan(rating))
        view["rating"] = rating if has_rating else None
        view["stars"] = int(round(rating)) if has_rating else None
        view["liked"] = bool(has_rating and self.label_threshold is not None and rating > self.label_threshold)
        return view

    def user(self, user_id: str) -> dict[str, Any]:
        return self.users.get(user_id, self._missing_user)

    def variables(self, user_id: str, target_id: str, summary: str | None = None) -> dict[str, Any]:
        return {"user": self.user(user_id), "target": self.item(target_id), "summary": summary,
                "domain": self.domain, "domain_plural": self.domain_plural}

    def history(self, items: Iterable[str], ratings: Iterable[float] | None, k: int | None) -> list[dict[str, Any]]:
        """The ``k`` most recent history items (all when ``k`` is None), oldest first."""
        items = list(items)
        ratings = list(ratings) if ratings is not None else [None] * len(items)
        if k is not None:
            items, ratings = items[len(items) - k :] if k else [], ratings[len(ratings) - k :] if k else []
        return [self.item(i, r) for i, r in zip(items, ratings)]

    def shown_history(self, row: dict[str, Any], k: int | None) -> tuple[list[dict[str, Any]], list[int] | None]:
        """The history a prompt shows for ``row`` (oldest first) and the order to drop its items in.

        A plain history: the ``k`` most recent items, dropped oldest first (order None). A
        retrieved one (``history_similarity``, from ``llmrec retrieve``): the ``k`` most similar,
        dropped least similar first (the older first among equals).

        >>> texts = PromptData({"a": {"title": "A"}, "b": {"title": "B"}, "c": {"title": "C"}}, {}, "ml-1m")
        >>> row = {"history_items": ["a", "b", "c"], "history_similarity": [0.9, 0.1, 0.5]}
        >>> hist, drop = texts.shown_history(row, 2)
        >>> [h["title"] for h in hist], drop
        (['A', 'C'], [1, 0])
        """
        ratings = row.get("history_ratings")
        similarity = row.get("history_similarity")
        if similarity is None:
            return self.history(row["history_items"], ratings, k), None
        items = list(row["history_items"])
        ratings = list(ratings) if ratings is not None else [None] * len(items)
        sims = list(similarity)
        if k is not None and k < len(items):
            keep = sorted(sorted(range(len(items)), key=lambda i: (sims[i], i))[len(items) - k :])
            items, ratings, sims = [items[i] for i in keep], [ratings[i] for i in keep], [sims[i] for i in keep]
        drop = sorted(range(len(items)), key=lambda i: (sims[i], i))  # least similar first, then the older
        return [self.item(i, r) for i, r in zip(items, ratings)], drop


def render_ctr(
    rows: list[dict[str, Any]],
    texts: PromptData,
    template: PromptTemplate,
    tokenizer,
    history_k: int | None,
    max_tokens: int | None,
    chat: bool,
) -> list[RenderedPrompt]:
    """One prompt per CTR sample (``item`` is the target)."""
    out = []
    for row in rows:
        hist, drop = texts.shown_history(row, history_k)
        out.append(template.render(tokenizer, texts.variables(row["user"], row["item"], row.get("summary")), hist,
                                   max_tokens, chat, where=f"sample {row['sample_id']}", drop_order=drop))
    return out


def render_ranking(
    rows: list[dict[str, Any]],
    texts: PromptData,
    template: PromptTemplate,
    tokenizer,
    history_k: int | None,
    max_tokens: int | None,
    chat: bool,
) -> list[list[RenderedPrompt]]:
    """Prompts for every candidate of every ranking sample; candidates of a sample share one context.

    The history is cut so that the *longest* candidate fits, so all candidates of a sample
    see the same context (required for prefix reuse and for a fair ranking). A row's
    ``summary`` (from ``llmrec summarize``) is shown in the context; it is never cut.
    """
    out = []
    for row in rows:
        hist = texts.history(row["history_items"], row.get("history_ratings"), history_k)
        summary = row.get("summary")
        cands = list(row["candidates"])
        longest = max(cands, key=lambda c: len(texts.item(c)["title"]))
        probe = template.render(tokenizer, texts.variables(row["user"], longest, summary), hist, max_tokens, chat,
                                where=f"sample {row['sample_id']}")
        n = probe.history_kept
        while True:  # the longest title is a guess at the longest prompt: shrink until all fit
            kept = hist[len(hist) - n :] if n else []
            group = [template.render(tokenizer, texts.variables(row["user"], c, summary), kept, None, chat) for c in cands]
            if max_tokens is None or max(len(p) for p in group) <= max_tokens:
                break
            if n == 0:
                raise DataError(f"sample {row['sample_id']}: a candidate prompt exceeds {max_tokens} tokens without history")
            n -= 1
        out.append(group)
    return out


def render_instruction(rows: list[dict[str, Any]], template: PromptTemplate, tokenizer, max_tokens: int | None,
                       chat: bool) -> list[RenderedPrompt]:
    """One prompt per instruction row (``instruction`` + ``input``, e.g. TALLRec's released splits)."""
    return [template.render(tokenizer, {"instruction": r["instruction"], "input": r.get("input") or ""}, [], max_tokens,
                            chat, where=f"sample {r['sample_id']}") for r in rows]


@dataclass
class PromptRenderer:
    """Renders rows of a prepared split into prompts: CTR, ranking, or instruction rows.

    ``render(rows)`` returns one list of prompts per row (one prompt for CTR and instruction
    rows, one per candidate for ranking rows). Built with :meth:`for_prepared` from a prepared
    folder, a tokenizer and the prompt settings shared by evaluation and training.
    """

    kind: str  # "ctr", "ranking" or "instruction"
    template: PromptTemplate
    tokenizer: Any
    texts: PromptData | None
    history_k: int | None
    max_tokens: int | None
    chat: bool

    @classmethod
    def for_prepared(cls, prepared, tokenizer, *, split: str, template: str | None = None, history_k: int | None = None,
                     max_tokens: int | None = 1024, chat: str = "auto", max_context: int | None = None,
                     kind: str | None = None) -> PromptRenderer:
        table = prepared.splits[split]
        kind = kind or ("ranking" if "candidates" in table.column_names else
                        "instruction" if "instruction" in table.column_names else "ctr")
        tpl = load_template(template or default_template(prepared.protocol, prepared.dataset))
        use_chat = chat == "on" or (chat == "auto" and getattr(tokenizer, "chat_template", None) is not None)
        texts = None
        if kind != "instruction":
            texts = PromptData.from_tables(prepared.items, prepared.users, prepared.dataset,
                                           prepared.config.get("label_threshold"))
        k = history_k
        if k is None and "summary" in prepared.config:  # a summarized folder: the summary + the recent items
            k = prepared.config["summary"].get("recent_items")
        elif k is None and "retrieval" not in prepared.config:  # a retrieved folder shows its K items by default
            k = default_history_k(prepared.protocol)
        budget = max_tokens
        if max_context and budget and budget > max_context:
            budget = max_context
        return cls(kind, tpl, tokenizer, texts, k, budget, use_chat)

    @property
    def columns(self) -> tuple[str, ...]:
        """The sample columns this renderer reads."""
        return {"ranking": ("sample_id", "user", "history_items", "history_ratings", "candidates", "labels", "summary"),
                "instruction": ("sample_id", "instruction", "input", "label"),
                "ctr": ("sample_id", "user", "item", "label", "history_items", "history_ratings",
                        "history_similarity", "summary")}[self.kind]

    def render(self, rows: list[dict[str, Any]]) -> list[list[RenderedPrompt]]:
        if self.kind == "ranking":
            return render_ranking(rows, self.texts, self.template, self.tokenizer, self.history_k, self.max_tokens,
                                  self.chat)
        if self.kind == "instruction":
            return [[p] for p in render_instruction(rows, self.template, self.tokenizer, self.max_tokens, self.chat)]
        return [[p] for p in render_ctr(rows, self.texts, self.template, self.tokenizer, self.history_k,
                                        self.max_tokens, self.chat)]
