"""``llmrec train``: LoRA tuning with TRL on a prepared split, model selection on valid, test.

Run folder (``runs/<name>/``)::

    config.yaml          the resolved config (reloadable with --config)
    checkpoints/         TRL/transformers checkpoints (adapter, optimizer, scheduler, RNG)
    selection.json       validation AUC / LogLoss at every evaluation, and the best point
    best-adapter/        the best adapter so far (by validation)
    adapter/             the selected adapter (best on valid, or the last one)
    instruction/         the optional first stage (general instruction tuning)
    train_log.json       TRL's log history (loss, learning rate, ...)
    test/                ``llmrec evaluate`` run of the selected adapter on the test split
    metrics.json         training facts, selection, test metrics (the "finished" marker)

An interrupted run continues from its last checkpoint when started again with the same
config (the optimizer, schedule, RNG and data order are restored by transformers).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from llmrec.data.protocols import PreparedData
from llmrec.errors import ConfigError, DataError
from llmrec.evaluate import EvaluateConfig, evaluate, select_rows
from llmrec.io import atomic_directory, write_json
from llmrec.llm import AnswerTokens, EncodedPrompt, LoadedModel, load_model
from llmrec.prompts.build import PromptRenderer
from llmrec.runs import RunDir
from llmrec.train.config import InstructionStage, OptimSettings, TrainConfig
from llmrec.train.examples import Example, ctr_examples, instruction_examples, read_instruction_file, sample_indices
from llmrec.train.selection import ValidationSelector


def sft_config(optim: OptimSettings, output_dir: Path, seed: int, *, progress: bool = True, bf16: bool = False,
               epochs: float | None = None, learning_rate: float | None = None):
    """TRL's ``SFTConfig`` for these settings (no truncation: prompts are rendered within budget)."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(output_dir), num_train_epochs=epochs or optim.epochs, max_steps=optim.max_steps,
        per_device_train_batch_size=optim.batch_size, gradient_accumulation_steps=optim.grad_accum,
        learning_rate=learning_rate or optim.learning_rate, weight_decay=optim.weight_decay,
        warmup_steps=optim.warmup_steps, lr_scheduler_type=optim.lr_scheduler, max_grad_norm=optim.max_grad_norm,
        gradient_checkpointing=optim.gradient_checkpointing, logging_steps=optim.logging_steps,
        save_strategy="steps" if optim.save_steps else "epoch", save_steps=optim.save_steps or 500,
        save_total_limit=1, report_to="none", seed=seed, data_seed=seed, max_length=None, bf16=bf16,
        disable_tqdm=not progress, dataloader_num_workers=0,
    )


def make_trainer(model, tokenizer, examples: Sequence[Example], args, loss: str = "answer_only", callbacks=(),
                 peft_config=None):
    """An SFT trainer over pre-tokenized examples: ours (answer-only loss) or TRL's default."""
    from datasets import Dataset
    from trl import SFTTrainer

    from llmrec.train.trainer import AnswerOnlySFTTrainer, LeftPadCollator

    dataset = Dataset.from_list([e.as_dict() for e in examples])
    if loss == "answer_only":
        collator = LeftPadCollator(tokenizer.pad_token_id)
        return AnswerOnlySFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                                    data_collator=collator, callbacks=list(callbacks), peft_config=peft_config)
    return SFTTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer,
                      callbacks=list(callbacks), peft_config=peft_config)


