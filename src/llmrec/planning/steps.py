"""The plan of one step: its parts (training, the selection passes, the test pass, summaries, item encoding), each
with memory per device and time, from the model's shape (:mod:`~llmrec.planning.shapes`), the prompt lengths of the
step's own prepared data (:mod:`~llmrec.planning.tokens`) and the device's peak rate
(:mod:`~llmrec.planning.devices`); for a part that does not fit, the settings that would (:func:`fit_advice`).
Configs come in as they are (a TrainConfig, an EvaluateConfig, a SummarizeConfig, a RetrieveConfig); a whole
config file or experiment: :func:`llmrec.experiments.resources.plan_file`.

>>> from llmrec.planning.devices import DEVICES
>>> from llmrec.planning.shapes import KNOWN_SHAPES
>>> from llmrec.planning.estimate import train_estimate
>>> e = train_estimate(KNOWN_SHAPES["lmsys/vicuna-13b-v1.5"], DEVICES["l4"], "bfloat16", batch=8, max_tokens=900,
...                    mean_tokens=700, steps=10, lora_r=8, lora_targets=("q_proj", "v_proj"))
>>> e.fits
False
>>> fit_advice(e, _train_retry(KNOWN_SHAPES["lmsys/vicuna-13b-v1.5"], DEVICES["l4"], "bfloat16", 900, 700, 8,
...                                                                    ("q_proj", "v_proj"), 1, "none"), batch=8)
'does not fit: 24.2 GiB of weights alone on a 24 GiB l4; try 2 GPUs with --sharding zero3 (or fsdp), or a larger GPU'
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmrec.planning.devices import Device
from llmrec.planning.estimate import GIB, Estimate, generate_estimate, score_estimate, train_estimate
from llmrec.planning.shapes import ModelShape, model_shape
from llmrec.planning.tokens import FAMILY_FACTOR, TokenStats, prompt_stats

__all__ = ["PlanRow", "fit_advice", "plan_config", "totals"]


@dataclass
class PlanRow:
    """One part of one step: its estimate, or why there is none (a classic model, data made by a step)."""

    step: str
    part: str
    estimate: Estimate | None
    detail: str = ""
    advice: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        return self.estimate is None or self.estimate.fits


def _eager(model, device: Device) -> bool:
    """Attention probabilities materialised: eager attention, or PyTorch's math kernel on a CPU."""
    return device.kind == "cpu" or getattr(model, "attn_implementation", None) == "eager"


def _dtype(model, device: Device) -> str:
    dtype = getattr(model, "dtype", "auto") or "auto"
    if dtype == "auto":
        return "float32" if device.kind == "cpu" else "bfloat16"
    return "int8" if getattr(model, "quantize", "none") == "int8" else dtype


def _own_tokenizer(model) -> bool:
    """The model's own tokenizer is here to count prompt tokens with (the default model, a local folder)."""
    return model.name == "default" or Path(model.name).is_dir()


def _shape(model) -> tuple[ModelShape, float]:
    shape = model_shape(model.name)
    return shape, 1.0 if _own_tokenizer(model) else FAMILY_FACTOR.get(shape.family, 1.0)


def _stats(settings, data: str, split: str, model, factor: float, training: bool = False,
           negatives: int | None = 1) -> TokenStats:
    name = model.name if _own_tokenizer(model) else "default"
    return prompt_stats(settings, data, split, model_name=name, training=training,
                        negatives=negatives).scaled(factor)


def _rows(data: str, split: str, limit: int | None) -> int:
    from llmrec.data.prepared import PreparedData

    n = PreparedData.load(data).num_rows(split)
    return min(n, limit) if limit else n


def _train_retry(shape, device, dtype, max_tokens, mean_tokens, r, targets, gpus, sharding,
                 eager: bool = False) -> Callable[..., Estimate]:
    def retry(batch: int, checkpointing: bool) -> Estimate:
        return train_estimate(shape, device, dtype, batch=batch, max_tokens=max_tokens, mean_tokens=mean_tokens,
                              steps=1, lora_r=r, lora_targets=targets, gradient_checkpointing=checkpointing,
                              gpus=gpus, sharding=sharding, eager_attention=eager)
    return retry


