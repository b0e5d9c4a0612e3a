"""Load a model through its backend (with an optional LoRA adapter and int8), build its scorer.

>>> from llmrec.llm import ModelConfig
>>> check_model(ModelConfig(name="no/such/model.gguf"))
Traceback (most recent call last):
    ...
llmrec.errors.ModelError: no/such/model.gguf: GGUF file not found
"""

from __future__ import annotations

from pathlib import Path

import llmrec.llm.backends  # noqa: F401  (registers the built-in backends)
from llmrec.errors import ConfigError
from llmrec.llm.adapters import apply_adapter, check_adapter
from llmrec.llm.answers import AnswerTokens
from llmrec.llm.collab import check_collab_backend, ids_from_meta, read_collab
from llmrec.llm.registry import Backend, get_backend
from llmrec.llm.settings import ModelConfig, ScoringConfig
from llmrec.llm.types import LoadedModel, Scorer


def check_model(config: ModelConfig, adapter: str | Path | None = None, *, train: bool = False) -> Backend:
    """Everything cheap about a model choice, before anything is loaded or written.

    The backend exists and is installed, it can do what is asked (train, adapter, int8), the
    device is on this machine, and a local model file/folder and the adapter exist.
    """
    backend = get_backend(config.backend)
    if train and not backend.trainable:
        raise ConfigError(f"model.backend: training needs a trainable backend ({_able('trainable')}), "
                          f"not {backend.name!r}")
    if train and config.quantize != "none":
        raise ConfigError("model.quantize: training needs the unquantized model; set model.quantize=none")
    if config.quantize != "none" and not backend.int8:
        raise ConfigError(f"model.quantize={config.quantize} needs a backend with int8 ({_able('int8')}), "
                          f"not {backend.name!r}")
    if adapter is not None:
        if not backend.adapters:
            raise ConfigError(f"adapters need a backend that takes them ({_able('adapters')}), not {backend.name!r}")
        check_collab_backend(check_adapter(adapter), backend.name)
        if config.quantize != "none" and read_collab(check_adapter(adapter)) is not None:
            raise ConfigError("model.quantize: an adapter with collaborative tokens is scored unquantized; set "
                              "model.quantize=none")
    if backend.check:
        backend.check(config)  # the backend's own cheap checks: installed, device, model file
    return backend


def _able(what: str) -> str:
    from llmrec.llm.registry import BACKENDS

    return ", ".join(n for n, b in BACKENDS.items() if getattr(b, what)) or "none"


def load_model(config: ModelConfig | None = None, *, adapter: str | Path | None = None, merge: bool = False) -> LoadedModel:
    """Load model and tokenizer with the configured backend; apply ``adapter``; quantize last.

    int8 quantization comes after merging the adapter (the adapter is merged when int8 is on).
    """
    config = config or ModelConfig()
    backend = check_model(config, adapter)
    loaded = backend.load(config)
    if adapter is not None:
        apply = backend.apply_adapter or apply_adapter
        loaded = apply(loaded, adapter, merge=merge or config.quantize != "none")
    if config.quantize == "int8":
        from llmrec.llm.quantize import quantize_int8

        loaded.model = quantize_int8(loaded.model, loaded.tokenizer)
        loaded.source += " (SmoothQuant + int8 W8A8)"
    return loaded


def load_tokenizer(config: ModelConfig | None = None, *, adapter: str | Path | None = None) -> LoadedModel:
    """The tokenizer and context window of a model choice without its weights (``model`` is None), for a
    process that only renders prompts while workers load the model; a backend that cannot (vLLM) loads it all.

    The same checks as :func:`load_model` run first (backend, device, model file, adapter).
    """
    config = config or ModelConfig()
    backend = check_model(config, adapter)
    if not backend.tokenizer:
        return load_model(config, adapter=adapter)
    loaded = backend.tokenizer(config)
    meta = read_collab(check_adapter(adapter)) if adapter is not None else None
    if meta is not None:  # the virtual ids of collaborative tokens, for rendering
        loaded.collab = ids_from_meta(meta)
    return loaded


def make_scorer(loaded: LoadedModel, answer: AnswerTokens, config: ScoringConfig | None = None) -> Scorer:
    """The scorer of the loaded model's backend."""
    return get_backend(loaded.backend).scorer(loaded, answer, config or ScoringConfig())