def last_checkpoint(folder: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    return get_last_checkpoint(str(folder)) if folder.is_dir() else None


def _split(prepared: PreparedData, name: str, data: str) -> Any:
    if name not in prepared.splits:
        raise ConfigError(f"{data}: no split {name!r} (has: {', '.join(prepared.splits)})")
    return prepared.splits[name]


def _rows(table, renderer: PromptRenderer, indices) -> list[dict]:
    cols = [c for c in renderer.columns if c in table.column_names]
    if "label" not in cols:
        raise DataError("training samples need a 'label' column", field="label")
    return table.select(cols).take(list(map(int, indices))).to_pylist()


def train(config: TrainConfig, *, loaded: LoadedModel | None = None, log: Callable[[str], None] = print,
          progress: bool = True, callbacks: Sequence = ()) -> tuple[Path, dict]:
    """Train a LoRA adapter as ``config`` says; return (run folder, result)."""
    import torch
    from transformers import set_seed

    prepared = PreparedData.load(config.data)
    table = _split(prepared, config.split, config.data)
    if config.selection.enabled:
        _split(prepared, config.selection.split, config.data)
    n = config.train_samples or table.num_rows
    run = RunDir(config.run_dir or Path("runs") / RunDir.default_name("train", prepared.dataset, prepared.protocol, str(n)))
    run.start(config.model_dump(mode="json"), config.identity(), resume=config.resume)
    if run.finished:
        log(f"{run.path} is finished; metrics.json holds its results")
        import json

        return run.path, json.loads((run.path / "metrics.json").read_text())
    if not config.resume:
        shutil.rmtree(run.path / "checkpoints", ignore_errors=True)

    set_seed(config.seed)
    loaded = loaded or load_model(config.model)
    if loaded.backend != "transformers" or config.model.quantize != "none":
        raise ConfigError("training needs the transformers backend without quantization (model.backend, model.quantize)")
    tok = loaded.tokenizer
    prompt_kw = dict(template=config.template, history_k=config.history_k, max_tokens=config.max_prompt_tokens,
                     chat=config.chat, max_context=loaded.max_context)
    renderer = PromptRenderer.for_prepared(prepared, tok, split=config.split, **prompt_kw)
    seed = config.sample_seed if config.sample_seed is not None else config.seed
    rows = _rows(table, renderer, sample_indices(table.num_rows, config.train_samples, seed))
    first = renderer.render(rows[:1])[0][0]
    answer = AnswerTokens.for_prompt_end(tok, first.text, renderer.template.answer["yes"], renderer.template.answer["no"])
    examples = ctr_examples(rows, renderer, answer, config.answer_suffix)
    labels = np.array([int(r["label"]) for r in rows])
    log(f"{len(examples)} training samples from {config.data}/{config.split} (positive rate {labels.mean():.3f}, "
        f"mean {np.mean([len(e.input_ids) for e in examples]):.0f} tokens); answers {answer.yes_text!r}/{answer.no_text!r}")

    model = loaded.model
    bf16 = loaded.device.type == "cuda" and loaded.dtype == torch.bfloat16
    model = _base_adapter(model, tok, config, run.path, bf16, progress, log)

    selector = None
    if config.selection.enabled:
        selector = _selector(prepared, config, tok, answer, run.path, loaded, log, prompt_kw)
    args = sft_config(config.optim, run.path / "checkpoints", config.seed, progress=progress, bf16=bf16)
    trainer = make_trainer(model, tok, examples, args, config.optim.loss, [*(c for c in [selector] if c), *callbacks])
    resume_from = last_checkpoint(run.path / "checkpoints") if config.resume else None
    if resume_from:
        log(f"resuming from {resume_from}")
    t0 = time.perf_counter()
    out = trainer.train(resume_from_checkpoint=resume_from)
    train_s = time.perf_counter() - t0
    model = trainer.model

    best = selector.best() if selector else None
    chosen = run.path / "best-adapter" if best and (run.path / "best-adapter").exists() else None
    with atomic_directory(run.path / "adapter") as tmp:
        if chosen is not None:
            shutil.copytree(chosen, tmp, dirs_exist_ok=True)
        else:
            model.save_pretrained(tmp)
    if chosen is not None:
        from peft import load_peft_weights, set_peft_model_state_dict

        set_peft_model_state_dict(model, load_peft_weights(str(chosen)))
    write_json(run.path / "train_log.json", trainer.state.log_history)

    result: dict[str, Any] = {
        "dataset": prepared.dataset, "protocol": prepared.protocol, "split": config.split,
        "train": {"samples": len(examples), "sample_seed": seed, "seed": config.seed, "steps": trainer.state.global_step,
                  "epochs": trainer.state.epoch, "train_loss": out.training_loss, "train_s_this_session": round(train_s, 1),
                  "loss": config.optim.loss, "positive_rate": float(labels.mean()), "model": loaded.source},
        "selection": {"metric": config.selection.metric, "best": best,
                      "evaluations": selector.history if selector else []},
        "adapter": str(run.path / "adapter"),
    }
    if config.test.enabled:
        model.eval()
        test_data = config.test.data or config.data
        ecfg = EvaluateConfig(data=test_data, split=config.test.split, limit=config.test.limit,
                              template=config.template if test_data == config.data else None,
                              history_k=config.history_k, max_prompt_tokens=config.max_prompt_tokens, chat=config.chat,
                              model=config.model, adapter=str(run.path / "adapter"), scoring=config.scoring,
                              run_dir=str(run.path / "test"))
        scored = LoadedModel(model=model, tokenizer=tok, device=loaded.device, dtype=loaded.dtype,
                             source=f"{loaded.source} + adapter {run.path / 'adapter'}")
        _, test_result = evaluate(ecfg, loaded=scored, log=log, progress=progress)
        result["test"] = {"data": test_data, "split": config.test.split, **test_result["metrics"]}
        result["metrics"] = test_result["metrics"]
    else:
        result["metrics"] = {}
    result["run"] = {"prompts": len(examples)}
    run.finish(result)
    return run.path, result


def _base_adapter(model, tok, config: TrainConfig, path: Path, bf16: bool, progress: bool, log):
    """The trainable LoRA model: fresh, or after the optional instruction stage."""
    from peft import PeftModel, get_peft_model

    stage: InstructionStage = config.instruction
    if not stage.data:
        return get_peft_model(model, config.lora.to_peft())
    done = path / "instruction" / "adapter"
    if (done / "adapter_config.json").exists():
        log(f"instruction stage already done: {done}")
        return PeftModel.from_pretrained(model, str(done), is_trainable=True)
    records = read_instruction_file(stage.data)
    if stage.limit and stage.limit < len(records):
        records = [records[i] for i in sample_indices(len(records), stage.limit, config.seed)]
    renderer = PromptRenderer(kind="instruction", template=_alpaca(), tokenizer=tok, texts=None, history_k=None,
                              max_tokens=config.max_prompt_tokens, chat=config.chat == "on")
    examples = instruction_examples(records, renderer, stage.max_answer_tokens)
    log(f"instruction stage: {len(examples)} examples from {stage.data}")
    peft_model = get_peft_model(model, config.lora.to_peft())
    args = sft_config(config.optim, path / "instruction" / "checkpoints", config.seed, progress=progress, bf16=bf16,
                      epochs=stage.epochs, learning_rate=stage.learning_rate)
    trainer = make_trainer(peft_model, tok, examples, args, config.optim.loss)
    trainer.train(resume_from_checkpoint=last_checkpoint(path / "instruction" / "checkpoints") if config.resume else None)
    with atomic_directory(done) as tmp:
        trainer.model.save_pretrained(tmp)
    return trainer.model


def _alpaca():
    from llmrec.prompts import load_template

    return load_template("alpaca")


def _selector(prepared, config: TrainConfig, tok, answer, path: Path, loaded: LoadedModel, log, prompt_kw) -> ValidationSelector:
    sel = config.selection
    table = prepared.splits[sel.split]
    renderer = PromptRenderer.for_prepared(prepared, tok, split=sel.split, **prompt_kw)
    rows = _rows(table, renderer, select_rows(table, sel.limit, 0))
    prompts = [EncodedPrompt(p.context_ids, p.candidate_ids) for (p,) in renderer.render(rows)]
    labels = np.array([int(r["label"]) for r in rows])
    if len(set(labels.tolist())) < 2:
        raise DataError(f"{config.data}/{sel.split}: the validation subset has one class only; raise selection.limit")
    return ValidationSelector(prompts, labels, answer, path, metric=sel.metric, every_steps=sel.every_steps,
                              patience=sel.patience, scoring=config.scoring, pad_token_id=tok.pad_token_id,
                              at_start=sel.at_start, log=log)


def summarize_seeds(results: list[dict]) -> dict[str, Any]:
    """Mean, standard deviation and values of every numeric test metric over seeds.

    >>> summarize_seeds([{"metrics": {"auc": 0.6}}, {"metrics": {"auc": 0.7}}])["auc"]["mean"]
    0.65
    """
    keys = [k for k, v in results[0]["metrics"].items() if isinstance(v, (int, float))]
    out = {}
    for k in keys:
        values = [float(r["metrics"][k]) for r in results]
        out[k] = {"mean": round(float(np.mean(values)), 6), "std": round(float(np.std(values, ddof=1)) if len(values) > 1
                                                                        else 0.0, 6), "values": values}
    return out


def train_seeds(config: TrainConfig, seeds: Sequence[int], loader: Callable[[], LoadedModel] | None = None,
                **kwargs) -> tuple[Path, dict]:
    """One run per seed in ``<run_dir>/seed-<s>`` and ``summary.json`` with mean / std of the test metrics.

    Each seed gets a freshly loaded model (``loader()``, default: load ``config.model``).
    """
    if not seeds:
        raise ConfigError("give at least one seed")
    base = Path(config.run_dir or Path("runs") / RunDir.default_name("train", Path(config.data).name,
                                                                      str(config.train_samples or "all")))
    results = []
    for s in seeds:
        cfg = config.model_copy(update={"seed": s, "run_dir": str(base / f"seed-{s}")})
        results.append(train(cfg, loaded=loader() if loader else None, **kwargs)[1])
    summary = {"seeds": list(seeds), "runs": [str(base / f"seed-{s}") for s in seeds],
               "metrics": summarize_seeds(results) if results[0]["metrics"] else {},
               "valid_best": [r["selection"]["best"] for r in results]}
    write_json(base / "summary.json", summary)
    return base, summary
