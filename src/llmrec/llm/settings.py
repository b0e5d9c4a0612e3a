"""Settings of the model layer: which model to load and how to batch the scoring.

>>> ModelConfig().name, ModelConfig().backend, ScoringConfig().batch_size
('default', 'transformers', 8)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class ModelConfig(BaseModel):
    """Which model to load, and where to run it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("default", description="'default', a hub id, a local folder or a .gguf file")
    gguf_file: str | None = Field(None, description="GGUF file name inside the folder `name`")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:1, mps")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    revision: str | None = None
    trust_remote_code: bool = False
    cache_converted: bool = Field(True, description="save de-quantized GGUF models as HF folders for fast reloads")
    backend: str = Field("transformers", description="a registered backend: transformers, vllm (GPUs, own "
                         "environment: pip install -e .[vllm]), llama.cpp "
                         "(GGUF weights run directly, faster on CPU; pip install 'llmrec[llamacpp]')")
    n_ctx: int = Field(2048, ge=128, description="llama.cpp context size")
    quantize: Literal["none", "int8"] = Field("none", description="int8: W8A8 decoder linears via torchao (CPU speed-up)")
    attn_implementation: str | None = Field(None, description="transformers attention kernel: eager (needed to read "
                                            "attention weights), sdpa, flash_attention_2; None: the library's choice")


class ScoringConfig(BaseModel):
    """How prompts are batched and scored."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(8, ge=1, description="prompts per forward pass")
    max_batch_tokens: int | None = Field(None, ge=1, description="cap on padded tokens per batch")
    padding_side: Literal["left", "right"] = "left"
    prefix_reuse: Literal["auto", "off"] = Field("auto", description="auto: reuse the KV cache of shared contexts and of a prefix common to a whole call")
    max_candidates_per_pass: int = Field(32, ge=1, description="candidates scored together against one context")
    head: Literal["answer_rows", "full"] = Field("answer_rows", description="project only onto the answer rows, or full logits")