def fit_advice(estimate: Estimate, retry: Callable[[int, bool], Estimate], batch: int) -> str:
    """'' when ``estimate`` fits; else the first smaller batch / gradient checkpointing setting that fits
    (``retry(batch, checkpointing)``), or what it would take when the weights alone do not fit."""
    if estimate.fits:
        return ""
    d = estimate.device
    fixed = estimate.parts.get("weights", 0) + estimate.parts.get("framework", 0)
    if fixed / GIB > d.memory_gib:
        need = math.ceil(estimate.parts["weights"] / max(d.memory_gib * GIB * 0.8 - estimate.parts["framework"], 1))
        return (f"does not fit: {estimate.parts['weights'] / GIB:.1f} GiB of weights alone on a "
                f"{d.memory_gib:g} GiB {d.name}; try {max(need, 2)} GPUs with --sharding zero3 (or fsdp), or a "
                "larger GPU")
    halvings = [batch >> k for k in range(batch.bit_length())]  # batch, batch / 2, ..., 1
    # the cheapest change first: a smaller batch (same FLOPs) down to a quarter, then checkpointing (a third
    # more FLOPs) at the largest batch that fits, then any smaller batch
    tries = [(b, False) for b in halvings[:3]] + [(b, True) for b in halvings] + [(b, False) for b in halvings[3:]]
    for b, checkpointing in tries:
        if retry(b, checkpointing).fits:
            how = [f"batch {b} (grad_accum x{batch // b} keeps the effective batch)"] if b < batch else []
            how += ["gradient checkpointing"] if checkpointing else []
            return f"does not fit: {estimate.gib:.1f} GiB on a {d.memory_gib:g} GiB {d.name}; try {' + '.join(how)}"
    return (f"does not fit: {estimate.gib:.1f} GiB on a {d.memory_gib:g} GiB {d.name} even at batch 1 with "
            "gradient checkpointing; shorten the prompts (max_prompt_tokens, history_k) or use a larger GPU")


def _score_row(step: str, part: str, shape, device, dtype, settings, data, split, limit, model, factor, scoring,
               gpus) -> PlanRow:
    stats = _stats(settings, data, split, model, factor)
    rows = _rows(data, split, limit)
    reuse = getattr(scoring, "prefix_reuse", "auto") == "auto"
    per_pass = min(scoring.batch_size, scoring.max_candidates_per_pass) if stats.per_row > 1 else scoring.batch_size
    e = score_estimate(shape, device, dtype, prompts=int(rows * stats.per_row), batch=per_pass, max_tokens=stats.max,
                       computed_tokens=stats.computed_tokens(rows, reuse, per_pass),
                       context_tokens=int(stats.mean_context) if reuse and stats.per_row > 1 else 0, gpus=gpus,
                       eager_attention=_eager(model, device))

    def retry(batch: int, _checkpointing: bool) -> Estimate:
        return score_estimate(shape, device, dtype, prompts=1, batch=batch, max_tokens=stats.max, computed_tokens=0,
                              context_tokens=e.parts["kv cache"] and int(stats.mean_context), gpus=gpus,
                              eager_attention=_eager(model, device))

    detail = f"{rows:,} rows x {stats.per_row:g} prompts, {stats.mean:.0f} tokens (max {stats.max}), batch {per_pass}"
    return PlanRow(step, part, e, detail, fit_advice(e, retry, per_pass))


def plan_train(config, device: Device, step: str = "train", gpus: int = 1, sharding: str = "none") -> list[PlanRow]:
    """Training, the selection passes and the test pass of a :class:`~llmrec.train.TrainConfig`."""
    shape, factor = _shape(config.model)
    dtype = _dtype(config.model, device)
    stats = _stats(config, config.data, config.split, config.model, factor, training=True,
                   negatives=config.ranking_negatives)
    samples = _rows(config.data, config.split, config.train_samples)
    examples = round(samples * (1 + len(config.mix_data)) * stats.per_row)  # a list gives one example per kept candidate
    o = config.optim
    per_step = o.batch_size * o.grad_accum * gpus
    steps = o.max_steps if o.max_steps > 0 else math.ceil(math.ceil(examples / per_step) * o.epochs)
    e = train_estimate(shape, device, dtype, batch=o.batch_size, max_tokens=stats.max,
                       mean_tokens=stats.padded_mean(o.batch_size),
                       steps=steps * o.grad_accum, lora_r=config.lora.r, lora_targets=tuple(config.lora.target_modules),
                       gradient_checkpointing=o.gradient_checkpointing, gpus=gpus, sharding=sharding,
                       eager_attention=_eager(config.model, device))
    retry = _train_retry(shape, device, dtype, stats.max, stats.mean, config.lora.r,
                         tuple(config.lora.target_modules), gpus, sharding, _eager(config.model, device))
    rows = [PlanRow(step, "train", e, f"{examples:,} examples, {steps:,} steps of {o.batch_size} x {o.grad_accum} "
                    f"x {gpus} GPU, {stats.mean:.0f} tokens (max {stats.max})", fit_advice(e, retry, o.batch_size))]
    sel = config.selection
    if sel.metric is not None or sel.limit:
        evaluations = (1 if sel.at_start else 0) + (math.ceil(steps / sel.every_steps) if sel.every_steps
                                                    else math.ceil(o.epochs))
        r = _score_row(step, f"selection x{evaluations}", shape, device, dtype, config, config.data,
                       sel.split, sel.limit, config.model, factor, config.scoring, gpus)
        r.estimate.flops *= evaluations
        r.estimate.seconds *= evaluations
        rows.append(r)
    test_data = config.test.data or config.data
    rows.append(_score_row(step, "test", shape, device, dtype, config, test_data, config.test.split,
                           config.test.limit, config.model, factor, config.scoring, gpus))
    return rows


