"""A loaded recommender: requests in, the same scores as ``llmrec evaluate`` out.

A request (a history and candidates) becomes the prepared folder's sample rows, one per
candidate (CTR data) or one list (ranking data), and a served model scores them:

- :class:`LanguageModel` renders the rows with the folder's template and item texts (the
  renderer ``llmrec evaluate`` uses) and scores P(yes); the candidates of a request share one
  context, which the scorer encodes once (prefix reuse).
- :class:`SampleModel` hands the rows to any :class:`~llmrec.results.SampleScorer`, e.g. a finished
  classic baseline run (``llmrec serve --run runs/din``), one row per candidate.

Either way a served score equals the offline score of the same history and candidate.

>>> from llmrec.serve.schemas import ScoreRequest
>>> ScoreRequest(history=[], candidates=["1"]).history
[]
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow.compute as pc

from llmrec.data.kinds import SampleKind, detect
from llmrec.data.prepared import PreparedData
from llmrec.errors import ConfigError, LlmrecError
from llmrec.llm import AnswerTokens, EncodedPrompt, LoadedModel, Scorer, load_model, make_scorer
from llmrec.llm.loading import check_model
from llmrec.results import SampleScorer
from llmrec.serve.batcher import ShuttingDown
from llmrec.serve.config import ServeConfig, ServerSettings
from llmrec.serve.schemas import RankedItem, RankResponse, ScoredItem, ScoreRequest, ScoreResponse

__all__ = ["BuiltRequest", "InvalidRequest", "LanguageModel", "RecommenderService", "SampleModel", "ServedModel",
           "request_body"]


def request_body(row: dict[str, Any], candidates: list[str]) -> dict[str, Any]:
    """The JSON body asking to score ``candidates`` for a prepared sample's user and history (with its
    ratings where it has them): the request that reproduces ``llmrec evaluate``'s prompts.

    >>> request_body({"user": "7", "history_items": ["1", "2"], "history_ratings": [4, 2]}, ["3"])
    {'user': '7', 'history': [{'item': '1', 'rating': 4.0}, {'item': '2', 'rating': 2.0}], 'candidates': ['3']}
    """
    history = [{"item": item} for item in row["history_items"]]
    ratings = row.get("history_ratings")
    if ratings is not None:
        for h, r in zip(history, ratings):
            h["rating"] = float(r)
    return {"user": row["user"], "history": history, "candidates": list(candidates)}


class InvalidRequest(LlmrecError):
    """A request the service cannot score; ``field`` names the offending part of the body."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field


@dataclass
class BuiltRequest:
    """One request made ready for its model: ``units`` are what :meth:`ServedModel.score` takes, one score each,
    in candidate order; ``prompt_tokens`` is None for a model without prompts."""

    candidates: list[str]
    units: list[Any]
    history_shown: int
    prompt_tokens: int | None


class ServedModel(Protocol):
    """What the service scores with: sample rows in (:meth:`units`), one score per unit out (:meth:`score`, called on
    the units of concurrent requests together by the micro-batcher)."""

    kind: SampleKind
    name: str
    stop: threading.Event  # set on shutdown: a scoring call under way stops at its next batch (ShuttingDown)

    def units(self, rows: list[dict[str, Any]], history: int) -> tuple[list[Any], int, int | None]:
        """The units of a request's rows, the history items the model sees, and the longest prompt's tokens."""
        ...

    def score(self, units: list[Any]) -> np.ndarray:
        ...


def _stopper(stop: threading.Event) -> Callable[[int], None]:
    """A scorer's progress callback that ends the scoring call (ShuttingDown) once ``stop`` is set: the scorer hears
    it after each of its batches."""

    def check(_n: int) -> None:
        if stop.is_set():
            raise ShuttingDown("the service is shutting down; the request was not finished in time")

    return check


class LanguageModel:
    """A causal LM (+ adapter) behind the renderer of ``llmrec evaluate``: units are encoded prompts."""

    def __init__(self, renderer, scorer: Scorer, name: str):
        self.renderer, self.scorer, self.name = renderer, scorer, name
        self.kind = renderer.kind
        self.stop = threading.Event()

    def units(self, rows, history):
        rendered = [p for group in self.renderer.render(rows) for p in group]
        prompts = [EncodedPrompt(p.context_ids, p.candidate_ids) for p in rendered]
        return prompts, min(p.history_kept for p in rendered), max(len(p) for p in rendered)

    def score(self, units):
        return self.scorer.score(units, _stopper(self.stop))


