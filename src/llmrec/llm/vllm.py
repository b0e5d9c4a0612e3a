"""A vLLM backend (``model.backend: vllm``): Yes/No scoring and text generation on GPUs.

vLLM pins its own torch and transformers (0.33: torch 2.14, transformers < 5.21), so it lives in
its own environment (``pip install -e ".[vllm]"`` in a fresh venv) and is imported only when this
backend is used: the default install never needs it.

**Scoring.** The score is the two-way softmax of the Yes/No logits at the answer position, as in
:class:`~llmrec.llm.scoring.YesNoScorer`. vLLM gives log-probs, not logits, and two caveats apply:

* by default it returns *raw* log-probs of the top-k tokens of the whole vocabulary, where "No"
  may be missing when both answers are unlikely next to other tokens;
* ``allowed_token_ids`` restricts the *sampled* token, not the raw log-probs.

So the engine is created with ``logprobs_mode="processed_logprobs"`` (log-probs after the
logits processors, vLLM >= 0.10.2) and each prompt asks for one token with
``allowed_token_ids=[yes, no]`` and ``logprobs=2``: the allowed-token mask sets every other logit
to -inf, the returned log-probs are then normalised over the two answers, and
``P(yes) = exp(lp_yes) / (exp(lp_yes) + exp(lp_no))`` is exactly the two-way softmax (Gemma's
soft-capping is applied inside vLLM's logits processor). Temperature 1 keeps the processed
log-probs unscaled (the sampled token itself is not used), and top-k / top-p / min-p are switched
off explicitly while the engine ignores the model's ``generation_config.json``
(``generation_config="vllm"``): Gemma 3's own ``top_p: 0.95`` would otherwise mask the less likely
answer out whenever the other one has more than 95% of the mass. Prompts go in as token ids
(``TokensPrompt``), so vLLM sees the very tokens the renderer made, and vLLM's automatic prefix
caching reuses a shared context across candidates. A missing answer log-prob is an error, never
a silent 0.5.

**Generation.** ``SamplingParams`` with the generation settings (greedy at temperature 0, or
seeded sampling), vLLM's own stop strings, then the same cut and strip as the transformers
generator.

**Adapters.** A LoRA adapter folder (``llmrec train``) is applied per request
(``LoRARequest``); the engine is created with LoRA enabled (ranks up to ``max_lora_rank``).

Tested against the transformers backend on a GPU (tests/test_vllm_backend.py, skipped where vLLM or
CUDA is missing) and, everywhere, through a stand-in engine that follows vLLM's documented
semantics (the conformance suite).
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from llmrec.errors import ModelError
from llmrec.llm.answers import AnswerTokens
from llmrec.llm.generation import GenerationConfig, cut_at_stop
from llmrec.llm.gguf import converted_dir, locate_gguf
from llmrec.llm.settings import ModelConfig
from llmrec.llm.types import EncodedPrompt, LoadedModel

INSTALL = 'the vllm backend needs vLLM in its own environment: pip install -e ".[vllm]" (docs/distributed.md)'
MAX_LORA_RANK = 64


@dataclass
class VllmModel:
    """A vLLM engine and the LoRA request applied to every call (None: the base model)."""

    llm: Any
    lora: Any = None

    def generate(self, prompts: list[Any], params: Any) -> list[Any]:
        return self.llm.generate(prompts, params, lora_request=self.lora, use_tqdm=False)


def check_vllm(config: ModelConfig | None = None) -> None:
    """The backend's cheap checks: vLLM is installed (and the model is there, for local paths)."""
    if importlib.util.find_spec("vllm") is None:
        raise ModelError(INSTALL)
    if config is not None and config.name.startswith((".", "/", "~")) and not Path(config.name).expanduser().exists():
        raise ModelError(f"{config.name}: model not found (no such file or folder)")


def model_path(config: ModelConfig) -> str:
    """What vLLM loads: a HF folder or hub id; a GGUF model (the default) through its de-quantized copy."""
    gguf = locate_gguf(config.name, config.gguf_file)
    if gguf is None:
        return config.name
    import torch

    folder = converted_dir(gguf, torch.float32)
    if not (folder / "config.json").exists():  # convert once with transformers (cached for every later run)
        from llmrec.llm.hf import load_transformers

        load_transformers(config.model_copy(update={"device": "cpu", "dtype": "float32", "backend": "transformers"}))
    return str(folder)


def load_vllm(config: ModelConfig) -> LoadedModel:
    """A vLLM engine for ``config`` (processed log-probs, prefix caching, LoRA enabled) and its HF tokenizer."""
    check_vllm(config)
    from transformers import AutoTokenizer
    from vllm import LLM

    path = model_path(config)
    dtype = "auto" if config.dtype == "auto" else config.dtype
    try:
        llm = LLM(model=path, tokenizer=path, dtype=dtype, revision=config.revision, seed=0,
                  trust_remote_code=config.trust_remote_code, enable_prefix_caching=True,
                  logprobs_mode="processed_logprobs", max_logprobs=2, enable_lora=True, max_lora_rank=MAX_LORA_RANK,
                  max_model_len=config.n_ctx, generation_config="vllm")
    except (OSError, ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"vLLM cannot load {config.name!r}: {first}") from None
    tok = AutoTokenizer.from_pretrained(path, revision=config.revision, trust_remote_code=config.trust_remote_code)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return LoadedModel(model=VllmModel(llm), tokenizer=tok, device="cuda", dtype=dtype, source=f"{path} (vLLM)",
                       backend="vllm")


