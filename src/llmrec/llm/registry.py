"""The backend registry: one place where a way of running a model plugs in.

A backend says how to load a model (:class:`~llmrec.llm.types.LoadedModel`) and how to build
its :class:`~llmrec.llm.types.Scorer` (and, where it can, its text
:class:`~llmrec.llm.generation.Generator`), and what it can do (train, take a LoRA adapter,
int8). Everything else asks the registry instead of comparing backend names::

    register_backend(Backend("vllm", load=load_vllm, scorer=VllmScorer.for_loaded, ...))

>>> from llmrec.llm import BACKENDS
>>> sorted(BACKENDS)
['llama.cpp', 'transformers', 'vllm']
>>> get_backend("transformers").trainable
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmrec.errors import ConfigError
from llmrec.llm.types import LoadedModel, Scorer


@dataclass(frozen=True)
class Backend:
    """How to load and score with one kind of model runtime."""

    name: str
    load: Callable[[Any], LoadedModel]  # ModelConfig -> LoadedModel
    scorer: Callable[..., Scorer]  # (LoadedModel, AnswerTokens, ScoringConfig) -> Scorer
    description: str = ""
    trainable: bool = False  # LoRA training (llmrec train)
    adapters: bool = False  # a trained LoRA adapter can be applied at scoring time
    int8: bool = False  # model.quantize=int8
    check: Callable[[Any], None] | None = None  # ModelConfig -> raises: extra not installed, no device, no model file
    generator: Callable[..., Any] | None = None  # (LoadedModel, GenerationConfig) -> Generator (text generation)
    apply_adapter: Callable[..., Any] | None = None  # (LoadedModel, folder, merge) -> LoadedModel; None: peft's
    tokenizer: Callable[[Any], LoadedModel] | None = None  # ModelConfig -> tokenizer + context window, no weights


BACKENDS: dict[str, Backend] = {}


def register_backend(backend: Backend) -> Backend:
    """Add (or replace) a backend under its name."""
    BACKENDS[backend.name] = backend
    return backend


def get_backend(name: str) -> Backend:
    """The backend called ``name``, or a ConfigError listing the known ones."""
    try:
        return BACKENDS[name]
    except KeyError:
        raise ConfigError(f"model.backend: unknown backend {name!r} (known: {', '.join(sorted(BACKENDS))})") from None
