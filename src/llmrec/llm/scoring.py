"""Batched Yes/No scoring: score = softmax over the Yes/No logits at the answer position.

Each prompt is a pair of token-id sequences, ``context`` (user profile, history) and
``candidate`` (the target item and the question, ending where the answer starts). The
engine

* sorts prompts by length and pads each batch (left padding by default; right padding is
  supported too) with matching attention masks and position ids;
* runs the decoder without the LM head and projects only the answer position's hidden
  state onto the two answer rows of the output embedding (the same numbers as the full
  logits at those two ids, without computing the other 262k vocabulary logits): the
  ``logits_to_keep=1`` idea taken one step further. ``head="full"`` uses the model's own
  head with ``logits_to_keep`` instead, for models whose head is not a plain projection;
* with ``prefix_reuse``, encodes a context shared by several prompts once and scores all its
  candidates against the cached keys/values (the 1 positive + 20 negatives ranking case);
  the other prompts of a call that all start with the same tokens (a template's instruction
  header: 69 of ~205 tokens in TALLRec's prompts) share that prefix the same way, batch by
  batch under ``batch_size`` / ``max_batch_tokens``.

Both paths give the same scores as scoring each full prompt alone (tested to 1e-4).
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from collections.abc import Callable, Sequence

import numpy as np

from llmrec.errors import ModelError
from llmrec.llm.answers import AnswerTokens
from llmrec.llm.batching import common_prefix, length_batches
from llmrec.llm.settings import ScoringConfig
from llmrec.llm.sharding import full_rows, sharding
from llmrec.llm.types import EncodedPrompt, LoadedModel

MIN_SHARED_PREFIX = 16  # tokens: a shorter prefix common to a whole call is not worth a cache


class YesNoScorer:
    """Score prompts with a causal LM: P(yes) = softmax(logit_yes, logit_no)[0].

    >>> import torch
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> cfg = LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=2,
    ...                   num_attention_heads=2, num_key_value_heads=2, pad_token_id=0)
    >>> scorer = YesNoScorer(LlamaForCausalLM(cfg).eval(), AnswerTokens(5, 6, "Yes", "No"))
    >>> p = scorer.score([EncodedPrompt((1, 7, 8), (9,)), EncodedPrompt((1, 7), (10, 11))])
    >>> p.shape, bool(((p > 0) & (p < 1)).all())
    ((2,), True)
    """

    def __init__(self, model, answer: AnswerTokens, config: ScoringConfig | None = None, pad_token_id: int | None = None):
        import torch

        self.torch = torch
        self.model = model
        self.answer = answer
        self.config = config or ScoringConfig()
        self.device = next(model.parameters()).device
        cfg = model.config
        self.pad_id = pad_token_id if pad_token_id is not None else (getattr(cfg, "pad_token_id", None) or 0)
        self.max_context = getattr(cfg, "max_position_embeddings", None)
        self.softcap = getattr(cfg, "final_logit_softcapping", None)
        self.sharding = sharding(model)
        # FSDP's unsharding bumps version counters, which inference-mode tensors do not have
        self._no_grad = torch.no_grad if self.sharding else torch.inference_mode
        if self.sharding == "fsdp" and self.config.head == "answer_rows":
            # FSDP unshards parameters in the root model's forward: the decoder alone would see shards
            self.config = self.config.model_copy(update={"head": "full"})
        self.decoder = model.get_decoder() if hasattr(model, "get_decoder") else None
        # keys/values of encoded prefixes kept across calls (:meth:`keep_prefixes`); off unless asked for
        self._kept: OrderedDict[tuple, tuple[object, int]] = OrderedDict()
        self._kept_budget = 0
        self._kept_bytes = 0
        self.kept_hits = 0
        self._last_single: tuple[int, ...] | None = None  # the last prompt scored alone (its start may recur)
        head = model.get_output_embeddings()
        if self.config.head == "answer_rows":
            if self.decoder is None or head is None or not hasattr(head, "weight"):
                raise ModelError("this model exposes no decoder/output embeddings; use head='full'")
            ids = torch.tensor([answer.yes_id, answer.no_id])
            self.rows = full_rows(head.weight, ids).to(self.device)  # (2, hidden); gathered under ZeRO-3
            bias = getattr(head, "bias", None)
            self.row_bias = full_rows(bias, ids).to(self.device) if bias is not None else None

    @classmethod
    def for_loaded(cls, loaded: LoadedModel, answer: AnswerTokens, config: ScoringConfig | None = None) -> YesNoScorer:
        """The scorer of a model loaded by the transformers backend."""
        return cls(loaded.model, answer, config, pad_token_id=loaded.tokenizer.pad_token_id)

    # ------------------------------------------------------------------ public API
    def keep_prefixes(self, mib: int) -> None:
        """Keep the keys and values of encoded contexts and common prefixes across :meth:`score` calls, the least
        recently used dropped first once they exceed ``mib`` MiB (0: keep none). A template's header, or one user's
        context across that user's requests, is then encoded once, not once per call (RadixAttention's idea, for
        whole prefixes): a prompt scored alone runs on the longest kept prefix it starts with, and two prompts scored
        alone one after the other keep the start they share (at least :data:`MIN_SHARED_PREFIX` tokens). Only for a
        model whose weights stay as they are (a server): a kept prefix is not recomputed when the weights change.
        """
        self._kept_budget = max(0, int(mib)) << 20
        self._kept.clear()
        self._kept_bytes = 0
        self._last_single = None

    @property
    def kept_bytes(self) -> int:
        """Bytes of keys and values kept now (at most the :meth:`keep_prefixes` budget)."""
        return self._kept_bytes

    def score(self, prompts: Sequence[EncodedPrompt], progress: Callable[[int], None] | None = None) -> np.ndarray:
        """P(yes) for every prompt, in input order (float64)."""
        self._check_lengths(prompts)
        out = np.full(len(prompts), np.nan, dtype=np.float64)
        singles: list[int] = []
        if self.config.prefix_reuse == "auto":
            groups: dict[tuple[int, ...], list[int]] = {}
            for i, p in enumerate(prompts):
                groups.setdefault(p.context, []).append(i)
            for context, members in groups.items():
                if len(members) > 1 and all(len(prompts[i].candidate) > 0 for i in members):
                    out[members] = self._score_shared_context(context, [prompts[i].candidate for i in members],
                                                              progress=progress)
                else:
                    singles.extend(members)
            singles = self._score_common_prefix(prompts, singles, out, progress)
            if self._kept_budget and singles:
                singles = self._score_on_kept_prefixes(prompts, singles, out, progress)
        else:
            singles = list(range(len(prompts)))
        for batch in self._batches([len(prompts[i]) for i in singles]):
            idx = [singles[b] for b in batch]
            out[idx] = self._score_full([prompts[i].ids for i in idx])
            if progress:
                progress(len(idx))
        return out

    # ------------------------------------------------------------------ internals
    def _check_lengths(self, prompts: Sequence[EncodedPrompt]) -> None:
        for i, p in enumerate(prompts):
            if len(p) == 0:
                raise ModelError(f"prompt {i} is empty")
            if self.max_context and len(p) > self.max_context:
                raise ModelError(
                    f"prompt {i} has {len(p)} tokens, more than the model's context window ({self.max_context}); "
                    "lower max_prompt_tokens or the history length"
                )

    def _batches(self, lengths: list[int]) -> list[list[int]]:
        """Length-sorted batches (longest first) under the size and token caps."""
        return length_batches(lengths, self.config.batch_size, self.config.max_batch_tokens)

    def _answer_probs(self, hidden) -> np.ndarray:
        """Two-way softmax of the answer logits from hidden states at the answer position."""
        logits = hidden.float() @ self.rows.T
        if self.row_bias is not None:
            logits = logits + self.row_bias
        return self._probs(logits)

    def _probs(self, logits, softcap: bool = True) -> np.ndarray:
        """Two-way softmax of (n, 2) answer logits; ``softcap=False`` for the model's own (capped) logits."""
        if softcap and self.softcap:
            logits = self.torch.tanh(logits / self.softcap) * self.softcap
        diff = (logits[:, 0] - logits[:, 1]).double().cpu().numpy()
        return 1.0 / (1.0 + np.exp(-diff))

    def _score_common_prefix(self, prompts: Sequence[EncodedPrompt], members: list[int], out: np.ndarray,
                             progress: Callable[[int], None] | None) -> list[int]:
        """Score ``members`` against the KV cache of the prefix they all share, if it is long enough.

        Returns the members left to score as whole prompts (all of them when there is no such prefix).
        """
        if len(members) < 2:
            return members
        ids = [prompts[i].ids for i in members]
        first = ids[0]
        n = min(len(s) for s in ids) - 1  # every prompt keeps at least its answer position
        for s in ids[1:]:
            n = min(n, common_prefix(first, s))
            if n < MIN_SHARED_PREFIX:
                return members
        suffixes = [s[n:] for s in ids]
        batches = length_batches([n + len(s) for s in suffixes], self.config.batch_size, self.config.max_batch_tokens)
        out[members] = self._score_shared_context(first[:n], suffixes, batches, progress)
        return []

    def _score_on_kept_prefixes(self, prompts: Sequence[EncodedPrompt], members: list[int], out: np.ndarray,
                                progress: Callable[[int], None] | None) -> list[int]:
        """Score the prompts of ``members`` that start with a kept prefix (or with the start they share with the
        previous prompt scored alone) on that prefix's keys and values; return the rest."""
        kind = self.config.head == "full"
        kept = sorted((key[1] for key in self._kept if key[0] == kind), key=len, reverse=True)
        on: dict[tuple[int, ...], list[int]] = {}
        rest: list[int] = []
        for i in members:
            ids = prompts[i].ids
            prefix = next((k for k in kept if len(k) < len(ids) and ids[: len(k)] == k), None)
            if prefix is None and self._last_single is not None:
                n = min(common_prefix(self._last_single, ids), len(ids) - 1)
                if n >= MIN_SHARED_PREFIX:
                    prefix = tuple(ids[:n])
            self._last_single = tuple(ids)
            if prefix is None:
                rest.append(i)
            else:
                on.setdefault(prefix, []).append(i)
        for prefix, group in on.items():
            out[group] = self._score_shared_context(prefix, [prompts[i].ids[len(prefix):] for i in group],
                                                    progress=progress)
        return rest

    def _prefix_cache(self, runner, context: tuple[int, ...], ids):
        """The KV cache of ``context`` (batch 1) for this call to extend: a copy of a kept one, or encoded now (and
        kept, within the budget)."""
        key = (runner is self.model, tuple(context))
        if self._kept_budget and key in self._kept:
            self._kept.move_to_end(key)
            self.kept_hits += 1
            return copy.deepcopy(self._kept[key][0])
        cache = _returned_cache(runner(input_ids=ids, use_cache=True))
        if self._kept_budget:
            size = _cache_bytes(cache)
            if 0 < size <= self._kept_budget:
                self._kept[key] = (copy.deepcopy(cache), size)
                self._kept_bytes += size
                while self._kept_bytes > self._kept_budget:
                    _, (_, dropped) = self._kept.popitem(last=False)
                    self._kept_bytes -= dropped
        return cache

    def _score_full(self, sequences: list[tuple[int, ...]]) -> np.ndarray:
        torch = self.torch
        width = max(len(s) for s in sequences)
        ids = torch.full((len(sequences), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(sequences), width), dtype=torch.long)
        left = self.config.padding_side == "left"
        for r, s in enumerate(sequences):
            sl = slice(width - len(s), width) if left else slice(0, len(s))
            ids[r, sl] = torch.tensor(s)
            mask[r, sl] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        last = torch.tensor([width - 1 if left else len(s) - 1 for s in sequences])
        ids, mask, positions = ids.to(self.device), mask.to(self.device), positions.to(self.device)
        with self._no_grad():
            if self.config.head == "full":
                keep = last.view(-1, 1).to(self.device)
                logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False,
                                    logits_to_keep=keep).logits[:, -1, :]
                return self._probs(logits[:, [self.answer.yes_id, self.answer.no_id]].float(), softcap=False)
            hidden = self.decoder(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=False).last_hidden_state
            rows = torch.arange(len(sequences), device=self.device)
            return self._answer_probs(hidden[rows, last.to(self.device)])

    def _score_shared_context(self, context: tuple[int, ...], candidates: list[tuple[int, ...]],
                              chunks: list[list[int]] | None = None,
                              progress: Callable[[int], None] | None = None) -> np.ndarray:
        """Encode ``context`` once; score every candidate continuation against its KV cache.

        ``chunks``: which candidates share a pass (default: length-sorted, ``max_candidates_per_pass``
        each); ``progress`` hears of every finished pass.
        """
        torch = self.torch
        ctx = torch.tensor([context], device=self.device)
        out = np.empty(len(candidates), dtype=np.float64)
        runner = self.model if self.config.head == "full" else self.decoder
        with self._no_grad():
            cache = self._prefix_cache(runner, context, ctx)
            cache_kw = _cache_kwarg(runner)
            # candidates of similar length share a pass: right padding to the longest of a chunk wastes little
            if chunks is None:
                chunks = length_batches([len(c) for c in candidates], self.config.max_candidates_per_pass)
            for n_chunk, chunk in enumerate(chunks):
                past = cache if n_chunk == len(chunks) - 1 else copy.deepcopy(cache)
                _repeat_cache(past, len(chunk))
                width = max(len(candidates[i]) for i in chunk)
                ids = torch.full((len(chunk), width), self.pad_id, dtype=torch.long)
                mask = torch.zeros((len(chunk), len(context) + width), dtype=torch.long)
                mask[:, : len(context)] = 1
                for r, i in enumerate(chunk):  # right padding: the context stays contiguous
                    ids[r, : len(candidates[i])] = torch.tensor(candidates[i])
                    mask[r, len(context) : len(context) + len(candidates[i])] = 1
                positions = (len(context) + torch.arange(width)).expand(len(chunk), width)
                last = torch.tensor([len(candidates[i]) - 1 for i in chunk], device=self.device)
                kwargs = dict(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                              position_ids=positions.to(self.device), use_cache=True, **{cache_kw: past})
                rows = torch.arange(len(chunk), device=self.device)
                if self.config.head == "full":
                    logits = self.model(**kwargs, logits_to_keep=last.view(-1, 1)).logits[:, -1, :]
                    out[chunk] = self._probs(logits[:, [self.answer.yes_id, self.answer.no_id]].float(), softcap=False)
                else:
                    hidden = self.decoder(**kwargs).last_hidden_state
                    out[chunk] = self._answer_probs(hidden[rows, last])
                if progress:
                    progress(len(chunk))
        return out