class SampleModel:
    """Any :class:`~llmrec.results.SampleScorer` (a classic baseline run's model): units are sample rows, one per
    candidate (a ranking model scores a one-candidate list), so concurrent requests batch row by row.

    >>> from llmrec.data.kinds import KINDS
    >>> class Newest:
    ...     columns = ("sample_id", "item")
    ...     def score_rows(self, rows, kind, progress=None):
    ...         return [{"key": str(r["sample_id"]), "score": float(r["item"])} for r in rows]
    >>> model = SampleModel(Newest(), KINDS["ctr"], "newest")
    >>> model.score([{"sample_id": 0, "item": "3"}, {"sample_id": 1, "item": "5"}]).tolist()
    [3.0, 5.0]
    """

    def __init__(self, scorer: SampleScorer, kind: SampleKind, name: str):
        self.scorer, self.kind, self.name = scorer, kind, name
        self.stop = threading.Event()

    def units(self, rows, history):
        if self.kind.lists:  # one list of n candidates -> n lists of one
            row = rows[0]
            rows = [{**row, "candidates": [c], "labels": [0]} for c in row["candidates"]]
        shown = min(history, getattr(self.scorer, "history_len", history))
        return rows, shown, None

    def score(self, units):
        records = self.scorer.score_rows([{**row, "sample_id": i} for i, row in enumerate(units)], self.kind,
                                         _stopper(self.stop))
        return np.asarray([r["score"] for r in records], dtype=np.float64)


def _rating_range(prepared: PreparedData, split: str) -> tuple[float, float] | None:
    """The lowest and highest rating the split's histories hold (the data's scale, as prepared)."""
    ratings = pc.list_flatten(prepared.split(split, columns=["history_ratings"])["history_ratings"])
    bounds = pc.min_max(ratings.cast("float64"))
    low, high = bounds["min"].as_py(), bounds["max"].as_py()
    return None if low is None else (float(low), float(high))


