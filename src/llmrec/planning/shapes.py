"""The shape of a causal language model, as far as memory and FLOPs go: layers, widths, heads, vocabulary.

Read from a ``config.json`` (a local model folder, the converted default model, or the Hugging Face cache) or,
for the models the shipped GPU experiments name, from a table written from their published configs, so that a
plan needs no download.

>>> s = KNOWN_SHAPES["meta-llama/Llama-2-7b-hf"]
>>> round(s.parameters / 1e9, 2), round(s.non_embedding_parameters / 1e9, 2)
(6.74, 6.48)
>>> s.lora_parameters(8, ("q_proj", "v_proj"))   # TALLRec's LoRA: r=8 on q and v, 32 layers
4194304
>>> s.kv_bytes_per_token(2)                      # bfloat16 keys and values of one token, all layers
524288
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmrec.errors import ConfigError

__all__ = ["KNOWN_SHAPES", "ModelShape", "model_shape"]


@dataclass(frozen=True)
class ModelShape:
    """Widths of a decoder-only transformer with gated MLPs (LLaMA, Mistral, Qwen, Gemma)."""

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate: int
    vocab: int
    tied: bool = False  # the output head shares the input embedding
    family: str = "llama"  # tokenizer family (prompt lengths, :mod:`llmrec.planning.tokens`)
    model_type: str = "llama"  # transformers' architecture name (a rehearsal builds a tiny model of it)

    @classmethod
    def from_config(cls, config: dict[str, Any], name: str = "") -> ModelShape:
        """From a transformers ``config.json`` (a multimodal config's ``text_config`` when it has one)."""
        c = config.get("text_config") or config
        try:
            heads = int(c["num_attention_heads"])
            hidden = int(c["hidden_size"])
            family = str(c.get("model_type", "llama")).split("_")[0]
            return cls(name=name or str(config.get("_name_or_path", "")), layers=int(c["num_hidden_layers"]),
                       hidden=hidden, heads=heads, kv_heads=int(c.get("num_key_value_heads") or heads),
                       head_dim=int(c.get("head_dim") or hidden // heads), intermediate=int(c["intermediate_size"]),
                       vocab=int(c["vocab_size"]), tied=bool(c.get("tie_word_embeddings", False)),
                       family="gemma" if family.startswith("gemma") else family,
                       model_type=str(c.get("model_type", "llama")))
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"model {name or '?'}: its config.json lacks a field a plan needs ({exc})") from None

    # ------------------------------------------------------------------ parameters
    @property
    def q_width(self) -> int:
        return self.heads * self.head_dim

    @property
    def kv_width(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def layer_parameters(self) -> int:
        """Weights of one decoder layer (attention projections + gated MLP; norms are negligible)."""
        attention = self.hidden * (self.q_width + 2 * self.kv_width) + self.q_width * self.hidden
        return attention + 3 * self.hidden * self.intermediate

    @property
    def non_embedding_parameters(self) -> int:
        """The weights every token's forward multiplies by: 2 FLOPs each per token."""
        return self.layers * self.layer_parameters

    @property
    def parameters(self) -> int:
        """All weights: layers, the input embedding and (untied) the output head."""
        return self.non_embedding_parameters + self.vocab * self.hidden * (1 if self.tied else 2)

    def module_shape(self, module: str) -> tuple[int, int]:
        """(in, out) of a linear module of one layer, by its usual name."""
        shapes = {"q_proj": (self.hidden, self.q_width), "k_proj": (self.hidden, self.kv_width),
                  "v_proj": (self.hidden, self.kv_width), "o_proj": (self.q_width, self.hidden),
                  "gate_proj": (self.hidden, self.intermediate), "up_proj": (self.hidden, self.intermediate),
                  "down_proj": (self.intermediate, self.hidden)}
        if module not in shapes:
            raise ConfigError(f"lora.target_modules: {module!r} is not a linear module a plan knows "
                              f"({', '.join(shapes)})")
        return shapes[module]

    def lora_parameters(self, r: int, targets: tuple[str, ...] | list[str]) -> int:
        """Trainable LoRA weights: r x (in + out) per target module and layer."""
        return self.layers * sum(r * sum(self.module_shape(m)) for m in targets)

    def kv_bytes_per_token(self, dtype_bytes: int) -> int:
        """Keys and values of one token in every layer."""
        return 2 * self.layers * self.kv_width * dtype_bytes


def _llama(name: str, layers: int, hidden: int, heads: int, intermediate: int, kv_heads: int | None = None,
           vocab: int = 32000) -> ModelShape:
    return ModelShape(name, layers, hidden, heads, kv_heads or heads, hidden // heads, intermediate, vocab)


# Published configs (config.json on the Hugging Face hub) of the models the shipped GPU experiments and the papers
# use; any other model is read from its own config.json.
KNOWN_SHAPES: dict[str, ModelShape] = {s.name: s for s in [
    _llama("meta-llama/Llama-2-7b-hf", 32, 4096, 32, 11008),
    _llama("meta-llama/Llama-2-13b-hf", 40, 5120, 40, 13824),
    _llama("huggyllama/llama-7b", 32, 4096, 32, 11008),        # TALLRec's LLaMA-7B
    _llama("huggyllama/llama-30b", 60, 6656, 52, 17920),       # LLM-TRSR's 30B summarizer class
    _llama("lmsys/vicuna-7b-v1.5", 32, 4096, 32, 11008),
    _llama("lmsys/vicuna-13b-v1.5", 40, 5120, 40, 13824),      # ReLLa's Vicuna-13B
    _llama("meta-llama/Meta-Llama-3-8B", 32, 4096, 32, 14336, kv_heads=8, vocab=128256),
    ModelShape("google/gemma-3-270m", 18, 640, 4, 1, 256, 2048, 262144, tied=True, family="gemma",
               model_type="gemma3_text"),
]}


def _hub_cache_config(name: str) -> Path | None:
    """A hub model's config.json already in the local Hugging Face cache (no download)."""
    home = Path(os.environ.get("HF_HUB_CACHE") or Path(os.environ.get("HF_HOME", Path.home() / ".cache" / "huggingface"))
                / "hub")
    snapshots = home / f"models--{name.replace('/', '--')}" / "snapshots"
    found = sorted(snapshots.glob("*/config.json")) if snapshots.is_dir() else []
    return found[-1] if found else None


def model_shape(name: str) -> ModelShape:
    """The shape of model ``name``: ``default`` (Gemma 3 270M), a local folder, a hub id in the local cache or in
    :data:`KNOWN_SHAPES`. A ConfigError names what to do for any other."""
    if name == "default":
        return KNOWN_SHAPES["google/gemma-3-270m"]
    path = Path(name)
    if path.suffix == ".gguf":
        raise ConfigError(f"model {name}: a plan reads a transformers config.json; give the converted folder "
                          "(~/.cache/llmrec/models/...) or the hub id")
    config = path / "config.json" if path.is_dir() else _hub_cache_config(name)
    if config is not None and config.is_file():
        return ModelShape.from_config(json.loads(config.read_text()), name=name)
    if name in KNOWN_SHAPES:
        return KNOWN_SHAPES[name]
    raise ConfigError(f"model {name}: no config.json here (not a folder, not in the Hugging Face cache) and not one "
                      f"of the shapes a plan knows ({', '.join(sorted(KNOWN_SHAPES))}); download its config.json "
                      "into a folder and give that folder")
