"""Causal language models as Yes/No scorers: loading, answer tokens, batched scoring.

>>> from llmrec.llm import ModelConfig
>>> ModelConfig().name
'default'
"""

from llmrec.llm.answers import AnswerTokens
from llmrec.llm.loading import LoadedModel, ModelConfig, load_model
from llmrec.llm.scoring import EncodedPrompt, ScoringConfig, YesNoScorer

__all__ = [
    "AnswerTokens",
    "EncodedPrompt",
    "LoadedModel",
    "ModelConfig",
    "ScoringConfig",
    "YesNoScorer",
    "load_model",
]