def apply_vllm_adapter(loaded: LoadedModel, path: str | Path, merge: bool = False) -> LoadedModel:
    """``loaded`` with a LoRA adapter applied to every request (vLLM keeps adapters separate: no merging)."""
    from llmrec.llm.adapters import check_adapter

    folder = check_adapter(path)
    from vllm.lora.request import LoRARequest

    model = VllmModel(loaded.model.llm, LoRARequest(folder.name or "adapter", 1, str(folder)))
    return LoadedModel(model=model, tokenizer=loaded.tokenizer, device=loaded.device, dtype=loaded.dtype,
                       source=f"{loaded.source} + adapter {folder}", backend=loaded.backend)


def _tokens_prompt(ids: Sequence[int]) -> Any:
    try:
        from vllm.inputs import TokensPrompt
    except ImportError:  # the stand-in engine of the tests takes plain dicts
        return {"prompt_token_ids": list(ids)}
    return TokensPrompt(prompt_token_ids=list(ids))


def _sampling_params(**kwargs) -> Any:
    try:
        from vllm import SamplingParams
    except ImportError:
        return dict(kwargs)
    return SamplingParams(**kwargs)


def _logprob(value: Any) -> float:
    return float(getattr(value, "logprob", value))


class VllmScorer:
    """P(yes) with vLLM (see the module docstring); same interface as the other scorers."""

    def __init__(self, model: VllmModel, answer: AnswerTokens, batch_size: int = 256) -> None:
        self.model = model
        self.answer = answer
        self.batch_size = batch_size
        # top-k / top-p off: a model's own defaults (Gemma 3: top_p 0.95) would mask an unlikely answer out
        self.params = _sampling_params(max_tokens=1, temperature=1.0, top_p=1.0, top_k=-1, min_p=0.0, logprobs=2,
                                       seed=0, allowed_token_ids=[answer.yes_id, answer.no_id])

    @classmethod
    def for_loaded(cls, loaded: LoadedModel, answer: AnswerTokens, config=None) -> VllmScorer:
        """The scorer of a model loaded by :func:`load_vllm` (vLLM batches by itself: large request batches)."""
        return cls(loaded.model, answer, batch_size=max(256, getattr(config, "batch_size", 0) or 0))

    def score(self, prompts: Sequence[EncodedPrompt], progress: Callable[[int], None] | None = None) -> np.ndarray:
        out = np.empty(len(prompts), dtype=np.float64)
        for i, p in enumerate(prompts):
            if len(p) == 0:
                raise ModelError(f"prompt {i} is empty")
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            results = self.model.generate([_tokens_prompt(p.ids) for p in chunk], self.params)
            for j, result in enumerate(results):
                out[start + j] = self._p_yes(result, start + j)
            if progress:
                progress(len(chunk))
        return out

    def _p_yes(self, result: Any, index: int) -> float:
        steps = result.outputs[0].logprobs
        found = steps[0] if steps else {}
        missing = [t for t in (self.answer.yes_id, self.answer.no_id) if t not in found]
        if missing:
            raise ModelError(f"prompt {index}: vLLM returned no log-prob for answer token(s) {missing}; the engine "
                             "must run with logprobs_mode='processed_logprobs' (vLLM >= 0.10.2)")
        yes, no = _logprob(found[self.answer.yes_id]), _logprob(found[self.answer.no_id])
        return 1.0 / (1.0 + math.exp(no - yes))


class VllmGenerator:
    """Text generation with vLLM; same interface as :class:`~llmrec.llm.generation.TextGenerator`."""

    def __init__(self, model: VllmModel, config: GenerationConfig | None = None) -> None:
        self.model = model
        self.config = config or GenerationConfig()
        self.generated_tokens = 0

    @classmethod
    def for_loaded(cls, loaded: LoadedModel, config: GenerationConfig | None = None) -> VllmGenerator:
        return cls(loaded.model, config)

    def generate(self, prompts: Sequence[Sequence[int]], progress: Callable[[int], None] | None = None) -> list[str]:
        cfg = self.config
        for i, p in enumerate(prompts):
            if len(p) == 0:
                raise ModelError(f"generation prompt {i} is empty")
        if cfg.no_repeat_ngram_size:
            raise ModelError("model.backend=vllm has no no_repeat_ngram_size; use generation.repetition_penalty "
                             "or the transformers backend")
        sampling = dict(temperature=cfg.temperature, top_p=cfg.top_p, seed=cfg.seed) if cfg.do_sample else \
            dict(temperature=0.0)
        if cfg.repetition_penalty != 1.0:
            sampling["repetition_penalty"] = cfg.repetition_penalty  # the same CTRL-style penalty as transformers
        params = _sampling_params(max_tokens=cfg.max_new_tokens, stop=list(cfg.stop), **sampling)
        results = self.model.generate([_tokens_prompt(p) for p in prompts], params)
        self.generated_tokens += sum(len(r.outputs[0].token_ids) for r in results)
        if progress:
            progress(len(prompts))
        return [cut_at_stop(r.outputs[0].text, cfg.stop) for r in results]
