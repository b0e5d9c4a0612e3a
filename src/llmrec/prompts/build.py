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
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from llmrec.data.kinds import SampleKind, detect, kind_of
from llmrec.data.protocols import get_protocol
from llmrec.errors import DataError
from llmrec.prompts.template import CollabIdsFn, PromptTemplate, RenderedPrompt, cf_marker, load_template

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


@dataclass(frozen=True)
class ItemStats:
    """Each item's labelled rows in a training split: how many, how many positive.

    The target's ``rated_by`` (rows) and ``liked_share`` (percent positive, None when unrated) in
    templates. Read from the training split only, so a validation or test prompt never sees its own
    label; a training row leaves its own label out (``own_label``), so it cannot read it either.

    >>> import pyarrow as pa
    >>> stats = ItemStats.from_split(pa.table({"item": ["a", "a", "a", "b"], "label": [1, 1, 0, 1]}))
    >>> stats.view("a"), stats.view("a", own_label=1), stats.view("c")
    ({'rated_by': 3, 'liked_share': 67}, {'rated_by': 2, 'liked_share': 50}, {'rated_by': 0, 'liked_share': None})
    """

    counts: dict[str, int]
    positives: dict[str, int]

    @classmethod
    def from_split(cls, table) -> ItemStats:
        import pyarrow.compute as pc

        if not {"item", "label"} <= set(table.column_names):
            return cls({}, {})
        grouped = table.select(["item", "label"]).group_by("item").aggregate([("label", "count"), ("label", "sum")])
        items = [str(i) for i in grouped.column("item").to_pylist()]
        counts = grouped.column("label_count").to_pylist()
        positives = pc.fill_null(grouped.column("label_sum"), 0).to_pylist()
        return cls(dict(zip(items, map(int, counts))), dict(zip(items, map(int, positives))))

    @classmethod
    def of_train(cls, prepared) -> ItemStats:
        """The statistics of a prepared folder's training split, reading its item and label columns only."""
        if not {"item", "label"} <= set(prepared.column_names("train")):
            return cls({}, {})
        return cls.from_split(prepared.split("train", columns=["item", "label"]))

    def view(self, item_id: str, own_label: int | None = None) -> dict[str, Any]:
        n, pos = self.counts.get(item_id, 0), self.positives.get(item_id, 0)
        if own_label is not None and n:
            n, pos = n - 1, pos - int(own_label)
        return {"rated_by": n, "liked_share": round(100 * pos / n) if n else None}


class _TargetView(dict):
    """An item's template view whose training statistics are computed on first use (templates that
    do not show them never pay for the group-by over the training split)."""

    def __init__(self, base: dict[str, Any], stats: Callable[[], ItemStats], item_id: str, own_label: int | None):
        super().__init__(base)
        self._stats, self._item_id, self._own_label = stats, item_id, own_label

    def __missing__(self, key: str) -> Any:
        if key not in ("rated_by", "liked_share"):
            raise KeyError(key)
        self.update(self._stats().view(self._item_id, self._own_label))
        return self[key]


@dataclass
class PromptData:
    """Item texts and user profiles of one prepared data set, as template variables.

    ``train_stats`` (optional) loads the training split's :class:`ItemStats`, the target's
    ``rated_by`` and ``liked_share``; it is called once, on first use.
    """

    items: dict[str, dict[str, Any]]
    users: dict[str, dict[str, Any]]
    dataset: str
    label_threshold: float | None = None
    domain: str = "item"
    domain_plural: str = "items"
    _missing_user: dict[str, Any] = field(default_factory=dict)
    train_stats: Callable[[], ItemStats] | None = field(default=None, repr=False)
    _stats: ItemStats | None = field(default=None, repr=False)

    @classmethod
    def from_tables(cls, items: pd.DataFrame, users: pd.DataFrame, dataset: str, label_threshold: float | None,
                    train_stats: Callable[[], ItemStats] | None = None) -> PromptData:
        text_items = items.fillna("").astype(str)
        item_map = {row["item"]: row for row in text_items.to_dict("records")}
        user_map = {row["user"]: row for row in users.fillna("").astype(str).to_dict("records")} if len(users) else {}
        singular, plural = domain_of(dataset)
        fields = [c for c in users.columns if c != "user"]
        return cls(item_map, user_map, dataset, label_threshold, singular, plural, {c: "" for c in fields}, train_stats)

    def item_stats(self) -> ItemStats:
        """The training split's item statistics (loaded once); a clear error where there are none."""
        if self._stats is None:
            if self.train_stats is None:
                raise DataError("the template shows the target's training statistics (rated_by / liked_share), but "
                                "these prompts have no training split to count them from", field="template")
            self._stats = self.train_stats()
        return self._stats

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

    def variables(self, user_id: str, target_id: str, summary: str | None = None,
                  own_label: int | None = None) -> dict[str, Any]:
        """Template variables of one prompt; ``own_label``: the row's label when it is a training row
        (left out of the target's training statistics)."""
        target = _TargetView(self.item(target_id), self.item_stats, target_id, own_label)
        return {"user": self.user(user_id), "target": target, "summary": summary,
                "domain": self.domain, "domain_plural": self.domain_plural,
                "user_cf": cf_marker("user", user_id), "item_cf": cf_marker("item", target_id)}

    def history(self, items: Iterable[str], ratings: Iterable[float] | None, k: int | None) -> list[dict[str, Any]]:
        """The ``k`` most recent history items (all when ``k`` is None or more than there are), oldest first.

        >>> texts = PromptData({i: {"title": i.upper()} for i in "abcd"}, {}, "ml-1m")
        >>> [h["title"] for h in texts.history("abcd", None, 2)], len(texts.history("abc", None, 5))
        (['C', 'D'], 3)
        """
        items = list(items)
        ratings = list(ratings) if ratings is not None else [None] * len(items)
        if k is not None:
            start = max(0, len(items) - k)  # k = 0: start = len(items), nothing shown
            items, ratings = items[start:], ratings[start:]
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
    training_rows: bool = False,
    collab: CollabIdsFn | None = None,
) -> list[RenderedPrompt]:
    """One prompt per CTR sample (``item`` is the target); ``training_rows``: the rows belong to the
    training split (each leaves its own label out of the target's training statistics)."""
    out = []
    for row in rows:
        hist, drop = texts.shown_history(row, history_k)
        own = row.get("label") if training_rows else None
        out.append(template.render(tokenizer, texts.variables(row["user"], row["item"], row.get("summary"), own), hist,
                                   max_tokens, chat, where=f"sample {row['sample_id']}", drop_order=drop,
                                   collab=collab))
    return out


