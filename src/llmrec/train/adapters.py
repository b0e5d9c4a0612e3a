"""LoRA adapters with peft: the settings, wrapping a model, loading a trained adapter.

>>> LoraSettings().to_peft().r
8
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from llmrec.errors import ConfigError
from llmrec.llm.loading import LoadedModel


class LoraSettings(BaseModel):
    """LoRA hyper-parameters; the defaults are TALLRec's (r=8, alpha=16, dropout 0.05 on q/v)."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(8, ge=1)
    alpha: int = Field(16, ge=1)
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "v_proj"],
                                      description="module names (suffixes) that get LoRA matrices")
    bias: str = "none"

    def to_peft(self):
        from peft import LoraConfig, TaskType

        return LoraConfig(r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout,
                          target_modules=list(self.target_modules), bias=self.bias, task_type=TaskType.CAUSAL_LM)


def adapter_dir(path: str | Path) -> Path:
    """The folder holding ``adapter_config.json``: the path itself, or ``<run>/adapter``."""
    path = Path(path)
    for candidate in (path, path / "adapter"):
        if (candidate / "adapter_config.json").exists():
            return candidate
    raise ConfigError(f"{path}: no LoRA adapter here (adapter_config.json missing); pass a train run folder or its "
                      "adapter/ folder")


def apply_adapter(loaded: LoadedModel, path: str | Path, merge: bool = False) -> LoadedModel:
    """``loaded`` with the adapter at ``path`` applied (kept separate, or merged into the weights)."""
    from peft import PeftModel

    if loaded.backend != "transformers":
        raise ConfigError(f"adapters need the transformers backend, not {loaded.backend}")
    folder = adapter_dir(path)
    model = PeftModel.from_pretrained(loaded.model, str(folder)).to(loaded.device)
    if merge:
        model = model.merge_and_unload()
    model.eval()
    return LoadedModel(model=model, tokenizer=loaded.tokenizer, device=loaded.device, dtype=loaded.dtype,
                       source=f"{loaded.source} + adapter {folder}{' (merged)' if merge else ''}", backend=loaded.backend)
