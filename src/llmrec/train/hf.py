"""The Hugging Face side of training: TRL's ``SFTConfig`` for our settings, the mixed precision, the SFT
trainer over pre-tokenized examples, and the checkpoints it leaves (which one a resumed run continues from).

:mod:`llmrec.train.run` orchestrates (data, examples, selection, test); this module is the plumbing it hands
to transformers and TRL, kept apart so the orchestration reads as the recipe.

>>> run_train_loss([{"loss": 2.0, "step": 1}, {"loss": 1.0, "step": 2}])
1.5
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmrec.errors import ConfigError
from llmrec.train.config import OptimSettings
from llmrec.train.examples import Example

__all__ = ["last_checkpoint", "make_trainer", "mixed_precision", "run_train_loss", "sft_config", "whole_run_log"]


def sft_config(optim: OptimSettings, output_dir: Path, seed: int, *, progress: bool = True,
               precision: str | None = None, use_cpu: bool = False, epochs: float | None = None,
               learning_rate: float | None = None):
    """TRL's ``SFTConfig`` for these settings (no truncation: prompts are rendered within budget).

    ``precision`` is ``"bf16"``, ``"fp16"`` or None (see :func:`mixed_precision`); ``use_cpu``
    makes a launched run a gloo CPU process group instead of looking for GPUs.
    Under ``accelerate launch`` with a DeepSpeed or FSDP config, transformers picks the plugin
    up from the launcher's environment here; create this before loading the model, so that
    ZeRO-3 partitions the weights while they load.
    """
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(output_dir), num_train_epochs=epochs or optim.epochs, max_steps=optim.max_steps,
        per_device_train_batch_size=optim.batch_size, gradient_accumulation_steps=optim.grad_accum,
        learning_rate=learning_rate or optim.learning_rate, weight_decay=optim.weight_decay,
        warmup_steps=optim.warmup_steps, lr_scheduler_type=optim.lr_scheduler, max_grad_norm=optim.max_grad_norm,
        gradient_checkpointing=optim.gradient_checkpointing, logging_steps=optim.logging_steps,
        save_strategy="steps" if optim.save_steps else "epoch", save_steps=optim.save_steps or 500,
        save_total_limit=1, report_to="none", seed=seed, data_seed=seed, max_length=None, bf16=precision == "bf16",
        fp16=precision == "fp16", use_cpu=use_cpu, disable_tqdm=not progress, dataloader_num_workers=0,
        ddp_find_unused_parameters=False, dataloader_pin_memory=not use_cpu,
    )


def mixed_precision(optim: OptimSettings, device, dtype) -> str | None:
    """The mixed precision of training: ``"bf16"``, ``"fp16"`` or None.

    ``auto`` follows the model's dtype on a GPU (bfloat16 -> bf16; float16 -> fp16 with loss
    scaling, for GPUs without bfloat16 such as V100 or T4; LoRA weights stay float32) and is
    off on CPU (float32).

    >>> import torch
    >>> mixed_precision(OptimSettings(), torch.device("cpu"), torch.float32) is None
    True
    >>> mixed_precision(OptimSettings(), torch.device("cuda"), torch.float16)
    'fp16'
    """
    import torch

    mode = optim.mixed_precision
    if mode == "no":
        return None
    if mode in ("fp16", "bf16"):
        if device.type != "cuda":
            raise ConfigError(f"optim.mixed_precision: {mode} needs a CUDA GPU; on {device.type} train in float32 "
                              "(mixed_precision: no)")
        return mode
    if device.type == "cuda" and dtype in (torch.bfloat16, torch.float16):
        return "bf16" if dtype == torch.bfloat16 else "fp16"
    return None


def make_trainer(model, tokenizer, examples: Sequence[Example], args, loss: str = "answer_only", callbacks=(),
                 peft_config=None, shared_prefix: bool = False):
    """An SFT trainer over pre-tokenized examples: ours (answer-only loss) or TRL's default.

    ``shared_prefix`` (answer-only loss): a batch's common prompt prefix runs once per step; ignored with gradient
    checkpointing or several processes (a second forward per step does not mix with either).
    """
    from datasets import Dataset
    from trl import SFTTrainer

    from llmrec.train.trainer import AnswerOnlySFTTrainer, LeftPadCollator, quiet_progress_callback

    dataset = Dataset.from_list([e.as_dict() for e in examples])
    if loss == "answer_only":
        collator = LeftPadCollator(tokenizer.pad_token_id)
        trainer = AnswerOnlySFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                       data_collator=collator, callbacks=list(callbacks), peft_config=peft_config)
        trainer.shared_prefix = bool(shared_prefix and not args.gradient_checkpointing and args.world_size == 1)
    else:
        trainer = SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                             callbacks=list(callbacks), peft_config=peft_config)
    from transformers.trainer_callback import ProgressCallback

    if any(type(c) is ProgressCallback for c in trainer.callback_handler.callbacks):  # the loss goes into the bar
        trainer.remove_callback(ProgressCallback)
        trainer.add_callback(quiet_progress_callback())
    return trainer


def _complete(checkpoint: Path) -> bool:
    """A checkpoint folder that transformers finished writing (state + weights)."""
    if not (checkpoint / "trainer_state.json").is_file():
        return False
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except (OSError, ValueError):
        return False
    return any((checkpoint / w).is_file() and (checkpoint / w).stat().st_size > 0
               for w in ("adapter_model.safetensors", "adapter_model.bin", "model.safetensors", "pytorch_model.bin"))


def last_checkpoint(folder: Path, log: Callable[[str], None] = print) -> str | None:
    """The newest *complete* checkpoint in ``folder``; incomplete ones (a kill during the write) are removed."""
    if not folder.is_dir():
        return None
    found = []
    for p in folder.iterdir():
        m = re.fullmatch(r"checkpoint-(\d+)", p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    for _step, p in sorted(found, reverse=True):
        if _complete(p):
            return str(p)
        log(f"removing incomplete checkpoint {p} (interrupted while it was written)")
        shutil.rmtree(p, ignore_errors=True)
    return None


def run_train_loss(log_history: list[dict[str, Any]]) -> float | None:
    """Mean training loss over every logged step of the whole run (also across a resume).

    >>> run_train_loss([{"loss": 1.0, "step": 1}, {"loss": 0.5, "step": 2}, {"train_loss": 0.5, "step": 2}])
    0.75
    """
    by_step = {h["step"]: float(h["loss"]) for h in log_history if "loss" in h and "step" in h}
    return round(float(np.mean(list(by_step.values()))), 6) if by_step else None


def whole_run_log(log_history: list[dict[str, Any]], resumed: bool) -> list[dict[str, Any]]:
    """The log history to write as ``train_log.json``: the closing summary's ``train_loss`` (TRL's mean over the
    steps this session ran: after a resume, the resumed steps only) becomes :func:`run_train_loss`'s whole-run
    mean, as in ``metrics.json``; a resumed session's own mean stays as ``train_loss_this_session``.

    >>> whole_run_log([{"loss": 1.0, "step": 1}, {"loss": 0.5, "step": 2}, {"train_loss": 0.5, "step": 2}], True)[-1]
    {'train_loss': 0.75, 'step': 2, 'train_loss_this_session': 0.5}
    """
    whole = run_train_loss(log_history)
    out = []
    for entry in log_history:
        if "train_loss" in entry and whole is not None:
            entry = {**entry, "train_loss": whole, **({"train_loss_this_session": entry["train_loss"]} if resumed else {})}
        out.append(entry)
    return out
