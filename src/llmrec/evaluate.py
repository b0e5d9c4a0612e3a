"""``llmrec evaluate``: score a prepared split with an LLM (zero-shot) into a run folder.

>>> cfg = EvaluateConfig(data="prepared/ml-1m-rella", limit=1000)
>>> cfg.split, cfg.model.name, cfg.scoring.batch_size
('test', 'default', 8)
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import ConfigDict, Field
from tqdm.auto import tqdm

from llmrec.data.kinds import SampleKind, detect
from llmrec.data.prepared import PreparedData, open_prepared
from llmrec.data.sampling import subset_rows
from llmrec.distributed import barrier, gather, launched, main_first, shard, world
from llmrec.errors import ConfigError, DataError
from llmrec.llm import (
    AnswerTokens,
    EncodedPrompt,
    LoadedModel,
    ModelConfig,
    Scorer,
    ScoringConfig,
    check_model,
    load_model,
    load_tokenizer,
    make_scorer,
    sharding,
)
from llmrec.parallel import EngineSettings, map_tasks
from llmrec.prompts.settings import PromptSettings
from llmrec.results import RESULT_COLUMNS, SampleScorer, rows_columns, write_results
from llmrec.runs import Pace, RunDir, run_cost
from llmrec.tracking import TrackingSettings, start_tracking

__all__ = ["EvaluateConfig", "EvaluatePlan", "PromptScorer", "check_evaluate", "evaluate"]


class EvaluateConfig(PromptSettings):
    """Everything ``llmrec evaluate`` needs (the prompt fields come from :class:`PromptSettings`)."""

    model_config = ConfigDict(extra="forbid")

    data: str = Field(description="prepared folder (llmrec data prepare)")
    split: str = "test"
    limit: int | None = Field(None, ge=1, description="score a seeded random subset of this many samples")
    sample_seed: int = 0
    model: ModelConfig = Field(default_factory=ModelConfig)
    adapter: str | None = Field(None, description="LoRA adapter folder (llmrec train) applied to the model")
    merge_adapter: bool = Field(False, description="merge the adapter into the weights before scoring")
    scoring: ScoringConfig = Field(default_factory=ScoringConfig)
    run_dir: str | None = Field(None, description="run folder (default: runs/<time>-<dataset>-<protocol>-<split>)")
    resume: bool = Field(True, description="continue an interrupted run in run_dir")
    checkpoint_every: int = Field(64, ge=1, description="prompts scored between writes of partial predictions")
    checkpoint_seconds: float | None = Field(30.0, gt=0, description="and at most about this many seconds of scoring "
                                             "between them (a kill loses at most that); null: by count only")
    engine: EngineSettings = Field(default_factory=EngineSettings, description="local, or Ray Data workers that each "
                                   "load the model and score chunks of samples (the same predictions)")
    tracking: TrackingSettings = Field(default_factory=TrackingSettings, description="also log the run to MLflow / "
                                       "TensorBoard (docs/tracking.md)")

    def identity(self, data_fingerprint: str | None = None) -> dict[str, Any]:
        """The fields that determine the predictions (a resumed run must match them).

        ``data_fingerprint`` is the content hash of the prepared folder: re-preparing it in place
        with other data makes a different run.
        """
        keep = self.model_dump(mode="json", include={"data", "split", "template", "history_k", "max_prompt_tokens",
                                                     "chat", "limit", "sample_seed", "adapter"})
        keep["model"] = self.model.model_dump(mode="json", include={"name", "gguf_file", "dtype", "revision", "backend",
                                                                   "quantize"})
        keep["head"] = self.scoring.head
        if data_fingerprint:
            keep["data_fingerprint"] = data_fingerprint
        return keep


@dataclass(frozen=True)
class EvaluatePlan:
    """What :func:`check_evaluate` settled; :func:`evaluate` runs from it and reads no config file or folder
    metadata again (the split's rows are read once, when scoring starts)."""

    config: EvaluateConfig
    prepared: PreparedData
    kind: SampleKind  # what the split's rows are
    rows: tuple[int, ...]  # the row indices scored, in table order (every row, or the seeded ``limit`` subset)
    fingerprint: str  # content hash of the prepared folder: part of the run's identity

    @property
    def identity(self) -> dict[str, Any]:
        """The fields that determine the predictions (a resumed run must match them)."""
        return self.config.identity(self.fingerprint)


def check_evaluate(config: EvaluateConfig, *, model: bool = True, adapter: bool = True,
                   opened: dict[str, PreparedData] | None = None) -> EvaluatePlan:
    """Every cheap check of an evaluate config (data, split, template, model, adapter, device), before anything
    is loaded or written; returns the plan :func:`evaluate` runs. ``opened`` shares prepared folders already
    opened in this command (by path), so no folder is opened twice."""
    prepared = open_prepared(config.data, opened)
    n_rows = prepared.num_rows(config.split)
    if n_rows == 0:
        raise DataError(f"{config.data}: split {config.split!r} is empty")
    kind = detect(prepared.column_names(config.split))
    collab = None  # whether the model places collaborative tokens (its adapter's; the template must mark where)
    if model and (adapter or not config.adapter):
        from llmrec.llm import adapter_dir
        from llmrec.llm.collab import read_collab

        collab = bool(config.adapter) and read_collab(adapter_dir(config.adapter)) is not None
    config.check_template(prepared, collab=collab)
    config.tracking.check()
    if config.merge_adapter and not config.adapter:
        raise ConfigError("merge_adapter (--merge) needs an adapter (--adapter) to merge")
    if model:
        check_model(config.model, config.adapter if adapter else None)
    if config.engine.kind != "local" and launched():
        raise ConfigError("engine.kind: ray inside accelerate launch / torchrun: use one of the two (Ray workers, or "
                          "launched processes), not both")
    rows = tuple(subset_rows(n_rows, config.limit, config.sample_seed))
    return EvaluatePlan(config, prepared, kind, rows, prepared.fingerprint())


def evaluate(config: EvaluateConfig | EvaluatePlan, *, loaded: LoadedModel | None = None,
             scorer: Scorer | SampleScorer | None = None, log=print, progress: bool = True) -> tuple[Path, dict]:
    """Score the split, write the run folder, return (folder, metrics).

    ``config`` is a config (checked here) or the plan :func:`check_evaluate` returned for it.

    ``loaded`` skips loading the model (its tokenizer renders the prompts); ``scorer`` replaces
    the backend's scorer: an LLM :class:`~llmrec.llm.Scorer` (scoring the rendered prompts), or any
    :class:`~llmrec.results.SampleScorer` (an object with ``score_rows``, e.g. a trained baseline,
    :class:`llmrec.baselines.run.BaselineScorer`), which scores the rows itself: no LLM is loaded
    and the config's model, prompt and engine fields are not used. Everything cheap (data, split,
    template, model, adapter, device) is checked before the run folder is created. Example (zero-shot, the
    default model, 200 seeded test samples)::

        import llmrec

        folder, result = llmrec.evaluate(llmrec.EvaluateConfig(data="prepared/ml-100k-tallrec", limit=200))
        result["metrics"]["auc"]
    """
    # an object with ``score_rows`` scores rows itself (a SampleScorer); an LLM Scorer scores rendered prompts
    rows_scorer: SampleScorer | None = scorer if callable(getattr(scorer, "score_rows", None)) else None
    llm = rows_scorer is None  # prompts rendered here and scored by an LLM (here or in Ray workers)
    plan = (config if isinstance(config, EvaluatePlan)
            else check_evaluate(config, model=loaded is None and rows_scorer is None))
    config, prepared = plan.config, plan.prepared
    protocol, dataset = prepared.protocol, prepared.dataset
    # the main process names, creates or checks the folder; under a launcher the others get the same RunDir
    # a run scored by another scorer is another run (it resumes only with the same one)
    identity = plan.identity if llm else {**plan.identity, "scorer": _scorer_name(rows_scorer)}
    run, finished = main_first(lambda: RunDir.open(
        config.run_dir or Path("runs") / RunDir.default_name(dataset, protocol, config.split),
        config.model_dump(mode="json"), identity, resume=config.resume, log=log))
    tracking = start_tracking(config.tracking, run.path, command="evaluate", identity=identity, log=log,
                              tags={"llmrec.dataset": dataset, "llmrec.protocol": protocol, "llmrec.split": config.split})
    if finished is not None:
        tracking.finish(finished, artifacts=EVALUATE_ARTIFACTS)
        return run.path, finished

    facts: dict[str, Any] = {}
    names = prepared.column_names(config.split)
    workers = llm and config.engine.kind != "local"  # Ray workers load the model and score
    t_load = time.perf_counter()
    if llm:
        if loaded is None and workers:  # the workers load the model; here it renders prompts
            loaded = load_tokenizer(config.model, adapter=config.adapter)
        elif loaded is None:
            from llmrec.llm.hf import resolve_device
            from llmrec.planning.guard import check_fits

            if config.model.backend == "transformers":  # on a GPU: stop before loading when it cannot fit
                check_fits("evaluate", config, resolve_device(config.model.device), world_size=world().size,
                           log=log)
            loaded = load_model(config.model, adapter=config.adapter, merge=config.merge_adapter)
    load_s = time.perf_counter() - t_load
    if llm:
        renderer = config.renderer(prepared, loaded.tokenizer, config.split, loaded.max_context,
                                   collab=loaded.collab)
        kind = renderer.kind
        columns = [c for c in dict.fromkeys((*renderer.columns, *RESULT_COLUMNS)) if c in names]
    else:
        kind = plan.kind
        columns = rows_columns(rows_scorer, names)
    table = prepared.split(config.split, columns=columns)
    rows = table.take(list(plan.rows)).to_pylist()
    del table

    if llm:
        answer = AnswerTokens.for_renderer(renderer, rows[0])
        if not workers:
            rows_scorer = PromptScorer(renderer, scorer or make_scorer(loaded, answer, config.scoring))
        facts.update({
            "model": loaded.source, "adapter": config.adapter,
            "device": str(loaded.device or f"{config.engine.kind} workers"),
            "dtype": str(loaded.dtype or config.model.dtype).removeprefix("torch."),
            "template": renderer.template.name, "chat_template": renderer.chat,
            "answer_tokens": [answer.yes_text, answer.no_text], "history_k": renderer.history_k,
            "max_prompt_tokens": renderer.max_tokens})
    else:
        facts["model"] = _scorer_name(rows_scorer)

    done = run.done()
    per_row = kind.prompts_in(rows[0])
    total = sum(kind.prompts_in(r) for r in rows)
    pending = [r for r in rows if kind.keys(r)[0] not in done or kind.keys(r)[-1] not in done]
    if done:
        log(f"resuming {run.path}: {len(done)} of {total} prompts already scored")
    # under a launcher each process scores its block of every chunk and the main process writes them all;
    # a model with sharded parameters (ZeRO-3, FSDP) runs its forwards in lockstep, so every process scores all
    w = world()
    lockstep = loaded is not None and hasattr(loaded.model, "modules") and sharding(loaded.model)
    spread = w.size if w.size > 1 and not lockstep else 1
    bar = tqdm(total=total, initial=total - sum(kind.prompts_in(r) for r in pending),
               desc=f"scoring {dataset}/{config.split}", unit="prompt", disable=not progress or not w.main)
    t0 = time.perf_counter()
    scored_now, token_count = 0, 0
    step = max(1, config.checkpoint_every // per_row)
    if workers:  # Ray workers score chunks of the same size; each finished chunk is appended
        chunks = [pending[i : i + step] for i in range(0, len(pending), step)]
        for _, records in map_tasks(chunks, _chunk_scorer(config), config.engine):
            run.append(records)
            bar.update(len(records))
            scored_now += len(records)
            token_count += sum(r.get("tokens", 0) for r in records)
    else:
        # pieces of at most checkpoint_every prompts and about checkpoint_seconds each (by the last piece's rate); the
        # processes of a launch score in lockstep, so there the pieces are by count only (the same on every process)
        pace = Pace(step, config.checkpoint_seconds if spread == 1 else None, first=max(1, 8 // per_row))
        start = 0
        while start < len(pending):
            chunk = pending[start : start + pace.next() * spread]
            start += len(chunk)
            mine = shard(chunk, w) if spread > 1 else chunk
            t_piece = time.perf_counter()
            records = rows_scorer.score_rows(mine, kind, bar.update)
            pace.done(len(mine), time.perf_counter() - t_piece)
            if spread > 1:
                parts = gather(records)
                bar.update(sum(map(len, parts)) - len(records))
                records = [r for part in parts for r in part]
            if w.main:
                run.append(records)
            scored_now += len(records)
            token_count += sum(r.get("tokens", 0) for r in records)
    bar.close()
    elapsed = time.perf_counter() - t0
    barrier()

    done = run.done()
    facts.update(samples=len(rows), prompts=total)
    if llm:  # facts only an LLM's prompts have
        history_k = facts.get("history_k")
        facts["mean_prompt_tokens"] = float(np.mean([r["tokens"] for r in done.values()]))
        facts["prompts_with_history_cut"] = int(sum(r["history_kept"] < min(r["history_total"], history_k or 10**9)
                                                    for r in done.values()))
    facts["model_load_s"] = round(load_s, 2)
    # zero-shot: an LLM without an adapter had no training; other scorers' training is their own run's
    cost = run_cost(train_s=0.0 if llm and not config.adapter else None, scoring_s=elapsed,
                    samples=scored_now / per_row, prompts=scored_now,
                    device=str(loaded.device) if loaded is not None and loaded.device is not None else None,
                    resumed=len(pending) < len(rows))
    if llm:
        facts["tokens_per_s_this_session"] = round(token_count / elapsed, 1) if scored_now and elapsed > 0 else None
    if w.size > 1:
        facts["processes"] = w.size
    if workers:
        facts["engine"] = {"kind": config.engine.kind, "workers": config.engine.workers}

    def finish() -> dict:
        metrics, plots = write_results(run, rows, done, kind, f"{dataset}/{protocol}/{config.split}",
                                       segmenter=prepared.segmenter())
        result = {"dataset": dataset, "protocol": protocol, "split": config.split, "metrics": metrics, "run": facts,
                  "cost": cost, "plots": plots}
        run.finish(result)
        return result

    result = main_first(finish)
    tracking.finish(result, artifacts=EVALUATE_ARTIFACTS)
    return run.path, result


EVALUATE_ARTIFACTS = ["predictions.parquet", "plots"]  # besides config.yaml and metrics.json


def _scorer_name(scorer: SampleScorer) -> str:
    """What a sample scorer calls itself (its ``name``, else its class)."""
    return str(getattr(scorer, "name", None) or type(scorer).__name__)


def _chunk_scorer(config: EvaluateConfig):
    """A worker factory for :func:`llmrec.parallel.map_tasks`: loads data and model once per worker, then
    scores chunks of rows exactly as the local loop does (same chunks, same batches, same scores)."""

    def make():
        prepared = PreparedData.load(config.data)
        loaded = load_model(config.model, adapter=config.adapter, merge=config.merge_adapter)
        renderer = config.renderer(prepared, loaded.tokenizer, config.split, loaded.max_context,
                                   collab=loaded.collab)
        scorers: list[PromptScorer] = []

        def work(rows: list[dict]) -> list[dict]:
            if not scorers:
                llm = make_scorer(loaded, AnswerTokens.for_renderer(renderer, rows[0]), config.scoring)
                scorers.append(PromptScorer(renderer, llm))
            return scorers[0].score_rows(rows, renderer.kind)

        return work

    return make


@dataclass(frozen=True)
class PromptScorer:
    """An LLM as a :class:`~llmrec.results.SampleScorer`: the renderer turns rows into encoded prompts, the
    backend's :class:`~llmrec.llm.Scorer` scores them; one record (key, score, prompt length, history kept)
    per prompt.

    >>> from types import SimpleNamespace
    >>> from llmrec.data.kinds import KINDS
    >>> from llmrec.prompts.template import RenderedPrompt
    >>> class FirstToken:  # an LLM stand-in: P(yes) = the first context token / 10
    ...     def score(self, prompts, progress=None):
    ...         return np.array([p.context[0] / 10 for p in prompts])
    >>> render = lambda rows: [[RenderedPrompt((r["sample_id"], 9), (1,), "", 2, 3)] for r in rows]
    >>> scorer = PromptScorer(SimpleNamespace(render=render, columns=("sample_id",)), FirstToken())
    >>> scorer.score_rows([{"sample_id": 4}], KINDS["ctr"])
    [{'key': '4', 'score': 0.4, 'tokens': 3, 'history_kept': 2, 'history_total': 3}]
    """

    renderer: Any  # llmrec.prompts.Renderer: .render(rows) -> one group of rendered prompts per row; .columns
    scorer: Scorer

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(self.renderer.columns)

    def score_rows(self, rows: list[dict], kind: SampleKind, progress=None) -> list[dict]:
        """Score ``rows``: one record (key, score, prompt length, history kept) per prompt, in order."""
        if not rows:
            return []
        groups = self.renderer.render(rows)
        prompts = [EncodedPrompt(p.context_ids, p.candidate_ids) for g in groups for p in g]
        scores = self.scorer.score(prompts, progress=progress)
        records, k = [], 0
        for row, group in zip(rows, groups):
            for key, p in zip(kind.keys(row), group):
                records.append({"key": key, "score": float(scores[k]), "tokens": len(p),
                                "history_kept": p.history_kept, "history_total": p.history_total})
                k += 1
        return records
