"""``llmrec bench training``: seconds per LoRA step, TRL's defaults against the answer-only path.

Measured in one run, on one batch of TALLRec prompts (the same batch at every step), from
the same LoRA initialisation (r=8 on q/v by default):

* ``trl_default``: ``trl.SFTTrainer`` with its defaults (gradient checkpointing on, its own
  loss over the vocabulary at every position, token-accuracy and entropy metrics);
* ``trl_no_checkpointing``: the same with gradient checkpointing off;
* ``answer_only``: :class:`~llmrec.train.trainer.AnswerOnlySFTTrainer` (left padding, LM
  head only at the label positions, no checkpointing) -- what ``llmrec train`` uses;
* ``answer_only_shared``: the same with ``optim.shared_prefix`` (the batch's common instruction
  header run once per step, the tails against its keys and values).

Before timing, the loss of each path is computed on the batch without dropout; the values
must agree to 1e-4 (same loss, less work). The first step of each path is a warm-up and
not timed.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from llmrec.bench.machine import machine_info, peak_rss_mib


class _StepTimer:
    def __init__(self) -> None:
        self.marks: list[float] = []

    def callback(self):
        from transformers import TrainerCallback

        timer = self

        class Cb(TrainerCallback):
            def on_step_begin(self, args, state, control, **kw):
                timer.marks.append(time.perf_counter())

            def on_step_end(self, args, state, control, **kw):
                timer.marks.append(time.perf_counter())

        return Cb()

    def step_seconds(self) -> list[float]:
        return [self.marks[i + 1] - self.marks[i] for i in range(0, len(self.marks) - 1, 2)]


def run(data: str = "prepared/ml-100k-tallrec", model_name: str = "default", batch_size: int = 8, steps: int = 4,
        paths: tuple[str, ...] = ("trl_default", "trl_no_checkpointing", "answer_only", "answer_only_shared"),
        seed: int = 0,
        log=print) -> dict[str, Any]:
    import tempfile

    import torch
    from peft import get_peft_model

    from llmrec.data.prepared import PreparedData
    from llmrec.data.sampling import sample_indices
    from llmrec.llm import AnswerTokens, ModelConfig, load_model
    from llmrec.prompts.build import PromptRenderer
    from llmrec.train.adapters import LoraSettings
    from llmrec.train.config import OptimSettings
    from llmrec.train.examples import ctr_examples
    from llmrec.train.hf import make_trainer, sft_config
    from llmrec.train.trainer import LeftPadCollator, answer_only_loss

    prepared = PreparedData.load(data)
    t0 = time.perf_counter()
    loaded = load_model(ModelConfig(name=model_name))
    load_s = time.perf_counter() - t0
    tok = loaded.tokenizer
    renderer = PromptRenderer.for_prepared(prepared, tok, split="train")
    table = prepared.split("train")
    cols = [c for c in renderer.columns if c in table.column_names]
    rows = table.select(cols).take(sample_indices(table.num_rows, batch_size, seed).tolist()).to_pylist()
    first = renderer.render(rows[:1])[0][0]
    answer = AnswerTokens.for_prompt_end(tok, first.text, renderer.template.answer["yes"], renderer.template.answer["no"])
    examples = ctr_examples(rows, renderer, answer)
    n_tokens = sum(len(e.input_ids) for e in examples)
    log(f"batch of {len(examples)} prompts, {n_tokens} tokens (mean {n_tokens / len(examples):.0f}); "
        f"model loaded in {load_s:.1f} s")

    results: dict[str, Any] = {}
    losses: dict[str, float] = {}
    for name in paths:
        torch.manual_seed(seed)
        model = get_peft_model(loaded.model, LoraSettings().to_peft())
        # LoRA B starts at zero: give it a seeded non-zero value so the loss depends on the adapter
        with torch.no_grad():
            g = torch.Generator().manual_seed(seed)
            for pname, p in model.named_parameters():
                if "lora_B" in pname:
                    p.copy_(torch.randn(p.shape, generator=g) * 0.01)
        optim = OptimSettings(batch_size=batch_size, max_steps=steps, gradient_checkpointing=(name == "trl_default"),
                              loss="trl" if name.startswith("trl") else "answer_only", save_steps=10**6,
                              shared_prefix=name == "answer_only_shared")
        with tempfile.TemporaryDirectory() as tmp:
            args = sft_config(optim, tmp, seed, progress=False)
            args.save_strategy = "no"
            timer = _StepTimer()
            trainer = make_trainer(model, tok, examples, args, optim.loss, [timer.callback()],
                                   shared_prefix=optim.shared_prefix)
            model.eval()
            with torch.no_grad():
                if optim.loss == "answer_only":
                    batch = LeftPadCollator(tok.pad_token_id)([e.as_dict() for e in examples])
                    loss = answer_only_loss(model, batch, shared_prefix=optim.shared_prefix)
                else:
                    batch = trainer.data_collator([trainer.train_dataset[i] for i in range(len(examples))])
                    loss = trainer.compute_loss(model, batch)
            losses[name] = float(loss)
            model.train()
            trainer.train()
        secs = timer.step_seconds()[1:]
        per_step = float(np.median(secs))
        results[name] = {"s_per_step": round(per_step, 3), "tokens_per_s": round(n_tokens / per_step, 1),
                         "samples_per_s": round(len(examples) / per_step, 3), "loss": losses[name],
                         "step_seconds": [round(s, 3) for s in secs]}
        log(f"{name}: {per_step:.2f} s/step, {n_tokens / per_step:.0f} tokens/s, loss {losses[name]:.6f}")
        loaded.model = model.unload()  # drop the LoRA layers before the next path
    ref = results.get("trl_default") or next(iter(results.values()))
    for r in results.values():
        r["speedup_vs_trl_default"] = round(ref["s_per_step"] / r["s_per_step"], 2)
        r["loss_diff_vs_first"] = abs(r["loss"] - next(iter(losses.values())))
    return {"machine": machine_info(), "torch": torch.__version__, "model": loaded.source, "data": data,
            "batch_size": batch_size, "batch_tokens": n_tokens, "lora": LoraSettings().model_dump(), "results": results,
            "peak_rss_mib": round(peak_rss_mib(), 1)}