def render_ranking(
    rows: list[dict[str, Any]],
    texts: PromptData,
    template: PromptTemplate,
    tokenizer,
    history_k: int | None,
    max_tokens: int | None,
    chat: bool,
    collab: CollabIdsFn | None = None,
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
                                where=f"sample {row['sample_id']}", collab=collab)
        n = probe.history_kept
        while True:  # the longest title is a guess at the longest prompt: shrink until all fit
            kept = hist[len(hist) - n :] if n else []
            group = [template.render(tokenizer, texts.variables(row["user"], c, summary), kept, None, chat,
                                     collab=collab) for c in cands]
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


_RENDER = {  # how each sample kind's rows become prompts: one list of prompts per row
    "ctr": lambda r, rows: [[p] for p in render_ctr(rows, r.texts, r.template, r.tokenizer, r.history_k, r.max_tokens,
                                                     r.chat, r.training_rows, r.collab)],
    "ranking": lambda r, rows: render_ranking(rows, r.texts, r.template, r.tokenizer, r.history_k, r.max_tokens,
                                              r.chat, r.collab),
    "instruction": lambda r, rows: [[p] for p in render_instruction(rows, r.template, r.tokenizer, r.max_tokens,
                                                                     r.chat)],
}


@dataclass
class PromptRenderer:
    """Renders rows of a prepared split into prompts: CTR, ranking, or instruction rows.

    ``render(rows)`` returns one list of prompts per row (one prompt for CTR and instruction
    rows, one per candidate for ranking rows). Built with :meth:`for_prepared` from a prepared
    folder, a tokenizer and the prompt settings shared by evaluation and training.
    """

    kind: SampleKind
    template: PromptTemplate
    tokenizer: Any
    texts: PromptData | None
    history_k: int | None
    max_tokens: int | None
    chat: bool
    training_rows: bool = False  # rows of the training split: left out of their target's statistics
    collab: CollabIdsFn | None = None  # virtual token ids of the collaborative markers (llmrec.llm.collab)

    def __post_init__(self) -> None:
        self.kind = kind_of(self.kind)

    @classmethod
    def for_prepared(cls, prepared, tokenizer, *, split: str, template: str | None = None, history_k: int | None = None,
                     max_tokens: int | None = 1024, chat: str = "auto", max_context: int | None = None,
                     kind: str | SampleKind | None = None, collab: CollabIdsFn | None = None) -> PromptRenderer:
        """``kind`` renders another view of the rows (the CTR view of candidate lists, for training); default: the
        split's own kind. ``collab``: the model's collaborative token ids (its template must place them, and a
        template that places them needs them)."""
        record = kind_of(kind) if kind is not None else detect(prepared.column_names(split))
        tpl = load_template(template or default_template(prepared.protocol, prepared.dataset))
        tpl.check_collab(collab is not None)
        use_chat = chat == "on" or (chat == "auto" and getattr(tokenizer, "chat_template", None) is not None)
        texts = None
        if record.names_items:
            texts = PromptData.from_tables(prepared.items, prepared.users, prepared.dataset,
                                           prepared.config.get("label_threshold"),
                                           (lambda: ItemStats.of_train(prepared)) if "train" in prepared.splits else None)
        k = history_k
        if k is None:  # the folder's own default (a summarized or retrieved folder), else the protocol's
            shown = prepared.shown_history()
            k = default_history_k(prepared.protocol) if shown == "protocol" else shown
        budget = max_tokens
        if max_context and budget and budget > max_context:
            budget = max_context
        return cls(record, tpl, tokenizer, texts, k, budget, use_chat, training_rows=split == "train", collab=collab)

    @property
    def columns(self) -> tuple[str, ...]:
        """The sample columns this renderer reads."""
        return self.kind.prompt_columns

    def render(self, rows: list[dict[str, Any]]) -> list[list[RenderedPrompt]]:
        return _RENDER[self.kind.name](self, rows)
