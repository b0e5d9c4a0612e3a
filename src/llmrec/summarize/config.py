"""Typed config of ``llmrec summarize`` (one YAML file; any field overridable with ``--set``).

>>> cfg = SummarizeConfig(data="prepared/amazon-games-trsr", out="prepared/amazon-games-trsr-hier")
>>> cfg.mode, cfg.block_size, cfg.item_tokens, cfg.recent_items, cfg.generation.max_new_tokens
('hierarchical', 5, 48, 5, 64)
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from llmrec.llm.generation import GenerationConfig
from llmrec.llm.settings import ModelConfig


def _generation() -> GenerationConfig:
    return GenerationConfig(max_new_tokens=64, stop=["\n"])


class SummarizeConfig(BaseModel):
    """Everything ``llmrec summarize`` needs: folders, mode, blocks, the frozen model, generation."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(description="prepared folder (e.g. llmrec data prepare amazon-games -p trsr)")
    out: str = Field(description="output prepared folder: the same schema plus a per-row `summary` column")
    mode: Literal["hierarchical", "recurrent"] = Field(
        "hierarchical", description="hierarchical: summarize each block, then the summaries (more levels if needed); "
        "recurrent: block 1, then previous summary + next block")
    template: str | None = Field(None, description="summary template (shipped name or YAML file); default: "
                                 "summary_fewshot for base models, summary_instruct for chat models")
    chat: Literal["auto", "on", "off"] = Field("auto", description="wrap summary prompts in the tokenizer's chat template")
    block_size: int = Field(5, ge=1, description="history items per block")
    item_tokens: int = Field(48, ge=4, description="tokens of one item's text at most (longer texts are cut)")
    fan_in: int | None = Field(None, ge=2, description="hierarchical: summaries merged per prompt; None: as many as "
                               "fit max_prompt_tokens")
    max_prompt_tokens: int = Field(1536, ge=64, description="token budget of one summary prompt")
    recent_items: int | None = Field(5, ge=0, description="recent items the recommendation prompt shows beside the "
                                     "summary (the default history_k of the output folder); None: all")
    limits: dict[str, int] = Field(default_factory=dict, description="split -> seeded number of samples to keep and "
                                   "summarize (e.g. {train: 512, valid: 200}); splits not named keep every sample")
    seed: int = Field(0, description="seed of the per-split sample draws")
    model: ModelConfig = Field(default_factory=ModelConfig)
    generation: GenerationConfig = Field(default_factory=_generation)
    checkpoint_every: int = Field(64, ge=1, description="summaries generated between writes of the cache journal")
    checkpoint_seconds: float | None = Field(30.0, gt=0, description="and at most about this many seconds of generation "
                                             "between them (a kill loses at most that); null: by count only")
    overwrite: bool = Field(False, description="replace another prepared folder at `out`")

    def settings(self) -> dict[str, Any]:
        """What the summaries depend on besides the model and the history text (recorded in the output)."""
        return self.model_dump(mode="json", include={"mode", "template", "chat", "block_size", "item_tokens", "fan_in",
                                                     "max_prompt_tokens", "generation"})
