"""Prompt lengths of a step, measured on its own prepared data: a seeded sample of rows rendered with the step's
prompt settings and counted in tokens.

The tokenizer is the step's model's when it is here (the default model, a local folder); a hub model not in the
local cache is counted with the default model's tokenizer times :data:`FAMILY_FACTOR` of its tokenizer family
(LLaMA's 32,000-token vocabulary splits English text into more pieces than Gemma's 262,144; docs/plan.md).

>>> s = TokenStats(rows=4, prompts=8, mean=200.0, max=260, mean_context=150.0, mean_candidate=50.0,
...                lengths=(150, 180, 200, 260), shared_prefix=69)
>>> s.scaled(1.2).max, s.per_row
(312, 2.0)
>>> s.padded_mean(2)       # random batches of two, padded to their longer prompt
227.5
>>> ctr = replace(s, prompts=4)                        # one prompt per row
>>> ctr.computed_tokens(8, prefix_reuse=True, batch=4)   # a 69-token header once per batch of 4 prompts
1186.0
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

__all__ = ["FAMILY_FACTOR", "TokenStats", "prompt_stats"]

# tokens of a LLaMA-family tokenizer per token of Gemma 3's, on English prompts (docs/plan.md); other families
# are counted as Gemma's
FAMILY_FACTOR = {"gemma": 1.0, "llama": 1.25, "mistral": 1.25}


@dataclass(frozen=True)
class TokenStats:
    """Token counts of a sample of rendered prompts (a ranking row gives one prompt per candidate)."""

    rows: int
    prompts: int
    mean: float  # tokens of a whole prompt
    max: int
    mean_context: float  # the part candidates of a row share (history)
    mean_candidate: float
    lengths: tuple[int, ...] = ()  # every sampled prompt's tokens
    shared_prefix: int = 0  # tokens every prompt starts with (a template's header)

    @property
    def per_row(self) -> float:
        return self.prompts / max(self.rows, 1)

    def scaled(self, factor: float) -> TokenStats:
        if factor == 1.0:
            return self
        return replace(self, mean=self.mean * factor, max=int(round(self.max * factor)),
                       mean_context=self.mean_context * factor, mean_candidate=self.mean_candidate * factor,
                       lengths=tuple(int(round(n * factor)) for n in self.lengths),
                       shared_prefix=int(round(self.shared_prefix * factor)))

    def padded_mean(self, batch: int, seed: int = 0) -> float:
        """Mean tokens per row of random batches of ``batch`` prompts padded to their longest (training)."""
        if batch <= 1 or len(self.lengths) < 2:
            return self.mean
        lengths = np.array(self.lengths)
        rng = np.random.default_rng(seed)
        maxima = [lengths[rng.permutation(len(lengths))].reshape(-1)[: len(lengths) // batch * batch]
                  .reshape(-1, batch).max(axis=1).mean() for _ in range(8)] if len(lengths) >= batch else [self.max]
        return float(np.mean(maxima))

    def computed_tokens(self, rows: int, prefix_reuse: bool, batch: int = 8) -> float:
        """Tokens a scoring pass over ``rows`` rows runs: with prefix reuse a row's context once for all its
        candidates, and a header all prompts share once per batch of ``batch``."""
        if prefix_reuse and self.per_row > 1:
            return rows * (self.mean_context + self.per_row * self.mean_candidate)
        prompts = rows * self.per_row
        if prefix_reuse and self.shared_prefix >= 16:
            return prompts * (self.mean - self.shared_prefix) + -(-prompts // batch) * self.shared_prefix
        return prompts * self.mean


@lru_cache(maxsize=4)
def _tokenizer(model_name: str):
    from llmrec.llm.loading import load_tokenizer
    from llmrec.llm.settings import ModelConfig

    return load_tokenizer(ModelConfig(name=model_name)).tokenizer


def prompt_stats(settings, data: str, split: str, *, model_name: str = "default", rows: int = 256, seed: int = 0,
                 training: bool = False, negatives: int | None = 1) -> TokenStats:
    """Render a seeded sample of ``rows`` rows of ``split`` with ``settings`` (a config with the prompt fields:
    template, history_k, max_prompt_tokens, chat) and count their tokens with ``model_name``'s tokenizer
    (``training``: the rows as the trainer sees them, candidate lists as ``negatives`` negatives per positive)."""
    from llmrec.data.kinds import detect
    from llmrec.data.prepared import PreparedData
    from llmrec.errors import LlmrecError

    prepared = PreparedData.load(data)
    n = prepared.num_rows(split)
    if n == 0:
        return TokenStats(0, 0, 0.0, 0, 0.0, 0.0)
    pick = np.sort(np.random.default_rng(seed).choice(n, size=min(rows, n), replace=False))
    table = prepared.split(split).take(pick).to_pylist()
    sampled = len(table)
    kind = None
    if training:  # candidate lists as their CTR view, rendered as the trainer renders them
        table = detect(prepared.column_names(split)).training_rows(table, negatives)
        kind = "ctr"
    tokenizer = _tokenizer(model_name)
    try:
        renderer = settings.renderer(prepared, tokenizer, split, None, kind=kind)
        prompts = [p for group in renderer.render(table) for p in group]
    except LlmrecError as exc:  # a template with collaborative tokens: one token each, any id will do
        if "collaborative tokens" not in str(exc):
            raise
        renderer = settings.renderer(prepared, tokenizer, split, None, kind=kind, collab=lambda _kind, _key: 0)
        prompts = [p for group in renderer.render(table) for p in group]
    lengths = np.array([len(p) for p in prompts])
    ids = [p.context_ids + p.candidate_ids for p in prompts]
    shared = min((_common(ids[0], other) for other in ids[1:]), default=0)
    return TokenStats(rows=sampled, prompts=len(prompts), mean=float(lengths.mean()), max=int(lengths.max()),
                      mean_context=float(np.mean([len(p.context_ids) for p in prompts])),
                      mean_candidate=float(np.mean([len(p.candidate_ids) for p in prompts])),
                      lengths=tuple(int(n) for n in lengths), shared_prefix=shared)


def _common(a, b) -> int:
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
