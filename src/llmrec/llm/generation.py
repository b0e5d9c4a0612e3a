"""Batched text generation beside the scorer: many prompts at once, left-padded, with stop strings.

The summarizers of LLM-TRSR need free text from a frozen model. :class:`TextGenerator` runs
``transformers``' own ``generate`` on length-sorted, left-padded batches of token-id prompts:

* greedy by default (the same text for a prompt whatever batch it is in: tested against
  batch-1), or sampled with a seed (``do_sample``, ``temperature``, ``top_p``);
* stops a row at its end-of-sequence token or when its text reaches a stop string, and cuts
  the text before the first stop string; at most ``max_new_tokens`` new tokens per prompt;
* ``use_cache=False`` recomputes the whole sequence at every step (for ``llmrec bench
  summarize``: what the KV cache buys);
* ``no_repeat_ngram_size`` / ``repetition_penalty`` (off by default) keep greedy decoding out of
  loops ("Super Mario 64 Deluxe, Super Mario 64 Deluxe, ...").

The model's own generation defaults (Gemma 3 ships sampling with top-k 64) never leak in: every
setting comes from :class:`GenerationConfig`.

>>> import torch
>>> from types import SimpleNamespace
>>> from transformers import LlamaConfig, LlamaForCausalLM
>>> _ = torch.manual_seed(0)
>>> cfg = LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
...                   num_attention_heads=2, num_key_value_heads=2, pad_token_id=0, eos_token_id=49)
>>> tok = SimpleNamespace(pad_token_id=0, eos_token_id=49)
>>> gen = TextGenerator(LlamaForCausalLM(cfg).eval(), tok, GenerationConfig(max_new_tokens=3, stop=[]))
>>> together = gen.generate_tokens([(1, 5, 6), (1, 7, 8, 9, 10)])
>>> together == [gen.generate_tokens([p])[0] for p in [(1, 5, 6), (1, 7, 8, 9, 10)]]
True
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field, model_serializer

from llmrec.errors import ModelError
from llmrec.llm.batching import length_batches
from llmrec.llm.types import LoadedModel

SETTINGS_OFF = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0}


class GenerationConfig(BaseModel):
    """How text is generated (part of the identity of anything generated with it)."""

    model_config = ConfigDict(extra="forbid")

    max_new_tokens: int = Field(96, ge=1, description="new tokens per prompt at most")
    batch_size: int = Field(16, ge=1, description="prompts per generate call (length-sorted, left-padded)")
    max_batch_tokens: int | None = Field(None, ge=1, description="cap on padded prompt tokens per batch")
    stop: list[str] = Field(default_factory=lambda: ["\n\n"], description="stop strings: text is cut before the first")
    do_sample: bool = Field(False, description="sample instead of greedy decoding")
    temperature: float = Field(0.7, gt=0)
    top_p: float = Field(0.9, gt=0, le=1)
    seed: int = Field(0, description="seed of the sampler (do_sample only)")
    use_cache: bool = Field(True, description="KV cache during decoding (off only for benchmarks)")
    repetition_penalty: float = Field(1.0, gt=0, description="> 1 lowers the logits of tokens already in the "
                                      "sequence (CTRL's penalty); 1: off")
    no_repeat_ngram_size: int = Field(0, ge=0, description="n > 0: never repeat an n-gram of the sequence "
                                      "(stops greedy loops); 0: off")

    @model_serializer(mode="wrap")
    def _omit_settings_that_are_off(self, handler):
        """Settings added after summaries were cached are left out while off, so the identity
        (and every cache key) of a config that does not use them stays what it was."""
        data = handler(self)
        for name, off in SETTINGS_OFF.items():
            if name in data and data[name] == off:
                del data[name]
        return data


@runtime_checkable
class Generator(Protocol):
    """Token-id prompts in, generated texts out (one per prompt, in input order)."""

    config: GenerationConfig

    def generate(self, prompts: Sequence[Sequence[int]], progress: Callable[[int], None] | None = None) -> list[str]:
        ...


def cut_at_stop(text: str, stops: Sequence[str]) -> str:
    """``text`` before the first occurrence of any stop string, without surrounding blanks.

    >>> cut_at_stop("A fan of racing games.\\n\\n### Items", ["\\n\\n", "###"])
    'A fan of racing games.'
    """
    end = len(text)
    for stop in stops:
        at = text.find(stop) if stop else -1
        if at >= 0:
            end = min(end, at)
    return text[:end].strip()


class TextGenerator:
    """Batched generation with a transformers causal LM (see the module docstring)."""

    def __init__(self, model, tokenizer, config: GenerationConfig | None = None) -> None:
        import torch

        self.torch = torch
        self.model = model
        self.tokenizer = tokenizer
        self.config = config or GenerationConfig()
        self.device = next(model.parameters()).device
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        self.max_context = getattr(model.config, "max_position_embeddings", None)
        eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        if eos is None:
            eos = tokenizer.eos_token_id
        self.eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        self.generated_tokens = 0  # new tokens generated so far (up to each row's end), for throughput figures

    @classmethod
    def for_loaded(cls, loaded: LoadedModel, config: GenerationConfig | None = None) -> TextGenerator:
        """The generator of a model loaded by the transformers backend."""
        return cls(loaded.model, loaded.tokenizer, config)

    def generate(self, prompts: Sequence[Sequence[int]], progress: Callable[[int], None] | None = None) -> list[str]:
        """Generated text for every prompt, in input order (stop strings cut, blanks stripped)."""
        cfg = self.config
        for i, p in enumerate(prompts):
            if len(p) == 0:
                raise ModelError(f"generation prompt {i} is empty")
            if self.max_context and len(p) + cfg.max_new_tokens > self.max_context:
                raise ModelError(f"generation prompt {i} has {len(p)} tokens; with max_new_tokens={cfg.max_new_tokens} "
                                 f"that is over the model's context window ({self.max_context})")
        out = [""] * len(prompts)
        if cfg.do_sample:
            self.torch.manual_seed(cfg.seed)
        for batch in length_batches([len(p) for p in prompts], cfg.batch_size, cfg.max_batch_tokens):
            texts = self._generate_batch([list(prompts[i]) for i in batch])
            for i, text in zip(batch, texts):
                out[i] = text
            if progress:
                progress(len(batch))
        return out

    def generate_tokens(self, prompts: Sequence[Sequence[int]]) -> list[list[int]]:
        """The new token ids of every prompt, all in one left-padded batch (before stop strings are cut)."""
        return self._new_tokens([list(p) for p in prompts])

    # ------------------------------------------------------------------ internals
    def _settings(self):
        from transformers import GenerationConfig as HfGenerationConfig

        cfg = self.config
        kwargs = dict(max_new_tokens=cfg.max_new_tokens, do_sample=cfg.do_sample, pad_token_id=self.pad_id,
                      eos_token_id=self.eos_ids or None, use_cache=cfg.use_cache, num_beams=1)
        if cfg.do_sample:
            kwargs.update(temperature=cfg.temperature, top_p=cfg.top_p, top_k=0)
        if cfg.repetition_penalty != 1.0:
            kwargs["repetition_penalty"] = cfg.repetition_penalty
        if cfg.no_repeat_ngram_size:
            kwargs["no_repeat_ngram_size"] = cfg.no_repeat_ngram_size
        return HfGenerationConfig(**kwargs)

    def _stopping(self, width: int):
        """A row stops once its decoded new text holds a stop string (works with any tokenizer)."""
        from transformers import StoppingCriteria, StoppingCriteriaList

        stops, tokenizer, torch = list(self.config.stop), self.tokenizer, self.torch

        class StopOnText(StoppingCriteria):
            def __call__(self, input_ids, scores, **kwargs):
                done = [any(s in tokenizer.decode(row[width:].tolist(), skip_special_tokens=True) for s in stops)
                        for row in input_ids]
                return torch.tensor(done, dtype=torch.bool, device=input_ids.device)

        return StoppingCriteriaList([StopOnText()]) if stops else None

    def _new_tokens(self, sequences: list[list[int]]) -> list[list[int]]:
        torch = self.torch
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        for r, s in enumerate(sequences):  # left padding: every row's next token is at the end
            ids[r, width - len(s):] = torch.tensor(s)
            mask[r, width - len(s):] = 1
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                      generation_config=self._settings(), stopping_criteria=self._stopping(width))
        new = out[:, width:].tolist()
        stops = set(self.eos_ids) | {self.pad_id}
        result = []
        for row in new:
            end = next((j for j, t in enumerate(row) if t in stops), len(row))
            result.append(row[:end])
        self.generated_tokens += sum(len(r) for r in result)
        return result

    def _generate_batch(self, sequences: list[list[int]]) -> list[str]:
        return [cut_at_stop(self.tokenizer.decode(row, skip_special_tokens=True), self.config.stop)
                for row in self._new_tokens(sequences)]


def make_generator(loaded: LoadedModel, config: GenerationConfig | None = None) -> Generator:
    """The text generator of the loaded model's backend (a ModelError when the backend has none)."""
    from llmrec.llm.registry import BACKENDS, get_backend

    backend = get_backend(loaded.backend)
    if backend.generator is None:
        able = ", ".join(n for n, b in BACKENDS.items() if b.generator) or "none"
        raise ModelError(f"model.backend={loaded.backend!r} cannot generate text (backends that can: {able})")
    return backend.generator(loaded, config or GenerationConfig())
