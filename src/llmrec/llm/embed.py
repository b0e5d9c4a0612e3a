"""Text embeddings from a causal LM: mean-pooled last-layer hidden states (ReLLa's item encoder).

Texts are tokenized, sorted by length and batched (little padding), run through the
decoder only (no vocabulary projection), and the last layer's hidden states are averaged
over each text's tokens (padding excluded). The result is in the input order.

>>> import torch
>>> from transformers import LlamaConfig, LlamaForCausalLM
>>> model = LlamaForCausalLM(LlamaConfig(vocab_size=16, hidden_size=8, intermediate_size=16, num_hidden_layers=1,
...                                      num_attention_heads=2, num_key_value_heads=1)).eval()
>>> mean_pooled(model, [[1, 2, 3], [4, 5]], pad_token_id=0).shape
(2, 8)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np


def length_batches(lengths: Sequence[int], batch_size: int, max_batch_tokens: int | None = None) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first), each within the limits.

    >>> length_batches([3, 10, 4, 9], batch_size=2)
    [[1, 3], [2, 0]]
    """
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    for i in order:
        if batches:
            cur = batches[-1]
            width = lengths[cur[0]]  # longest first: the first one sets the padded width
            if len(cur) < batch_size and (max_batch_tokens is None or width * (len(cur) + 1) <= max_batch_tokens):
                cur.append(i)
                continue
        batches.append([i])
    return batches


def _decoder(model):
    """The model without its language-model head (hidden states out), when the model says how."""
    getter = getattr(model, "get_decoder", None)
    if callable(getter):
        try:
            decoder = getter()
        except (AttributeError, NotImplementedError):
            decoder = None
        if decoder is not None and decoder is not model:
            return decoder
    return None


def mean_pooled(
    model,
    sequences: Sequence[Sequence[int]],
    *,
    pad_token_id: int = 0,
    batch_size: int = 32,
    max_batch_tokens: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> np.ndarray:
    """Mean of the last layer's hidden states over each sequence's tokens (float32, input order)."""
    import torch

    if not sequences:
        raise ValueError("no sequences to embed")
    if any(len(s) == 0 for s in sequences):
        raise ValueError("cannot embed an empty sequence")
    device = next(model.parameters()).device
    decoder = _decoder(model)
    out: np.ndarray | None = None
    lengths = [len(s) for s in sequences]
    for batch in length_batches(lengths, batch_size, max_batch_tokens):
        width = max(lengths[i] for i in batch)
        ids = torch.full((len(batch), width), pad_token_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, i in enumerate(batch):  # right padding: positions start at 0 for every text
            ids[row, : lengths[i]] = torch.tensor(sequences[i], dtype=torch.long)
            mask[row, : lengths[i]] = 1
        ids, mask = ids.to(device), mask.to(device)
        with torch.inference_mode():
            if decoder is not None:
                hidden = decoder(input_ids=ids, attention_mask=mask).last_hidden_state
            else:
                hidden = model(input_ids=ids, attention_mask=mask, output_hidden_states=True).hidden_states[-1]
            weights = mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1)
        pooled_np = pooled.float().cpu().numpy()
        if out is None:
            out = np.empty((len(sequences), pooled_np.shape[1]), dtype=np.float32)
        out[batch] = pooled_np
        if progress is not None:
            progress(len(batch))
    assert out is not None
    return out


def embed_loaded(loaded, sequences: Sequence[Sequence[int]], **kwargs) -> np.ndarray:
    """:func:`mean_pooled` over a loaded transformers model (the ``embedder`` of the transformers backend)."""
    return mean_pooled(loaded.model, sequences, **kwargs)
