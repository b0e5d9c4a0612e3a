"""The JSON bodies of the HTTP API (the OpenAPI page at ``/docs`` is generated from them).

>>> req = ScoreRequest(history=[{"item": "1", "rating": 5}], candidates=["2", "3"])
>>> req.history[0].item, req.candidates
('1', ['2', '3'])
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["HistoryItem", "RankedItem", "RankResponse", "ScoreRequest", "ScoreResponse", "ScoredItem"]


class HistoryItem(BaseModel):
    """One past interaction: an item id of the catalogue and, where the data has them, its rating."""

    model_config = ConfigDict(extra="forbid")

    item: str = Field(description="item id as in the prepared folder's items.parquet")
    rating: float | None = Field(None, description="the user's rating (shown by rating-aware templates)")


class ScoreRequest(BaseModel):
    """A user history (oldest first) and the candidate items to score against it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"user": "196", "history": [{"item": "242", "rating": 3}, {"item": "302", "rating": 5}],
         "candidates": ["377", "51"]}]})

    user: str | None = Field(None, description="user id for templates that show a profile (unknown: no profile)")
    history: list[HistoryItem] = Field(description="past interactions, oldest first (at least one)")
    candidates: list[str] = Field(description="item ids to score (at least one)")
    summary: str | None = Field(None, description="preference summary, for data prepared with llmrec summarize")


class ScoredItem(BaseModel):
    item: str
    score: float = Field(description="a language model's P(yes) that the user likes the item (a classic model: its "
                         "own score, higher is better)")


class ScoreResponse(BaseModel):
    scores: list[ScoredItem] = Field(description="one per candidate, in request order")
    history_shown: int = Field(description="history items the prompts showed (after the template's k and budget), or "
                               "a classic model read")
    prompt_tokens: int | None = Field(description="tokens of the longest prompt (None: a classic model, no prompts)")


class RankedItem(ScoredItem):
    rank: int = Field(description="1 = best")


class RankResponse(BaseModel):
    ranking: list[RankedItem] = Field(description="candidates by descending score (ties: request order)")
    history_shown: int
    prompt_tokens: int | None
