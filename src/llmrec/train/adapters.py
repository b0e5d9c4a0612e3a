"""LoRA settings for training (peft) and saving a trained adapter from any process layout.

Loading a trained adapter for scoring is :mod:`llmrec.llm.adapters`.

>>> LoraSettings().to_peft().r
8
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from llmrec.distributed import barrier, world
from llmrec.errors import ConfigError
from llmrec.io import atomic_directory
from llmrec.llm import sharding


class LoraSettings(BaseModel):
    """LoRA hyper-parameters; the defaults are TALLRec's (r=8, alpha=16, dropout 0.05 on q/v)."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"],
                                      description="module names (suffixes) that get LoRA matrices")
    bias: str = "none"

    def check_targets(self, model, log=print) -> None:
        """As peft: a ConfigError when no target matches a module of ``model`` (the module's name or its last
        dotted parts), naming the model's linear layers; a line in the log for targets that match nothing while
        others do (a list shared by several model families).

        >>> from torch import nn
        >>> model = nn.ModuleDict({"q_proj": nn.Linear(2, 2)})
        >>> LoraSettings(target_modules=["q_proj", "c_attn"]).check_targets(model)
        lora.target_modules: 'c_attn' matches no module of this model (LoRA goes on 'q_proj')
        >>> LoraSettings(target_modules=["nosuch"]).check_targets(model)
        Traceback (most recent call last):
        ...
        llmrec.errors.ConfigError: lora.target_modules: 'nosuch' matches no module of the model (its linear layers: q_proj)
        """
        from torch import nn

        names = [n for n, _ in model.named_modules() if n]
        found = [t for t in self.target_modules if any(n == t or n.endswith("." + t) for n in names)]
        missing = [t for t in self.target_modules if t not in found]
        if missing and not found:
            linear = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if isinstance(m, nn.Linear)})
            raise ConfigError(f"lora.target_modules: {', '.join(map(repr, missing))} "
                              f"match{'es' if len(missing) == 1 else ''} no module of the model "
                              f"(its linear layers: {', '.join(linear) or 'none'})")
        if missing:
            log(f"lora.target_modules: {', '.join(map(repr, missing))} match{'es' if len(missing) == 1 else ''} no "
                f"module of this model (LoRA goes on {', '.join(map(repr, found))})")

    def to_peft(self):
        from peft import LoraConfig, TaskType

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=list(self.target_modules), bias=self.bias, task_type=TaskType.CAUSAL_LM)


def save_adapter(model, folder: Path, accelerator=None) -> None:
    """Save the LoRA adapter of ``model`` into ``folder`` (atomically) from the main process.

    With sharded parameters (ZeRO-3, FSDP) every process takes part in gathering the state dict
    (accelerate's ``get_state_dict``), then the main process writes it. Call it on every process;
    it returns when the adapter is on disk for all of them.
    """
    state = accelerator.get_state_dict(model) if accelerator is not None and sharding(model) else None
    if world().main:
        with atomic_directory(folder) as tmp:
            unwrapped = accelerator.unwrap_model(model) if accelerator is not None else model
            unwrapped.save_pretrained(tmp, state_dict=state)
    barrier()
