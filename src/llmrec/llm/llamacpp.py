"""A llama.cpp backend for GGUF models: the faster CPU path.

llama.cpp runs the GGUF file's quantized weights directly (Q4_K_M for the default model)
with block-wise int8 activations, several times faster than float32 on a CPU, while the
transformers path runs the de-quantized float32 weights of the very same file, so both
paths compute nearly the same function (measured side by side in ``llmrec bench scoring
--llamacpp``). Needs ``pip install "llmrec[llamacpp]"`` (llama-cpp-python, built from
source by pip).

Prefix reuse is automatic: prompts are scored in an order that keeps shared contexts
adjacent, and each prompt only evaluates the tokens after its longest common prefix with
the previous one (llama.cpp keeps the KV cache of the evaluated tokens).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Sequence

import numpy as np

from llmrec.errors import ModelError
from llmrec.llm.answers import AnswerTokens
from llmrec.llm.batching import common_prefix
from llmrec.llm.gguf import locate_gguf
from llmrec.llm.hf import load_transformers_tokenizer
from llmrec.llm.settings import ModelConfig
from llmrec.llm.types import EncodedPrompt, LoadedModel


def open_gguf(path: str, n_ctx: int = 2048, n_threads: int | None = None):
    """A ``llama_cpp.Llama`` for scoring (no sampling state, last-token logits only)."""
    try:
        from llama_cpp import Llama
    except ImportError as exc:
        raise ModelError('the llama.cpp backend needs llama-cpp-python: pip install "llmrec[llamacpp]"') from exc
    if n_threads is None:
        n_threads = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = n_threads
    return Llama(model_path=str(path), n_ctx=n_ctx, n_batch=512, n_threads=threads, n_threads_batch=threads,
                 logits_all=False, verbose=False)


def load_llamacpp(config: ModelConfig) -> LoadedModel:
    """llama.cpp model for the GGUF file; the tokenizer comes from transformers (same vocabulary)."""
    gguf = _gguf(config)
    check_installed()
    import torch

    tok = load_llamacpp_tokenizer(config).tokenizer
    llm = open_gguf(str(gguf), n_ctx=config.n_ctx)
    return LoadedModel(model=llm, tokenizer=tok, device=torch.device("cpu"), dtype="gguf", source=f"{gguf} (llama.cpp)",
                       backend="llama.cpp")


def load_llamacpp_tokenizer(config: ModelConfig) -> LoadedModel:
    """The GGUF model's tokenizer (transformers': the same vocabulary) and the llama.cpp context
    (``model.n_ctx``), without loading the weights."""
    gguf = _gguf(config)
    light = load_transformers_tokenizer(config)
    return dataclasses.replace(light, source=f"{gguf} (llama.cpp, tokenizer only)", backend="llama.cpp",
                               context_window=config.n_ctx)


def check_llamacpp(config: ModelConfig | None = None) -> None:
    """The llama.cpp backend's cheap checks: llama-cpp-python is installed, the model is a GGUF file."""
    check_installed()
    if config is not None:
        _gguf(config)


def _gguf(config: ModelConfig):
    """The GGUF file of ``config``, or the ModelError that the backend needs one."""
    gguf = locate_gguf(config.name, config.gguf_file)
    if gguf is None:
        raise ModelError(f"the llama.cpp backend needs a GGUF model; {config.name!r} is not one")
    return gguf


def check_installed() -> None:
    """ModelError when llama-cpp-python is missing."""
    import importlib.util

    if importlib.util.find_spec("llama_cpp") is None:
        raise ModelError('the llama.cpp backend needs llama-cpp-python: pip install "llmrec[llamacpp]"')


class LlamaCppScorer:
    """P(yes) with llama.cpp; same interface as :class:`~llmrec.llm.scoring.YesNoScorer`."""

    def __init__(self, llm, answer: AnswerTokens) -> None:
        self.llm = llm
        self.answer = answer
        self.max_context = llm.n_ctx()
        self._evaluated: list[int] = []  # tokens whose KV entries are in the cache

    @classmethod
    def for_loaded(cls, loaded: LoadedModel, answer: AnswerTokens, config=None) -> LlamaCppScorer:
        """The scorer of a model loaded by :func:`load_llamacpp` (scoring settings do not apply)."""
        return cls(loaded.model, answer)

    def score(self, prompts: Sequence[EncodedPrompt], progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.empty(len(prompts), dtype=np.float64)
        order = sorted(range(len(prompts)), key=lambda i: prompts[i].ids)  # shared prefixes side by side
        for i in order:
            ids = list(prompts[i].ids)
            if not ids:
                raise ModelError(f"prompt {i} is empty")
            if len(ids) > self.max_context:
                raise ModelError(f"prompt {i} has {len(ids)} tokens, more than the llama.cpp context ({self.max_context})")
            keep = min(common_prefix(self._evaluated, ids), len(ids) - 1)  # always evaluate the last token
            self.llm.n_tokens = keep  # eval() drops cached entries from here on
            self.llm.eval(ids[keep:])
            self._evaluated = ids
            logits = self.llm._ctx.get_logits()  # C float* to the last token's logits (logits_all=False)
            diff = float(logits[self.answer.yes_id]) - float(logits[self.answer.no_id])
            out[i] = 1.0 / (1.0 + np.exp(-diff))
            if progress:
                progress(1)
        return out
