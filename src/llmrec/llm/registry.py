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

from llmrec.llm.types import LoadedModel, Scorer
from llmrec.registry import Registry


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
    embedder: Callable[..., Any] | None = None  # (LoadedModel, token ids, batch_size) -> mean-pooled item vectors

    @property
    def embeds(self) -> bool:
        """Whether the backend can encode texts into vectors (``llmrec retrieve``'s LLM item encoder)."""
        return self.embedder is not None


BACKENDS: Registry[Backend] = Registry("backend", key="model.backend", describe=lambda b: b.description)


def register_backend(backend: Backend) -> Backend:
    """Add (or replace) a backend under its name."""
    return BACKENDS.register(backend)


def get_backend(name: str) -> Backend:
    """The backend called ``name``, or a ConfigError listing the known ones."""
    return BACKENDS[name]
