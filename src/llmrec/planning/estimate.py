"""Memory and time of the three kinds of work a step does with a language model: LoRA training, scoring
(a forward pass per prompt, or per candidate on a shared context) and generation (summaries).

Each function returns a :class:`Estimate`: memory per device as named parts in bytes, FLOPs, and seconds at the
device's peak rate times :data:`~llmrec.planning.devices.EFFICIENCY`. The formulas (docs/plan.md):

* weights: parameters x bytes of the dtype (sharded over the GPUs by ZeRO-3 / FSDP);
* LoRA: trainable parameters x 16 bytes (float32 weight, gradient and two AdamW moments; ZeRO-2/3 shard the last
  three);
* activations kept for the backward pass, per token and layer, in the compute dtype: the two norms' inputs, the
  queries, keys and values and the attention output, the gated MLP's three intermediate tensors, and each LoRA
  target's input (frozen weights keep no input); eager attention also keeps its probabilities (heads x length^2,
  float32). Gradient checkpointing keeps one hidden state per layer and one layer's activations at a time; on a
  CPU the allocator also keeps the forward's freed intermediates (``Device.activation_factor``);
* scoring: one layer's intermediate tensors at a time plus the keys and values of a shared context, repeated over
  the candidates of a pass; generation: the keys and values of every row's prompt and new tokens;
* FLOPs: 2 x non-embedding parameters per token forward, twice that again backward (input gradients only: the
  frozen weights get none), once more with checkpointing; attention adds 4 x layers x length x width per token.

>>> from llmrec.planning.shapes import KNOWN_SHAPES
>>> from llmrec.planning.devices import DEVICES
>>> e = train_estimate(KNOWN_SHAPES["meta-llama/Llama-2-7b-hf"], DEVICES["h100"], "bfloat16", batch=8,
...                    max_tokens=512, mean_tokens=400, steps=100, lora_r=8, lora_targets=("q_proj", "v_proj"))
>>> round(e.parts["weights"] / 2**30, 2), round(e.parts["lora + optimizer"] / 2**20, 1)
(12.55, 64.0)
>>> e.fits
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

from llmrec.planning.devices import EFFICIENCY, Device
from llmrec.planning.shapes import ModelShape

__all__ = ["DTYPE_BYTES", "Estimate", "generate_estimate", "score_estimate", "train_estimate"]

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2, "int8": 1, "auto": 2}
GIB = 2**30


@dataclass
class Estimate:
    """Memory per device (named parts, bytes), FLOPs and seconds of one piece of work."""

    what: str
    device: Device
    parts: dict[str, float] = field(default_factory=dict)
    flops: float = 0.0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> float:
        return sum(self.parts.values())

    @property
    def gib(self) -> float:
        return self.bytes / GIB

    @property
    def fits(self) -> bool:
        return self.gib <= self.device.memory_gib


def _rate(device: Device, dtype: str, phase: str) -> float:
    """FLOP/s the device reaches in ``phase`` for weights of ``dtype``."""
    return device.tflops(dtype) * 1e12 * EFFICIENCY[(device.kind, phase)]


def _act_bytes(dtype: str) -> int:
    return 4 if dtype == "float32" else 2


def _attention_flops(shape: ModelShape, tokens: float, length: float) -> float:
    """Scores and weighted sums: 2 x 2 x length x q_width per token and layer (forward)."""
    return 4 * shape.layers * tokens * length * shape.q_width


def _activations_per_token_layer(shape: ModelShape, lora_in: int) -> int:
    """Elements one token keeps per layer for the backward pass (see the module docs)."""
    return 2 * shape.hidden + 2 * shape.q_width + 2 * shape.kv_width + 3 * shape.intermediate + lora_in


def _layer_in_flight(shape: ModelShape, act_bytes: int, batch: int, tokens: int, attended: int, eager: bool) -> int:
    """Bytes of one layer's intermediate tensors in an inference forward of ``batch`` x ``tokens`` (each token
    attending to ``attended`` positions; ``eager``: the attention probabilities are materialised, float32)."""
    width = 2 * shape.hidden + shape.q_width + 2 * shape.kv_width + 3 * shape.intermediate
    probs = 2 * shape.heads * attended * 4 if eager else 0
    return batch * tokens * (width * act_bytes + probs)


def train_estimate(shape: ModelShape, device: Device, dtype: str, *, batch: int, max_tokens: int, mean_tokens: float,
                   steps: int, lora_r: int, lora_targets: tuple[str, ...], gradient_checkpointing: bool = False,
                   eager_attention: bool = False, gpus: int = 1, sharding: str = "none",
                   answer_tokens: int = 3) -> Estimate:
    """One LoRA training run of ``steps`` optimizer steps of ``batch`` sequences per device (``max_tokens`` the
    longest, ``mean_tokens`` on average); ``sharding``: none (DDP), zero2, zero3 or fsdp; ``eager_attention``:
    the attention probabilities are kept (eager attention, or PyTorch's math kernel on a CPU); ``answer_tokens``:
    the positions whose logits the loss reads (the whole sequence for a language-modelling loss)."""
    e = Estimate("train", device)
    wb, ab = DTYPE_BYTES[dtype], _act_bytes(dtype)
    full_shard = sharding in ("zero3", "fsdp")
    e.parts["weights"] = shape.parameters * wb / (gpus if full_shard else 1)
    lora = shape.lora_parameters(lora_r, lora_targets)
    shard = gpus if sharding in ("zero2", "zero3", "fsdp") else 1
    e.parts["lora + optimizer"] = lora * (4 + 12 / shard)
    lora_in = sum(shape.module_shape(m)[0] for m in lora_targets)
    per_layer = _activations_per_token_layer(shape, lora_in) * ab
    scores = (2 * shape.heads * max_tokens * 4) if eager_attention else 0  # per token: a row of probabilities
    tokens = batch * max_tokens  # padded to the longest of the batch
    if gradient_checkpointing:
        e.parts["activations"] = tokens * (shape.layers * shape.hidden * ab + per_layer + scores)
    else:
        e.parts["activations"] = tokens * shape.layers * (per_layer + scores)
    e.parts["activations"] *= device.activation_factor
    vocab_rows = batch * answer_tokens * shape.vocab * 4 * 3  # float32 logits, their softmax and gradient
    e.parts["logits"] = vocab_rows
    e.parts["framework"] = device.overhead_gib * GIB
    forward = 2 * shape.non_embedding_parameters * mean_tokens + _attention_flops(shape, mean_tokens, mean_tokens / 2)
    per_sequence = forward * (3 if gradient_checkpointing else 2)
    e.flops = per_sequence * batch * steps * gpus
    e.seconds = e.flops / (_rate(device, dtype, "train") * gpus)
    return e


def score_estimate(shape: ModelShape, device: Device, dtype: str, *, prompts: int, batch: int, max_tokens: int,
                   computed_tokens: float, context_tokens: int = 0, gpus: int = 1,
                   eager_attention: bool = False) -> Estimate:
    """Scoring ``prompts`` prompts in passes of ``batch``: ``computed_tokens`` the tokens actually run (a shared
    context or prefix counted once), ``context_tokens`` the longest context whose keys and values a pass reuses;
    ``eager_attention``: one layer's attention probabilities are materialised (eager attention, or PyTorch's math
    kernel on a CPU)."""
    e = Estimate("score", device)
    wb, ab = DTYPE_BYTES[dtype], _act_bytes(dtype)
    e.parts["weights"] = shape.parameters * wb
    e.parts["kv cache"] = shape.kv_bytes_per_token(ab) * context_tokens * (batch + 1)
    e.parts["activations"] = _layer_in_flight(shape, ab, batch, max_tokens, max_tokens + context_tokens,
                                              eager_attention)
    e.parts["framework"] = device.overhead_gib * GIB
    e.flops = 2 * shape.non_embedding_parameters * computed_tokens + _attention_flops(
        shape, computed_tokens, max_tokens / 2)
    e.seconds = e.flops / (_rate(device, dtype, "score") * gpus)
    return e


def generate_estimate(shape: ModelShape, device: Device, dtype: str, *, prompts: int, batch: int,
                      prompt_tokens: float, max_prompt_tokens: int, new_tokens: int, gpus: int = 1,
                      eager_attention: bool = False) -> Estimate:
    """Generating ``new_tokens`` for each of ``prompts`` prompts in batches of ``batch``: a prefill at the
    compute rate, then one decoding step per new token that reads every weight once (bandwidth-bound) unless the
    batch makes it compute-bound."""
    e = Estimate("generate", device)
    wb, ab = DTYPE_BYTES[dtype], _act_bytes(dtype)
    e.parts["weights"] = shape.parameters * wb
    e.parts["kv cache"] = shape.kv_bytes_per_token(ab) * batch * (max_prompt_tokens + new_tokens)
    e.parts["activations"] = _layer_in_flight(shape, ab, batch, max_prompt_tokens, max_prompt_tokens,
                                              eager_attention)
    e.parts["logits"] = batch * shape.vocab * 4 * 2
    e.parts["framework"] = device.overhead_gib * GIB
    prefill = 2 * shape.non_embedding_parameters * prompt_tokens * prompts
    decode = 2 * (shape.non_embedding_parameters + shape.vocab * shape.hidden) * new_tokens * prompts
    e.flops = prefill + decode
    batches = -(-prompts // batch)
    step_read = shape.parameters * wb / (device.bandwidth_gbs * 1e9)  # one decoding step reads every weight
    step_compute = 2 * (shape.non_embedding_parameters + shape.vocab * shape.hidden) * batch / _rate(
        device, dtype, "score")
    e.seconds = (prefill / _rate(device, dtype, "prefill") + batches * new_tokens * max(step_read, step_compute)) / gpus
    return e
