"""TRL's SFT trainer with the loss computed only where labels are set.

Gemma's LM head has 262,144 rows: projecting every position of a 179-token prompt onto it
costs more than the whole decoder on a CPU. A Yes/No answer has 2-3 label tokens per
sample, so :class:`AnswerOnlySFTTrainer`

* pads batches on the **left** (:class:`LeftPadCollator`, with explicit position ids), so
  the label tokens of every row sit in the last few columns;
* calls the model's own forward with ``logits_to_keep=k`` (k = longest answer + 1), so only
  those k positions go through the LM head, soft-capping and all;
* takes the cross-entropy on the label tokens, summed and divided by the number of label
  tokens in the accumulated batch, exactly like TRL's loss (tested equal to 1e-4).

Everything else (optimizer, schedules, accumulation, checkpoints, resume, logging,
accelerate/DeepSpeed/FSDP) is TRL's and transformers' own.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from trl import SFTTrainer

# a batch's common prefix shorter than MIN_SHARED_PREFIX is not worth a second forward (as in scoring)
from llmrec.llm.scoring import MIN_SHARED_PREFIX, _cache_kwarg, _repeat_cache, _returned_cache

IGNORE = -100


class LeftPadCollator:
    """Left-pads ``input_ids`` / ``labels`` and builds the attention mask and position ids.

    >>> batch = LeftPadCollator(pad_token_id=0)([{"input_ids": [5, 6, 7], "labels": [-100, -100, 7]},
    ...                                          {"input_ids": [8, 9], "labels": [-100, 9]}])
    >>> batch["input_ids"].tolist(), batch["position_ids"].tolist()
    ([[5, 6, 7], [0, 8, 9]], [[0, 1, 2], [0, 0, 1]])
    """

    def __init__(self, pad_token_id: int, pad_to_multiple_of: int | None = None) -> None:
        self.pad_token_id = pad_token_id
        self.pad_to_multiple_of = pad_to_multiple_of

    def __call__(self, examples: Sequence[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(e["input_ids"]) for e in examples)
        if self.pad_to_multiple_of:
            width = -(-width // self.pad_to_multiple_of) * self.pad_to_multiple_of
        n = len(examples)
        ids = torch.full((n, width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((n, width), IGNORE, dtype=torch.long)
        mask = torch.zeros((n, width), dtype=torch.long)
        for r, e in enumerate(examples):
            k = len(e["input_ids"])
            ids[r, width - k :] = torch.as_tensor(e["input_ids"])
            labels[r, width - k :] = torch.as_tensor(e["labels"])
            mask[r, width - k :] = 1
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return {"input_ids": ids, "attention_mask": mask, "position_ids": positions, "labels": labels}



def shared_prefix_length(inputs: dict[str, torch.Tensor], keep: int) -> int:
    """The tokens every row of a left-padded batch starts with, short of each row's last ``keep`` positions (those
    give the logits); 0 when the batch has one row or the prefix is shorter than :data:`MIN_SHARED_PREFIX`.

    >>> batch = LeftPadCollator(0)([{"input_ids": list(range(1, 21)) + [30, 31], "labels": [IGNORE] * 21 + [31]},
    ...                             {"input_ids": list(range(1, 21)) + [40], "labels": [IGNORE] * 20 + [40]}])
    >>> shared_prefix_length(batch, keep=2)
    19
    """
    ids, mask = inputs["input_ids"], inputs["attention_mask"]
    rows, width = ids.shape
    if rows < 2:
        return 0
    lengths = mask.sum(1)
    shortest = int(lengths.min())
    starts = width - lengths
    aligned = ids.gather(1, starts[:, None] + torch.arange(shortest, device=ids.device)[None, :])
    differs = (aligned != aligned[:1]).any(0).nonzero()
    common = int(differs[0]) if len(differs) else shortest
    n = min(common, shortest - keep)
    return n if n >= MIN_SHARED_PREFIX else 0


def _fits_window(model, width: int) -> bool:
    """Whether a batch ``width`` tokens wide stays inside the model's sliding attention window (if it has one).

    The tails sit after the prefix with their padding between, so a sliding window counted in sequence columns would
    reach less far back than in the left-padded whole batch; within the window nothing is cut and the two agree.
    """
    window = getattr(getattr(model, "config", None), "sliding_window", None)
    return not isinstance(window, int) or width <= window


def _shared_prefix_logits(model, forward: dict[str, torch.Tensor], keep: int, n: int) -> torch.Tensor:
    """The last ``keep`` positions' logits of a left-padded batch whose rows share their first ``n`` tokens: the prefix
    runs once (batch 1, with gradients), its keys and values are repeated over the batch, and the rows' tails run
    against them (left-padded after the prefix, masked, with the positions they have in the whole prompt)."""
    ids, mask = forward["input_ids"], forward["attention_mask"]
    rows, width = ids.shape
    lengths = mask.sum(1)
    starts = width - lengths
    tail_width = int(lengths.max()) - n
    cols = torch.arange(width - tail_width, width, device=ids.device)
    tail_mask = (cols[None, :] >= (starts + n)[:, None]).long()
    tail_ids = torch.where(tail_mask.bool(), ids[:, width - tail_width :], ids.new_zeros(()))
    first = int(starts[0])
    prefix = ids[:1, first : first + n]
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    cache_kw = _cache_kwarg(base)
    # the prefix needs keys and values only: its decoder (LoRA layers included), no LM head
    decoder = base.get_decoder() if hasattr(base, "get_decoder") else None
    cache = _returned_cache(decoder(input_ids=prefix, use_cache=True) if decoder is not None
                            else model(input_ids=prefix, use_cache=True, logits_to_keep=1))
    _repeat_cache(cache, rows)
    attention = torch.cat([mask.new_ones(rows, n), tail_mask], dim=1)
    positions = n + (tail_mask.cumsum(-1) - 1).clamp(min=0)
    return model(input_ids=tail_ids, attention_mask=attention, position_ids=positions, use_cache=True,
                 logits_to_keep=keep, **{cache_kw: cache}).logits


def answer_only_loss(model, inputs: dict[str, torch.Tensor], num_items_in_batch=None,
                     shared_prefix: bool = False) -> torch.Tensor:
    """Mean cross-entropy over the label tokens, with logits only at the last positions.

    Requires left-padded batches (every row ends at the last column), as :class:`LeftPadCollator`
    builds them. ``shared_prefix``: when the rows start with the same tokens (a template's instruction header), run
    that prefix once per batch and the rows' tails against its keys and values (:func:`shared_prefix_length`); the
    same loss and gradients (to float rounding), fewer tokens through the model.
    """
    labels = inputs["labels"]
    width = labels.shape[1]
    set_cols = (labels != IGNORE).any(dim=0).nonzero()
    if len(set_cols) == 0:  # no label in this batch: a zero that still depends on the parameters
        return sum(p.sum() for p in model.parameters() if p.requires_grad) * 0.0
    first = int(set_cols.min())
    keep = width - first + 1  # the position before the first label predicts it
    if first == 0:
        raise ValueError("a label at the first position has no position to predict it from")
    forward = {k: v for k, v in inputs.items() if k != "labels"}
    n = shared_prefix_length(forward, keep) if shared_prefix and _fits_window(model, width) else 0
    if n:
        logits = _shared_prefix_logits(model, forward, keep, n)
    else:
        logits = model(**forward, use_cache=False, logits_to_keep=keep).logits  # (B, keep, V)
    logits = logits[:, :-1, :].float()
    targets = labels[:, first:]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                             ignore_index=IGNORE, reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else (targets != IGNORE).sum()
    return loss / torch.as_tensor(count, device=loss.device).clamp(min=1)


class AnswerOnlySFTTrainer(SFTTrainer):
    """:class:`trl.SFTTrainer` whose loss runs the LM head only at the answer positions (and, with
    ``shared_prefix``, a batch's common prefix once: one process, no gradient checkpointing)."""

    shared_prefix = False

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = answer_only_loss(model, inputs, num_items_in_batch, shared_prefix=self.shared_prefix)
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            loss = loss * self.accelerator.num_processes
        if return_outputs:
            return loss, None
        return loss


def quiet_progress_callback():
    """transformers' progress bar with the latest loss in its postfix instead of a printed dict per logging step."""
    from transformers.trainer_callback import ProgressCallback

    class QuietProgress(ProgressCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and self.training_bar is not None and logs and "loss" in logs:
                self.training_bar.set_postfix(loss=f"{float(logs['loss']):.4g}", refresh=False)

    return QuietProgress
