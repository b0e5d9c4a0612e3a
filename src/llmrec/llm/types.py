"""The types every backend shares: encoded prompts, a loaded model, the Scorer interface.

A :class:`Scorer` turns prompts into P(yes) scores. Every backend (transformers, llama.cpp,
and the ones to come: vLLM, a classic model behind the same interface) implements it, and
``llmrec evaluate`` takes any of them::

    scores = scorer.score([EncodedPrompt(context_ids, candidate_ids), ...])

>>> EncodedPrompt((1, 2), (3,)).ids
(1, 2, 3)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class EncodedPrompt:
    """Token ids of one prompt: a shareable ``context`` and its ``candidate`` continuation."""

    context: tuple[int, ...]
    candidate: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.context) + len(self.candidate)

    @property
    def ids(self) -> tuple[int, ...]:
        return self.context + self.candidate


@runtime_checkable
class Scorer(Protocol):
    """Prompts in, P(yes) out (float64, one per prompt, in input order)."""

    def score(self, prompts: Sequence[EncodedPrompt], progress: Callable[[int], None] | None = None) -> np.ndarray:
        ...


@dataclass
class LoadedModel:
    """A model with its tokenizer, where it came from, and the backend that runs it."""

    model: Any
    tokenizer: Any
    device: Any
    dtype: Any
    source: str
    backend: str = "transformers"
    context_window: int | None = None  # set where only the tokenizer was loaded (model None)
    collab: Any = None  # the virtual token ids of collaborative tokens (llm.collab.CollabIds), when the adapter has them

    @property
    def max_context(self) -> int | None:
        """The longest prompt the model takes (tokens), when it says."""
        if self.context_window:
            return self.context_window
        n_ctx = getattr(self.model, "n_ctx", None)
        if callable(n_ctx):
            return int(n_ctx())
        return config_window(getattr(self.model, "config", None))


def config_window(cfg: Any) -> int | None:
    """The context window a transformers model config states (None when it states none).

    >>> from types import SimpleNamespace
    >>> config_window(SimpleNamespace(max_position_embeddings=32768)), config_window(None)
    (32768, None)
    """
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length"):
        value = getattr(cfg, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return None
