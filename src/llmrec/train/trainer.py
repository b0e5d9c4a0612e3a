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


def answer_only_loss(model, inputs: dict[str, torch.Tensor], num_items_in_batch=None) -> torch.Tensor:
    """Mean cross-entropy over the label tokens, with logits only at the last positions.

    Requires left-padded batches (every row ends at the last column), as :class:`LeftPadCollator`
    builds them.
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
    logits = model(**forward, use_cache=False, logits_to_keep=keep).logits  # (B, keep, V)
    logits = logits[:, :-1, :].float()
    targets = labels[:, first:]
    loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                             ignore_index=IGNORE, reduction="sum")
    count = num_items_in_batch if num_items_in_batch is not None else (targets != IGNORE).sum()
    return loss / torch.as_tensor(count, device=loss.device).clamp(min=1)


class AnswerOnlySFTTrainer(SFTTrainer):
    """:class:`trl.SFTTrainer` whose loss runs the LM head only at the answer positions."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        loss = answer_only_loss(model, inputs, num_items_in_batch)
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
