"""A loaded recommender: requests in, the same prompts as ``llmrec evaluate``, P(yes) scores out.

The service renders a request with the prepared folder's template and item texts (the
renderer ``llmrec evaluate`` uses), so a served score equals the offline score of the same
history and candidate. CTR data (TALLRec, ReLLa) gives one prompt per candidate, sharing the
history as context; ranking data (LLM-TRSR) gives the candidates of one list. Either way the
candidates of a request share one context, which the scorer encodes once (prefix reuse).

>>> from llmrec.serve.schemas import ScoreRequest
>>> ScoreRequest(history=[], candidates=["1"]).history
[]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmrec.data.prepared import PreparedData
from llmrec.errors import LlmrecError
from llmrec.llm import AnswerTokens, EncodedPrompt, LoadedModel, Scorer, load_model, make_scorer
from llmrec.llm.loading import check_model
from llmrec.serve.config import ServeConfig, ServerSettings
from llmrec.serve.schemas import RankedItem, RankResponse, ScoredItem, ScoreRequest, ScoreResponse

__all__ = ["BuiltRequest", "InvalidRequest", "RecommenderService", "request_body"]


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
    """The prompts of one request, ready for the scorer."""

    candidates: list[str]
    prompts: list[EncodedPrompt]
    history_shown: int
    prompt_tokens: int


class RecommenderService:
    """Renders requests into prompts and turns scores into responses.

    Scoring itself goes through :attr:`scorer` (any :class:`~llmrec.llm.Scorer`); the HTTP app
    hands the prompts of concurrent requests to it together (:mod:`llmrec.serve.batcher`).
    """

    def __init__(self, renderer, scorer: Scorer, limits: ServerSettings, *, ratings: bool,
                 describe: dict[str, Any]):
        self.renderer = renderer
        self.scorer = scorer
        self.limits = limits
        self.ratings = ratings  # the data's samples carry ratings: requests must too
        self.describe = describe

    @classmethod
    def load(cls, config: ServeConfig, *, loaded: LoadedModel | None = None, scorer: Scorer | None = None,
             log=print) -> RecommenderService:
        """Load data, model (+ adapter) and build the scorer; every cheap check comes first."""
        prepared = PreparedData.load(config.data)
        table = prepared.split(config.split)
        config.check_template(prepared)
        if table.num_rows == 0:
            raise LlmrecError(f"{config.data}: split {config.split!r} is empty; the service takes its prompt "
                              "settings from a sample of it")
        if loaded is None:
            check_model(config.model, config.adapter)
            log(f"loading {config.model.name}" + (f" + adapter {config.adapter}" if config.adapter else ""))
            loaded = load_model(config.model, adapter=config.adapter, merge=config.merge_adapter)
        renderer = config.renderer(prepared, loaded.tokenizer, config.split, loaded.max_context)
        if not renderer.kind.names_items:
            raise LlmrecError(f"{config.data}: {renderer.kind.name} rows (a TALLRec release import) name no items; "
                              "serve a folder from llmrec data prepare")
        sample = table.slice(0, 1).to_pylist()[0]
        answer = AnswerTokens.for_renderer(renderer, sample)
        scorer = scorer or make_scorer(loaded, answer, config.scoring)
        ratings = "history_ratings" in table.column_names and sample.get("history_ratings") is not None
        describe = {"model": loaded.source, "adapter": config.adapter, "data": config.data,
                    "dataset": prepared.dataset, "protocol": prepared.protocol, "kind": renderer.kind.name,
                    "template": renderer.template.name, "history_k": renderer.history_k,
                    "max_prompt_tokens": renderer.max_tokens, "items": len(renderer.texts.items),
                    "ratings_required": ratings}
        return cls(renderer, scorer, config.server, ratings=ratings, describe=describe)

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
        items = self.renderer.texts.items
        for i, h in enumerate(req.history):
            if h.item not in items:
                raise InvalidRequest(f"unknown item {h.item!r} (not in {self.describe['data']}/items.parquet)",
                                     f"history[{i}].item")
            if self.ratings and h.rating is None:
                raise InvalidRequest("missing; this data set's prompts show ratings", f"history[{i}].rating")
        for i, c in enumerate(req.candidates):
            if c not in items:
                raise InvalidRequest(f"unknown item {c!r} (not in {self.describe['data']}/items.parquet)",
                                     f"candidates[{i}]")

    def build(self, req: ScoreRequest) -> BuiltRequest:
        """Check ``req`` and render its prompts (the renderer of ``llmrec evaluate``)."""
        self.check(req)
        hist = [h.item for h in req.history]
        ratings = [h.rating for h in req.history] if self.ratings else None
        user = req.user or ""
        if self.renderer.kind.lists:
            rows = [{"sample_id": "request", "user": user, "history_items": hist, "history_ratings": ratings,
                     "candidates": list(req.candidates), "labels": [0] * len(req.candidates), "summary": req.summary}]
            rendered = self.renderer.render(rows)[0]
        else:
            rows = [{"sample_id": f"candidates[{j}]", "user": user, "item": c, "history_items": hist,
                     "history_ratings": ratings, "summary": req.summary} for j, c in enumerate(req.candidates)]
            rendered = [group[0] for group in self.renderer.render(rows)]
        prompts = [EncodedPrompt(p.context_ids, p.candidate_ids) for p in rendered]
        return BuiltRequest(list(req.candidates), prompts, min(p.history_kept for p in rendered),
                            max(len(p) for p in rendered))

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
        return self.score_response(built, self.scorer.score(built.prompts))