def plan_evaluate(config, device: Device, step: str = "evaluate", gpus: int = 1) -> list[PlanRow]:
    shape, factor = _shape(config.model)
    return [_score_row(step, "score", shape, device, _dtype(config.model, device), config, config.data,
                       config.split, config.limit, config.model, factor, config.scoring, gpus)]


def plan_summarize(config, device: Device, step: str = "summarize", gpus: int = 1) -> list[PlanRow]:
    """Summary prompts: a block prompt per ``block_size`` history items (hierarchical: plus merge prompts up the
    levels), each up to ``max_prompt_tokens``, ``generation.max_new_tokens`` new tokens each."""
    from llmrec.data.prepared import PreparedData
    from llmrec.summarize.plan import blocks, hierarchy_levels
    from llmrec.summarize.transform import kept_rows

    shape, factor = _shape(config.model)
    dtype = _dtype(config.model, device)
    prepared = PreparedData.load(config.data)
    users: dict[str, int] = {}  # a user's longest history over the kept rows: one summary each
    for split, indices in kept_rows(prepared, config).items():
        table = prepared.split(split, ["user", "history_items"]).take(indices).to_pylist()
        for row in table:
            users[str(row["user"])] = max(users.get(str(row["user"]), 0), len(row["history_items"] or []))
    prompts = 0
    for n in users.values():
        b = len(blocks(list(range(n)), config.block_size)) or 1
        levels = hierarchy_levels(b, config.fan_in or b) if config.mode == "hierarchical" and b > 1 else [b]
        prompts += sum(levels) if config.mode == "hierarchical" else b
    prompt_tokens = min(config.max_prompt_tokens, (120 + config.block_size * config.item_tokens * 0.6) * factor)
    # a batch is length-sorted and padded to its longest prompt: well under the budget unless merges are long
    longest = int(min(config.max_prompt_tokens, 1.5 * prompt_tokens))
    g = config.generation
    eager = _eager(config.model, device)
    e = generate_estimate(shape, device, dtype, prompts=prompts, batch=g.batch_size, prompt_tokens=prompt_tokens,
                          max_prompt_tokens=longest, new_tokens=g.max_new_tokens, gpus=gpus,
                          eager_attention=eager)

    def retry(batch: int, _checkpointing: bool) -> Estimate:
        return generate_estimate(shape, device, dtype, prompts=1, batch=batch, prompt_tokens=prompt_tokens,
                                 max_prompt_tokens=longest, new_tokens=g.max_new_tokens,
                                 eager_attention=eager)

    detail = (f"{len(users):,} users, {prompts:,} prompts ({config.mode}) of ~{prompt_tokens:.0f} tokens, "
              f"{g.max_new_tokens} new tokens each, batch {g.batch_size}")
    return [PlanRow(step, "summaries", e, detail, fit_advice(e, retry, g.batch_size))]


def plan_retrieve(config, device: Device, step: str = "retrieve", gpus: int = 1) -> list[PlanRow]:
    """The item encoding SUBR needs (a forward pass over every item text; cached and shared)."""
    from llmrec.data.prepared import PreparedData

    model = config.encoder.model
    shape, factor = _shape(model)
    items = len(PreparedData.load(config.data).items)
    tokens = 16 * factor  # mean item text (title, genres) in tokens: 15.9 for ML-1M with Gemma's tokenizer
    e = score_estimate(shape, device, _dtype(model, device), prompts=items, batch=32, max_tokens=int(4 * tokens),
                       computed_tokens=items * tokens, gpus=gpus)
    return [PlanRow(step, "item encoding", e, f"{items:,} items of ~{tokens:.0f} tokens")]


PLANNERS: dict[str, Callable[..., list[PlanRow]]] = {"train": plan_train, "evaluate": plan_evaluate,
                                                     "summarize": plan_summarize, "retrieve": plan_retrieve}


def plan_config(kind: str, config, device: Device, step: str | None = None, gpus: int = 1,
                sharding: str = "none") -> list[PlanRow]:
    """The rows of one step of ``kind`` (train, evaluate, summarize, retrieve); other kinds (a classic baseline,
    a stack, data preparation) run without a language model and get one row without an estimate."""
    planner = PLANNERS.get(kind)
    if planner is None:
        return [PlanRow(step or kind, kind, None, "no language model (CPU, minutes): not planned")]
    extra = {"sharding": sharding} if kind == "train" else {}
    return planner(config, device, step=step or kind, gpus=gpus, **extra)


def totals(rows: list[PlanRow]) -> dict[str, Any]:
    """Peak memory over the rows and the summed hours."""
    est = [r.estimate for r in rows if r.estimate is not None]
    return {"peak_gib": max((e.gib for e in est), default=0.0), "hours": sum(e.seconds for e in est) / 3600,
            "fits": all(r.fits for r in rows)}