def _cache_bytes(cache) -> int:
    """Bytes held by a transformers KV cache's per-layer tensors."""
    total = 0
    for layer in getattr(cache, "layers", None) or []:
        for name in ("keys", "values"):
            t = getattr(layer, name, None)
            if t is not None and hasattr(t, "element_size"):
                total += t.numel() * t.element_size()
    return total


def _cache_kwarg(module) -> str:
    """The forward's KV-cache argument: ``cache`` (transformers >= 5.24) or ``past_key_values``."""
    import inspect

    forward = getattr(module, "forward", module)
    try:
        params = inspect.signature(forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def _returned_cache(output):
    """The KV cache a forward returned, under either attribute name."""
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def _repeat_cache(cache, n: int) -> None:
    """Repeat a batch-1 KV cache ``n`` times along the batch axis, in place."""
    if n == 1:
        return
    layers = getattr(cache, "layers", None)
    if layers is None:
        raise ModelError("prefix reuse needs a transformers Cache with per-layer storage; set prefix_reuse='off'")
    for layer in layers:
        layer.batch_repeat_interleave(n)


def count_non_embedding_parameters(model) -> int:
    """Parameters outside the token embeddings / tied LM head (for FLOP estimates)."""
    emb = {id(p) for m in (model.get_input_embeddings(), model.get_output_embeddings()) if m is not None
           for p in m.parameters()}
    return sum(p.numel() for p in model.parameters() if id(p) not in emb)