class RecommenderService:
    """Checks requests, turns them into sample rows for its :class:`ServedModel` and its scores into responses.

    The HTTP app hands the units of concurrent requests to :meth:`ServedModel.score` together
    (:mod:`llmrec.serve.batcher`).
    """

    def __init__(self, model: ServedModel, items: set[str] | dict[str, Any], limits: ServerSettings, *,
                 ratings: bool, describe: dict[str, Any], rating_range: tuple[float, float] | None = None,
                 forward_batch: int | None = None):
        self.model = model
        self.forward_batch = forward_batch  # prompts of one forward pass (a language model's scoring.batch_size)
        self.items = items  # the catalogue requests may name
        self.limits = limits
        self.ratings = ratings  # the data's samples carry ratings: requests must too
        self.rating_range = rating_range  # the lowest and highest rating of the data: a request's lie within
        self.describe = describe

    @classmethod
    def load(cls, config: ServeConfig, *, loaded: LoadedModel | None = None, scorer: Scorer | None = None,
             sample_scorer: SampleScorer | None = None, log=print) -> RecommenderService:
        """Load data and the model: a language model (+ adapter) and its scorer, or, with ``sample_scorer``, that
        model over the folder's sample rows (``config.baseline`` names a classic run: build its scorer with
        ``llmrec.baselines.BaselineScorer.from_run``, as ``llmrec serve`` does). Every cheap check comes first."""
        prepared = PreparedData.load(config.data)
        columns = prepared.column_names(config.split)
        if prepared.num_rows(config.split) == 0:
            raise LlmrecError(f"{config.data}: split {config.split!r} is empty; the service takes its prompt "
                              "settings from a sample of it")
        sample = prepared.split(config.split).slice(0, 1).to_pylist()[0]
        ratings = "history_ratings" in columns and sample.get("history_ratings") is not None
        rating_range = _rating_range(prepared, config.split) if ratings else None
        describe = {"data": config.data, "dataset": prepared.dataset, "protocol": prepared.protocol,
                    "ratings_required": ratings, "rating_range": list(rating_range) if rating_range else None}
        if sample_scorer is not None or config.baseline is not None:
            if sample_scorer is None:
                raise ConfigError(f"baseline: {config.baseline} needs its scorer: pass "
                                  "sample_scorer=llmrec.baselines.BaselineScorer.from_run(...)")
            kind = detect(prepared.schema(config.split))
            name = getattr(sample_scorer, "name", type(sample_scorer).__name__)
            items = set(prepared.items["item"].astype(str))
            describe = {"model": name, "adapter": None, **describe, "kind": kind.name, "template": None,
                        "history_k": getattr(sample_scorer, "history_len", None), "max_prompt_tokens": None,
                        "items": len(items)}
            return cls(SampleModel(sample_scorer, kind, name), items, config.server, ratings=ratings,
                       describe=describe, rating_range=rating_range)

        config.check_template(prepared)
        if loaded is None:
            check_model(config.model, config.adapter)
            log(f"loading {config.model.name}" + (f" + adapter {config.adapter}" if config.adapter else ""))
            loaded = load_model(config.model, adapter=config.adapter, merge=config.merge_adapter)
        renderer = config.renderer(prepared, loaded.tokenizer, config.split, loaded.max_context, collab=loaded.collab)
        if not renderer.kind.names_items:
            raise LlmrecError(f"{config.data}: {renderer.kind.name} rows (a TALLRec release import) name no items; "
                              "serve a folder from llmrec data prepare")
        answer = AnswerTokens.for_renderer(renderer, sample)
        scorer = scorer or make_scorer(loaded, answer, config.scoring)
        if hasattr(scorer, "keep_prefixes"):  # a served model's weights stay as they are: prefixes can be kept
            scorer.keep_prefixes(config.server.prefix_cache_mib)
        describe = {"model": loaded.source, "adapter": config.adapter, **describe, "kind": renderer.kind.name,
                    "template": renderer.template.name, "history_k": renderer.history_k,
                    "max_prompt_tokens": renderer.max_tokens, "items": len(renderer.texts.items)}
        return cls(LanguageModel(renderer, scorer, loaded.source), renderer.texts.items, config.server,
                   ratings=ratings, describe=describe, rating_range=rating_range,
                   forward_batch=config.scoring.batch_size)

    def prompts_per_call(self) -> int:
        """The most prompts the batcher hands the model in one call: ``server.max_batch_prompts``, and with
        continuous admission ``server.step_prompts`` (default: one forward batch), so that a request that arrives
        while others are scored waits for at most one call."""
        cap = self.limits.max_batch_prompts
        if self.limits.admission == "continuous":
            cap = min(cap, self.limits.step_prompts or self.forward_batch or cap)
        return cap

    # ---------------------------------------------------------------- requests
    def check(self, req: ScoreRequest) -> None:
        """Raise :class:`InvalidRequest` naming the first problem of ``req``."""
        lim = self.limits
        if not req.history:
            raise InvalidRequest("is empty; give at least one past interaction", "history")
        if len(req.history) > lim.max_history:
            raise InvalidRequest(f"has {len(req.history)} items, more than the limit of {lim.max_history}", "history")
        if not req.candidates:
            raise InvalidRequest("is empty; give at least one item to score", "candidates")
        if len(req.candidates) > lim.max_candidates:
            raise InvalidRequest(f"has {len(req.candidates)} items, more than the limit of {lim.max_candidates}",
                                 "candidates")
        items = self.items
        for i, h in enumerate(req.history):
            if h.item not in items:
                raise InvalidRequest(f"unknown item {h.item!r} (not in {self.describe['data']}/items.parquet)",
                                     f"history[{i}].item")
            if self.ratings and h.rating is None:
                raise InvalidRequest("missing; this data set's prompts show ratings", f"history[{i}].rating")
            if h.rating is not None and not math.isfinite(h.rating):
                raise InvalidRequest(f"{h.rating} is not a finite number", f"history[{i}].rating")
            low, high = self.rating_range or (-math.inf, math.inf)
            if h.rating is not None and not low <= h.rating <= high:
                raise InvalidRequest(f"{h.rating:g} is outside this data's ratings ({low:g}-{high:g})",
                                     f"history[{i}].rating")
        for i, c in enumerate(req.candidates):
            if c not in items:
                raise InvalidRequest(f"unknown item {c!r} (not in {self.describe['data']}/items.parquet)",
                                     f"candidates[{i}]")

    def build(self, req: ScoreRequest) -> BuiltRequest:
        """Check ``req`` and turn it into its model's units (for a language model: the prompts of ``llmrec
        evaluate``'s renderer)."""
        self.check(req)
        hist = [h.item for h in req.history]
        ratings = [h.rating for h in req.history] if self.ratings else None
        user = req.user or ""
        if self.model.kind.lists:
            rows = [{"sample_id": "request", "user": user, "history_items": hist, "history_ratings": ratings,
                     "candidates": list(req.candidates), "labels": [0] * len(req.candidates), "summary": req.summary}]
        else:
            rows = [{"sample_id": f"candidates[{j}]", "user": user, "item": c, "label": 0, "history_items": hist,
                     "history_ratings": ratings, "summary": req.summary} for j, c in enumerate(req.candidates)]
        units, shown, tokens = self.model.units(rows, len(hist))
        return BuiltRequest(list(req.candidates), units, shown, tokens)

    @staticmethod
    def score_response(built: BuiltRequest, scores) -> ScoreResponse:
        return ScoreResponse(scores=[ScoredItem(item=c, score=float(s)) for c, s in zip(built.candidates, scores)],
                             history_shown=built.history_shown, prompt_tokens=built.prompt_tokens)

    @staticmethod
    def rank_response(built: BuiltRequest, scores, top_k: int | None = None) -> RankResponse:
        order = sorted(range(len(built.candidates)), key=lambda i: (-float(scores[i]), i))
        if top_k is not None:
            order = order[:top_k]
        ranking = [RankedItem(item=built.candidates[i], score=float(scores[i]), rank=r + 1) for r, i in enumerate(order)]
        return RankResponse(ranking=ranking, history_shown=built.history_shown, prompt_tokens=built.prompt_tokens)

    def score(self, req: ScoreRequest) -> ScoreResponse:
        """Score one request right away (no batching): the library call behind the HTTP API."""
        built = self.build(req)
        return self.score_response(built, self.model.score(built.units))
