"""``llmrec train``: LoRA tuning with TRL on a prepared split, model selection on valid, test.

Run folder (``runs/<name>/``)::

    config.yaml          the resolved config (reloadable with --config)
    checkpoints/         TRL/transformers checkpoints (adapter, optimizer, scheduler, RNG)
    train_samples.json   the training rows: split, seed of the draw, row indices and sample ids
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from llmrec.data.kinds import SampleKind, detect
from llmrec.data.prepared import PreparedData, open_prepared
from llmrec.data.sampling import TRAIN_SAMPLES_FILE, sample_indices, subset_rows, training_rows_record
from llmrec.distributed import barrier, main_first, world
from llmrec.errors import ConfigError, DataError
from llmrec.evaluate import check_evaluate, evaluate
from llmrec.io import atomic_directory, write_json
from llmrec.llm import AnswerTokens, EncodedPrompt, LoadedModel, check_model, get_backend, load_model, sharding
from llmrec.prompts.build import PromptRenderer
from llmrec.runs import RunDir, machine_info, summarize_seeds
from llmrec.tracking import start_tracking
from llmrec.train.adapters import save_adapter
from llmrec.train.config import InstructionStage, TrainConfig
from llmrec.train.curves import TRAIN_ARTIFACTS, summary_metrics, tracking_callback, train_curves
from llmrec.train.examples import ctr_examples, instruction_examples, read_instruction_file
from llmrec.train.hf import last_checkpoint, make_trainer, mixed_precision, run_train_loss, sft_config, whole_run_log


@dataclass(frozen=True)
class TrainPlan:
    """What :func:`check_train` settled; :func:`train` runs from it (no folder is opened or checked twice)."""

    config: TrainConfig
    prepared: PreparedData  # the training data
    kind: SampleKind  # of its training split
    indices: np.ndarray  # the few-shot rows of the training split (every row without ``train_samples``)
    mixes: tuple[PreparedData, ...]  # ``mix_data``: the same samples, other views (ReiT)
    hashes: dict[str, str]  # content hashes of every folder read: part of the run's identity
    test: PreparedData | None  # the folder the test split is scored from (``test.data``, or the training data)
    opened: dict[str, PreparedData] = field(default_factory=dict, compare=False, repr=False)  # by path
    collab: Any = field(default=None, compare=False, repr=False)  # the collaborative tables (``collab:``), checked

    @property
    def sample_seed(self) -> int:
        return self.config.sample_seed if self.config.sample_seed is not None else self.config.seed


def check_train(config: TrainConfig, *, model: bool = True, opened: dict[str, PreparedData] | None = None) -> TrainPlan:
    """Every cheap check, before the run folder exists; returns the plan :func:`train` runs.

    ``model=False`` skips the model checks (the caller brings a loaded model); ``opened`` shares the prepared
    folders already opened in this command (by path: the seeds of :func:`train_seeds` open each folder once)."""
    opened = {} if opened is None else opened
    prepared = open_prepared(config.data, opened)
    n_rows = prepared.num_rows(config.split)
    kind = detect(prepared.column_names(config.split))
    if kind.lists and config.mix_data:
        raise ConfigError(f"mix_data: mixing views is for samples with one target; {kind.name} samples train on "
                          f"their {kind.train_as} view alone")
    if config.selection.enabled:
        sel_kind = detect(prepared.column_names(config.selection.split))
        sel_kind.check_metric(config.selection.metric_for(sel_kind), "selection.metric")
    if config.train_samples and config.train_samples > n_rows:
        raise ConfigError(f"train_samples: cannot draw {config.train_samples} samples from {config.data}/{config.split}, "
                          f"which has {n_rows:,}; use at most {n_rows:,}")
    seed = config.sample_seed if config.sample_seed is not None else config.seed
    indices = sample_indices(n_rows, config.train_samples, seed)
    hashes = {"data": prepared.fingerprint()}
    mixes = check_mix(config, prepared, opened)
    for i, mix in enumerate(mixes):
        hashes[f"mix{i}"] = mix.fingerprint()
    test_data = None
    if config.test.enabled:
        test_data = open_prepared(config.test.data, opened) if config.test.data else prepared
        test_data.num_rows(config.test.split)  # the split exists
        if config.test.data:
            hashes["test"] = test_data.fingerprint()
    if config.instruction.data:
        read_instruction_file(config.instruction.data)
    config.tracking.check()
    # the test split is scored with this template only when it is the training data (else its own default)
    config.check_template(prepared, *([test_data] if test_data is not None and config.test.data in (None, config.data) else []),
                          collab=config.collab is not None)
    tables = None
    if config.collab is not None:
        from llmrec.train.collab import adapter_weights_hash, check_collab

        tables = check_collab(config, hashes, bool(config.test.data) and config.test.data != config.data)
        hashes["collab"] = tables.source["weights_sha256"]
        if config.collab.adapter_from:
            hashes["adapter_from"] = adapter_weights_hash(config.collab.adapter_from)
    if model:
        check_model(config.model, train=True)
        if config.optim.mixed_precision in ("fp16", "bf16"):
            from llmrec.llm.hf import resolve_device

            mixed_precision(config.optim, resolve_device(config.model.device), None)
    return TrainPlan(config, prepared, kind, indices, tuple(mixes), hashes, test_data, opened, tables)


def _rows(prepared: PreparedData, split: str, indices, ranking_negatives: int | None = 1) -> list[dict]:
    """The training rows of ``split`` at ``indices`` (only the columns prompts read): candidate lists as their CTR
    view."""
    names = prepared.column_names(split)
    kind = detect(names)
    table = prepared.split(split, columns=[c for c in kind.prompt_columns if c in names])
    return kind.training_rows(table.take(list(map(int, indices))).to_pylist(), ranking_negatives)


def check_mix(config: TrainConfig, prepared: PreparedData, opened: dict[str, PreparedData] | None = None
              ) -> list[PreparedData]:
    """The ``mix_data`` folders, each checked to hold the same samples as ``data`` (other views of them: the same
    ``sample_id`` and ``label`` row by row; only those two columns are read)."""
    out = []
    key = ["sample_id", "label"]
    mine = None
    for path in config.mix_data:
        mix = open_prepared(path, opened)
        names = mix.column_names(config.split)
        same = set(key) <= set(names) and mix.num_rows(config.split) == prepared.num_rows(config.split)
        if same:
            mine = mine if mine is not None else prepared.split(config.split, columns=key)
            same = mix.split(config.split, columns=key).equals(mine)
        if not same:
            raise ConfigError(f"mix_data: {path}/{config.split} does not hold the same samples as {config.data}/"
                              f"{config.split} (sample_id and label must match row by row); mix a folder made from "
                              "the same prepared data, e.g. with llmrec retrieve")
        out.append(mix)
    return out


def train(config: TrainConfig | TrainPlan, *, loaded: LoadedModel | None = None, log: Callable[[str], None] = print,
          progress: bool = True, callbacks: Sequence = ()) -> tuple[Path, dict]:
    """Train a LoRA adapter as ``config`` says (a config, checked here, or the plan :func:`check_train` returned);
    return (run folder, result).

    Everything cheap (data, splits, shot count, template, model, device) is checked before the
    run folder is created, so a run that fails these checks leaves nothing behind. Example (TALLRec,
    LoRA on 64 samples, then the test split scored with the adapter)::

        import llmrec

        folder, result = llmrec.train(llmrec.TrainConfig(data="prepared/ml-100k-tallrec", train_samples=64))
        result["metrics"]["auc"]
    """
    plan = config if isinstance(config, TrainPlan) else check_train(config, model=loaded is None)
    config, prepared, kind, indices = plan.config, plan.prepared, plan.kind, plan.indices
    n = config.train_samples or prepared.num_rows(config.split)

    def open_run():  # the main process names, creates or checks the folder; under a launcher the others only read it
        path = config.run_dir or Path("runs") / RunDir.default_name("train", prepared.dataset, prepared.protocol, str(n))
        opened = RunDir.open(path, config.model_dump(mode="json"), config.identity(plan.hashes),
                             resume=config.resume, log=log)
        if opened[1] is None and not config.resume:
            shutil.rmtree(Path(path) / "checkpoints", ignore_errors=True)
        return opened

    run, finished = main_first(open_run)
    tracking = start_tracking(config.tracking, run.path, command="train", identity=config.identity(plan.hashes),
                              tags={"llmrec.dataset": prepared.dataset, "llmrec.protocol": prepared.protocol}, log=log)
    if finished is not None:
        tracking.finish(finished, curves=train_curves(run.path), metrics=summary_metrics(finished),
                        artifacts=TRAIN_ARTIFACTS)
        return run.path, finished

    from transformers import set_seed

    from llmrec.llm.hf import resolve_device, resolve_dtype

    set_seed(config.seed)
    device = loaded.device if loaded else resolve_device(config.model.device)
    dtype = loaded.dtype if loaded else resolve_dtype(config.model.dtype, device)
    precision = mixed_precision(config.optim, device, dtype)
    # before the model loads: under a DeepSpeed ZeRO-3 launch, transformers then partitions the weights as they load
    args = sft_config(config.optim, run.path / "checkpoints", config.seed, progress=progress and world().main,
                      precision=precision, use_cpu=device.type == "cpu")
    if loaded is None:  # on a GPU: stop here, with the plan's advice, when the step cannot fit
        from llmrec.planning.guard import check_fits

        check_fits("train", config, device, world_size=world().size, log=log)
    loaded = loaded or load_model(config.model)
    if not get_backend(loaded.backend).trainable:
        raise ConfigError(f"model.backend: {loaded.backend!r} cannot be trained")
    tok = loaded.tokenizer
    collab = None
    if plan.collab is not None:  # the tables and a fresh mapper behind the input embeddings
        from llmrec.llm.collab import install_collab

        collab = install_collab(loaded.model, plan.collab, config.collab.mapper.hidden)
        loaded.collab = collab
    renderer = config.renderer(prepared, tok, config.split, loaded.max_context, kind=kind.train_as, collab=collab)
    seed = plan.sample_seed
    rows = _rows(prepared, config.split, indices, config.ranking_negatives)
    if world().main:  # which rows it trains on (the few-shot draw), for audits and for comparing runs
        write_json(run.path / TRAIN_SAMPLES_FILE, training_rows_record(prepared, config.split, indices, seed))
    answer = AnswerTokens.for_renderer(renderer, rows[0])
    examples = ctr_examples(rows, renderer, answer, config.answer_suffix)
    labels = np.array([int(r["label"]) for r in rows])
    for mix in plan.mixes:  # ReiT: the same samples, another view
        mix_renderer = config.renderer(mix, tok, config.split, loaded.max_context, collab=collab)
        examples += ctr_examples(_rows(mix, config.split, indices), mix_renderer, answer, config.answer_suffix)
    sources = " + ".join([config.data, *config.mix_data])
    if kind.train_as is not None:
        sources += f", the {kind.train_as} view of {len(indices)} {kind.name} samples"
    log(f"{len(examples)} training examples ({len(rows)} samples from {sources}, split {config.split}; positive rate "
        f"{labels.mean():.3f}, mean {np.mean([len(e.input_ids) for e in examples]):.0f} tokens); answers "
        f"{answer.yes_text!r}/{answer.no_text!r}")

    model = loaded.model
    config.lora.check_targets(model, log)
    t_train = time.perf_counter()  # the training wall time: the instruction stage, LoRA and its validation selection
    if plan.collab is not None:
        from llmrec.train.collab import collab_model

        model = collab_model(model, config, plan.collab, log)
    else:
        model = _base_adapter(model, tok, config, run.path, precision, progress, log)

    selector = None
    if config.selection.enabled:
        selector = _selector(prepared, config, tok, answer, run.path, loaded, log,
                             report=tracking.log_metrics if tracking else None)
    live = [tracking_callback(tracking.log_metrics)] if tracking else []  # curves while training runs
    trainer = make_trainer(model, tok, examples, args, config.optim.loss,
                           [*(c for c in [selector] if c), *live, *callbacks],
                           # collaborative tokens enter at their prompt positions: the whole prompt runs at once
                           shared_prefix=config.optim.shared_prefix and config.collab is None)
    if selector:
        selector.accelerator = trainer.accelerator
    resume_from = main_first(lambda: last_checkpoint(run.path / "checkpoints", log)) if config.resume else None
    if resume_from:
        log(f"resuming from {resume_from}")
    t0 = time.perf_counter()
    trainer.train(resume_from_checkpoint=resume_from)
    train_s = time.perf_counter() - t0
    train_wall_s = time.perf_counter() - t_train
    model = trainer.model

    best = selector.best() if selector else None
    chosen = run.path / "best-adapter" if best and (run.path / "best-adapter").exists() else None
    if chosen is not None:
        if world().main:
            with atomic_directory(run.path / "adapter") as tmp:
                shutil.copytree(chosen, tmp, dirs_exist_ok=True)
        barrier()
    else:
        save_adapter(model, run.path / "adapter", trainer.accelerator)
    if plan.collab is not None and world().main:  # the frozen tables beside the adapter (the mapper is in it)
        from llmrec.train.collab import save_tables

        save_tables(run.path / "adapter", config, plan.collab, collab)
    barrier()
    sharded = sharding(model)
    if chosen is not None and not sharded:
        from peft import load_peft_weights, set_peft_model_state_dict

        set_peft_model_state_dict(model, load_peft_weights(str(chosen)))
    if world().main:
        write_json(run.path / "train_log.json", whole_run_log(trainer.state.log_history, bool(resume_from)))

    result: dict[str, Any] = {
        "dataset": prepared.dataset, "protocol": prepared.protocol, "split": config.split,
        "train": {"samples": len(rows), "examples": len(examples), "mix_data": list(config.mix_data),
                  "sample_seed": seed, "seed": config.seed, "steps": trainer.state.global_step,
                  "epochs": trainer.state.epoch, "train_loss": run_train_loss(trainer.state.log_history),
                  "train_s_this_session": round(train_s, 1), "resumed_from": resume_from,
                  "loss": config.optim.loss, "positive_rate": float(labels.mean()), "model": loaded.source},
        "selection": {"metric": selector.metric if selector else None, "best": best,
                      "evaluations": selector.history if selector else []},
        "adapter": str(run.path / "adapter"),
    }
    if config.test.enabled:
        model.eval()
        ecfg = config.test_config(str(run.path / "adapter"), str(run.path / "test"))
        # a model with sharded parameters (ZeRO-3, FSDP) is scored afresh from the saved adapter: whole on every
        # process, the test split spread across them; otherwise the trained model in memory is scored
        scored = None if sharded else LoadedModel(model=model, tokenizer=tok, device=loaded.device,
                                                  dtype=loaded.dtype, backend=loaded.backend,
                                                  source=f"{loaded.source} + adapter {run.path / 'adapter'}",
                                                  collab=collab)
        test_plan = check_evaluate(ecfg, model=scored is None, opened=plan.opened)
        _, test_result = evaluate(test_plan, loaded=scored, log=log, progress=progress)
        result["test"] = {"data": ecfg.data, "split": config.test.split, **test_result["metrics"]}
        result["metrics"] = test_result["metrics"]
        # the test scoring's cost, with this run's training wall time (same process, same machine)
        result["cost"] = {"train_s": round(train_wall_s, 2), **test_result["cost"],
                          **({"resumed": True} if resume_from or test_result["cost"].get("resumed") else {})}
    else:
        result["metrics"] = {}
        result["cost"] = {"train_s": round(train_wall_s, 2), **({"resumed": True} if resume_from else {}),
                          "device": str(loaded.device) if loaded.device is not None else None,
                          "machine": machine_info()}
    result["run"] = {"prompts": len(examples), **({"processes": world().size} if world().size > 1 else {})}
    main_first(lambda: run.finish(result))
    tracking.finish(result, curves=train_curves(run.path), metrics=summary_metrics(result), artifacts=TRAIN_ARTIFACTS)
    return run.path, result


def _base_adapter(model, tok, config: TrainConfig, path: Path, precision: str | None, progress: bool, log):
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
    device = next(model.parameters()).device
    args = sft_config(config.optim, path / "instruction" / "checkpoints", config.seed, progress=progress and world().main,
                      precision=precision, use_cpu=device.type == "cpu", epochs=stage.epochs,
                      learning_rate=stage.learning_rate)
    trainer = make_trainer(peft_model, tok, examples, args, config.optim.loss)
    resume = main_first(lambda: last_checkpoint(path / "instruction" / "checkpoints", log)) if config.resume else None
    trainer.train(resume_from_checkpoint=resume)
    save_adapter(trainer.model, done, trainer.accelerator)
    return trainer.model


def _alpaca():
    from llmrec.prompts import load_template

    return load_template("alpaca")


def _selector(prepared, config: TrainConfig, tok, answer, path: Path, loaded: LoadedModel, log, report=None):
    from llmrec.train.selection import ValidationSelector

    sel = config.selection
    renderer = config.renderer(prepared, tok, sel.split, loaded.max_context, collab=loaded.collab)
    indices = subset_rows(prepared.num_rows(sel.split), sel.limit, 0)
    kind = renderer.kind  # candidate lists: every candidate of every list, scored with prefix reuse; a ranking metric
    names = prepared.column_names(sel.split)
    rows = prepared.split(sel.split, columns=[c for c in renderer.columns if c in names]).take(indices).to_pylist()
    if kind.lists and len({kind.prompts_in(r) for r in rows}) > 1:
        raise DataError(f"{config.data}/{sel.split}: candidate lists of different lengths cannot be selected on")
    prompts = [EncodedPrompt(p.context_ids, p.candidate_ids) for group in renderer.render(rows) for p in group]
    labels = kind.labels(rows)
    if not kind.lists and len(set(labels.tolist())) < 2:
        raise DataError(f"{config.data}/{sel.split}: the validation subset has one class only; raise selection.limit")
    return ValidationSelector(prompts, labels, answer, path, metric=sel.metric_for(kind), every_steps=sel.every_steps,
                              patience=sel.patience, scoring=config.scoring, pad_token_id=tok.pad_token_id,
                              at_start=sel.at_start, log=log, report=report)


def train_seeds(config: TrainConfig, seeds: Sequence[int], loader: Callable[[], LoadedModel] | None = None,
                **kwargs) -> tuple[Path, dict]:
    """One run per seed in ``<run_dir>/seed-<s>`` and ``summary.json`` with mean / std of the test metrics.

    Each seed gets a freshly loaded model (``loader()``, default: load ``config.model``). Every
    seed's config is checked before the first one trains. ``summary.json`` reads like a run's
    metrics.json (``metrics`` holds the means, ``metrics_std`` the standard deviations), so
    ``llmrec compare`` and experiments take the folder as one row.
    """
    if not seeds:
        raise ConfigError("give at least one seed")
    base = Path(config.run_dir or Path("runs") / RunDir.default_name("train", Path(config.data).name,
                                                                      str(config.train_samples or "all")))
    configs = [config.model_copy(update={"seed": s, "run_dir": str(base / f"seed-{s}")}) for s in seeds]
    opened: dict[str, PreparedData] = {}  # every seed reads the same folders: each is opened once
    plans = [check_train(cfg, model=loader is None, opened=opened) for cfg in configs]
    results = [train(plan, loaded=loader() if loader else None, **kwargs)[1] for plan in plans]
    stats = summarize_seeds(results) if results[0]["metrics"] else {}
    summary = {"dataset": results[0]["dataset"], "protocol": results[0]["protocol"],
               "split": results[0].get("test", {}).get("split", config.test.split),
               "seeds": list(seeds), "runs": [str(base / f"seed-{s}") for s in seeds],
               "metrics": {k: v["mean"] for k, v in stats.items()},
               "metrics_std": {k: v["std"] for k, v in stats.items()},
               "metrics_per_seed": {k: v["values"] for k, v in stats.items()},
               "valid_best": [r["selection"]["best"] for r in results],
               "run": {"prompts": results[0].get("run", {}).get("prompts"), "kind": "seeds"}}
    write_json(base / "summary.json", summary)
    return base, summary
