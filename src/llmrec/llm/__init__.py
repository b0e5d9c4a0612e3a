"""Causal language models as Yes/No scorers and text generators: backends, loading, answer tokens,
batched scoring, batched generation.

>>> from llmrec.llm import ModelConfig
>>> ModelConfig().name
'default'
"""

from llmrec.errors import ModelError
from llmrec.llm.adapters import adapter_dir, apply_adapter, check_adapter
from llmrec.llm.answers import AnswerTokens
from llmrec.llm.generation import GenerationConfig, Generator, TextGenerator, make_generator
from llmrec.llm.loading import check_model, load_model, load_tokenizer, make_scorer
from llmrec.llm.registry import BACKENDS, Backend, get_backend, register_backend
from llmrec.llm.scoring import YesNoScorer
from llmrec.llm.settings import ModelConfig, ScoringConfig
from llmrec.llm.sharding import sharding
from llmrec.llm.types import EncodedPrompt, LoadedModel, Scorer

__all__ = [
    "BACKENDS",
    "AnswerTokens",
    "Backend",
    "EncodedPrompt",
    "GenerationConfig",
    "Generator",
    "LoadedModel",
    "ModelConfig",
    "ModelError",
    "Scorer",
    "TextGenerator",
    "ScoringConfig",
    "YesNoScorer",
    "adapter_dir",
    "apply_adapter",
    "check_adapter",
    "check_model",
    "get_backend",
    "load_model",
    "load_tokenizer",
    "make_generator",
    "make_scorer",
    "register_backend",
    "sharding",
]
